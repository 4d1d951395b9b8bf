"""``POST /api/v1/lineage``: where OpenLineage clients send their events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.auth import require_write_key
from app.api.deps import EngineDep, get_settings
from app.api.errors import ApiError, summary, validation_errors
from app.api.request_body import parse_json_object, read_body
from app.schemas.openlineage import LineageEvent, event_class_for
from app.services.ingest import ingest_event
from app.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["lineage"])

_EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "An OpenLineage RunEvent, DatasetEvent or JobEvent (spec 2-0-2). "
                "The body may be gzip-compressed (Content-Encoding: gzip).",
                "properties": {
                    "eventTime": {"type": "string", "format": "date-time"},
                    "eventType": {"type": "string"},
                    "producer": {"type": "string"},
                    "schemaURL": {"type": "string"},
                    "run": {"type": "object"},
                    "job": {"type": "object"},
                    "dataset": {"type": "object"},
                    "inputs": {"type": "array", "items": {"type": "object"}},
                    "outputs": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["eventTime"],
            }
        }
    },
}


def validate_event(payload: dict) -> LineageEvent:
    event_class = event_class_for(payload)
    if event_class is None:
        raise ApiError(
            422,
            "Not an OpenLineage event: expected 'run' and 'job' (RunEvent), 'dataset' (DatasetEvent) "
            "or 'job' (JobEvent).",
            [{"field": "body", "message": "missing run/job/dataset"}],
        )
    try:
        return event_class.model_validate(payload)
    except ValidationError as exc:
        details = validation_errors(exc.errors(include_url=False))
        raise ApiError(422, f"Invalid {event_class.__name__}: {summary(details)}", details) from None


@router.post(
    "/lineage",
    status_code=201,
    summary="Record an OpenLineage event",
    response_class=Response,
    responses={
        201: {"description": "Stored (an identical event already stored is accepted and changes nothing)."},
        400: {"description": "Not JSON, not a JSON object, or a broken gzip body."},
        413: {"description": "Body over the size limit."},
        401: {"description": "API keys are configured and the request has no valid one."},
        415: {"description": "Unsupported Content-Encoding."},
        422: {"description": "A required field is missing or has the wrong type; the error names it."},
        503: {"description": "The database is unavailable; retry."},
    },
    openapi_extra={"requestBody": _EVENT_BODY},
    dependencies=[Depends(require_write_key)],
)
async def post_lineage(
    request: Request,
    engine: EngineDep,
    settings: Annotated[Settings, Depends(get_settings)],
) -> Response:
    payload = parse_json_object(await read_body(request, settings.max_body_bytes))
    event = validate_event(payload)
    await run_in_threadpool(
        ingest_event,
        engine,
        payload,
        event,
        retry_seconds=settings.ingest_retry_seconds,
        quality_rules=settings.quality_rules,
    )
    request.app.state.metrics.ingested(event.KIND, payload.get("eventType"), payload.get("producer"))
    return Response(status_code=201)
