"""Retention (`headwater purge`, HEADWATER_RETENTION_DAYS): old runs, versions and raw events go in batches;
every dataset's and job's current version, and the runs behind them, stay and the API still answers for them."""

from __future__ import annotations

import time
import uuid
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from app.cli import cli
from app.db import tables as t
from app.db.dialect import serialize_on
from app.db.engine import write_transaction
from app.services.ingest import apply_stored_event, event_hash, job_lock_key
from app.services.retention import RetentionSchedule, parse_duration, purge
from tests.conftest import TEST_DB
from tests.support import model
from tests.support.events import (
    airflow_task_run,
    column_lineage,
    dataset,
    run_event,
)
from tests.support.live_server import LiveServer
from tests.support.model import applied

NOW = datetime.now(UTC).replace(microsecond=0)
NS = "warehouse"
ORDERS = dataset("postgres://db:5432", "public.orders", columns=[("id", "int"), ("amount", "numeric")])
RAW = dataset("postgres://db:5432", "public.raw_orders", columns=[("id", "int")])
RAW_V1 = dataset("postgres://db:5432", "public.raw_orders_v1", columns=[("id", "int")])
REPORT = dataset("postgres://db:5432", "public.legacy_report", columns=[("total", "numeric")])


def enc(name: str) -> str:
    return quote(name, safe="")


def _run(job: str, run_id: uuid.UUID, at: datetime, *, inputs, outputs, final="COMPLETE") -> list[dict]:
    return [
        run_event(kind, job=(NS, job), run_id=run_id, time=at + timedelta(minutes=m), inputs=inputs, outputs=outputs)
        for m, kind in ((0, "START"), (5, final))
    ]


class History:
    """Two months of a small installation:
    * `load_orders` ran 60 and 50 days ago (reading an older input: another job version; the second run failed)
      and 2 days ago;
    * `report_orders` read `orders` 59 days ago and 1 day ago (column lineage on its output);
    * `legacy_report` ran once, 45 days ago: its run and versions are old but current, so they stay;
    * an Airflow DAG that ran 41 and 3 days ago, two tasks each (the old DAG run goes once its tasks have gone)."""

    def __init__(self):
        self.load_old, self.load_failed, self.load_new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.report_old, self.report_new = uuid.uuid4(), uuid.uuid4()
        self.legacy = uuid.uuid4()
        self.dag_run = uuid.uuid4()
        self.tasks = [uuid.uuid4(), uuid.uuid4()]
        lineage = column_lineage({"total": [("postgres://db:5432", "public.orders", "amount")]})
        report_out = {**REPORT, "name": "public.order_report", "facets": {**REPORT["facets"], "columnLineage": lineage}}
        ago = lambda days: NOW - timedelta(days=days)  # noqa: E731
        self.events = [
            *_run("load_orders", self.load_old, ago(60), inputs=[RAW_V1], outputs=[ORDERS]),
            *_run("report_orders", self.report_old, ago(59), inputs=[ORDERS], outputs=[report_out]),
            *_run("load_orders", self.load_failed, ago(50), inputs=[RAW], outputs=[ORDERS], final="FAIL"),
            *_run("legacy_report", self.legacy, ago(45), inputs=[RAW], outputs=[REPORT]),
            *_run("load_orders", self.load_new, ago(2), inputs=[RAW], outputs=[ORDERS]),
            *_run("report_orders", self.report_new, ago(1), inputs=[ORDERS], outputs=[report_out]),
        ]
        self.new_dag_run, self.new_tasks = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
        for days, dag_run, tasks in ((41, self.dag_run, self.tasks), (3, self.new_dag_run, self.new_tasks)):
            for i, task_run in enumerate(tasks):
                self.events += airflow_task_run(
                    namespace="airflow",
                    dag_id="nightly",
                    task_id=f"task_{i}",
                    logical_date=NOW - timedelta(days=days),
                    dag_run_id=dag_run,
                    task_run_id=task_run,
                    inputs=[RAW],
                    outputs=[dataset("postgres://db:5432", f"public.nightly_{i}")],
                )
        assert all(e["producer"] for e in self.events)

    def ingest(self, client) -> None:
        """Post the history and wait until the model is built from it: the purges here read the model directly
        (a purge running while the applier works would find part of it)."""
        for event in self.events:
            assert client.post("/api/v1/lineage", json=event).status_code == 201
        applied(client.app.state.engine)


