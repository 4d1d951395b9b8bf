"""Incidents (Headwater's own API): failures, failed quality checks, late data and breaking schema changes, each
with its downstream impact and a prefilled backfill plan."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from app.api.auth import require_write_key
from app.api.deps import EngineDep, get_settings
from app.api.pagination import PageParams
from app.schemas.incidents import Incident, IncidentKind, IncidentList, ResolveRequest
from app.services.incidents import service
from app.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.get("/incidents", response_model=IncidentList, summary="Incidents, newest first")
def list_incidents(
    engine: EngineDep,
    settings: Annotated[Settings, Depends(get_settings)],
    page: PageParams,
    status: Annotated[Literal["open", "resolved"] | None, Query(description="open or resolved.")] = None,
    namespace: Annotated[str | None, Query(description="Namespace of the job or dataset it is about.")] = None,
    kind: Annotated[IncidentKind | None, Query(description="run_failed, data_quality, late or schema_change.")] = None,
) -> IncidentList:
    return service.list_incidents(
        engine,
        status=status,
        namespace=namespace,
        kind=kind,
        limit=page.limit,
        offset=page.offset,
        public_url=settings.public_url,
    )


@router.get("/incidents/{incidentId}", response_model=Incident, summary="One incident with its impact")
def get_incident(
    engine: EngineDep, settings: Annotated[Settings, Depends(get_settings)], incidentId: uuid.UUID
) -> Incident:
    return service.get(engine, incidentId, public_url=settings.public_url)


@router.post(
    "/incidents/{incidentId}/resolve",
    response_model=Incident,
    summary="Resolve an open incident by hand (e.g. a job retired on purpose)",
    dependencies=[Depends(require_write_key)],
)
def resolve_incident(
    engine: EngineDep,
    settings: Annotated[Settings, Depends(get_settings)],
    incidentId: uuid.UUID,
    request: ResolveRequest | None = None,
) -> Incident:
    return service.resolve_by_hand(
        engine, incidentId, request.reason if request else None, public_url=settings.public_url
    )
