"""Reading the current facets of entities (runs, jobs, datasets, versions, run inputs/outputs)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from app.db import tables as t
from app.db.dialect import in_values


def facets_by_entity(conn: Connection, entity_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    found: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    if entity_ids:
        f = t.facets.c
        rows = conn.execute(
            select(f.entity_id, f.name, f.facet).where(in_values(conn, f.entity_id, entity_ids), f.facet.is_not(None))
        )
        for entity_id, name, facet in rows:
            found[entity_id][name] = facet
    return found
