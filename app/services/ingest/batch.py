"""A batch of events (``POST /api/v1/lineage/batch``): every valid event goes to the event log in the order
posted and the answer accounts for each index. Events are validated by the caller (the API layer). The log
stores them with group commit; an event the database refuses fails on its own (the log stores the others),
and when the database cannot be reached every event not yet stored is reported retriable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DataError

from app.db.json import UnstorableJSON
from app.schemas.openlineage import BatchResult, BatchSummary, FailedEvent, LineageEvent
from app.services.ingest.log import DatabaseUnavailable

Submit = Callable[[dict[str, Any], LineageEvent], Future]  # IngestRuntime.submit


@dataclass(frozen=True)
class BatchItem:
    """One element of the posted array: a valid event, or why it is not one."""

    index: int
    payload: dict[str, Any] | None = None
    event: LineageEvent | None = None
    invalid: str | None = None


def ingest_batch(
    submit: Submit,
    items: Sequence[BatchItem],
    *,
    on_ingested: Callable[[BatchItem], None] = lambda item: None,
) -> BatchResult:
    """Store the valid items (in order) and wait until each is durable or refused."""
    failed: list[FailedEvent] = []
    waiting: list[tuple[BatchItem, Future]] = []
    for item in items:
        if item.invalid is not None:
            failed.append(FailedEvent(index=item.index, reason=item.invalid, retriable=False))
            continue
        try:
            waiting.append((item, submit(item.payload, item.event)))
        except UnstorableJSON as exc:  # text that is not valid Unicode (a lone surrogate)
            failed.append(FailedEvent(index=item.index, reason=f"The event {exc}.", retriable=False))
    for item, future in waiting:
        try:
            future.result()
        except DatabaseUnavailable as exc:
            reason = f"The database is unavailable ({exc}); send this event again."
            failed.append(FailedEvent(index=item.index, reason=reason, retriable=True))
        except DataError as exc:  # the database refused a value the event carries
            reason = "A value cannot be stored: " + (str(exc.orig).splitlines()[0] if exc.orig else "invalid value")
            failed.append(FailedEvent(index=item.index, reason=reason, retriable=False))
        else:
            on_ingested(item)
    failed.sort(key=lambda f: f.index)
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
