"""Reads never go back in time: before a read, wait until every event acknowledged before it is applied.

An event acknowledged before a request began is committed, so it is visible to the request's first query:
either applied already, or in the log with ``applied_at IS NULL``. The barrier notes the highest id of the
unapplied events at that moment (one probe of a partial index that is empty when the server is idle) and
waits until none of them is left, whichever process applies them. It wakes when this process's applier
commits a batch and checks the database at a short interval for the others' batches. It gives up after
``wait_seconds`` and says how far behind the answer is, so a stuck applier slows reads down but never stops
them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from app.db import tables as t

_E = t.lineage_events.c
_NEWEST_UNAPPLIED = select(func.max(_E.id)).where(_E.applied_at.is_(None))
_LAG = select(func.count(), func.min(_E.received_at)).where(_E.applied_at.is_(None))


@dataclass(frozen=True)
class ApplyLag:
    unapplied: int  # events stored and not applied yet
    seconds: float  # since the oldest of them was received (0 when there is none)


def apply_lag(engine: Engine) -> ApplyLag:
    with engine.connect() as connection:
        count, oldest = connection.execute(_LAG).one()
    if not count or oldest is None:
        return ApplyLag(0, 0.0)
    return ApplyLag(count, max(0.0, (datetime.now(UTC) - oldest).total_seconds()))


class ReadBarrier:
    def __init__(self, engine: Engine, *, wait_seconds: float, poll_seconds: float = 0.02):
        self.engine = engine
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self._applied = threading.Condition()

    def batch_applied(self, *_args) -> None:
        """Called by this process's applier after each committed batch: waiting reads check again at once."""
        with self._applied:
            self._applied.notify_all()

    def wait(self) -> ApplyLag | None:
        """Block until every event stored before this call is applied; None then, or after ``wait_seconds`` the
        lag this read is answered with."""
        newest = self._scalar(_NEWEST_UNAPPLIED)
        if newest is None:
            return None
        pending = select(_E.id).where(_E.applied_at.is_(None), _E.id <= newest).limit(1)
        deadline = time.monotonic() + self.wait_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            with self._applied:
                self._applied.wait(min(self.poll_seconds, remaining))
            if self._scalar(pending) is None:
                return None
        return apply_lag(self.engine)

    def _scalar(self, stmt):
        # A connection per look, not one held while waiting: waiting reads must not use up the pool.
        with self.engine.connect() as connection:
            return connection.execute(stmt).scalar()
