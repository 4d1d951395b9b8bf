"""The durable event log: every accepted event is stored verbatim in ``lineage_events`` before the client hears
``201``, and many requests share one transaction (group commit).

Requests hand their event to the process's ``EventLog`` and wait for its future. One writer thread takes
everything waiting at that moment (up to ``max_batch``), inserts it with one statement (``insert_ignore_rows``:
the same event twice is stored once), commits, and resolves the futures. While it commits, the next requests
queue up, so the busier the server, the more events share a commit. It keeps one connection of its own rather
than taking one from the pool each time: a checkout pings the server first, a round trip that cost as much as
the insert when a commit holds a few events. On Postgres that connection is in autocommit mode: the insert is
one statement, which is its own transaction (all its rows or none), so a commit costs one round trip instead
of three (``BEGIN``, the insert, ``COMMIT``), each of which also waited for the event loop to hand the GIL
back. The model is built from the log afterwards
by the applier (app/services/ingest/applier.py), which the writer wakes after each commit.

A failure is never silent: a database that cannot be reached fails every waiting request with
``DatabaseUnavailable`` (a 503, the client retries), and a batch the database refuses for another reason is
stored again one event per transaction, so one bad event fails only its own request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from app.db import tables as t
from app.db.dialect import insert_ignore_rows, is_retryable, is_unavailable, rows_in_one_statement

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or stays busy; the client should retry (HTTP 503)."""


@dataclass
class _Pending:
    row: dict[str, Any]
    future: Future | asyncio.Future
    loop: asyncio.AbstractEventLoop | None = None  # the loop an asyncio future belongs to


_STOP = object()


class EventLog:
    """Stores raw events with group commit; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 1000,
        retry_seconds: float = 3.0,
        on_stored: Callable[[int], None] = lambda count: None,
    ):
        self.engine = engine
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        self.on_stored = on_stored  # after each commit, with the number of events it stored
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None  # the writer thread's own, opened when first needed
        # Its inserts are single statements, each its own transaction (Postgres): no BEGIN and COMMIT.
        self._autocommit = rows_in_one_statement(engine)

    def start(self) -> EventLog:
        self._thread = threading.Thread(target=self._run, name="headwater-event-log", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Store what is queued, then end the writer thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def append(self, row: dict[str, Any]) -> Future:
        """Queue a raw event row (``raw_event_row``); the future resolves once it is committed. For threads."""
        future: Future = Future()
        self._queue.put(_Pending(row, future))
        return future

    async def store(self, row: dict[str, Any]) -> None:
        """Queue a raw event row and return once it is committed. For the event loop: the writer resolves all
        of a commit's waiters on one loop with one call into it, rather than waking the loop once per event."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Pending(row, future, loop))
        await future

    # --- the writer thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[_Pending] = []
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._store(batch)
        self._disconnect()

    def _store(self, batch: list[_Pending]) -> None:
        try:
            self._commit([p.row for p in batch])
        except DatabaseUnavailable as exc:
            _settle(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return
            # Something in the batch was refused (a value the database will not store): each on its own, so
            # only the bad one fails.
            log.info("event log: a batch of %d was refused (%s); storing its events one by one", len(batch), exc)
            for pending in batch:
                self._store([pending])
            return
        self.on_stored(len(batch))
        _settle(batch, None)

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        """One transaction for the rows; lost races are retried for up to ``retry_seconds``."""
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.005
        while True:
            kept = self._connection is not None
            try:
                if self._connection is None:
                    self._connection = self._connect()
                if self._autocommit:
                    insert_ignore_rows(self._connection, t.lineage_events, rows)
                    return
                with self._connection.begin():
                    insert_ignore_rows(self._connection, t.lineage_events, rows)
                return
            except Exception as exc:
                if is_unavailable(exc):
                    self._disconnect()  # a fresh one (checked by the pool) next time
                    if kept:
                        continue  # the kept connection died (a database restart): once more on a fresh one
                    raise DatabaseUnavailable(str(getattr(exc, "orig", exc))) from exc
                if not is_retryable(exc):
                    raise  # the transaction was rolled back; the connection stays usable
                if time.monotonic() + pause >= deadline:
                    raise DatabaseUnavailable(f"gave up after retries: {exc.orig}") from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    def _connect(self) -> Connection:
        connection = self.engine.connect().execution_options(write=True)
        return connection.execution_options(isolation_level="AUTOCOMMIT") if self._autocommit else connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except Exception:  # already broken: the pool discards it
                log.debug("event log: closing a broken connection failed", exc_info=True)


def _settle(batch: list[_Pending], error: BaseException | None) -> None:
    """Resolve the batch's futures: the threads' at once, each event loop's in one call made on that loop."""
    on_loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
    for pending in batch:
        if pending.loop is not None:
            on_loops.setdefault(pending.loop, []).append(pending.future)
        elif error is None:
            pending.future.set_result(None)
        else:
            pending.future.set_exception(error)
    for loop, futures in on_loops.items():
        try:
            loop.call_soon_threadsafe(_resolve, futures, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve(futures: list[asyncio.Future], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the request went away (cancelled)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
