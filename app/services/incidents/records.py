"""Opening and resolving incidents inside the caller's transaction, with their outbox rows: a notification is
durable exactly when the change it announces is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, true, update

from app.db import tables as t
from app.db.dialect import upsert

OPENED, RESOLVED = "incident.opened", "incident.resolved"


def open_key(kind: str, subject: uuid.UUID) -> str:
    """What an open incident is about: one open incident per kind and job (or dataset)."""
    return f"{kind}:{subject}"


@dataclass
class NewIncident:
    kind: str
    subject: uuid.UUID  # the job or dataset it is about
    namespace: str
    title: str
    opened_at: datetime
    resolvable_after: datetime
    backfill_request: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    job: tuple[str, str] | None = None
    dataset: tuple[str, str] | None = None
    run_id: uuid.UUID | None = None
    version_id: uuid.UUID | None = None
    impact: dict[str, Any] | None = None


def open_incident(conn: Connection, new: NewIncident, *, count_repeat: bool = True) -> uuid.UUID | None:
    """Open the incident unless one about the same subject is open already (then count the occurrence, unless
    ``count_repeat`` is off: the same observation made twice). Returns the new incident's id, or None."""
    now = datetime.now(UTC)
    key = open_key(new.kind, new.subject)
    row = {
        "id": uuid.uuid4(),
        "kind": new.kind,
        "status": "open",
        "open_key": key,
        "namespace": new.namespace,
        "job_namespace": new.job[0] if new.job else None,
        "job_name": new.job[1] if new.job else None,
        "dataset_namespace": new.dataset[0] if new.dataset else None,
        "dataset_name": new.dataset[1] if new.dataset else None,
        "run_id": new.run_id,
        "dataset_version_id": new.version_id,
        "title": new.title,
        "details": new.details,
        "backfill_request": new.backfill_request,
        "impact": new.impact,
        "occurrences": 1,
        "resolvable_after": new.resolvable_after,
        "opened_at": new.opened_at,
        "updated_at": now,
    }
    stmt = upsert(conn, t.incidents).on_conflict_do_nothing(index_elements=["open_key"])
    inserted = conn.execute(stmt.returning(t.incidents.c.id), row).scalar()
    i = t.incidents.c
    if inserted is None and not count_repeat:
        return None
    if inserted is None:
        # Seen again: only news from after this occurrence resolves it.
        later = case((i.resolvable_after < new.resolvable_after, new.resolvable_after), else_=i.resolvable_after)
        conn.execute(
            update(t.incidents)
            .where(i.open_key == key)
            .values(occurrences=i.occurrences + 1, resolvable_after=later, updated_at=now)
        )
        return None
    conn.execute(t.incident_outbox.insert().values(incident_id=inserted, event=OPENED, created_at=now))
    return inserted


def resolve(
    conn: Connection, keys: list[str], *, at: datetime, resolution: str, force: bool = False
) -> list[uuid.UUID]:
    """Resolve the open incidents with these keys that opened before ``at`` (the event time of the good news:
    an older success arriving late resolves nothing; ``force``: whenever). Returns the ids resolved."""
    if not keys:
        return []
    i = t.incidents.c
    now = datetime.now(UTC)
    resolved = list(
        conn.execute(
            update(t.incidents)
            .where(i.open_key.in_(sorted(set(keys))), true() if force else i.resolvable_after < at)
            .values(status="resolved", open_key=None, resolved_at=at, resolution=resolution, updated_at=now)
            .returning(i.id)
        ).scalars()
    )
    if resolved:
        conn.execute(
            t.incident_outbox.insert(),
            [{"incident_id": incident, "event": RESOLVED, "created_at": now} for incident in resolved],
        )
    return resolved
