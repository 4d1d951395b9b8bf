"""A batch of events (``POST /api/v1/lineage/batch``): each event ingested on its own, in the order posted,
one transaction each, so a bad event costs only itself. Events are validated by the caller (the API layer);
this applies the valid ones and accounts for every index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError

from app.db.json import UnstorableJSON
from app.schemas.openlineage import BatchResult, BatchSummary, FailedEvent, LineageEvent
from app.services.ingest import DatabaseUnavailable, ingest_event
from app.settings import DEFAULT_INCIDENT_MAX_EVENT_AGE, QualityRule


@dataclass(frozen=True)
class BatchItem:
    """One element of the posted array: a valid event, or why it is not one."""

    index: int
    payload: dict[str, Any] | None = None
    event: LineageEvent | None = None
    invalid: str | None = None


def ingest_batch(
    engine: Engine,
    items: Sequence[BatchItem],
    *,
    retry_seconds: float,
    quality_rules: Sequence[QualityRule] = (),
    incident_max_event_age: timedelta = DEFAULT_INCIDENT_MAX_EVENT_AGE,
    on_ingested: Callable[[BatchItem], None] = lambda item: None,
) -> BatchResult:
    """Ingest the valid items in order. Once the database is unavailable, the item it failed on and the rest
    are reported retriable and not attempted (each would wait out the retry budget in turn)."""
    failed: list[FailedEvent] = []
    unavailable: str | None = None
    for item in items:
        if item.invalid is not None:
            failed.append(FailedEvent(index=item.index, reason=item.invalid, retriable=False))
            continue
        if unavailable is None:
            try:
                refused = _ingest_one(
                    engine,
                    item,
                    retry_seconds=retry_seconds,
                    quality_rules=quality_rules,
                    incident_max_event_age=incident_max_event_age,
                )
            except DatabaseUnavailable as exc:
                unavailable = f"The database is unavailable ({exc}); send this event again."
            else:
                if refused is None:
                    on_ingested(item)
                else:
                    failed.append(FailedEvent(index=item.index, reason=refused, retriable=False))
                continue
        failed.append(FailedEvent(index=item.index, reason=unavailable, retriable=True))
    retriable = sum(f.retriable for f in failed)
    return BatchResult(
        status="partial_success" if failed else "success",
        summary=BatchSummary(
            received=len(items),
            successful=len(items) - len(failed),
            failed=len(failed),
            retriable=retriable,
            non_retriable=len(failed) - retriable,
        ),
        failed_events=failed,
    )


def _ingest_one(engine: Engine, item: BatchItem, **options) -> str | None:
    """Ingest one valid event; why it cannot be stored (as POST /lineage would answer it with a 400), or None."""
    try:
        ingest_event(engine, item.payload, item.event, **options)
    except UnstorableJSON as exc:  # text that is not valid Unicode (a lone surrogate)
        return f"The event {exc}."
    except DataError as exc:  # the database refused a value the event carries
        return "A value cannot be stored: " + (str(exc.orig).splitlines()[0] if exc.orig else "invalid value")
    return None
