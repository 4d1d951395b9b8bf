"""Reading the current facets of entities (runs, jobs, datasets, versions, run inputs/outputs)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Select, select, union_all

from app.db import tables as t
from app.db.dialect import in_values


def facets_by_entity(
    conn: Connection, entity_ids: list[uuid.UUID], *, also_of: Select | None = None
) -> dict[uuid.UUID, dict[str, Any]]:
    """Current facets by entity: of ``entity_ids`` and, in the same query, of the entities ``also_of``
    selects (e.g. a run's input/output links, without sending their ids back and forth)."""
    found: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    f = t.facets.c
    queries = []
    if entity_ids:
        queries.append(select(f.entity_id, f.name, f.facet).where(in_values(conn, f.entity_id, entity_ids)))
    if also_of is not None:
        queries.append(select(f.entity_id, f.name, f.facet).where(f.entity_id.in_(also_of)))
    if queries:
        query = union_all(*queries).subquery()
        for entity_id, name, facet in conn.execute(select(query).where(query.c.facet.is_not(None))).all():
            found[entity_id][name] = facet
    return found
