"""Namespaces: read, create/update (PUT), soft delete."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Row, func, select, update

from app.db import tables as t
from app.db.engine import read_connection, write_transaction
from app.schemas.marquez import CreatedNamespace, Namespace
from app.services import identifiers as ids
from app.services.errors import NotFound


def find_namespace(conn: Connection, name: str) -> Row | None:
    """Exact name first; otherwise case-insensitively, as Marquez matches namespaces."""
    n = t.namespaces.c
    row = conn.execute(select(t.namespaces).where(n.name == name)).first()
    if row is None:
        row = conn.execute(select(t.namespaces).where(func.lower(n.name) == name.lower()).order_by(n.name)).first()
    return row


def require_namespace(conn: Connection, name: str) -> Row:
    row = find_namespace(conn, name)
    if row is None:
        raise NotFound(f"Namespace '{name}' not found.")
    return row


def to_wire(row: Row) -> Namespace:
    return Namespace(
        name=row.name,
        createdAt=row.created_at,
        updatedAt=row.updated_at,
        ownerName=row.owner_name,
        description=row.description,
        isHidden=row.is_hidden,
    )


def list_namespaces(engine: Engine, *, limit: int, offset: int) -> list[Namespace]:
    with read_connection(engine) as conn:
        rows = conn.execute(select(t.namespaces).order_by(t.namespaces.c.name).limit(limit).offset(offset))
        return [to_wire(r) for r in rows]


def get_namespace(engine: Engine, name: str) -> Namespace:
    with read_connection(engine) as conn:
        return to_wire(require_namespace(conn, name))


def put_namespace(engine: Engine, name: str, body: CreatedNamespace) -> Namespace:
    now = datetime.now(UTC)
    n = t.namespaces.c
    with write_transaction(engine) as conn:
        existing = find_namespace(conn, name)
        if existing is None:
            conn.execute(
                t.namespaces.insert().values(
                    id=ids.namespace_id(name),
                    name=name,
                    owner_name=body.ownerName,
                    description=body.description,
                    created_at=now,
                    updated_at=now,
                )
            )
            row_id = ids.namespace_id(name)
        else:
            row_id = existing.id
            conn.execute(
                update(t.namespaces)
                .where(n.id == row_id)
                .values(owner_name=body.ownerName, description=body.description, is_hidden=False, updated_at=now)
            )
        return to_wire(conn.execute(select(t.namespaces).where(n.id == row_id)).one())


def delete_namespace(engine: Engine, name: str) -> Namespace:
    """Soft delete, as Marquez: the namespace and all its jobs and datasets are hidden until an event names
    them again."""
    with write_transaction(engine) as conn:
        row = require_namespace(conn, name)
        conn.execute(update(t.namespaces).where(t.namespaces.c.id == row.id).values(is_hidden=True))
        conn.execute(update(t.jobs).where(t.jobs.c.namespace_id == row.id).values(is_hidden=True))
        conn.execute(update(t.datasets).where(t.datasets.c.namespace_id == row.id).values(is_hidden=True))
        return to_wire(conn.execute(select(t.namespaces).where(t.namespaces.c.id == row.id)).one())