def dangling_references(engine) -> dict[str, int]:
    """Rows pointing at a row that is not there (the references without a foreign key included)."""
    checks = {
        "run_io.dataset_version_id": "SELECT count(*) FROM run_io io WHERE NOT EXISTS "
        "(SELECT 1 FROM dataset_versions v WHERE v.id = io.dataset_version_id)",
        "runs.job_version_id": "SELECT count(*) FROM runs r WHERE r.job_version_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM job_versions v WHERE v.id = r.job_version_id)",
        "runs.parent_run_id": "SELECT count(*) FROM runs r WHERE r.parent_run_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM runs p WHERE p.id = r.parent_run_id)",
        "jobs.current_run_id": "SELECT count(*) FROM jobs j WHERE j.current_run_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM runs r WHERE r.id = j.current_run_id)",
        "jobs.current_version_id": "SELECT count(*) FROM jobs j WHERE j.current_version_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM job_versions v WHERE v.id = j.current_version_id)",
        "datasets.current_version_id": "SELECT count(*) FROM datasets d WHERE d.current_version_id IS NOT NULL AND "
        "NOT EXISTS (SELECT 1 FROM dataset_versions v WHERE v.id = d.current_version_id)",
        "dataset_versions.run_id": "SELECT count(*) FROM dataset_versions v WHERE v.run_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM runs r WHERE r.id = v.run_id)",
        "job_versions.latest_run_id": "SELECT count(*) FROM job_versions v WHERE v.latest_run_id IS NOT NULL AND "
        "NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = v.latest_run_id)",
        "lineage_edges.last_run_id": "SELECT count(*) FROM lineage_edges e WHERE e.last_run_id IS NOT NULL AND "
        "NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = e.last_run_id)",
        "column_lineage.lineage_id": "SELECT count(*) FROM column_lineage c WHERE NOT EXISTS "
        "(SELECT 1 FROM dataset_versions v WHERE v.column_lineage_id = c.lineage_id)",
        "dataset_versions.column_lineage_id": "SELECT count(*) FROM dataset_versions v WHERE v.column_lineage_id "
        "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM column_lineage c WHERE c.lineage_id = v.column_lineage_id)",
        "facets(RUN)": "SELECT count(*) FROM facets f WHERE f.kind = 'RUN' AND NOT EXISTS "
        "(SELECT 1 FROM runs r WHERE r.id = f.entity_id)",
        "facets(INPUT/OUTPUT)": "SELECT count(*) FROM facets f WHERE f.kind IN ('INPUT', 'OUTPUT') AND NOT EXISTS "
        "(SELECT 1 FROM run_io io WHERE io.id = f.entity_id)",
        "facets(DATASET_VERSION)": "SELECT count(*) FROM facets f WHERE f.kind = 'DATASET_VERSION' AND NOT EXISTS "
        "(SELECT 1 FROM dataset_versions v WHERE v.id = f.entity_id)",
        "facets.lineage_event_id": "SELECT count(*) FROM facets f WHERE f.lineage_event_id IS NOT NULL AND "
        "NOT EXISTS (SELECT 1 FROM lineage_events e WHERE e.id = f.lineage_event_id)",
        "run_states.lineage_event_id": "SELECT count(*) FROM run_states s WHERE NOT EXISTS "
        "(SELECT 1 FROM lineage_events e WHERE e.id = s.lineage_event_id)",
    }
    with applied(engine).connect() as conn:
        found = {name: conn.execute(text(sql)).scalar() for name, sql in checks.items()}
    return {name: n for name, n in found.items() if n}


