"""Ingesting OpenLineage events.

The server's path: an accepted event is stored in the durable log (``log.EventLog``, group commit) and
acknowledged; the applier (``applier.Applier``) builds the model from the log in batches; reads wait for what
was acknowledged before them (``barrier.ReadBarrier``); ``runtime.IngestRuntime`` puts the three together.

``ingest_event`` stores and applies one event in one transaction, for writes that must see their own
result at once (the Marquez API's legacy run and job writes)."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app.db import json as json_codec
from app.db import tables as t
from app.db.dialect import is_retryable, is_unavailable, serialize_on, upsert
from app.db.engine import write_transaction
from app.schemas.openlineage import LineageEvent
from app.services.ingest.applier import APPLY, apply_event, job_lock_key, validate_stored
from app.services.ingest.log import DatabaseUnavailable
from app.services.ingest.statements import statements_for
from app.settings import DEFAULT_INCIDENT_MAX_EVENT_AGE, QualityRule

log = logging.getLogger(__name__)

__all__ = [
    "APPLY",
    "DatabaseUnavailable",
    "IngestResult",
    "apply_stored_event",
    "event_hash",
    "ingest_event",
    "job_lock_key",
]


@dataclass(frozen=True)
class IngestResult:
    event_id: int | None
    duplicate: bool = False
    apply_error: str | None = None


def event_hash(payload: dict[str, Any]) -> str:
    """Identity of an event: sha256 of its canonical JSON (sorted keys), whatever the sender's formatting."""
    return hashlib.sha256(json_codec.dumps_bytes(payload, sort_keys=True)).hexdigest()


def raw_event_row(payload: dict[str, Any], event: LineageEvent, digest: str) -> dict[str, Any]:
    job = getattr(event, "job", None)
    dataset = getattr(event, "dataset", None)
    run = getattr(event, "run", None)
    event_type = getattr(event, "eventType", None)
    return {
        "event_hash": digest,
        "event_kind": event.KIND,
        "event_type": event_type.upper()[:32] if event_type else None,
        "event_time": event.eventTime,
        "job_namespace": job.namespace if job else None,
        "job_name": job.name if job else None,
        "dataset_namespace": dataset.namespace if dataset else None,
        "dataset_name": dataset.name if dataset else None,
        "run_id": run.uuid if run else None,
        "producer": event.producer if isinstance(event.producer, str) else None,
        "payload": payload,
        "received_at": datetime.now(UTC),
        "applied_at": None,
    }


def store_raw_event(connection: Connection, row: dict[str, Any]) -> int | None:
    """Insert the raw event; None when the same event is already stored."""
    return connection.execute(statements_for(connection.dialect.name).store_raw_event, row).scalar()


def ingest_event(
    engine: Engine,
    payload: dict[str, Any],
    event: LineageEvent,
    *,
    retry_seconds: float = 3.0,
    quality_rules: Sequence[QualityRule] = (),
    incident_max_event_age: timedelta = DEFAULT_INCIDENT_MAX_EVENT_AGE,
) -> IngestResult:
    """Store the raw event and apply it to the model in one transaction.

    The same event twice is stored and applied once. A transaction that lost a race (deadlock,
    serialization failure, busy SQLite) is retried from the start, after a pause that doubles each time (with
    jitter, so racing writers fall out of step), for up to ``retry_seconds``.
    """
    digest = event_hash(payload)
    row = raw_event_row(payload, event, digest)
    row["applied_at"] = row["received_at"]  # in this very transaction
    job = getattr(event, "job", None)
    job_key = job_lock_key(job.namespace, job.name) if job is not None else None
    deadline = time.monotonic() + retry_seconds
    attempt, pause = 0, 0.005
    while True:
        attempt += 1
        try:
            with write_transaction(engine) as connection:
                if job_key is not None:
                    # Events of one job touch the same rows (the job, its version, its edges, its run) in orders
                    # that depend on what each carries: run them one at a time instead of deadlocking.
                    serialize_on(connection, job_key)
                event_id = store_raw_event(connection, row)
                if event_id is None:
                    return IngestResult(None, duplicate=True)
                apply_event(
                    connection,
                    event_id,
                    digest,
                    event,
                    received_at=row["received_at"],
                    quality_rules=tuple(quality_rules),
                    incident_max_event_age=incident_max_event_age,
                )
                return IngestResult(event_id)
        except DBAPIError as exc:
            if is_retryable(exc):
                wait = random.uniform(0.5, 1.5) * pause
                if time.monotonic() + wait < deadline:
                    log.debug("retrying event %s after %s", digest, type(exc.orig).__name__)
                    time.sleep(wait)
                    pause = min(pause * 2, 0.25)
                    continue
                # Still losing races: let the client retry later rather than store a half-known event.
                log.warning("event %s: gave up after %d attempts: %s", digest, attempt, type(exc.orig).__name__)
                raise DatabaseUnavailable(f"gave up after {attempt} attempts: {exc.orig}") from exc
            if is_unavailable(exc):
                raise DatabaseUnavailable(str(exc.orig)) from exc
            return _keep_unapplied(engine, row, exc)
        except Exception as exc:  # a mapping bug must not lose an accepted event
            return _keep_unapplied(engine, row, exc)


def apply_stored_event(connection: Connection, event_id: int, event_hash_: str, payload: dict[str, Any]) -> None:
    """Apply an event already in ``lineage_events`` to the model, inside the caller's transaction: what ingest
    does after storing it (used by `headwater reindex`). Raises ValueError for a payload that no longer
    validates."""
    apply_event(connection, event_id, event_hash_, validate_stored(payload), detect_incidents=False)


def _keep_unapplied(engine: Engine, row: dict[str, Any], exc: Exception) -> IngestResult:
    """The model could not be built from a valid event. Keep the raw event, flagged, so nothing the client
    sent is lost and `headwater reindex` can apply it once the cause is fixed."""
    log.exception("event %s could not be applied to the model; stored raw only", row["event_hash"])
    error = f"{type(exc).__name__}: {exc}"[:4000]
    try:
        with write_transaction(engine) as connection:
            stmt = upsert(connection, t.lineage_events)
            stmt = stmt.on_conflict_do_update(index_elements=["event_hash"], set_={"apply_error": error})
            event_id = connection.execute(stmt.returning(t.lineage_events.c.id), {**row, "apply_error": error}).scalar()
    except DBAPIError as store_exc:
        if is_unavailable(store_exc):
            raise DatabaseUnavailable(str(store_exc.orig)) from store_exc
        raise
    return IngestResult(event_id, apply_error=error)
