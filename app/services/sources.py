"""Sources: where datasets live (from the `dataSource` facet, or the legacy PUT)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, Row, select

from app.db import tables as t
from app.db.dialect import upsert
from app.db.engine import read_connection, write_transaction
from app.schemas.marquez import CreatedSource, Source
from app.services import identifiers as ids
from app.services.errors import NotFound


def to_wire(row: Row) -> Source:
    return Source(
        type=row.type,
        name=row.name,
        createdAt=row.created_at,
        updatedAt=row.updated_at,
        connectionUrl=row.connection_url,
        description=row.description,
    )


def list_sources(engine: Engine, *, limit: int, offset: int) -> list[Source]:
    with read_connection(engine) as conn:
        rows = conn.execute(select(t.sources).order_by(t.sources.c.name).limit(limit).offset(offset))
        return [to_wire(r) for r in rows]


def get_source(engine: Engine, name: str) -> Source:
    with read_connection(engine) as conn:
        row = conn.execute(select(t.sources).where(t.sources.c.name == name)).first()
    if row is None:
        raise NotFound(f"Source '{name}' not found.")
    return to_wire(row)


def put_source(engine: Engine, name: str, body: CreatedSource) -> Source:
    now = datetime.now(UTC)
    values = {
        "id": ids.source_id(name),
        "name": name,
        "type": body.type.upper(),
        "connection_url": body.connectionUrl,
        "description": body.description,
        "created_at": now,
        "updated_at": now,
    }
    with write_transaction(engine) as conn:
        stmt = upsert(conn, t.sources)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.sources.c.id],
            set_={k: stmt.excluded[k] for k in ("type", "connection_url", "description", "updated_at")},
        )
        conn.execute(stmt, values)
        return to_wire(conn.execute(select(t.sources).where(t.sources.c.id == values["id"])).one())
