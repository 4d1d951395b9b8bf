"""Liveness of the server and its database."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.api.deps import EngineDep
from app.services.ingest.barrier import apply_lag

router = APIRouter(tags=["health"])


@router.get("/api/v1/health", summary="Server and database health")
def health(engine: EngineDep) -> JSONResponse:
    try:
        lag = apply_lag(engine)  # also checks that the database answers
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc.__cause__ or exc)[:200]}, 503)
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "database": engine.dialect.name,
            # Acknowledged events the model is not built from yet, and how long the oldest has waited.
            "unappliedEvents": lag.unapplied,
            "applyLagSeconds": round(lag.seconds, 3),
        }
    )
