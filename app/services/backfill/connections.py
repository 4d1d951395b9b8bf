"""Airflow connections: from the server's settings (HEADWATER_AIRFLOW_CONNECTIONS) and made through the API (in
the database). A connection serves the OpenLineage namespaces its provider emits in; secrets never leave."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select

from app.db import tables as t
from app.db.dialect import upsert
from app.db.engine import read_connection, write_transaction
from app.schemas.airflow import AirflowConnection, AirflowConnectionList, AirflowConnectionRequest
from app.services.errors import Conflict, NotFound
from app.settings import Settings


@dataclass(frozen=True)
class ConnectionConfig:
    name: str
    base_url: str
    version: int
    namespaces: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "api"

    def wire(self) -> AirflowConnection:
        return AirflowConnection(
            name=self.name,
            baseUrl=self.base_url,
            version=self.version,
            namespaces=list(self.namespaces),
            username=self.username,
            hasPassword=bool(self.password),
            hasToken=bool(self.token),
            source=self.source,  # type: ignore[arg-type]
        )


def _from_settings(settings: Settings) -> dict[str, ConnectionConfig]:
    return {
        c.name: ConnectionConfig(
            name=c.name,
            base_url=c.baseUrl.rstrip("/"),
            version=c.version,
            namespaces=tuple(c.namespaces),
            username=c.username,
            password=c.password,
            token=c.token,
            source="settings",
        )
        for c in settings.airflow_connections
    }


def all_in(conn: Connection, settings: Settings) -> dict[str, ConnectionConfig]:
    found = _from_settings(settings)
    for row in conn.execute(select(t.airflow_connections).order_by(t.airflow_connections.c.name)):
        found.setdefault(
            row.name,
            ConnectionConfig(
                name=row.name,
                base_url=row.base_url,
                version=row.version,
                namespaces=tuple(row.namespaces),
                username=row.username,
                password=row.password,
                token=row.token,
            ),
        )
    return found


def all_connections(engine: Engine, settings: Settings) -> dict[str, ConnectionConfig]:
    with read_connection(engine) as conn:
        return all_in(conn, settings)


def for_namespace(connections: dict[str, ConnectionConfig], namespace: str) -> ConnectionConfig | None:
    """The connection serving a namespace (the first by name when several claim it)."""
    return next((c for _, c in sorted(connections.items()) if namespace in c.namespaces), None)


def list_connections(engine: Engine, settings: Settings) -> AirflowConnectionList:
    found = all_connections(engine, settings)
    return AirflowConnectionList(connections=[found[name].wire() for name in sorted(found)])


def get(engine: Engine, settings: Settings, name: str) -> ConnectionConfig:
    found = all_connections(engine, settings).get(name)
    if found is None:
        raise NotFound(f"Airflow connection '{name}' not found.")
    return found


def put(engine: Engine, settings: Settings, name: str, request: AirflowConnectionRequest) -> AirflowConnection:
    if name in _from_settings(settings):
        raise Conflict(f"Airflow connection '{name}' comes from the server's settings: change it there.")
    now = datetime.now(UTC)
    c = t.airflow_connections.c
    with write_transaction(engine) as conn:
        old = conn.execute(select(t.airflow_connections).where(c.name == name)).first()

        def secret(given: str | None, kept: str | None) -> str | None:
            if given is None:  # left out: keep what is stored
                return kept
            return given or None  # "": remove it

        values = {
            "base_url": request.baseUrl,
            "version": request.version,
            "namespaces": sorted(set(request.namespaces)),
            "username": request.username,
            "password": secret(request.password, old.password if old else None),
            "token": secret(request.token, old.token if old else None),
            "updated_at": now,
        }
        stmt = upsert(conn, t.airflow_connections).values(name=name, created_at=now, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
    return get(engine, settings, name).wire()


def remove(engine: Engine, settings: Settings, name: str) -> None:
    if name in _from_settings(settings):
        raise Conflict(f"Airflow connection '{name}' comes from the server's settings: remove it there.")
    with write_transaction(engine) as conn:
        gone = conn.execute(delete(t.airflow_connections).where(t.airflow_connections.c.name == name)).rowcount
    if not gone:
        raise NotFound(f"Airflow connection '{name}' not found.")
