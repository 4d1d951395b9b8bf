"""``POST /api/v1/lineage``: where OpenLineage clients send their events; ``POST /api/v1/lineage/batch``: many
at once, as the OpenLineage OpenAPI document defines it (for replaying, migrating and backfilling events).

These are the server's hot path, so they take no FastAPI dependencies: each checks its write key itself
(``check_write_key``) and reads the settings from the app. Resolving dependencies cost about a tenth of a
request's CPU (0.1 ms of ~1 ms per event), which every event paid. The router is included without the read-key
dependency the other routers have (app/main.py): it holds write routes only."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.auth import check_write_key
from app.api.errors import ApiError
from app.api.request_body import parse_json_array, parse_json_object, read_body
from app.schemas.openlineage import BatchResult, LineageEvent
from app.services.ingest import DatabaseUnavailable
from app.services.ingest.batch import ingest_batch
from app.services.ingest.validation import InvalidEvent, batch_item
from app.services.ingest.validation import validate_event as check_event
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
    try:
        return check_event(payload)
    except InvalidEvent as exc:
        raise ApiError(422, exc.message, exc.details) from None


@router.post(
    "/lineage",
    status_code=201,
    summary="Record an OpenLineage event",
    response_class=Response,
    responses={
        201: {
            "description": "Stored durably (an identical event already stored is accepted and changes nothing). "
            "The model is built from it right after; reads wait for that."
        },
        400: {"description": "Not JSON, not a JSON object, or a broken gzip body."},
        413: {"description": "Body over the size limit."},
        401: {"description": "API keys are configured and the request has no valid one."},
        415: {"description": "Unsupported Content-Encoding."},
        422: {"description": "A required field is missing or has the wrong type; the error names it."},
        503: {"description": "The database is unavailable; retry."},
    },
    openapi_extra={"requestBody": _EVENT_BODY},
)
async def post_lineage(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    check_write_key(request, settings)
    payload = parse_json_object(await read_body(request, settings.max_body_bytes))
    event = validate_event(payload)
    # Answered once the event log has committed it (group commit, app/services/ingest/log.py).
    await request.app.state.ingest.store(payload, event)
    request.app.state.metrics.ingested(event.KIND, payload.get("eventType"), payload.get("producer"))
    return Response(status_code=201)


_BATCH_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "description": "OpenLineage events, each as POST /api/v1/lineage takes it. The body may be "
                "gzip-compressed (Content-Encoding: gzip); the body size limit applies to the whole batch.",
                "items": _EVENT_BODY["content"]["application/json"]["schema"],
            }
        }
    },
}


@router.post(
    "/lineage/batch",
    summary="Record a batch of OpenLineage events",
    response_model=BatchResult,
    responses={
        200: {
            "description": "Each event was stored on its own, in the order posted; `failed_events` lists the ones "
            "that were not, by index, and whether sending them again can succeed."
        },
        400: {"description": "Not JSON, not a JSON array, or a broken gzip body."},
        413: {"description": "Body over the size limit."},
        401: {"description": "API keys are configured and the request has no valid one."},
        415: {"description": "Unsupported Content-Encoding."},
        503: {"description": "The database is unavailable and no event of the batch was stored; retry."},
    },
    openapi_extra={"requestBody": _BATCH_BODY},
)
async def post_lineage_batch(request: Request) -> BatchResult:
    settings: Settings = request.app.state.settings
    check_write_key(request, settings)
    values = parse_json_array(await read_body(request, settings.max_body_bytes))
    metrics = request.app.state.metrics

    def check_and_ingest() -> BatchResult:  # in a worker thread: a large batch's checks would hold the event loop
        return ingest_batch(
            request.app.state.ingest.submit,
            [batch_item(i, value) for i, value in enumerate(values)],
            on_ingested=lambda item: metrics.ingested(
                item.event.KIND, item.payload.get("eventType"), item.payload.get("producer")
            ),
        )

    result = await run_in_threadpool(check_and_ingest)
    if result.summary.successful == 0 and result.summary.retriable > 0:
        # Nothing stored and the database is down: the client should send the whole batch again.
        raise DatabaseUnavailable(result.failed_events[-1].reason)  # answered 503 with Retry-After
    return result
