"""Sources (Marquez API)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.pagination import PageParams
from app.schemas.marquez import CreatedSource, Source, SourceList
from app.services import sources

router = APIRouter(prefix="/api/v1", tags=["sources"])


@router.get("/sources", response_model=SourceList, summary="List sources")
def list_sources(engine: EngineDep, page: PageParams) -> SourceList:
    return SourceList(sources=sources.list_sources(engine, limit=page.limit, offset=page.offset))


@router.get("/sources/{source:name}", response_model=Source, summary="Get a source")
def get_source(source: str, engine: EngineDep) -> Source:
    return sources.get_source(engine, source)


@router.put(
    "/sources/{source:name}",
    response_model=Source,
    summary="Create or update a source (deprecated in Marquez; sources come from dataSource facets)",
    dependencies=[Depends(require_write_key)],
)
def put_source(source: str, body: CreatedSource, engine: EngineDep) -> Source:
    return sources.put_source(engine, source, body)
