"""The background worker inside each server process: confirms schema-change candidates, fans the outbox out to
subscriptions (computing each incident's impact once), delivers webhooks with retries and exponential backoff,
and checks for late datasets. Work is claimed with leases (an UPDATE that only one process wins), so several
processes share it and each webhook is sent by one of them; everything it needs is in the database, so a
restart loses nothing.

Order: per subscription and incident, `incident.resolved` is never sent before (or while) `incident.opened` is;
an `incident.opened` still waiting for a retry when the incident resolves is superseded, never sent after it.
The claims enforce this in the database (conditions of the claiming UPDATE), whichever process claims what."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine, exists, or_, select, update

from app.db import tables as t
from app.db.dialect import upsert
from app.db.engine import read_connection, write_transaction
from app.schemas.incidents import DownstreamColumns, IncidentImpact
from app.services.incidents import delivery, late, records, service, subscriptions
from app.services.lineage import node_id
from app.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
LEASE = timedelta(seconds=60)  # a claimed row is retried by others if its claimer died
BATCH = 50


def system_clock() -> datetime:
    return datetime.now(UTC)


def _claim(engine: Engine, table, row_id, now: datetime, *pending) -> bool:
    c = table.c
    with write_transaction(engine) as conn:
        claimed = conn.execute(
            update(table).where(c.id == row_id, *pending, _unleased(table, now)).values(lease_until=now + LEASE)
        ).rowcount
    return claimed == 1


def _unleased(table, now: datetime):
    return or_(table.c.lease_until.is_(None), table.c.lease_until < now)


def _earlier_outbox_pending():
    """An outbox row of the same incident before this one is not fanned out yet: the `resolved` row waits for
    the `opened` one (it goes to those told of the opening, who must be known first)."""
    o, earlier = t.incident_outbox.c, t.incident_outbox.alias("earlier").c
    return exists().where(earlier.incident_id == o.incident_id, earlier.id < o.id, earlier.fanned_out_at.is_(None))


def _sibling(event: str, *status_is):
    """The delivery of ``event`` to the same subscription about the same incident (with one of these statuses)."""
    w, other = t.webhook_deliveries.c, t.webhook_deliveries.alias("other").c
    return exists().where(
        other.subscription_id == w.subscription_id,
        other.incident_id == w.incident_id,
        other.event == event,
        *([other.status.in_(status_is)] if status_is else []),
    )


def _in_order():
    """May this delivery be sent now? `resolved`: not while its `opened` is pending (waiting or in flight);
    `opened`: not once its `resolved` exists (it is superseded instead)."""
    w = t.webhook_deliveries.c
    return or_(
        (w.event == records.RESOLVED) & ~_sibling(records.OPENED, "pending"),
        (w.event == records.OPENED) & ~_sibling(records.RESOLVED),
    )


def supersede(engine: Engine, now: datetime) -> int:
    """Pending `incident.opened` deliveries not in flight whose incident has resolved since: the receiver hears
    `incident.resolved` instead, not a stale "open" after it (nor a page for what is over)."""
    w = t.webhook_deliveries.c
    stale = (w.event == records.OPENED, w.status == "pending", _unleased(t.webhook_deliveries, now))
    with read_connection(engine) as conn:  # mostly none: no write transaction (a lock on SQLite) every poll
        found = conn.execute(select(w.id).where(*stale, _sibling(records.RESOLVED)).limit(BATCH)).scalars().all()
    if not found:
        return 0
    with write_transaction(engine) as conn:  # the conditions again: a worker may have claimed one meanwhile
        return conn.execute(
            update(t.webhook_deliveries)
            .where(w.id.in_(found), *stale, _sibling(records.RESOLVED))
            .values(status="superseded", lease_until=None)
        ).rowcount


def process_candidates(engine: Engine, now: datetime) -> int:
    """Schema changes recorded at ingest: open an incident when downstream column lineage uses a changed column."""
    c = t.incident_candidates.c
    with read_connection(engine) as conn:
        pending = conn.execute(
            select(t.incident_candidates).where(c.processed_at.is_(None)).order_by(c.id).limit(BATCH)
        ).all()
        dataset_names = {
            row.id: (row.namespace_name, row.name)
            for row in conn.execute(
                select(t.datasets.c.id, t.datasets.c.namespace_name, t.datasets.c.name).where(
                    t.datasets.c.id.in_({p.dataset_id for p in pending})
                )
            )
        }
    opened = 0
    for candidate in pending:
        ns, name = dataset_names.get(candidate.dataset_id, (None, None))
        changed = candidate.details["changedColumns"]
        request = {
            "dataset": {"namespace": ns, "name": name},
            "version": str(candidate.dataset_version_id),
            "columns": sorted(c["name"] for c in changed),
        }
        impact = service.compute_impact(engine, request) if name else None
        root = node_id("DATASET", ns, name) if name else None
        downstream = [
            DownstreamColumns(nodeId=d.nodeId, dataset=d.dataset, columns=d.columns)
            for d in (impact.datasets if impact else [])
            if d.nodeId != root and d.columns
        ]
        with write_transaction(engine) as conn:
            if not conn.execute(
                update(t.incident_candidates)
                .where(c.id == candidate.id, c.processed_at.is_(None))
                .values(processed_at=now)
            ).rowcount:
                continue  # another process took it
            if not downstream:
                continue  # nothing downstream derives a column from the changed ones
            words = [
                f"{x['name']} ({'dropped' if x['after'] is None else 'retyped to ' + x['after']})" for x in changed
            ]
            affected = ", ".join(f"{d.dataset.name}.{col}" for d in downstream for col in d.columns)
            opened += (
                records.open_incident(
                    conn,
                    records.NewIncident(
                        kind="schema_change",
                        subject=candidate.dataset_id,
                        namespace=ns,
                        title=f"Schema change on {name}: {', '.join(words)} — used downstream by {affected}",
                        opened_at=candidate.detected_at,
                        resolvable_after=candidate.detected_at,
                        backfill_request=request,
                        details={
                            "changedColumns": changed,
                            "downstreamColumns": [d.model_dump(mode="json") for d in downstream],
                        },
                        dataset=(ns, name),
                        version_id=candidate.dataset_version_id,
                        impact=impact.model_dump(mode="json") if impact else None,
                    ),
                )
                is not None
            )
    return opened


def fan_out(engine: Engine, settings: Settings, now: datetime) -> int:
    """Outbox rows -> one delivery per matching subscription (a subscriber hears of an incident once)."""
    o = t.incident_outbox.c
    with read_connection(engine) as conn:
        pending = conn.execute(
            select(o.id, o.incident_id, o.event)
            .where(o.fanned_out_at.is_(None), or_(o.lease_until.is_(None), o.lease_until < now))
            .order_by(o.id)
            .limit(BATCH)
        ).all()
    created = 0
    for entry in pending:
        if not _claim(engine, t.incident_outbox, entry.id, now, o.fanned_out_at.is_(None), ~_earlier_outbox_pending()):
            continue  # another process has it, or an earlier notification of its incident is not fanned out yet
        with read_connection(engine) as conn:
            incident = service.load(conn, entry.incident_id)
            subs = conn.execute(select(t.subscriptions)).all()
            told = set(
                conn.execute(
                    select(t.webhook_deliveries.c.subscription_id).where(
                        t.webhook_deliveries.c.incident_id == incident.id,
                        t.webhook_deliveries.c.event == records.OPENED,
                    )
                ).scalars()
            )
        impact = IncidentImpact.model_validate(incident.impact) if incident.impact is not None else None
        if impact is None:
            impact = service.compute_impact(engine, incident.backfill_request)
        if entry.event == records.RESOLVED:
            matched = [s for s in subs if s.id in told]  # those told it opened hear it is over
        else:
            matched = [s for s in subs if subscriptions.matches(s, incident, impact)]
        body = delivery.payload(entry.event, service.to_wire(incident, settings.public_url, impact))
        rows = [
            {
                "id": uuid.uuid4(),
                "subscription_id": s.id,
                "incident_id": incident.id,
                "event": entry.event,
                "payload": body,
                "status": "pending",
                "attempts": 0,
                "history": [],
                "next_attempt_at": now,
                "created_at": now,
            }
            for s in matched
        ]
        with write_transaction(engine) as conn:
            if incident.impact is None:
                conn.execute(
                    update(t.incidents)
                    .where(t.incidents.c.id == incident.id)
                    .values(impact=impact.model_dump(mode="json"))
                )
            if rows:
                stmt = upsert(conn, t.webhook_deliveries).on_conflict_do_nothing(
                    index_elements=["subscription_id", "incident_id", "event"]
                )
                conn.execute(stmt, rows)
            conn.execute(update(t.incident_outbox).where(o.id == entry.id).values(fanned_out_at=now, lease_until=None))
        created += len(rows)
    return created


def deliver_due(
    engine: Engine,
    settings: Settings,
    client: httpx.Client,
    now: datetime,
    record: Callable[[str], None] = lambda outcome: None,
) -> int:
    """Send the deliveries that are due; ``record`` hears each attempt's outcome (delivered, retry, failed)."""
    w = t.webhook_deliveries.c
    supersede(engine, now)
    with read_connection(engine) as conn:
        due = (
            conn.execute(
                select(w.id)
                .where(
                    w.status == "pending",
                    w.next_attempt_at <= now,
                    or_(w.lease_until.is_(None), w.lease_until < now),
                )
                .order_by(w.next_attempt_at, w.id)
                .limit(BATCH)
            )
            .scalars()
            .all()
        )
    if not due:
        return 0
    # One slow or unreachable receiver must not hold up everyone else's webhooks for its whole timeout.
    with ThreadPoolExecutor(max_workers=min(settings.webhook_concurrency, len(due))) as pool:
        outcomes = list(pool.map(lambda delivery_id: _attempt(engine, settings, client, delivery_id, now), due))
    for outcome in outcomes:
        if outcome is not None:
            record(outcome)
    return outcomes.count("delivered")


