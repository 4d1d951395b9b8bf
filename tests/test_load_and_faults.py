"""`make bench-load` in small: concurrent clients against two server processes, then proof that every
acknowledged event is stored exactly once and the model equals a sequential re-ingest; and the same under a
PostgreSQL restart in the middle of the load (retryable 503s, recovery without a server restart, no loss)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import httpx
import pytest

from app.db import tables as t
from bench.ingest import generate_events
from bench.load import check_stored, reingest, restart_summary, run_load, stored_payloads
from tests.support import model
from tests.support.events import T0, dataset, run_event
from tests.support.live_server import LiveServer


def test_acknowledged_events_are_stored_once_and_model_matches_sequential_ingest(database_url, engine, tmp_path):
    events = generate_events(400, seed=5)
    with LiveServer(database_url, workers=2, log_path=tmp_path / "server.log") as server:
        result = run_load([f"{server.url}/api/v1/lineage"], events, clients=6, seconds=4, timeout=30)
    assert set(result.statuses) == {201}, result.statuses
    assert len(result.acknowledged) > 50  # the run did real work
    loss = check_stored(engine, result)
    assert loss.lost == [] and loss.altered == []
    assert loss.stored == len(result.acknowledged)

    under_load = model.snapshot(engine)
    payloads = stored_payloads(engine)
    with engine.begin() as conn:
        for table in [*t.MODEL_TABLES, t.lineage_events]:
            conn.execute(table.delete())
    reingest(engine, payloads)
    sequential = model.snapshot(engine)
    assert under_load == sequential, model.describe_difference(sequential, under_load)


@pytest.mark.skipif(
    os.environ.get("HEADWATER_TEST_DB", "sqlite") != "postgres",
    reason="restarts a PostgreSQL server; an embedded SQLite database has no server to lose",
)
def test_database_restart_mid_load_gives_retryable_503_and_loses_nothing(engine, tmp_path):
    from tests.support.postgres import TemporaryPostgres

    events = generate_events(2000, seed=9)
    times: dict[str, float] = {}
    with TemporaryPostgres() as pg:

        def restart(start: float) -> None:
            import time

            time.sleep(1.5)
            times["down_at"] = time.monotonic() - start
            pg.restart_server(down_seconds=1.5)
            times["back_at"] = time.monotonic() - start

        # Reads right after the load find the model behind the acknowledged events: they wait at most 2 s, then
        # answer with the lag (within the client's 5 s).
        env = {"HEADWATER_READ_WAIT_SECONDS": "2"}
        with LiveServer(pg.url, workers=2, log_path=tmp_path / "server.log", env=env) as server:
            result = run_load(
                [f"{server.url}/api/v1/lineage"], events, clients=6, seconds=6, timeout=10, during=restart
            )
            health = httpx.get(f"{server.url}/api/v1/health", timeout=5)
            reads = httpx.get(f"{server.url}/api/v1/namespaces", timeout=5)
        from app.db.engine import create_db_engine
        from app.settings import Settings

        pg_engine = create_db_engine(Settings(database_url=pg.url))
        loss = check_stored(pg_engine, result)
        pg_engine.dispose()

    summary = restart_summary(result, times["down_at"], times["back_at"], 1.5)
    assert set(result.statuses) <= {201, 503}, result.statuses  # never a 500, never a dropped connection
    assert result.statuses[503] > 0  # the outage was seen, and answered as retryable
    assert result.hung == 0  # no request outlived the client's timeout
    assert summary["recovered_after"] < 5, summary  # back by itself, without restarting the server
    assert health.status_code == 200 and reads.status_code == 200
    assert loss.lost == [] and loss.altered == []
    # Events were acknowledged before the outage and after it (how many depends on how busy the machine is).
    assert any(t < times["down_at"] for t in result.acked_at), result.acked_at[:5]
    assert any(t > times["back_at"] for t in result.acked_at), result.acked_at[-5:]


def test_complete_without_datasets_before_the_start_that_lists_them(client):
    """Found by the order property: a COMPLETE carrying no datasets, delivered before its START that lists
    them, used to leave the job with no inputs and no current lineage edges."""
    run_id = uuid.uuid4()
    start = run_event(
        "START",
        job=("etl", "load_bookings"),
        run_id=run_id,
        time=T0,
        inputs=[dataset("db", "raw.bookings")],
        outputs=[dataset("db", "room_bookings")],
    )
    complete = run_event("COMPLETE", job=("etl", "load_bookings"), run_id=run_id, time=T0 + timedelta(minutes=5))
    for event in (complete, start):
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    job = client.get("/api/v1/namespaces/etl/jobs/load_bookings").json()
    assert job["inputs"] == [{"namespace": "db", "name": "raw.bookings"}]
    assert job["outputs"] == [{"namespace": "db", "name": "room_bookings"}]
    graph = client.get("/api/v1/lineage", params={"nodeId": "job:etl:load_bookings"}).json()["graph"]
    assert {n["id"] for n in graph} == {"job:etl:load_bookings", "dataset:db:raw.bookings", "dataset:db:room_bookings"}
    assert client.get("/api/v1/namespaces/db/datasets/room_bookings").json()["currentVersion"] is not None
