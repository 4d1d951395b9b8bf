"""What a running plan tells people: a failed re-run opens an incident (kind `backfill_failed`) that reaches the
subscriptions of the plan's owners through the usual outbox; the plan finishing resolves it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from app.schemas.backfill import SavedPlan
from app.services.incidents import records

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
