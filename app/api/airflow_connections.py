"""Airflow connections: the Airflow instances Headwater may drive to run saved plans. They hold credentials,
so with API keys set only a read+write key reads or changes them; passwords and tokens are never returned."""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from app.api.auth import require_read_write_key, require_write_key
from app.api.deps import EngineDep, get_settings
from app.api.openapi_errors import conflict
from app.schemas.airflow import AirflowConnection, AirflowConnectionList, AirflowConnectionRequest, ConnectionTest
from app.services.backfill import connections, execution
from app.settings import Settings

router = APIRouter(
    prefix="/api/v1/airflow-connections", tags=["backfill"], dependencies=[Depends(require_read_write_key)]
)
SettingsDep = Annotated[Settings, Depends(get_settings)]
Name = Annotated[str, Path(min_length=1, max_length=255, description="The connection's name.")]
FROM_SETTINGS = conflict("The connection comes from the server's settings (HEADWATER_AIRFLOW_CONNECTIONS).")


def airflow_client(request: Request) -> httpx.Client:
    """A client for calls to Airflow made while answering a request (tests put a fake Airflow behind it)."""
    settings: Settings = request.app.state.settings
    transport = getattr(request.app.state, "airflow_transport", None)
    return httpx.Client(timeout=settings.airflow_timeout_seconds, transport=transport, follow_redirects=False)


@router.get("", response_model=AirflowConnectionList, summary="Airflow connections (without their secrets)")
def list_connections(engine: EngineDep, settings: SettingsDep) -> AirflowConnectionList:
    return connections.list_connections(engine, settings)


@router.get("/{connection}", response_model=AirflowConnection, summary="One Airflow connection (without its secrets)")
def get_connection(engine: EngineDep, settings: SettingsDep, connection: Name) -> AirflowConnection:
    return connections.get(engine, settings, connection).wire()


@router.put(
    "/{connection}",
    response_model=AirflowConnection,
    summary="Create or replace an Airflow connection; a password or token left out is kept",
    dependencies=[Depends(require_write_key)],
    responses=FROM_SETTINGS,
)
def put_connection(
    engine: EngineDep, settings: SettingsDep, connection: Name, body: AirflowConnectionRequest
) -> AirflowConnection:
    return connections.put(engine, settings, connection, body)


@router.delete(
    "/{connection}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an Airflow connection",
    dependencies=[Depends(require_write_key)],
    responses=FROM_SETTINGS,
)
def delete_connection(engine: EngineDep, settings: SettingsDep, connection: Name) -> Response:
    connections.remove(engine, settings, connection)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{connection}/test",
    response_model=ConnectionTest,
    summary="Check that Airflow answers with the version configured and, with planId, that the plan's DAGs exist "
    "and are unpaused",
)
def test_connection(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    connection: Name,
    planId: Annotated[uuid.UUID | None, Query(description="A saved plan whose DAGs to check.")] = None,
) -> ConnectionTest:
    with airflow_client(request) as http:
        return execution.test_connection(engine, settings, connection, planId, http)
