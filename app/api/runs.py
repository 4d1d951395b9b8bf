"""Runs (Marquez API)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.enums import CaseInsensitiveEnum
from app.api.errors import ApiError
from app.schemas.marquez import Run, RunFacetsResponse
from app.schemas.openlineage import parse_timestamp
from app.services import legacy, runs

router = APIRouter(prefix="/api/v1/jobs/runs", tags=["runs"])


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


class RunAction(CaseInsensitiveEnum):
    start = "start"
    complete = "complete"
    fail = "fail"
    abort = "abort"


@router.post(
    "/{run_id}/{action}",
    response_model=Run,
    summary="Mark a run started, completed, failed or aborted (deprecated in Marquez: use OpenLineage)",
    dependencies=[Depends(require_write_key)],
)
def mark_run(
    run_id: uuid.UUID,
    action: RunAction,
    engine: EngineDep,
    at: Annotated[str | None, Query(description="When the run transitioned (ISO-8601); now if absent.")] = None,
) -> Run:
    try:
        when = parse_timestamp(at) if at else None
    except ValueError as exc:
        raise ApiError(400, f"at: {exc}") from None
    return legacy.mark_run(engine, run_id, action.value, when)
