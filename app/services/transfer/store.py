"""The one place imported events enter Headwater: the batch ingest path, with the checks POST /lineage/batch
applies, into the durable event log (``IngestRuntime.submit``: group commit); the runtime's applier builds the
model from it. Everything else in this package reads sources and reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from app.db import tables as t
from app.db.engine import read_connection
from app.schemas.openlineage import LineageEvent
from app.services.ingest import event_hash
from app.services.ingest.batch import BatchItem, Submit, ingest_batch
from app.services.ingest.validation import batch_item

# Event hashes asked about per statement (well under SQLite's bound-parameter limit).
_HASH_LOOKUP_SIZE = 500


class StoreUnavailable(Exception):
    """The database stopped answering mid-import: nothing after the last checkpoint can be trusted stored."""


@dataclass
class StoreResult:
    stored: int = 0
    already_stored: int = 0  # the same event (by hash) was in Headwater before, or twice in this chunk
    refused: list[tuple[int, str]] = field(default_factory=list)  # (index in the chunk, why)
    events: list[LineageEvent] = field(default_factory=list)  # every valid event of the chunk, stored or not


def store_events(
    engine: Engine,
    submit: Submit | None,
    values: Sequence[object],
    *,
    dry_run: bool = False,
    on_stored: Callable[[], None] = lambda: None,
) -> StoreResult:
    """Check each value as POST /api/v1/lineage/batch does and store the valid ones not already stored, in order,
    with ``submit`` (``IngestRuntime.submit``). ``dry_run`` checks and counts (``stored`` is then what would be
    stored) and writes nothing. ``on_stored`` is
    called after each event ingested (for a progress display: a chunk takes a while)."""
    result = StoreResult()
    items = [batch_item(i, value) for i, value in enumerate(values)]
    valid = [item for item in items if item.invalid is None]
    result.refused = [(item.index, item.invalid) for item in items if item.invalid is not None]
    result.events = [item.event for item in valid]
    digests = {item.index: event_hash(item.payload) for item in valid}
    # A resumed or repeated import skips what is stored with one lookup per chunk instead of a write
    # transaction per event (ingest would find the duplicate too, one event at a time).
    seen = stored_hashes(engine, set(digests.values()))
    todo: list[BatchItem] = []
    for item in valid:
        if digests[item.index] in seen:
            result.already_stored += 1
        else:
            seen.add(digests[item.index])
            todo.append(item)
    if dry_run or submit is None:
        result.stored = len(todo)
        return result
    batch = ingest_batch(submit, todo, on_ingested=lambda item: on_stored())
    retriable = [failure for failure in batch.failed_events if failure.retriable]
    if retriable:
        raise StoreUnavailable(retriable[0].reason)
    refused_here = {failure.index: failure.reason for failure in batch.failed_events}  # indexes of `values`
    result.refused = sorted([*result.refused, *refused_here.items()])
    result.stored = len(todo) - len(refused_here)
    return result


def stored_hashes(engine: Engine, digests: set[str]) -> set[str]:
    """Which of these event hashes Headwater already stores."""
    found: set[str] = set()
    wanted = sorted(digests)
    column = t.lineage_events.c.event_hash
    with read_connection(engine) as connection:
        for start in range(0, len(wanted), _HASH_LOOKUP_SIZE):
            part = wanted[start : start + _HASH_LOOKUP_SIZE]
            found.update(connection.execute(select(column).where(column.in_(part))).scalars())
    return found
