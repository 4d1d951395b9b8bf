"""Errors the services raise; the API turns them into Marquez-shaped responses. Also how a pydantic validation
error is told to a user (the API's 400/422 answers and the refusals `headwater import` reports)."""

from __future__ import annotations

from typing import Any


class NotFound(Exception):
    """404: e.g. "Namespace 'x' not found." (Marquez's wording)."""


class InvalidRequest(Exception):
    """400: the request is well-formed but asks for something that cannot be answered (the message says why)."""


class Conflict(Exception):
    """409: the request clashes with the current state (a plan already running, a missing Airflow connection)."""


class JobMoved(Exception):
    """301: the job was asked for by an alias (Marquez's ``parent.child`` name of a job we keep as sent, or a
    symlinked job); the API redirects to the canonical name."""

    def __init__(self, namespace: str, name: str):
        super().__init__(f"Job moved to '{name}'.")
        self.namespace = namespace
        self.name = name


def field_path(loc: tuple | list) -> str:
    """pydantic's ``("run", "runId")`` / ``("inputs", 0, "name")`` → ``run.runId`` / ``inputs[0].name``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("body", "query", "path"):
            path += f".{part}" if path else str(part)
    return path or "body"


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    details = []
    for e in errors:
        message = e.get("msg", "invalid")
        message = message.removeprefix("Value error, ")
        details.append({"field": field_path(e.get("loc", ())), "message": message})
    return details


def summary(details: list[dict[str, Any]]) -> str:
    shown = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return shown + more
