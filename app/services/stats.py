"""Counts over time for the Marquez UI's dashboard (GET /stats/…): the last 24 hours by hour, or the last
7 days by day in a given time zone. Buckets are computed here and counted in one query per request (a
conditional sum per bucket), so the same code serves SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, case, func, select

from app.db import tables as t
from app.db.engine import read_connection

EVENT_TYPES = {"fail": "FAIL", "start": "START", "complete": "COMPLETE", "abort": "ABORT"}


def buckets(period: str, zone: ZoneInfo | None, now: datetime | None = None) -> list[tuple[datetime, datetime]]:
    """DAY: 24 hourly buckets ending with the current hour. WEEK: 7 local days ending with today."""
    now = now or datetime.now(UTC)
    if period == "DAY":
        current = now.replace(minute=0, second=0, microsecond=0)
        starts = [current - timedelta(hours=h) for h in range(23, -1, -1)]
        return [(s, s + timedelta(hours=1)) for s in starts]
    local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [local - timedelta(days=d) for d in range(6, -1, -1)]
    # Local midnights, so a day is 23 or 25 hours long across a DST change.
    return [(day, (day + timedelta(days=1)).replace(tzinfo=zone)) for day in days]


def lineage_event_counts(engine: Engine, spans: list[tuple[datetime, datetime]]) -> list[dict]:
    e = t.lineage_events.c
    columns = [
        func.sum(case((and_(e.event_time >= start, e.event_time < end, e.event_type == kind), 1), else_=0))
        for start, end in spans
        for kind in EVENT_TYPES.values()
    ]
    with read_connection(engine) as conn:
        row = conn.execute(select(*columns).where(e.event_time >= spans[0][0], e.event_time < spans[-1][1])).one()
    values = iter(row)
    return [
        {"startInterval": start, "endInterval": end, **{name: int(next(values) or 0) for name in EVENT_TYPES}}
        for start, end in spans
    ]


def cumulative_counts(engine: Engine, table_name: str, spans: list[tuple[datetime, datetime]]) -> list[dict]:
    """How many rows existed at the end of each bucket (by creation time), as Marquez counts them."""
    table = {"jobs": t.jobs, "datasets": t.datasets, "sources": t.sources}[table_name]
    columns = [func.sum(case((table.c.created_at < end, 1), else_=0)) for _, end in spans]
    with read_connection(engine) as conn:
        row = conn.execute(select(*columns)).one()
    return [
        {"startInterval": start, "endInterval": end, "count": int(value or 0)}
        for (start, end), value in zip(spans, row, strict=True)
    ]
