"""What one server process runs for ingest: the event log's writer, the applier and the read barrier."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine

from app.schemas.openlineage import LineageEvent
from app.services.ingest import event_hash, raw_event_row
from app.services.ingest.applier import Applier, BatchOutcome, ValidatedEvents
from app.services.ingest.barrier import ReadBarrier
from app.services.ingest.log import EventLog
from app.settings import Settings


class IngestRuntime:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        on_stored: Callable[[int], None] = lambda count: None,
        on_batch: Callable[[BatchOutcome], None] = lambda outcome: None,
    ):
        self.validated = ValidatedEvents()
        self.barrier = ReadBarrier(engine, wait_seconds=settings.read_wait_seconds)

        def batch_applied(outcome: BatchOutcome) -> None:
            self.barrier.batch_applied()
            on_batch(outcome)

        self.applier = Applier(
            engine,
            max_batch=settings.apply_batch,
            poll_seconds=settings.apply_poll_seconds,
            quality_rules=settings.quality_rules,
            incident_max_event_age=settings.incident_max_event_age,
            validated=self.validated,
            on_batch=batch_applied,
        )

        def stored(count: int) -> None:
            self.applier.wake()
            on_stored(count)

        self.log = EventLog(
            engine, max_batch=settings.log_batch_size, retry_seconds=settings.ingest_retry_seconds, on_stored=stored
        )

    def start(self) -> IngestRuntime:
        self.applier.start()
        self.log.start()
        return self

    def stop(self) -> None:
        self.log.stop()  # what was acknowledged is stored; the applier of this or another process applies it
        self.applier.stop()

    def wait_applied(self) -> None:
        """Block until every event stored before this call is applied to the model (by this runtime's applier
        or another process's), however long that takes."""
        while self.barrier.wait() is not None:
            pass

    def submit(self, payload: dict[str, Any], event: LineageEvent) -> Future:
        """Store an event in the log; the future resolves once it is durable (raises ``DatabaseUnavailable``,
        or what the database refused about it). Raises ``UnstorableJSON`` at once for text no database keeps.
        For threads; the event loop awaits ``store``."""
        return self.log.append(self._row(payload, event))

    async def store(self, payload: dict[str, Any], event: LineageEvent) -> None:
        """``submit`` for the event loop: returns once the event is durable."""
        await self.log.store(self._row(payload, event))

    def _row(self, payload: dict[str, Any], event: LineageEvent) -> dict[str, Any]:
        digest = event_hash(payload)
        self.validated.put(digest, event)
        return raw_event_row(payload, event, digest)
