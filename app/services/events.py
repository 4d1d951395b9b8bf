"""The raw OpenLineage events, as Marquez's events browser reads them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from app.db import tables as t
from app.db.engine import read_connection


def list_run_events(
    engine: Engine, *, after: datetime, before: datetime, ascending: bool, limit: int, offset: int
) -> tuple[list[dict], int]:
    """RunEvents with ``after <= eventTime < before``, verbatim. Unlike Marquez (whose totalCount counts every
    kind of event), totalCount counts what the filter matches, so it can drive paging."""
    e = t.lineage_events.c
    where = (e.event_kind == "RUN_EVENT", e.event_time >= after, e.event_time < before)
    order = (e.event_time.asc(), e.id.asc()) if ascending else (e.event_time.desc(), e.id.desc())
    with read_connection(engine) as conn:
        total = conn.execute(select(func.count()).where(*where)).scalar_one()
        payloads = conn.execute(select(e.payload).where(*where).order_by(*order).limit(limit).offset(offset)).scalars()
        return list(payloads), total
