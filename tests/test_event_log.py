"""The event log and its applier (app/services/ingest/log.py, applier.py, barrier.py): an acknowledged event is
durable, applied exactly once, and no read sees less than what was acknowledged before it."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import tables as t
from app.main import create_app
from app.schemas.openlineage import RunEvent
from app.services.ingest import applier as applier_module
from app.services.ingest import event_hash, raw_event_row
from app.services.ingest.applier import apply_pending
from app.services.ingest.barrier import apply_lag
from app.services.ingest.log import DatabaseUnavailable, EventLog
from app.services.ingest.runtime import IngestRuntime
from app.settings import Settings
from tests.support import model
from tests.support.events import T0, dataset, facet, run_event
from tests.support.live_server import LiveServer


def _events(count: int, job: str = "load") -> list[dict]:
    return [
        run_event(
            "COMPLETE",
            job=("log", f"{job}_{i}"),
            run_id=uuid.UUID(int=i + 1),
            time=T0 + timedelta(minutes=i),
            outputs=[dataset("db", f"{job}_{i}_out", columns=[("id", "int")])],
        )
        for i in range(count)
    ]


def _rows(events: list[dict]) -> list[dict]:
    return [raw_event_row(e, RunEvent.model_validate(e), event_hash(e)) for e in events]


def _unapplied(engine) -> int:
    return apply_lag(engine).unapplied


def _store(engine, events: list[dict]) -> None:
    """Store events in the log (and only there: no applier runs)."""
    log = EventLog(engine).start()
    try:
        for future in [log.append(row) for row in _rows(events)]:
            future.result(10)
    finally:
        log.stop()


def _hold_first_commit(log: EventLog, refuse: threading.Event | None = None):
    """Make the log's first commit wait until released (new events queue up meanwhile); while ``refuse`` is set,
    commits fail as with the database down. Returns (the sizes of the commits, first commit started, release)."""
    commits: list[int] = []
    started, release = threading.Event(), threading.Event()
    real_commit = log._commit

    def commit(rows):
        if refuse is not None and refuse.is_set():
            raise DatabaseUnavailable("the database is down")
        commits.append(len(rows))
        if len(commits) == 1:
            started.set()
            release.wait(10)
        real_commit(rows)

    log._commit = commit
    return commits, started, release


def test_events_waiting_together_share_one_commit(engine):
    """Group commit: while the writer commits, new events queue up; its next transaction takes all of them."""
    log = EventLog(engine, max_batch=1000)
    commits, first_commit_started, release_first = _hold_first_commit(log)
    log.start()
    try:
        rows = _rows(_events(25))
        futures = [log.append(rows[0])]
        assert first_commit_started.wait(10)
        futures += [log.append(row) for row in rows[1:]]  # all queued while the first commit is in progress
        release_first.set()
        for future in futures:
            future.result(10)
    finally:
        log.stop()
    assert commits == [1, 24]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == 25
    assert _unapplied(engine) == 25  # stored, acknowledged, and waiting for the applier


def test_requests_on_the_event_loop_hear_of_their_commit_or_its_failure(engine):
    """``EventLog.store`` (the ingest route's path): the requests waiting for one commit are answered together,
    with one call into their event loop; a request that went away holds nobody back; an outage reaches each."""
    rows = _rows(_events(12))
    log, refuse = EventLog(engine), threading.Event()
    commits, first_commit_started, release_first = _hold_first_commit(log, refuse)
    log.start()

    async def scenario() -> tuple[list, int, list]:
        loop = asyncio.get_running_loop()
        wakeups = []
        real_call = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *args: wakeups.append(args) or real_call(*args)
        first = asyncio.ensure_future(log.store(rows[0]))
        assert await asyncio.to_thread(first_commit_started.wait, 10)
        wakeups.clear()  # to_thread's own
        queued = [asyncio.ensure_future(log.store(row)) for row in rows[1:8]]
        await asyncio.sleep(0)  # all seven are in the queue while the first commit is held
        queued[0].cancel()  # its client went away
        release_first.set()
        stored = await asyncio.gather(first, *queued[1:])
        calls = len(wakeups)
        refuse.set()
        refused = await asyncio.gather(*(log.store(row) for row in rows[8:]), return_exceptions=True)
        loop.call_soon_threadsafe = real_call
        return stored, calls, refused

    try:
        stored, calls, refused = asyncio.run(scenario())
    finally:
        log.stop()
    assert stored == [None] * 7
    assert commits == [1, 7] and calls == 2  # one wake-up of the loop per commit, not one per event
    assert [type(outcome) for outcome in refused] == [DatabaseUnavailable] * 4
    with engine.connect() as conn:
        hashes = set(conn.execute(select(t.lineage_events.c.event_hash)).scalars())
    assert hashes == {row["event_hash"] for row in rows[:8]}  # the one whose client went away too


def test_the_same_event_twice_in_one_commit_is_stored_once(engine):
    log = EventLog(engine).start()
    try:
        (row,) = _rows(_events(1))
        futures = [log.append(dict(row)) for _ in range(3)]
        for future in futures:
            future.result(10)
    finally:
        log.stop()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == 1


def test_an_event_after_the_server_dropped_the_writers_connection_is_still_stored(engine):
    """The writer keeps its connection between commits; when the database has dropped it meanwhile (a restart,
    a failover, an idle timeout), the next event is stored on a fresh one instead of being refused with 503."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    first, second = _rows(_events(2))
    log = EventLog(engine).start()
    try:
        log.append(first).result(10)
        with engine.connect() as conn:
            others = "datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            terminate = f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {others}"
            dropped = conn.exec_driver_sql(terminate).scalar()
        assert dropped >= 1
        log.append(second).result(10)  # raises DatabaseUnavailable if it was refused
    finally:
        log.stop()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == 2


def test_a_batch_is_applied_and_marked_in_one_transaction(engine, monkeypatch):
    """A crash in the middle of a batch (here: the database failing on its third event) leaves nothing of the
    batch: no model row, every event still unapplied; the next batch applies each exactly once."""
    _store(engine, _events(5))
    real_apply = applier_module.APPLY["RUN_EVENT"]
    calls = []

    def apply_then_crash(connection, ctx, event):
        calls.append(event.job.name)
        if len(calls) == 3:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("INSERT …", {}, Exception("server closed the connection unexpectedly"))
        real_apply(connection, ctx, event)

    monkeypatch.setitem(applier_module.APPLY, "RUN_EVENT", apply_then_crash)
    with pytest.raises(Exception, match="server closed"):
        apply_pending(engine, limit=100)
    assert _unapplied(engine) == 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar() == 0  # rolled back with the batch

    monkeypatch.setitem(applier_module.APPLY, "RUN_EVENT", real_apply)
    assert apply_pending(engine, limit=100).applied == 5
    assert apply_pending(engine, limit=100).applied == 0  # nothing is applied twice
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar() == 5
        assert conn.execute(select(func.count()).select_from(t.run_states)).scalar() == 5


def _model_applied(engine, events: list[dict], per_transaction: int, before: list[dict] = ()) -> dict:
    """The model of ``events`` stored in the log in this order and applied ``per_transaction`` at a time, from an
    empty database (``before``: applied first, one at a time)."""
    with engine.begin() as conn:
        for table in [*t.MODEL_TABLES, t.lineage_events]:
            conn.execute(table.delete())
    for group, limit in ((before, 1), (events, per_transaction)):
        _store(engine, group)
        while apply_pending(engine, limit=limit).applied:
            pass
    return model.snapshot(engine)


def test_facets_sent_again_by_later_events_of_a_batch_end_as_one_event_at_a_time_leaves_them(engine):
    """Within one batch an earlier event's facet that a later event sends again is left to the later one
    (BatchMemo.latest_facet_writes): the model is the one of one event per transaction. A run's job version has
    the job's location as the run's own events give it (the first run's START), whatever another run's events
    said in between and whatever order they came in."""
    job, out = ("etl", "build_rooms"), ("warehouse", "public.rooms")
    sql = lambda query: facet("SQLJobFacet", query=query, dialect="postgres")  # noqa: E731
    location = lambda url: facet("SourceCodeLocationJobFacet", type="git", url=url)  # noqa: E731
    docs = lambda text: {"documentation": facet("DocumentationDatasetFacet", description=text)}  # noqa: E731
    progress = lambda step: facet("Custom", step=step)  # noqa: E731
    run_1, run_2 = uuid.UUID(int=1), uuid.UUID(int=2)

    def written(text: str) -> list[dict]:
        return [dataset(*out, columns=[("id", "int")], facets=docs(text))]

    def event(event_type: str, run_id: uuid.UUID, minute: int, text: str, run_progress: dict, **job_facets) -> dict:
        return run_event(
            event_type,
            job=job,
            run_id=run_id,
            time=T0 + timedelta(minutes=minute),
            outputs=written(text),
            job_facets=job_facets,
            run_facets={"progress": run_progress},
        )

    events = [
        event("START", run_1, 0, "first", progress(1), sourceCodeLocation=location("git://a"), sql=sql("v1")),
        event("COMPLETE", run_1, 5, "first", progress(2), sql=sql("v1")),
        event("START", run_2, 10, "second", progress(1), sql=sql("v2")),
        event(
            "COMPLETE", run_2, 15, "second", {"_deleted": True}, sourceCodeLocation=location("git://b"), sql=sql("v2")
        ),
    ]
    # The job is known before, without a location.
    earlier = run_event("COMPLETE", job=job, run_id=uuid.UUID(int=3), time=T0 - timedelta(days=1))

    def applied(per_transaction: int) -> dict:
        return _model_applied(engine, events, per_transaction, before=[earlier])

    one_at_a_time = applied(1)
    events.reverse()
    in_reverse = applied(1)
    assert in_reverse == one_at_a_time, model.describe_difference(one_at_a_time, in_reverse)
    events.reverse()
    one_batch = applied(len(events))
    assert one_batch == one_at_a_time, model.describe_difference(one_at_a_time, one_batch)

    r, v, f = t.runs.c, t.job_versions.c, t.facets.c
    with engine.connect() as conn:
        locations = dict(conn.execute(select(r.id, v.location).join(t.job_versions, v.id == r.job_version_id)).all())
        job_sql = conn.execute(select(f.facet).where(f.name == "sql", f.kind == "JOB")).scalar_one()
        run_progress = dict(conn.execute(select(f.entity_id, f.facet).where(f.name == "progress")).all())
        description = conn.execute(select(t.datasets.c.description)).scalar_one()
    assert locations == {run_1: "git://a", run_2: "git://b", uuid.UUID(int=3): None}
    assert job_sql["query"] == "v2"
    assert {run: (p or {}).get("step") for run, p in run_progress.items()} == {run_1: 2, run_2: None}  # deleted
    assert description == "second"


def test_readers_whose_facets_win_in_turn_side_by_side_leave_the_earliest_readers_description(engine):
    """Found by the random search (tests/test_ingest_properties.py): two readers of a new dataset applied side
    by side in one batch, the later one's description winning first and the earlier one's replacing it a step
    later, each setting the dataset's description at its own step. The description is the earliest reader's, as
    one event per transaction has it."""
    docs = lambda text: {"documentation": facet("DocumentationDatasetFacet", description=text)}  # noqa: E731
    schema = [("id", "int")]
    load, report = ("pipeline", "load"), ("pipeline", "report")
    events = [
        run_event(
            "RUNNING",
            job=report,
            run_id=uuid.UUID(int=3),
            time=T0,
            inputs=[
                dataset("warehouse", "raw.bookings", facets=docs("x")),
                dataset("warehouse", "clean.bookings", columns=schema, facets=docs("z")),
            ],
        ),
        run_event(
            "START",
            job=load,
            run_id=uuid.UUID(int=1),
            time=T0,
            inputs=[dataset("warehouse", "clean.bookings", facets=docs("y")), dataset("warehouse", "mart.top_rooms")],
            outputs=[dataset("warehouse", "raw.bookings", columns=schema, facets=docs("z"))],
        ),
        run_event(
            "FAIL",
            job=report,
            run_id=uuid.UUID(int=5),
            time=T0 + timedelta(minutes=17),
            inputs=[dataset("warehouse", "clean.bookings")],
        ),
        run_event(
            "START",
            job=load,
            run_id=uuid.UUID(int=2),
            time=T0 + timedelta(minutes=20),
            inputs=[
                dataset("warehouse", "mart.daily", columns=schema, facets=docs("earliest")),
                dataset("warehouse", "clean.bookings", columns=schema),
            ],
            outputs=[dataset("warehouse", "raw.bookings", facets=docs("y"))],
        ),
        run_event(
            "RUNNING",
            job=report,
            run_id=uuid.UUID(int=3),
            time=T0 + timedelta(minutes=24),
            inputs=[dataset("warehouse", "mart.daily", facets=docs("later"))],
            outputs=[dataset("warehouse", "mart.top_rooms", facets=docs("y"))],
            job_facets={"documentation": facet("DocumentationJobFacet", description="a")},
        ),
    ]

    one_at_a_time = _model_applied(engine, events, 1)
    one_batch = _model_applied(engine, events, len(events))
    assert one_batch == one_at_a_time, model.describe_difference(one_at_a_time, one_batch)
    d = t.datasets.c
    with engine.connect() as conn:
        description = conn.execute(select(d.description).where(d.name == "mart.daily")).scalar_one()
    assert description == "earliest"


def test_one_bad_event_does_not_hold_its_batch_back(engine, monkeypatch):
    _store(engine, _events(4))
    real_apply = applier_module.APPLY["RUN_EVENT"]

    def bug_on_job_2(connection, ctx, event):
        if event.job.name == "load_2":
            raise KeyError("a mapping bug")
        real_apply(connection, ctx, event)

    monkeypatch.setitem(applier_module.APPLY, "RUN_EVENT", bug_on_job_2)
    outcome = apply_pending(engine, limit=100)
    assert (outcome.applied, outcome.failed) == (4, 1)
    e = t.lineage_events.c
    with engine.connect() as conn:
        errors = dict(conn.execute(select(e.job_name, e.apply_error)).all())
        jobs = set(conn.execute(select(t.jobs.c.name)).scalars())
    assert errors["load_2"] == "KeyError: 'a mapping bug'"
    assert [errors[f"load_{i}"] for i in (0, 1, 3)] == [None] * 3
    assert jobs == {"load_0", "load_1", "load_3"}  # nothing of the bad event stays
    assert _unapplied(engine) == 0


def test_a_read_that_cannot_wait_says_how_far_behind_it_is(settings, engine, monkeypatch):
    """With the applier stuck, a read waits HEADWATER_READ_WAIT_SECONDS, then answers with the lag."""
    release = threading.Event()
    real_apply = applier_module.APPLY["RUN_EVENT"]

    def stuck(connection, ctx, event):
        release.wait(20)
        real_apply(connection, ctx, event)

    monkeypatch.setitem(applier_module.APPLY, "RUN_EVENT", stuck)
    (event,) = _events(1)
    with TestClient(create_app(settings.model_copy(update={"read_wait_seconds": 0.3}))) as client:
        assert client.post("/api/v1/lineage", json=event).status_code == 201
        behind = client.get("/api/v1/jobs")
        assert behind.status_code == 200
        assert behind.json()["totalCount"] == 0  # not applied yet, and the answer says so:
        assert behind.headers["X-Headwater-Unapplied-Events"] == "1"
        assert float(behind.headers["X-Headwater-Apply-Lag-Seconds"]) >= 0.3
        health = client.get("/api/v1/health").json()
        assert health["unappliedEvents"] == 1 and health["applyLagSeconds"] > 0
        release.set()
        caught_up = client.get("/api/v1/jobs")
        assert caught_up.json()["totalCount"] == 1
        assert "X-Headwater-Unapplied-Events" not in caught_up.headers
        assert client.get("/api/v1/health").json()["unappliedEvents"] == 0


def test_the_runtime_applies_what_it_stored_before_it_stops(settings, engine):
    runtime = IngestRuntime(engine, settings).start()
    futures = [runtime.submit(event, RunEvent.model_validate(event)) for event in _events(30)]
    for future in futures:
        future.result(10)
    runtime.stop()
    assert _unapplied(engine) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar() == 30


@pytest.mark.parametrize("rounds", [40])
def test_a_client_always_reads_what_it_was_told_is_stored(database_url, engine, tmp_path, rounds):
    """Read-your-writes across processes: two workers, eight clients; each posts an event and reads its run at
    once, whichever worker answers which request."""
    with LiveServer(database_url, workers=2, log_path=tmp_path / "server.log") as server:

        def post_then_read(i: int) -> tuple[str, str]:
            run_id = uuid.uuid4()
            start = run_event("START", job=("ryw", f"job_{i % 5}"), run_id=run_id, time=T0 + timedelta(seconds=i))
            complete = run_event(
                "COMPLETE",
                job=("ryw", f"job_{i % 5}"),
                run_id=run_id,
                time=T0 + timedelta(seconds=i, milliseconds=500),
                outputs=[dataset("db", f"table_{i % 5}", columns=[("id", "int")])],
            )
            # A new connection per request, so consecutive requests land on either worker.
            for event in (start, complete):
                with httpx.Client(timeout=30) as http:
                    assert http.post(f"{server.url}/api/v1/lineage", json=event).status_code == 201
            with httpx.Client(timeout=30) as http:
                run = http.get(f"{server.url}/api/v1/jobs/runs/{run_id}")
            return run.status_code, run.json().get("state")

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(post_then_read, range(rounds)))
    assert answers == [(200, "COMPLETED")] * rounds
    assert _unapplied(engine) == 0
    with model.applied(engine).connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar() == rounds


@pytest.mark.parametrize(
    ("url", "batch"), [("sqlite:///headwater.db", 200), ("postgresql://db/headwater", 1000)], ids=["sqlite", "postgres"]
)
def test_the_applier_batch_is_short_where_the_log_must_wait_for_it(url, batch, monkeypatch):
    """SQLite has one writer: the log's commits wait while a batch is applied, so batches stay short there;
    Postgres applies beside the log, and larger batches cost less per event. The setting overrides both."""
    monkeypatch.delenv("HEADWATER_APPLY_BATCH_SIZE", raising=False)
    assert Settings(database_url=url).apply_batch == batch
    monkeypatch.setenv("HEADWATER_APPLY_BATCH_SIZE", "50")
    assert Settings(database_url=url).apply_batch == 50
