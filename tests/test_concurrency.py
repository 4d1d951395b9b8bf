"""Many clients and two server processes on one database: no 5xx, no duplicates, no lost transitions, and
the same model as the same events ingested one by one."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.db import tables as t
from app.db.engine import create_db_engine
from tests.support import model
from tests.support.events import T0, dataset, facet, run_event
from tests.support.live_server import LiveServer

JOBS = 6
RUNS_PER_JOB = 6


def pipeline_events(rng: random.Random) -> tuple[list[dict], dict[uuid.UUID, str]]:
    """A chain of jobs sharing hot datasets: every job reads `shared.source` and its predecessor's output.
    Each run sends START, RUNNING and COMPLETE (every fifth run FAILs)."""
    events, expected_states = [], {}
    for j in range(JOBS):
        inputs = [dataset("db", "shared.source", columns=[("id", "int")])]
        if j:
            inputs.append(dataset("db", f"stage_{j - 1}", columns=[("id", "int")]))
        output = dataset("db", f"stage_{j}", columns=[("id", "int"), (f"col_{j}", "text")])
        for r in range(RUNS_PER_JOB):
            run_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            start = T0 + timedelta(hours=r, minutes=j)
            final = "FAIL" if (j * RUNS_PER_JOB + r) % 5 == 0 else "COMPLETE"
            expected_states[run_id] = {"FAIL": "FAILED", "COMPLETE": "COMPLETED"}[final]
            job_facets = {"documentation": facet("DocumentationJobFacet", description=f"job {j} as of run {r}")}
            for offset, kind in ((0, "START"), (1, "RUNNING"), (2, final)):
                events.append(
                    run_event(
                        kind,
                        job=("pipeline", f"job_{j}"),
                        run_id=run_id,
                        time=start + timedelta(seconds=offset),
                        inputs=inputs,
                        outputs=[output],
                        job_facets=job_facets,
                    )
                )
    return events, expected_states


@pytest.fixture
def two_servers(database_url, engine, tmp_path):
    with (
        LiveServer(database_url, log_path=tmp_path / "a.log") as a,
        LiveServer(database_url, log_path=tmp_path / "b.log") as b,
    ):
        yield a, b


def test_concurrent_clients_on_two_processes(two_servers, engine, client):
    rng = random.Random(7)
    events, expected_states = pipeline_events(rng)
    # Interleave everything, and deliver a third of the events twice (client retries), to either server.
    deliveries = events + rng.sample(events, len(events) // 3)
    rng.shuffle(deliveries)
    urls = [f"{server.url}/api/v1/lineage" for server in two_servers]

    def post(indexed):
        i, event = indexed
        with httpx.Client(timeout=60) as http:
            return http.post(urls[i % 2], json=event).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, enumerate(deliveries)))
    assert statuses.count(201) == len(deliveries), {s: statuses.count(s) for s in set(statuses)}

    with model.applied(engine).connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == len(events)
        assert conn.execute(select(func.count()).where(t.lineage_events.c.apply_error.is_not(None))).scalar() == 0
        assert conn.execute(select(func.count()).select_from(t.run_states)).scalar() == len(events)
        states = dict(conn.execute(select(t.runs.c.id, t.runs.c.state)).all())
    assert states == expected_states
    for j in range(JOBS):
        assert model.job(engine, "pipeline", f"job_{j}").description == f"job {j} as of run {RUNS_PER_JOB - 1}"
    concurrent = model.snapshot(engine)

    # The same events, one at a time, in order, into an emptied database: the same model.
    for table in [*t.MODEL_TABLES, t.lineage_events]:
        with engine.begin() as conn:
            conn.execute(table.delete())
    for event in events:
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert model.snapshot(engine) == concurrent, model.describe_difference(model.snapshot(engine), concurrent)


def _worker_pids(pid: int) -> list[int]:
    """Child processes of a process (Linux /proc): uvicorn's workers under its supervisor."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def test_serve_with_two_workers_ingests_concurrently(database_url, engine, tmp_path):
    """`headwater serve --workers 2` (HEADWATER_WORKERS=2): one port, two worker processes, every event
    stored exactly once with the right final states."""
    rng = random.Random(11)
    events, expected_states = pipeline_events(rng)
    deliveries = events + rng.sample(events, len(events) // 4)
    rng.shuffle(deliveries)
    with LiveServer(database_url, workers=2, log_path=tmp_path / "workers.log") as server:
        workers = [p for p in _worker_pids(server.process.pid) if Path(f"/proc/{p}/cmdline").exists()]
        url = f"{server.url}/api/v1/lineage"

        def post(event):
            with httpx.Client(timeout=60) as http:
                return http.post(url, json=event).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(post, deliveries))
    assert len(workers) >= 2, workers  # the supervisor's children: two workers (and possibly a helper)
    assert statuses.count(201) == len(deliveries), {s: statuses.count(s) for s in set(statuses)}
    with model.applied(engine).connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == len(events)
        states = dict(conn.execute(select(t.runs.c.id, t.runs.c.state)).all())
    assert states == expected_states


