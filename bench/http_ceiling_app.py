"""The ingest endpoint without the database, for `make bench-ingest`'s ceiling: Headwater's own body reading,
JSON parsing, validation and event hashing, answered 201 from a worker thread as the real endpoint does. What
the machine can do here bounds what ingest can do with the database behind it."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.lineage import validate_event
from app.api.request_body import parse_json_object, read_body
from app.services.ingest import event_hash

MAX_BODY = 64 * 1024 * 1024

app = FastAPI()


@app.post("/api/v1/lineage", status_code=201)
async def post_lineage(request: Request) -> Response:
    payload = parse_json_object(await read_body(request, MAX_BODY))
    validate_event(payload)
    await run_in_threadpool(event_hash, payload)
    return Response(status_code=201)


@app.get("/api/v1/health")
def health() -> dict:
    return {"status": "ok"}
