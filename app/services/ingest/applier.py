"""The applier: builds the model from the event log, a batch per transaction.

Each server process runs one applier thread. A batch is claimed, applied and marked in one transaction:

1. take the applier lock: one batch is applied at a time, whichever process applies it (SQLite has one
   writer at a time anyway). Batches of different processes could otherwise interleave their reads and writes
   of the rows they share (datasets read by one batch's jobs and published by another's) in ways that one
   event per transaction never did; set-based batches, not parallel ones, are how the applier gets faster;
2. claim up to ``max_batch`` unapplied events, oldest first (``applied_at IS NULL``, a partial index;
   ``FOR UPDATE SKIP LOCKED`` on Postgres, so the claim itself never waits);
3. take the per-job locks of every job in the batch at once, in one global order (``serialize_on_all``):
   ingest's inline path (the Marquez API's legacy writes) and retention take the same locks;
4. apply the events with the ingest code, in waves: events that share nothing one of them writes (a run, a
   job, an output; readers of one table share it) run side by side, each in its own greenlet, and the same
   multi-row write of all of them is one statement (app/db/lockstep.py); events that do share one are in
   later waves, in claim order. Incidents and their outbox rows are detected in the same transaction;
5. mark the events applied (``applied_at``) in that same transaction.

A crash anywhere before the commit leaves the events unapplied and unclaimed for the next batch; after it,
they are applied and marked together, so an event is applied exactly once. Event keys make the model
independent of the order events are applied in, so it does not matter which process applies which batch.

A batch that raises for a reason that is not the database's (a mapping bug, a payload that no longer
validates) is rolled back and its events are applied again one per transaction, so the bad one is marked
with ``apply_error`` and the others are applied: one bad event never holds the rest back. Lost races and an
unreachable database roll the batch back and try again after a pause.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select, update

from app.db import tables as t
from app.db.dialect import in_values, is_retryable, is_unavailable, serialize_on, serialize_on_all
from app.db.engine import write_transaction
from app.db.lockstep import Lockstep
from app.schemas.openlineage import DatasetEvent, LineageEvent, RunEvent, event_class_for
from app.services.ingest.apply import (
    apply_dataset_event,
    apply_job_event,
    apply_run_event,
    dataset_names,
    event_resources,
    facets_nothing_reads,
)
from app.services.ingest.statements import ids_value, statements_for
from app.services.ingest.writer import BatchMemo, ColumnLineageIds, EventContext, event_key
from app.settings import DEFAULT_INCIDENT_MAX_EVENT_AGE, QualityRule

log = logging.getLogger(__name__)

# One batch at a time, across every process and replica (see the module docstring).
APPLIER_LOCK = "headwater:applier"

APPLY = {"RUN_EVENT": apply_run_event, "DATASET_EVENT": apply_dataset_event, "JOB_EVENT": apply_job_event}


def job_lock_key(namespace: str, name: str) -> str:
    """What a transaction locks (``dialect.serialize_on``) to apply a job's events one at a time; a purge
    takes the same lock before deciding which of that job's rows nothing needs any more."""
    return f"job:{namespace}:{name}"


def validate_stored(payload: dict[str, Any]) -> LineageEvent:
    """The event a stored payload is. Raises ValueError for one that no longer validates."""
    event_class = event_class_for(payload)
    if event_class is None:
        raise ValueError("not an OpenLineage event")
    try:
        return event_class.model_validate(payload)
    except ValidationError as exc:
        raise ValueError(f"invalid {event_class.__name__}: {exc.error_count()} errors") from exc


