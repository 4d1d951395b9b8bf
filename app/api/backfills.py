"""Backfill impact and plans (Headwater's own API): what a bad run or bad data forces downstream to redo."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import BaseModel, ValidationError

from app.api.airflow_connections import airflow_client
from app.api.auth import require_write_key
from app.api.deps import EngineDep, get_settings
from app.api.errors import ApiError, summary, validation_errors
from app.api.openapi_errors import conflict
from app.api.pagination import PageParams
from app.db.json import dumps_bytes
from app.schemas.airflow import ControlRequest, DryRun, Execution, RunRequest
from app.schemas.backfill import (
    BackfillPlan,
    BackfillRequest,
    Impact,
    NodeRef,
    SavedPlan,
    SavedPlanList,
    SavePlanRequest,
)
from app.services.backfill import execution, planner, saved
from app.settings import Settings

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


def _actor(request: Request) -> str:
    """Who did it, for the audit log: the API key's fingerprint (never the key), else the caller's address."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "api key " + hashlib.sha256(key.strip().encode()).hexdigest()[:12]
    return f"anonymous ({request.client.host if request.client else 'unknown'})"


@router.post(
    "/backfills/{planId}/run",
    response_model=Execution,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run a saved plan through Airflow, level by level (dryRun: only list the calls it would make)",
    responses={
        200: {"model": DryRun, "description": "dryRun: the calls, in order, with their bodies"},
        **conflict("Started already, no Airflow connection serves a DAG's namespace, or (dryRun) Airflow did not say"),
    },
    dependencies=[Depends(require_write_key)],
)
def run_plan(
    request: Request,
    engine: EngineDep,
    settings: Annotated[Settings, Depends(get_settings)],
    planId: uuid.UUID,
    body: Annotated[RunRequest | None, Body()] = None,
) -> Response:
    body = body or RunRequest()
    if body.dryRun:
        with airflow_client(request) as http:
            return _json(execution.dry_run(engine, settings, planId, body, http))
    actor = f"{body.startedBy} via {_actor(request)}" if body.startedBy else _actor(request)
    return _json(execution.start(engine, settings, planId, body, actor), status.HTTP_202_ACCEPTED)


@router.get("/backfills/{planId}/execution", response_model=Execution, summary="How running a plan goes")
def get_execution(engine: EngineDep, planId: uuid.UUID) -> Response:
    return _json(execution.status(engine, planId))


def _control_body(body: ControlRequest | None) -> ControlRequest:
    return body or ControlRequest()


@router.post(
    "/backfills/{planId}/pause",
    response_model=Execution,
    responses=conflict("Not running, or not started."),
    summary="Pause a running plan: nothing new is started in Airflow (what runs there goes on)",
    dependencies=[Depends(require_write_key)],
)
def pause_plan(
    request: Request, engine: EngineDep, planId: uuid.UUID, body: Annotated[ControlRequest | None, Body()] = None
) -> Response:
    return _json(execution.pause(engine, planId, _control_body(body), _actor(request)))


@router.post(
    "/backfills/{planId}/resume",
    response_model=Execution,
    responses=conflict("Not paused, or not started."),
    summary="Resume a paused plan; DAGs whose re-run failed are tried again",
    dependencies=[Depends(require_write_key)],
)
def resume_plan(
    request: Request, engine: EngineDep, planId: uuid.UUID, body: Annotated[ControlRequest | None, Body()] = None
) -> Response:
    return _json(execution.resume(engine, planId, _control_body(body), _actor(request)))


@router.post(
    "/backfills/{planId}/cancel",
    response_model=Execution,
    responses=conflict("Not running or paused, or not started."),
    summary="Cancel a plan: the Airflow 3 backfills it created are cancelled too",
    dependencies=[Depends(require_write_key)],
)
def cancel_plan(
    request: Request, engine: EngineDep, planId: uuid.UUID, body: Annotated[ControlRequest | None, Body()] = None
) -> Response:
    return _json(execution.cancel(engine, planId, _control_body(body), _actor(request)))