def _attempt(engine: Engine, settings: Settings, client: httpx.Client, delivery_id, now: datetime) -> str | None:
    """Claim one due delivery, send it once and record the outcome: delivered, retry or failed (None when
    another worker claimed it or its subscription is gone)."""
    w, s = t.webhook_deliveries.c, t.subscriptions.c
    if not _claim(engine, t.webhook_deliveries, delivery_id, now, w.status == "pending", _in_order()):
        return None  # another worker has it, or an earlier delivery of its incident to its subscriber is pending
    with read_connection(engine) as conn:
        row = conn.execute(
            select(t.webhook_deliveries, s.url, s.secret)
            .join(t.subscriptions, s.id == w.subscription_id)
            .where(w.id == delivery_id)
        ).first()
    if row is None:
        return None  # its subscription was deleted meanwhile
    outcome = delivery.send(
        client,
        row.url,
        row.secret,
        row.payload,
        delivery_id=str(row.id),
        now=now,
        legacy_signature=settings.webhook_legacy_signature,
    )
    attempts = row.attempts + 1
    values = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "history": [
            *row.history,
            {"at": now.isoformat(), "statusCode": outcome.status_code, "error": outcome.error},
        ],
        "lease_until": None,
    }
    if outcome.ok:
        values.update(status="delivered", delivered_at=now)
        result = "delivered"
    elif attempts >= settings.webhook_max_attempts:
        values.update(status="failed")
        result = "failed"
    else:
        backoff = min(settings.webhook_backoff_seconds * 2 ** (attempts - 1), settings.webhook_backoff_max_seconds)
        values.update(next_attempt_at=now + timedelta(seconds=backoff))
        result = "retry"
    with write_transaction(engine) as conn:
        conn.execute(update(t.webhook_deliveries).where(w.id == delivery_id).values(**values))
    return result


