"""Search jobs and datasets by name (Marquez's GET /search): a case-insensitive substring match.

`%` and `_` in the query match themselves (Marquez lets them act as wildcards), and totalCount is the number
of matches, not of results returned. On Postgres the match is served by trigram indexes on the names
(migration 0005); on SQLite it scans.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Engine, func, literal, select, union_all

from app.db import tables as t
from app.db.dialect import contains_ignoring_case
from app.db.engine import read_connection
from app.schemas.marquez import SearchResult
from app.services.lineage import node_id


def search(
    engine: Engine,
    q: str,
    *,
    kind: str | None,
    sort: str,
    limit: int,
    namespace: str | None,
    before: date | None,
    after: date | None,
) -> tuple[list[SearchResult], int]:
    parts = []
    for table, label in ((t.datasets, "DATASET"), (t.jobs, "JOB")):
        if kind and kind != label:
            continue
        c = table.c
        where = [contains_ignoring_case(c.name, q), c.is_hidden.is_(False)]
        if namespace:
            where.append(c.namespace_name == namespace)
        if before:
            where.append(c.updated_at < datetime.combine(before, time.min))
        if after:
            where.append(c.updated_at > datetime.combine(after, time.min))
        parts.append(select(literal(label).label("type"), c.name, c.updated_at, c.namespace_name).where(*where))
    if not parts:
        return [], 0
    matches = union_all(*parts).subquery()
    order = (
        (matches.c.name, matches.c.namespace_name) if sort == "name" else (matches.c.updated_at.desc(), matches.c.name)
    )
    with read_connection(engine) as conn:
        total = conn.execute(select(func.count()).select_from(matches)).scalar_one()
        rows = conn.execute(select(matches).order_by(*order).limit(limit)).all()
    return [
        SearchResult(
            type=row.type,
            name=row.name,
            updatedAt=row.updated_at,
            namespace=row.namespace_name,
            nodeId=node_id(row.type, row.namespace_name, row.name),
        )
        for row in rows
    ], total