def apply_event(
    connection,
    event_id: int,
    digest: str,
    event: LineageEvent,
    *,
    received_at: datetime | None = None,
    quality_rules: tuple[QualityRule, ...] = (),
    incident_max_event_age: timedelta = DEFAULT_INCIDENT_MAX_EVENT_AGE,
    detect_incidents: bool = True,
    memo: BatchMemo | None = None,
    names: list[tuple[str, str]] | None = None,
) -> None:
    """Build the model from one stored event, inside the caller's transaction. ``received_at`` with the event's
    time says whether it is news or history (app/services/incidents/news.py); ``names``: its
    ``dataset_names`` when the caller has them (parsing column lineage for them is not free)."""
    ctx = EventContext(
        event_id,
        event_key(event.eventTime, digest),
        event.eventTime,
        quality_rules=quality_rules,
        detect_incidents=detect_incidents,
        received_at=received_at,
        incident_max_event_age=incident_max_event_age,
        memo=memo,
        dataset_names=names,
    )
    APPLY[event.KIND](connection, ctx, event)


class ValidatedEvents:
    """Events this process validated when they were posted, by hash, so its applier need not read their
    payloads back and validate them again. Bounded: an event another process applies is dropped in time."""

    def __init__(self, capacity: int = 20_000):
        self.capacity = capacity
        self._events: OrderedDict[str, LineageEvent] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, digest: str, event: LineageEvent) -> None:
        with self._lock:
            self._events[digest] = event
            if len(self._events) > self.capacity:
                self._events.popitem(last=False)

    def take(self, digest: str) -> LineageEvent | None:
        with self._lock:
            return self._events.pop(digest, None)


@dataclass(frozen=True)
class BatchOutcome:
    applied: int = 0  # events marked applied (including those that failed)
    failed: int = 0  # of which marked with apply_error


def _claim(connection, limit: int, only_id: int | None):
    e = t.lineage_events.c
    stmt = select(e.id, e.event_hash, e.event_kind, e.job_namespace, e.job_name, e.received_at).where(
        e.applied_at.is_(None)
    )
    if only_id is not None:
        stmt = stmt.where(e.id == only_id)
    return connection.execute(stmt.order_by(e.id).limit(limit).with_for_update(skip_locked=True)).all()


class _BatchFailed(Exception):
    def __init__(self, event_ids: list[int]):
        self.event_ids = event_ids


def apply_pending(
    engine: Engine,
    *,
    limit: int,
    quality_rules: Sequence[QualityRule] = (),
    incident_max_event_age: timedelta = DEFAULT_INCIDENT_MAX_EVENT_AGE,
    validated: ValidatedEvents | None = None,
    lineage_ids: ColumnLineageIds | None = None,
) -> BatchOutcome:
    """Claim, apply and mark one batch (see the module docstring). Raises what the database raised when it
    could not be committed (lost a race, unreachable): nothing of it stays then. ``validated`` and
    ``lineage_ids``: what the caller keeps from one batch to the next (the applier), so less is read again."""
    options = {
        "quality_rules": quality_rules,
        "incident_max_event_age": incident_max_event_age,
        "lineage_ids": lineage_ids,
    }
    try:
        return _apply_batch(engine, limit=limit, validated=validated, **options)
    except _BatchFailed as failed:
        # Slower (a transaction per event) and only right for a bad event: say so, so a bug here is seen.
        cause = failed.__cause__
        log.warning(
            "applier: a batch of %d events could not be applied together (%s: %s); applying them one by one",
            len(failed.event_ids),
            type(cause).__name__,
            cause,
        )
        outcomes = [_apply_batch(engine, limit=1, only_id=i, **options) for i in failed.event_ids]
        return BatchOutcome(sum(o.applied for o in outcomes), sum(o.failed for o in outcomes))


