"""`headwater export`: the stored events as JSON Lines, oldest first, each exactly as it was received, so
`headwater import file` on another install stores the same events (same hashes) and builds the same model."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

import orjson
from sqlalchemy import Engine, func, or_, select

from app.db import tables as t
from app.services.transfer.run import Filters


def _where(filters: Filters) -> list:
    e = t.lineage_events.c
    where = []
    if filters.since is not None:
        where.append(e.event_time >= filters.since)
    if filters.until is not None:
        where.append(e.event_time < filters.until)
    if filters.namespaces:
        names = sorted(filters.namespaces)
        where.append(or_(e.job_namespace.in_(names), e.job_namespace.is_(None) & e.dataset_namespace.in_(names)))
    return where


def count_events(engine: Engine, filters: Filters) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(t.lineage_events).where(*_where(filters))).scalar()


def export_events(
    engine: Engine,
    out: IO[bytes],
    filters: Filters = Filters(),
    *,
    progress: Callable[[int], None] = lambda written: None,
    chunk_size: int = 1000,
) -> int:
    """Write the selected events to ``out``, one JSON object per line; returns how many."""
    e = t.lineage_events.c
    query = select(e.payload).where(*_where(filters)).order_by(e.event_time, e.id)
    written = 0
    with engine.connect() as connection:
        # A server-side cursor on Postgres: a large log is streamed, not loaded.
        rows = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(query)
        for partition in rows.scalars().partitions():
            out.write(b"".join(orjson.dumps(payload) + b"\n" for payload in partition))
            written += len(partition)
            progress(written)
    return written
