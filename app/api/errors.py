"""Errors in Marquez's shape: ``{"code": <status>, "message": "…"}`` (plus ``errors`` details for 422)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.dialect import is_unavailable
from app.db.json import UnstorableJSON
from app.services.errors import Conflict, InvalidRequest, JobMoved, NotFound, summary, validation_errors
from app.services.ingest import DatabaseUnavailable

log = logging.getLogger(__name__)

__all__ = ["ApiError", "error_body", "install_error_handlers", "summary", "validation_errors"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers


def error_body(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": message}
    if errors:
        body["errors"] = errors
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return JSONResponse(error_body(exc.status, exc.message, exc.errors), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        details = validation_errors(exc.errors())
        return JSONResponse(error_body(400, summary(details), details), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound):
        return JSONResponse(error_body(404, str(exc)), 404)

    @app.exception_handler(JobMoved)
    async def _moved(request: Request, exc: JobMoved):
        # Marquez's JobRedirectFilter: the same path and query with the canonical job name.
        segments = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0].split("/")
        if "namespaces" in segments:
            at = segments.index("namespaces") + 3  # …/namespaces/{namespace}/jobs/{job}
            if at < len(segments) and segments[at - 1] == "jobs":
                segments[at] = quote(exc.name, safe="")
        location = "/".join(segments) + (f"?{request.url.query}" if request.url.query else "")
        return JSONResponse(error_body(301, str(exc)), 301, headers={"Location": location})

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict):
        return JSONResponse(error_body(409, str(exc)), 409)

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest):
        return JSONResponse(error_body(400, str(exc)), 400)

    @app.exception_handler(UnstorableJSON)
    async def _unstorable(_: Request, exc: UnstorableJSON):
        return JSONResponse(error_body(400, f"Request body cannot be stored: {exc}"), 400)

    @app.exception_handler(DataError)
    async def _unstorable_value(_: Request, exc: DataError):
        # The database refused a value the request carried (a NUL in a text, a number out of its range).
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid value"
        return JSONResponse(error_body(400, f"A value in the request cannot be stored: {reason}"), 400)

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(_: Request, exc: DatabaseUnavailable):
        return JSONResponse(
            error_body(503, "The database is busy or unavailable; retry shortly."), 503, headers={"Retry-After": "2"}
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database_error(request: Request, exc: Exception):
        # A read while the database is down or restarting: retryable, like an ingest that could not commit.
        if is_unavailable(exc):
            return await _unavailable(request, DatabaseUnavailable(str(exc)))
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse(error_body(500, "Internal server error."), 500)
