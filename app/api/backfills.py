"""Backfill impact and plans (Headwater's own API): what a bad run or bad data forces downstream to redo."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ValidationError

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.errors import ApiError, summary, validation_errors
from app.api.pagination import PageParams
from app.db.json import dumps_bytes
from app.schemas.backfill import (
    BackfillPlan,
    BackfillRequest,
    Impact,
    NodeRef,
    SavedPlan,
    SavedPlanList,
    SavePlanRequest,
)
from app.services.backfill import planner, saved

router = APIRouter(prefix="/api/v1", tags=["backfill"])


def _json(model: BaseModel, status_code: int = 200) -> Response:
    """A plan holds thousands of runs built from our own rows: serialize it once, instead of FastAPI dumping
    it to dicts and validating those again against the response model (documented all the same)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def _document(document: dict, status_code: int = 200) -> Response:
    """A plan or impact the planner built as plain dicts in the response model's shape: one orjson pass."""
    return Response(dumps_bytes(document), status_code=status_code, media_type="application/json")


@router.post("/backfills/preview", response_model=BackfillPlan, summary="Plan a backfill without saving it")
def preview_plan(engine: EngineDep, request: BackfillRequest) -> Response:
    body = planner.plan_body(planner.plan_document(engine, request))
    return Response(body, media_type="application/json")


@router.post(
    "/backfills",
    response_model=SavedPlan,
    status_code=status.HTTP_201_CREATED,
    summary="Plan a backfill and save it; its progress follows the runs that complete afterwards",
    dependencies=[Depends(require_write_key)],
)
def save_plan(engine: EngineDep, request: SavePlanRequest) -> Response:
    return _json(saved.save(engine, request), status.HTTP_201_CREATED)


@router.get("/backfills", response_model=SavedPlanList, summary="Saved backfill plans, newest first")
def list_plans(engine: EngineDep, page: PageParams) -> SavedPlanList:
    return saved.list_plans(engine, limit=page.limit, offset=page.offset)


@router.get("/backfills/{planId}", response_model=SavedPlan, summary="A saved backfill plan with its progress")
def get_plan(engine: EngineDep, planId: uuid.UUID) -> Response:
    return _json(saved.get(engine, planId))


@router.post("/impact", response_model=Impact, summary="What a root cause made bad downstream (no plan)")
def post_impact(engine: EngineDep, request: BackfillRequest) -> Response:
    return _document(planner.impact_document(engine, request))


@router.get("/impact", response_model=Impact, summary="What a root cause made bad downstream (no plan)")
def get_impact(
    engine: EngineDep,
    runId: Annotated[uuid.UUID | None, Query(description="A run that failed or wrote bad data.")] = None,
    namespace: Annotated[str | None, Query(description="Namespace of `dataset` or `job`.")] = None,
    dataset: Annotated[str | None, Query(description="A dataset with bad data.")] = None,
    version: Annotated[uuid.UUID | None, Query(description="The bad version of `dataset`.")] = None,
    job: Annotated[str | None, Query(description="A job that wrote bad data between `start` and `end`.")] = None,
    start: Annotated[datetime | None, Query()] = None,
    end: Annotated[datetime | None, Query()] = None,
    columns: Annotated[list[str] | None, Query(description="Only these columns of `dataset` are bad.")] = None,
    depth: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> Response:
    if (dataset or job) and not namespace:
        raise ApiError(400, "namespace: required with dataset or job")
    try:
        request = BackfillRequest(
            runId=runId,
            dataset=NodeRef(namespace=namespace, name=dataset) if dataset else None,
            version=version,
            job=NodeRef(namespace=namespace, name=job) if job else None,
            start=start,
            end=end,
            columns=columns,
            depth=depth,
        )
    except ValidationError as exc:
        details = validation_errors(exc.errors())
        raise ApiError(400, summary(details), details) from None
    return _document(planner.impact_document(engine, request))
