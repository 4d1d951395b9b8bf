"""Tags: a catalogue of names (PII, SENSITIVE…) put on datasets, dataset fields and jobs through the API."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select

from app.db import tables as t
from app.db.dialect import in_values, upsert
from app.db.engine import read_connection, write_transaction
from app.schemas.marquez import Tag
from app.services import identifiers as ids


def _ensure(conn: Connection, name: str, description: str | None = None, *, replace: bool = False) -> uuid.UUID:
    now = datetime.now(UTC)
    stmt = upsert(conn, t.tags).values(
        id=ids.tag_id(name), name=name, description=description, created_at=now, updated_at=now
    )
    if replace:
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.tags.c.id], set_={"description": description, "updated_at": now}
        )
    else:
        stmt = stmt.on_conflict_do_nothing()
    conn.execute(stmt)
    return ids.tag_id(name)


def put_tag(engine: Engine, name: str, description: str | None) -> Tag:
    with write_transaction(engine) as conn:
        _ensure(conn, name, description, replace=True)
        row = conn.execute(select(t.tags).where(t.tags.c.name == name)).one()
        return Tag(name=row.name, description=row.description)


def list_tags(engine: Engine, *, limit: int, offset: int) -> list[Tag]:
    with read_connection(engine) as conn:
        rows = conn.execute(select(t.tags).order_by(t.tags.c.name).limit(limit).offset(offset))
        return [Tag(name=r.name, description=r.description) for r in rows]


def tag(conn: Connection, link: t.Table, key: str, row_id: uuid.UUID, name: str) -> None:
    """Put tag ``name`` (created if new) on the row ``row_id`` of a tag link table."""
    tag_id = _ensure(conn, name)
    values = {key: row_id, "tag_id": tag_id, "tagged_at": datetime.now(UTC)}
    conn.execute(upsert(conn, link).values(**values).on_conflict_do_nothing())


def untag(conn: Connection, link: t.Table, key: str, row_id: uuid.UUID, name: str) -> None:
    conn.execute(delete(link).where(link.c[key] == row_id, link.c.tag_id == ids.tag_id(name)))


def tags_of(conn: Connection, link: t.Table, key: str, row_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    if row_ids:
        rows = conn.execute(
            select(link.c[key], t.tags.c.name)
            .join(t.tags, t.tags.c.id == link.c.tag_id)
            .where(in_values(conn, link.c[key], row_ids))
            .order_by(t.tags.c.name)
        ).all()
        for row_id, name in rows:
            found[row_id].append(name)
    return found