def test_parse_duration():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("30", "d", "-3d", "0d", "3y", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_dry_run_reports_what_purge_deletes_and_deletes_nothing(client, engine):
    history = History()
    history.ingest(client)
    before = model.snapshot(engine)
    cutoff = NOW - timedelta(days=30)

    dry = purge(engine, cutoff, dry_run=True, batch_size=2)
    assert model.snapshot(engine) == before
    assert dry.deleted["runs"] == 6  # load_old, load_failed, report_old, two Airflow tasks and their DAG run
    real = purge(engine, cutoff, batch_size=2)
    assert real.deleted == dry.deleted
    assert purge(engine, cutoff).total == 0  # nothing left to purge
    assert dangling_references(engine) == {}


def test_purge_keeps_current_versions_and_the_api_still_answers(client, engine):
    history = History()
    history.ingest(client)
    orders_path = f"/api/v1/namespaces/{enc('postgres://db:5432')}/datasets/{enc('public.orders')}"
    legacy_path = f"/api/v1/namespaces/{enc('postgres://db:5432')}/datasets/{enc('public.legacy_report')}"
    orders_before = client.get(orders_path).json()
    legacy_before = client.get(legacy_path).json()
    load_versions_before = client.get(f"/api/v1/namespaces/{NS}/jobs/load_orders/versions").json()["versions"]
    assert len(load_versions_before) == 2  # the old input made another job version

    report = purge(engine, NOW - timedelta(days=30), batch_size=3)
    assert report.deleted["job_versions"] == 1 and report.deleted["dataset_versions"] >= 2
    # START and COMPLETE/FAIL of five runs (the DAG run sent none of its own)
    assert report.deleted["lineage_events"] == 10
    assert dangling_references(engine) == {}

    # Old runs are gone from the API ...
    for run_id in (history.load_old, history.load_failed, history.report_old, history.dag_run, *history.tasks):
        assert client.get(f"/api/v1/jobs/runs/{run_id}").status_code == 404, run_id
    load_runs = client.get(f"/api/v1/namespaces/{NS}/jobs/load_orders/runs").json()["runs"]
    assert [r["id"] for r in load_runs] == [str(history.load_new)]
    load_versions = client.get(f"/api/v1/namespaces/{NS}/jobs/load_orders/versions").json()["versions"]
    assert len(load_versions) == 1
    orders_versions = client.get(f"{orders_path}/versions").json()["versions"]
    assert [v["version"] for v in orders_versions] == [orders_before["currentVersion"]]

    # ... what is current stays, old or not, with the run behind it.
    assert client.get(orders_path).json()["currentVersion"] == orders_before["currentVersion"]
    legacy = client.get(legacy_path).json()
    assert legacy["currentVersion"] == legacy_before["currentVersion"]
    assert client.get(f"{legacy_path}/versions/{legacy['currentVersion']}").status_code == 200
    legacy_job = client.get(f"/api/v1/namespaces/{NS}/jobs/legacy_report").json()
    assert legacy_job["latestRun"]["id"] == str(history.legacy)
    assert client.get(f"/api/v1/jobs/runs/{history.legacy}").json()["state"] == "COMPLETED"
    for run_id in (history.load_new, history.report_new):
        assert client.get(f"/api/v1/jobs/runs/{run_id}").status_code == 200
    nightly = client.get(f"/api/v1/namespaces/{enc('airflow')}/jobs/{enc('nightly.task_0')}")
    assert nightly.status_code == 200  # the job stays, without its runs
    lineage = client.get("/api/v1/lineage", params={"nodeId": "dataset:postgres://db:5432:public.order_report"})
    assert lineage.status_code == 200

    # Raw events: the kept runs' events stay, the purged runs' are gone.
    events = client.get("/api/v1/events/lineage", params={"limit": 100}).json()["events"]
    remaining_runs = {e["run"]["runId"] for e in events}
    kept = {history.legacy, history.load_new, history.report_new, *history.new_tasks}
    assert remaining_runs == {str(run_id) for run_id in kept}


def test_purge_command_prints_counts_and_dry_run_changes_nothing(client, engine, database_url):
    History().ingest(client)
    runner = CliRunner()
    env = {"HEADWATER_DATABASE_URL": database_url}
    with applied(engine).connect() as conn:
        events_before = conn.execute(select(func.count()).select_from(t.lineage_events)).scalar()

    dry = runner.invoke(cli, ["purge", "--older-than", "30d", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == events_before

    real = runner.invoke(cli, ["purge", "--older-than", "30d"], env=env)
    assert real.exit_code == 0, real.output
    counts = lambda output: [line.split() for line in output.splitlines() if line.startswith("  ")]  # noqa: E731
    assert counts(real.output) == counts(dry.output)
    assert ["runs", "6"] in counts(real.output)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == events_before - 10

    bad = runner.invoke(cli, ["purge", "--older-than", "thirty days"], env=env)
    assert bad.exit_code == 2 and "not a duration" in bad.output


def test_retention_schedule_purges_with_its_clock(client, engine):
    history = History()
    history.ingest(client)
    # A clock 20 days behind: with 30 days kept, only what is over 50 days old goes (the two oldest runs).
    schedule = RetentionSchedule(engine, timedelta(days=30), 3600, clock=lambda: NOW - timedelta(days=20))
    report = schedule.run_once()
    assert report is not None and report.deleted["runs"] == 2
    assert client.get(f"/api/v1/jobs/runs/{history.load_old}").status_code == 404
    assert client.get(f"/api/v1/jobs/runs/{history.report_old}").status_code == 404
    assert client.get(f"/api/v1/jobs/runs/{history.load_failed}").status_code == 200


def test_server_runs_retention_periodically(database_url, engine, client, tmp_path):
    history = History()
    env = {"HEADWATER_RETENTION_DAYS": "30", "HEADWATER_RETENTION_INTERVAL_SECONDS": "0.2"}
    with LiveServer(database_url, log_path=tmp_path / "server.log", env=env) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for event in history.events:
                assert http.post("/api/v1/lineage", json=event).status_code == 201
            # The next scheduled purge removes the old runs the server was just sent.
            deadline = datetime.now(UTC) + timedelta(seconds=20)
            while http.get(f"/api/v1/jobs/runs/{history.load_old}").status_code != 404:
                assert datetime.now(UTC) < deadline, "retention did not run"
                time.sleep(0.1)
            assert http.get(f"/api/v1/jobs/runs/{history.legacy}").status_code == 200
            assert http.get(f"/api/v1/jobs/runs/{history.load_new}").status_code == 200


@pytest.mark.skipif(TEST_DB != "postgres", reason="SQLite runs one write transaction at a time: no interleaving")
def test_a_purge_overlapping_an_event_of_the_same_job_gives_the_result_of_the_event_then_the_purge(client, engine):
    """The server's periodic purge and an event of the same job at the same moment (in CI, a run's page once
    answered 500 for a job version a purge had deleted under an event in flight). The purge waits for the
    event's transaction, so it decides on what the event wrote: load_orders' new run is the latest of its current
    version now, so the failed run 50 days ago goes, and every reference stays whole."""
    history = History()
    in_flight = [e for e in history.events if e["run"]["runId"] == str(history.load_new)]
    for event in history.events:
        if event not in in_flight:
            assert client.post("/api/v1/lineage", json=event).status_code == 201
    # Only the event in flight and the purge overlap: the applier has built the rest (still applying it, it
    # could deadlock with the event below on the rows both write).
    applied(engine)
    with ThreadPoolExecutor(1) as pool, write_transaction(engine) as conn:
        # What ingest_event does for each event, held open: the job's lock, the raw event, the model.
        serialize_on(conn, job_lock_key(NS, "load_orders"))
        for payload in in_flight:
            digest = event_hash(payload)
            event_id = conn.execute(
                t.lineage_events.insert().values(
                    event_hash=digest, event_kind="RUN_EVENT", event_time=datetime.fromisoformat(payload["eventTime"]),
                    payload=payload, received_at=NOW,
                ).returning(t.lineage_events.c.id)
            ).scalar_one()  # fmt: skip
            apply_stored_event(conn, event_id, digest, payload)
        purging = pool.submit(purge, engine, NOW - timedelta(days=30))
        futures.wait([purging], timeout=3)  # a purge that does not wait for the event has checked by now
    purging.result(timeout=30)
    assert dangling_references(engine) == dict.fromkeys(dangling_references(engine), 0)
    run = client.get(f"/api/v1/jobs/runs/{history.load_new}")
    assert run.status_code == 200, run.text
    assert run.json()["jobVersion"]["name"] == "load_orders"
    assert client.get(f"/api/v1/jobs/runs/{history.load_failed}").status_code == 404  # the purge did run