class IncidentWorker:
    """Runs the steps above every `worker_poll_seconds` (the late check every `late_check_seconds`) in a thread."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock = system_clock,
        record_attempt: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self.record_attempt = record_attempt
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_late_check: datetime | None = None
        self.late_checked_at: datetime | None = None  # the clock's time at the last late check done
        self._client = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)

    def run_once(self) -> None:
        for step in (self._candidates, self._fan_out, self._deliver, self._late):
            if self._stop.is_set():
                return
            try:
                step()
            except Exception:  # one failing step (a database hiccup) must not end the worker
                log.exception("incident worker step %s failed", step.__name__)

    def _candidates(self) -> None:
        process_candidates(self.engine, self.clock())

    def _fan_out(self) -> None:
        fan_out(self.engine, self.settings, self.clock())

    def _deliver(self) -> None:
        deliver_due(self.engine, self.settings, self._client, self.clock(), self.record_attempt)

    def _late(self) -> None:
        now = self.clock()
        if (
            self._next_late_check is None
            or now >= self._next_late_check
            or now < self._next_late_check - timedelta(seconds=self.settings.late_check_seconds)
        ):
            self._next_late_check = now + timedelta(seconds=self.settings.late_check_seconds)
            late.check(self.engine, self.settings, now)
            self.late_checked_at = now

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.settings.worker_poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="headwater-incidents", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.webhook_timeout_seconds + 5)
        self._client.close()