def _apply_batch(
    engine: Engine,
    *,
    limit: int,
    quality_rules: Sequence[QualityRule],
    incident_max_event_age: timedelta,
    validated: ValidatedEvents | None = None,
    lineage_ids: ColumnLineageIds | None = None,
    only_id: int | None = None,
) -> BatchOutcome:
    e = t.lineage_events.c
    with write_transaction(engine) as connection:
        serialize_on(connection, APPLIER_LOCK)
        claimed = _claim(connection, limit, only_id)
        if not claimed:
            return BatchOutcome()
        serialize_on_all(connection, (job_lock_key(r.job_namespace, r.job_name) for r in claimed if r.job_name))
        events = {r.id: validated.take(r.event_hash) if validated is not None else None for r in claimed}
        missing = [event_id for event_id, event in events.items() if event is None]
        payloads = {}
        if missing:
            stmt = select(e.id, e.payload).where(in_values(connection, e.id, missing))
            payloads = dict(connection.execute(stmt).all())
        savepoint = connection.begin_nested() if len(claimed) == 1 else None
        rules = tuple(quality_rules)
        memo = BatchMemo(lineage_ids=lineage_ids)
        try:
            events_of = [(row, events[row.id] or validate_stored(payloads[row.id])) for row in claimed]
            batch = [(row, event, dataset_names(event)) for row, event in events_of]
            memo.resolve_ahead(connection, (name for _, _, names in batch for name in names))
            if len(batch) > 1:
                _learn_latest_facet_writes(batch, memo)
            lockstep = Lockstep(connection)  # one for the batch: it compiles the statements its waves share once
            for wave in _waves(batch, memo, _stored_outputs(connection, batch) if len(batch) > 1 else {}):
                side_by_side = len(wave) > 1
                units = [
                    functools.partial(
                        apply_event,
                        lockstep.unit_connection if side_by_side else connection,
                        row.id,
                        row.event_hash,
                        event,
                        received_at=row.received_at,
                        quality_rules=rules,
                        incident_max_event_age=incident_max_event_age,
                        memo=memo,
                        names=names,
                    )
                    for row, event, names in wave
                ]
                if not side_by_side:
                    units[0]()
                    continue
                memo.deferred = True
                lockstep.run(units, after_step=memo.settle)
                memo.end_wave(connection)
            memo.flush(connection)
        except Exception as exc:
            if is_retryable(exc) or is_unavailable(exc):
                raise
            if savepoint is None:  # rolled back; each event again on its own, so only the bad one is marked
                raise _BatchFailed([r.id for r in claimed]) from exc
            # One event that cannot be applied: none of its rows stay, and it is marked in this transaction.
            savepoint.rollback()
            log.error("event %s could not be applied to the model: %s", claimed[0].id, exc, exc_info=exc)
            connection.execute(
                update(t.lineage_events)
                .where(e.id == claimed[0].id)
                .values(applied_at=datetime.now(UTC), apply_error=f"{type(exc).__name__}: {exc}"[:4000])
            )
            return BatchOutcome(applied=1, failed=1)
        if savepoint is not None:
            savepoint.commit()
        connection.execute(
            update(t.lineage_events)
            .where(in_values(connection, e.id, [r.id for r in claimed]))
            .values(applied_at=datetime.now(UTC))
        )
    return BatchOutcome(applied=len(claimed))


_BatchItem = tuple[Any, LineageEvent, list[tuple[str, str]]]  # (claimed row, event, its dataset_names)


def _learn_latest_facet_writes(batch: list[_BatchItem], memo: BatchMemo) -> None:
    """Which event of the batch writes each facet that nothing reads in between last (BatchMemo.latest_facet_writes).
    A symlink anywhere in the batch may change what a name stands for halfway: facets of datasets are left out then."""
    datasets = not any(
        "symlinks" in d.facets
        for _, event, _ in batch
        for d in ([event.dataset] if isinstance(event, DatasetEvent) else [*event.inputs, *event.outputs])
    )
    latest = memo.latest_facet_writes
    for row, event, _ in batch:
        key = event_key(event.eventTime, row.event_hash)
        for facet in facets_nothing_reads(event, memo.resolved, datasets=datasets):
            if latest.get(facet, "") < key:
                latest[facet] = key