def test_a_worker_that_gets_no_cpu_for_seconds_is_not_killed(database_url, engine, tmp_path):
    """On a loaded machine a worker can go seconds without the CPU (or be slow to start). uvicorn's supervisor
    pings each worker every half second and used to kill one silent for 5 s as hung, with the requests it was
    serving: under load a multi-worker test could lose a worker mid-test, or wait for a server whose starting
    workers kept being replaced. Here one worker is stopped outright for longer; it is the same worker after."""
    with LiveServer(database_url, workers=2, log_path=tmp_path / "workers.log") as server:
        workers = [p for p in _worker_pids(server.process.pid) if b"spawn_main" in _cmdline(p)]
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGSTOP)
        try:
            time.sleep(7)  # the starvation itself, not a wait for something: the supervisor's pings go unanswered
        finally:
            with contextlib.suppress(ProcessLookupError):  # (gone if it was killed)
                os.kill(workers[0], signal.SIGCONT)
        assert [p for p in _worker_pids(server.process.pid) if b"spawn_main" in _cmdline(p)] == workers
        for _ in range(4):  # new connections, shared out between the two workers
            with httpx.Client(timeout=30) as http:
                assert http.get(f"{server.url}/api/v1/health").status_code == 200


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def test_metrics_add_up_across_workers(database_url, engine, settings, tmp_path):
    """With two workers, /metrics counts every worker's events, whichever worker answers the scrape."""
    from tests.test_admin_metrics import sample

    # Independent jobs (no shared rows to contend for): this is about counting, not about races.
    def run_events(first: int, count: int) -> list[dict]:
        return [
            run_event(
                kind,
                job=("metrics", f"job_{i}"),
                run_id=uuid.UUID(int=i + 1),
                time=T0 + timedelta(minutes=i, seconds=offset),
                outputs=[dataset("db", f"table_{i}", columns=[("id", "int")])],
            )
            for i in range(first, first + count)
            for offset, kind in ((0, "START"), (1, "COMPLETE"))
        ]

    events = run_events(0, 30)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    one_engine = create_db_engine(settings)
    one_pool = one_engine.pool.size()  # what each worker's pool keeps
    one_engine.dispose()
    with LiveServer(database_url, workers=2, log_path=tmp_path / "workers.log", env=env) as server:

        def post(event):
            # A new connection each time, so the workers share them out. A 503 (the database stayed busy) is
            # retried, as OpenLineage clients do; only accepted events are counted.
            for _ in range(5):
                with httpx.Client(timeout=60) as http:
                    status = http.post(f"{server.url}/api/v1/lineage", json=event).status_code
                if status != 503:
                    return status
            return status

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(post, events)) == {201}
            # Each worker that ingested keeps its counts in its own file. Which worker accepts a connection is
            # the kernel's choice; on a loaded machine one may take them all: send more until both have counted.
            while len(list(metrics_dir.glob("counter_*.db"))) < 2 and len(events) < 600:
                more = run_events(len(events) // 2, 8)
                assert set(pool.map(post, more)) == {201}
                events += more
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2, sorted(p.name for p in metrics_dir.iterdir())
        for _ in range(6):
            with httpx.Client(timeout=10) as http:
                text = http.get(f"{server.url}/metrics").text
            total = sum(
                sample(text, "headwater_events_ingested_total", event_type=kind) or 0
                for kind in ("START", "RUNNING", "COMPLETE", "FAIL")
            )
            assert total == len(events)
            assert sample(text, "headwater_db_pool_size") == 2 * one_pool
