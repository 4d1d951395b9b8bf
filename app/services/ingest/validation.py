"""Whether a JSON value is an OpenLineage event Headwater can store: the checks of POST /api/v1/lineage and of
each element of a batch, shared by the API and by `headwater import`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.schemas.openlineage import LineageEvent, event_class_for
from app.services.errors import summary, validation_errors
from app.services.ingest.batch import BatchItem


class InvalidEvent(ValueError):
    """Not a valid OpenLineage event; ``message`` says why, ``details`` lists the fields at fault."""

    def __init__(self, message: str, details: list[dict[str, Any]]):
        super().__init__(message)
        self.message = message
        self.details = details


def validate_event(payload: dict) -> LineageEvent:
    event_class = event_class_for(payload)
    if event_class is None:
        raise InvalidEvent(
            "Not an OpenLineage event: expected 'run' and 'job' (RunEvent), 'dataset' (DatasetEvent) "
            "or 'job' (JobEvent).",
            [{"field": "body", "message": "missing run/job/dataset"}],
        )
    try:
        return event_class.model_validate(payload)
    except ValidationError as exc:
        details = validation_errors(exc.errors(include_url=False))
        raise InvalidEvent(f"Invalid {event_class.__name__}: {summary(details)}", details) from None


def batch_item(index: int, value: object) -> BatchItem:
    """Check one element of a batch as POST /lineage checks a body; a bad one is reported by its index."""
    if not isinstance(value, dict):
        return BatchItem(index, invalid=f"must be a JSON object (an OpenLineage event), not {json_type(value)}.")
    if (path := find_nul(value)) is not None:
        return BatchItem(index, invalid=f"{path}: contains a NUL character (\\u0000), which cannot be stored.")
    try:
        return BatchItem(index, payload=value, event=validate_event(value))
    except InvalidEvent as exc:
        return BatchItem(index, invalid=exc.message)


def json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), "null")


def find_nul(value: Any, path: str = "") -> str | None:
    """Path of the first string (or key) containing U+0000, which Postgres cannot store in JSON."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return child
            if (found := find_nul(item, child)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := find_nul(item, f"{path}[{i}]")) is not None:
                return found
    return None