def _stored_outputs(connection: Connection, batch: list[_BatchItem]) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Run id → the datasets its events applied before this batch wrote (one statement for the batch)."""
    runs = sorted({event.run.uuid for _, event, _ in batch if isinstance(event, RunEvent)}, key=str)
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    if runs:
        for run_id, dataset_id in connection.execute(
            statements_for(connection.dialect.name).run_outputs, {"p_ids": ids_value(connection, runs)}
        ):
            found.setdefault(run_id, set()).add(dataset_id)
    return found


def _waves(
    batch: list[_BatchItem], memo: BatchMemo, run_outputs: dict[uuid.UUID, set[uuid.UUID]]
) -> list[list[_BatchItem]]:
    """The batch split into waves of events that may be applied side by side: none writes what another of its
    wave touches (apply.event_resources). An event goes into the first wave after every earlier event it
    conflicts with, so events sharing what one of them writes are applied one after the other, in claim order.

    A run event also writes what its run wrote before (``run_outputs``: applied before the batch, then the
    batch's own): the run's terminal event publishes those outputs too, so a reader of one must not run beside
    it, or neither would see the other (the reader the publish, the publish the read it should re-point)."""
    waves: list[list[_BatchItem]] = []
    last_write: dict[tuple, int] = {}
    last_touch: dict[tuple, int] = {}
    for item in batch:
        _, event, names = item
        resources = event_resources(event, names, memo.resolved)
        if isinstance(event, RunEvent):
            written = run_outputs.setdefault(event.run.uuid, set())
            resources.update({("dataset", dataset_id): True for dataset_id in written})
            written.update(r[1] for r, writes in resources.items() if writes and r[0] == "dataset")
        index = max(
            ((last_touch if writes else last_write).get(r, -1) + 1 for r, writes in resources.items()),
            default=0,
        )
        if index == len(waves):
            waves.append([])
        waves[index].append(item)
        for r, writes in resources.items():
            last_touch[r] = max(last_touch.get(r, -1), index)
            if writes:
                last_write[r] = index
    return waves


class Applier:
    """The applier thread of one server process: applies batches while there are unapplied events, then sleeps
    until the event log wakes it (an event stored in this process) or ``poll_seconds`` pass (events another
    process stored and did not apply, e.g. because it stopped)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 200,
        poll_seconds: float = 1.0,
        quality_rules: Sequence[QualityRule] = (),
        incident_max_event_age: timedelta = DEFAULT_INCIDENT_MAX_EVENT_AGE,
        validated: ValidatedEvents | None = None,
        on_batch: Callable[[BatchOutcome], None] = lambda outcome: None,
    ):
        self.engine = engine
        self.max_batch = max_batch
        self.poll_seconds = poll_seconds
        self.quality_rules = tuple(quality_rules)
        self.incident_max_event_age = incident_max_event_age
        self.validated = validated
        self.lineage_ids = ColumnLineageIds()
        self.on_batch = on_batch  # after each committed batch
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._drain_deadline = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> Applier:
        self._thread = threading.Thread(target=self._run, name="headwater-applier", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Apply what is left (for up to ``drain_seconds``), then end the thread. Events still unapplied after
        that are applied by another process running now or the next one to start."""
        if self._thread is not None:
            self._drain_deadline = time.monotonic() + drain_seconds
            self._stopping.set()
            self._wake.set()
            self._thread.join()
            self._thread = None

    def wake(self, _count: int = 0) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            self._drain(self._drain_deadline if stopping else None)
            if stopping:
                return
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _drain(self, deadline: float | None) -> None:
        """Apply batches until none is left (or, stopping, until ``deadline``)."""
        pause = 0.01
        while deadline is None or time.monotonic() < deadline:
            if deadline is None and self._stopping.is_set():
                return  # stop() asked: the final drain runs next, with its deadline
            try:
                outcome = apply_pending(
                    self.engine,
                    limit=self.max_batch,
                    quality_rules=self.quality_rules,
                    incident_max_event_age=self.incident_max_event_age,
                    validated=self.validated,
                    lineage_ids=self.lineage_ids,
                )
            except Exception as exc:  # the database's fault: the batch is rolled back, try again soon
                level = logging.WARNING if is_unavailable(exc) else logging.INFO
                log.log(level, "applier: batch rolled back (%s); retrying in %.2f s", type(exc).__name__, pause)
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            pause = 0.01
            if outcome.applied == 0:
                return
            self.on_batch(outcome)
