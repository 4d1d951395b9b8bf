"""The ingest endpoint without the model, for `make bench-ingest`'s ceilings: Headwater's own body reading,
JSON parsing, validation and event hashing, answered 201 from a worker thread as the real endpoint does. What
the machine can do here bounds what ingest can do with the database behind it.

With ``HEADWATER_BENCH_STORE_URL`` set (a database with Headwater's schema), each event is also stored raw in
``lineage_events`` in its own transaction under its job's lock, as ingest does before building the model:
the least an endpoint that acknowledges only what it has stored must do per event."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.lineage import validate_event
from app.api.request_body import parse_json_object, read_body
from app.db.dialect import serialize_on
from app.db.engine import create_db_engine, write_transaction
from app.services.ingest import event_hash, job_lock_key, raw_event_row, store_raw_event
from app.settings import Settings

MAX_BODY = 64 * 1024 * 1024
STORE_URL = os.environ.get("HEADWATER_BENCH_STORE_URL")

app = FastAPI()
engine = create_db_engine(Settings(database_url=STORE_URL, migrate_on_start=False)) if STORE_URL else None


def _hash_and_store(payload: dict, event) -> None:
    digest = event_hash(payload)
    if engine is None:
        return
    with write_transaction(engine) as connection:
        serialize_on(connection, job_lock_key(event.job.namespace, event.job.name))
        store_raw_event(connection, raw_event_row(payload, event, digest))


@app.post("/api/v1/lineage", status_code=201)
async def post_lineage(request: Request) -> Response:
    payload = parse_json_object(await read_body(request, MAX_BODY))
    event = validate_event(payload)
    await run_in_threadpool(_hash_and_store, payload, event)
    return Response(status_code=201)


@app.get("/api/v1/health")
def health() -> dict:
    return {"status": "ok"}
