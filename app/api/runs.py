"""Runs (Marquez API)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Engine

from app.api.deps import get_engine
from app.api.enums import CaseInsensitiveEnum
from app.schemas.marquez import Run, RunFacetsResponse
from app.services import runs

router = APIRouter(prefix="/api/v1/jobs/runs", tags=["runs"])
EngineDep = Annotated[Engine, Depends(get_engine)]


class FacetType(CaseInsensitiveEnum):
    run = "run"
    job = "job"


@router.get("/{run_id}", response_model=Run, summary="Get a run")
def get_run(run_id: uuid.UUID, engine: EngineDep) -> Run:
    return runs.get_run(engine, run_id)


@router.get("/{run_id}/facets", response_model=RunFacetsResponse, summary="Get a run's run or job facets")
def get_run_facets(
    run_id: uuid.UUID, engine: EngineDep, type: Annotated[FacetType, Query(description="run or job")]
) -> RunFacetsResponse:
    return runs.get_run_facets(engine, run_id, type.value)
