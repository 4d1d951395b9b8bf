"""What a running plan tells people: webhooks (backfill.started, backfill.level_done, backfill.failed,
backfill.done) to the subscriptions of the plan's owners, namespaces or jobs, signed like incident webhooks and
sent by the executor in order; and a failed re-run opens an incident (kind `backfill_failed`) that reaches them
through the incident outbox, which the plan finishing resolves."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, exists, select, update

from app.db import tables as t
from app.db.engine import read_connection, write_transaction
from app.schemas.backfill import SavedPlan
from app.services.incidents import delivery, records
from app.settings import Settings

KIND = "backfill_failed"


def failure_incident(
    conn: Connection, plan: SavedPlan, unit: dict[str, Any], reason: str, now: datetime, public_url: str
) -> None:
    plan_id = uuid.UUID(plan.id)
    label = plan.name or plan.id
    records.open_incident(
        conn,
        records.NewIncident(
            kind=KIND,
            subject=plan_id,
            namespace=unit["namespace"],
            title=f"Backfill plan {label} paused: {reason}",
            opened_at=now,
            resolvable_after=now,
            # The plan's own request: the incident's impact (and so the owners it reaches) is the plan's.
            backfill_request=plan.request.model_dump(mode="json", exclude_defaults=True),
            details={
                "planId": plan.id,
                "dagId": unit["dag_id"],
                "reason": reason,
                "link": unit["link"] or f"{public_url.rstrip('/')}/backfills/{plan.id}",
            },
        ),
    )


def resolve_failure(conn: Connection, plan_id: uuid.UUID, now: datetime) -> None:
    records.resolve(
        conn, [records.open_key(KIND, plan_id)], at=now, resolution="the plan was resumed and is done", force=True
    )


EVENTS = ("backfill.started", "backfill.level_done", "backfill.failed", "backfill.done")
_BATCH = 50


def _listens(subscription, plan: SavedPlan) -> bool:
    """The subscription hears about the plan: one of its owners, namespaces or jobs is the plan's, and its kinds
    (incident kinds) are all, or include backfill_failed."""
    if subscription.kinds and KIND not in subscription.kinds:
        return False
    owners = {o for step in plan.jobs for o in step.owners}
    namespaces = {step.job.namespace for step in plan.jobs}
    jobs = {(step.job.namespace, step.job.name) for step in plan.jobs}
    return bool(
        owners & set(subscription.owners)
        or namespaces & set(subscription.namespaces)
        or jobs & {(j["namespace"], j["name"]) for j in subscription.jobs}
    )


def _text(event: str, plan: SavedPlan, extra: dict[str, Any]) -> str:
    label = plan.name or plan.id
    if event == "backfill.started":
        return f"Backfill plan {label} started ({plan.totals.levels} levels, {plan.totals.dags} DAGs)"
    if event == "backfill.level_done":
        return f"Backfill plan {label}: level {extra.get('level')} done"
    if event == "backfill.failed":
        return f":warning: Backfill plan {label} paused: {extra.get('reason')}"
    return f":white_check_mark: Backfill plan {label} done"


def announce(
    conn: Connection, plan: SavedPlan, event: str, now: datetime, extra: dict[str, Any], public_url: str = ""
) -> int:
    """Queue ``event`` for every subscription that listens to the plan, in the caller's transaction."""
    body = {
        "event": event,
        "text": _text(event, plan, extra),
        "plan": {
            "id": plan.id,
            "name": plan.name,
            "url": f"{public_url.rstrip('/')}/backfills/{plan.id}",
            "root": plan.root.description,
            "owners": sorted({o for step in plan.jobs for o in step.owners}),
        },
        **extra,
    }
    rows = [
        {
            "plan_id": uuid.UUID(plan.id),
            "subscription_id": s.id,
            "event": event,
            "payload": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for s in conn.execute(select(t.subscriptions)).all()
        if _listens(s, plan)
    ]
    if rows:
        conn.execute(t.backfill_webhooks.insert(), rows)
    return len(rows)


def deliver_due(engine: Engine, settings: Settings, client: httpx.Client, now: datetime) -> int:
    """Send the due webhooks, each after the earlier ones of its plan to its subscriber (only the lease holder
    runs this: no claims needed). Returns how many were delivered."""
    w, earlier = t.backfill_webhooks.c, t.backfill_webhooks.alias("earlier").c
    waiting_for_earlier = exists().where(
        earlier.plan_id == w.plan_id,
        earlier.subscription_id == w.subscription_id,
        earlier.id < w.id,
        earlier.status == "pending",
    )
    with read_connection(engine) as conn:
        due = conn.execute(
            select(t.backfill_webhooks, t.subscriptions.c.url, t.subscriptions.c.secret)
            .join(t.subscriptions, t.subscriptions.c.id == w.subscription_id)
            .where(w.status == "pending", w.next_attempt_at <= now, ~waiting_for_earlier)
            .order_by(w.id)
            .limit(_BATCH)
        ).all()
    delivered = 0
    for row in due:
        outcome = delivery.send(
            client,
            row.url,
            row.secret,
            row.payload,
            delivery_id=f"backfill-{row.id}",
            now=now,
            legacy_signature=settings.webhook_legacy_signature,
        )
        attempts = row.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.ok:
            values.update(status="delivered", delivered_at=now)
            delivered += 1
        elif attempts >= settings.webhook_max_attempts:
            values.update(status="failed")
        else:
            backoff = min(settings.webhook_backoff_seconds * 2 ** (attempts - 1), settings.webhook_backoff_max_seconds)
            values.update(next_attempt_at=now + timedelta(seconds=backoff))
        with write_transaction(engine) as conn:
            conn.execute(update(t.backfill_webhooks).where(w.id == row.id).values(**values))
    return delivered
