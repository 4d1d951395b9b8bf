"""Operator endpoints, at Marquez's admin paths: ``/ping``, ``/healthcheck`` and Prometheus ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import EngineDep
from app.api.health import health
from app.services.ingest.barrier import apply_lag

router = APIRouter(tags=["admin"])


@router.get("/ping", response_class=PlainTextResponse, summary="Liveness: the process answers")
def ping() -> str:
    return "pong"


@router.get("/healthcheck", summary="Readiness: the database answers (503 when it does not)")
def healthcheck(engine: EngineDep) -> JSONResponse:
    return health(engine)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def metrics(request: Request, engine: EngineDep) -> Response:
    try:
        lag = apply_lag(engine)
    except SQLAlchemyError:  # the database is down: the scrape still answers, without the log's figures
        text = request.app.state.metrics.exposition()
    else:
        text = request.app.state.metrics.exposition(unapplied=lag.unapplied, apply_lag_seconds=lag.seconds)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
