"""The error responses every operation can give, written into the OpenAPI document.

Errors are produced in one place (app/api/errors.py), not per route, so they are documented in one place too:
FastAPI would otherwise declare its own 422 `HTTPValidationError` (which Headwater never sends: invalid
parameters are a Marquez-style 400) and none of the 400/401/403/404/503 that clients do get.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "description": "Marquez's error shape; `errors` lists the offending fields of an invalid request.",
    "properties": {
        "code": {"type": "integer", "description": "The HTTP status."},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["code", "message"],
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}

# Paths served without the API-key check (app.main's open routers).
_OPEN_PATHS = {"/api/v1/health", "/ping", "/healthcheck", "/metrics"}
_NO_DATABASE = {"/ping", "/metrics"}
# Query parameters that name something which may not exist (a run, a node, a dataset version...).
_NAMING_QUERY = {"runId", "nodeId", "version", "dataset", "job"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def conflict(description: str) -> dict[int | str, dict[str, Any]]:
    """A route's 409, in the error shape (for `responses=` of the routes that can answer it)."""
    return {409: _error(description)}


def _operation_errors(path: str, method: str, operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    errors = {}
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        errors["400"] = _error("A parameter or the body is invalid; `errors` names the fields.")
    if path not in _OPEN_PATHS:
        errors["401"] = _error("API keys are configured (HEADWATER_API_KEYS) and the request has no valid one.")
        if method == "get":
            errors["403"] = _error("HEADWATER_PROTECT_READS is on and the key may only write.")
    if any(p.get("in") == "path" or p.get("name") in _NAMING_QUERY for p in parameters) or "requestBody" in operation:
        errors["404"] = _error("The named namespace, source, dataset, job, run, version or plan does not exist.")
    if path not in _NO_DATABASE:
        errors["503"] = _error("The database is busy or unavailable; retry after the Retry-After seconds.")
    return errors


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's default 422 with the errors the app really answers, in its real error shape."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            declared_422 = responses.pop("422", None)
            if declared_422 and declared_422.get("description") != "Validation Error":
                responses["422"] = _error(declared_422["description"])  # declared by the route itself
            for status, response in _operation_errors(path, method, operation).items():
                if status in responses:
                    responses[status].setdefault("content", response["content"])
                else:
                    responses[status] = response
    return document
