"""Recent failures (Headwater's own API): the failed runs the UI's home page starts from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import EngineDep
from app.schemas.failures import FailedRunList
from app.services import runs

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


@router.get("/failures", response_model=FailedRunList, summary="The most recently ended failed runs")
def recent_failures(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> FailedRunList:
    return FailedRunList.model_construct(failures=runs.recent_failures(engine, limit=limit))
