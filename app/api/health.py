"""Liveness of the server and its database."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.api.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/api/v1/health", summary="Server and database health")
def health(engine: EngineDep) -> JSONResponse:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc.__cause__ or exc)[:200]}, 503)
    return JSONResponse({"status": "ok", "version": __version__, "database": engine.dialect.name})
