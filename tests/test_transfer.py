"""`headwater import` (a Marquez database, a Marquez server's events API, a JSON Lines file) and
`headwater export`: what an import builds is what posting the same events builds, re-runs and resumed runs end
identical, bad rows are reported and not fatal, and the source is only read."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import cli
from app.db import tables as t
from app.schemas.openlineage import parse_timestamp
from app.services.transfer.run import Checkpoint, Filters, run_import
from app.services.transfer.sources import MarquezDatabase
from tests.conftest import TEST_DB
from tests.support import model
from tests.support.events import POSTGRES_NS, airflow_dag_run, airflow_dag_run_id, airflow_task_run, dataset, run_event
from tests.support.live_server import LiveServer
from tests.support.marquez_db import create_marquez_table, fill_marquez_table, libpq_url, marquez_row
from tests.test_reindex import empty_everything, post_all

# Marquez's own test events, kept in the repository (a fresh clone has everything `make test` needs).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "marquez"


def reference_events() -> list[dict]:
    """Marquez's own test events (OpenLineage examples and the 'apples' pipeline)."""
    paths = sorted((FIXTURES / "open_lineage").rglob("*.json")) + sorted((FIXTURES / "apples").glob("*.json"))
    assert len(paths) >= 20, f"Marquez fixtures not found under {FIXTURES}"
    return [json.loads(path.read_text()) for path in paths]


def airflow_history(days: int = 8, seed: int = 3) -> list[dict]:
    """Daily runs of two DAGs as Airflow's OpenLineage provider reports them: the DAG run, its tasks, the
    second DAG reading what the first writes; some days fail."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    orders = [("order_id", "integer"), ("amount", "numeric")]
    events = []
    for day in range(days):
        logical = start + timedelta(days=day)
        for dag_id, tasks in (
            ("orders_etl", [("extract", "public.orders", "staging.orders"), ("load", "staging.orders", "mart.orders")]),
            ("revenue", [("aggregate", "mart.orders", "mart.revenue_daily")]),
        ):
            dag_run = airflow_dag_run_id(logical)
            common = {"namespace": "airflow-prod", "dag_id": dag_id, "logical_date": logical, "dag_run_id": dag_run}
            events.append(airflow_dag_run(**common, event_type="START", time=logical + timedelta(days=1)))
            for task_id, read, wrote in tasks:
                events += airflow_task_run(
                    **common,
                    task_id=task_id,
                    task_run_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    inputs=[dataset(POSTGRES_NS, read, columns=orders)],
                    outputs=[dataset(POSTGRES_NS, wrote, columns=orders)],
                    state="FAIL" if (day, task_id) == (5, "load") else "COMPLETE",
                )
            end = "FAIL" if (day, dag_id) == (5, "orders_etl") else "COMPLETE"
            events.append(airflow_dag_run(**common, event_type=end, time=logical + timedelta(days=1, hours=1)))
    return events


# Rows an older Marquez let into its table that are not OpenLineage events Headwater can store.
NOT_EVENTS = [
    ({"eventTime": "2024-03-02T00:00:00Z", "hello": "world"}, "Not an OpenLineage event"),
    (
        run_event("START", job=("airflow-prod", "broken"), run_id="not-a-uuid", time=datetime(2024, 3, 3, tzinfo=UTC)),
        "run.runId",
    ),
    ("just a string", "must be a JSON object"),
]


def oldest_first(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda event: parse_timestamp(event["eventTime"]))  # stable: ties keep their order


def marquez_answers(client) -> dict[str, object]:
    """What Marquez clients read: namespaces, their jobs and datasets, each job's runs and lineage, each
    dataset's versions, the event list."""
    answers: dict[str, object] = {}

    def get(path: str):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        answers[path] = _runs_in_a_defined_order(response.json())
        return answers[path]

    for namespace in get("/api/v1/namespaces?limit=1000")["namespaces"]:
        ns = quote(namespace["name"], safe="")
        for job in get(f"/api/v1/namespaces/{ns}/jobs?limit=1000")["jobs"]:
            get(f"/api/v1/namespaces/{ns}/jobs/{quote(job['name'], safe='')}/runs?limit=1000")
            node = quote(f"job:{namespace['name']}:{job['name']}", safe="")
            get(f"/api/v1/lineage?nodeId={node}&depth=20")
        for found in get(f"/api/v1/namespaces/{ns}/datasets?limit=1000")["datasets"]:
            get(f"/api/v1/namespaces/{ns}/datasets/{quote(found['name'], safe='')}/versions?limit=1000")
    get("/api/v1/events/lineage?limit=1000&sortDirection=asc")
    return answers


def _runs_in_a_defined_order(answer):
    """Runs are listed newest first; among runs that started at the same instant the API defines no order."""
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key in ("runs", "latestRuns") and isinstance(value, list):
                value.sort(key=lambda run: (run["startedAt"] or "", run["createdAt"], run["id"]), reverse=True)
            else:
                _runs_in_a_defined_order(value)
    elif isinstance(answer, list):
        for item in answer:
            _runs_in_a_defined_order(item)
    return answer


def headwater(database_url: str, *args: str):
    return CliRunner().invoke(cli, list(args), env={"HEADWATER_DATABASE_URL": database_url})


def stored_events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.lineage_events)).scalar()


def _second_postgres_database(database_url: str, name: str) -> str:
    """A database beside the test database on the same server."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return make_url(database_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def marquez_url(database_url):
    """A Postgres database playing Marquez's: beside the test database on Postgres, a server of its own when the
    suite runs on SQLite (Marquez is Postgres only)."""
    if TEST_DB == "postgres":
        yield _second_postgres_database(database_url, "marquez_source")
        return
    from tests.support.postgres import TemporaryPostgres

    with TemporaryPostgres(database="marquez") as pg:
        yield pg.url


@pytest.fixture
def source_headwater_url(database_url, tmp_path) -> str:
    """The database of a second Headwater, the one imported from."""
    if TEST_DB == "postgres":
        return _second_postgres_database(database_url, "headwater_source")
    return f"sqlite:///{tmp_path / 'source.db'}"


def test_marquez_db_import_builds_what_posting_the_events_builds(client, engine, database_url, marquez_url):
    events = reference_events() + airflow_history()
    create_marquez_table(marquez_url)
    fill_marquez_table(
        marquez_url,
        [marquez_row(e) for e in events]
        + [marquez_row(value, event_time=datetime(2024, 3, 2, tzinfo=UTC)) for value, _ in NOT_EVENTS],
    )

    result = headwater(database_url, "import", "marquez-db", "--dsn", libpq_url(marquez_url), "--batch-size", "37")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"read               {len(events) + 3:>10,}" in out
    assert f"stored             {len(events):>10,}" in out
    assert "refused                     3" in out
    for _, reason in NOT_EVENTS:
        assert reason in out
    assert "row with event_time 2024-03-02T00:00:00+00:00" in out  # where each refused row is
    # The verification names every namespace with as many jobs/datasets/runs in Headwater as in the source.
    airflow_line = next(line for line in out.splitlines() if line.strip().startswith("airflow-prod "))
    assert airflow_line.split()[1:] == ["5/5", "0/0", "40/40"]  # 2 DAG runs and 3 task runs a day, 8 days
    assert "MISSING" not in out
    imported_answers, imported_model = marquez_answers(client), model.snapshot(engine, json_key_order=False)
    assert len(imported_model["runs"]) > 40
    # History is not news: the failures of the imported days open no incident and page no one.
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(t.runs.c.state == "FAILED")).scalar() > 0
        assert conn.execute(select(func.count()).select_from(t.incident_outbox)).scalar() == 0
    assert client.get("/api/v1/incidents").json()["totalCount"] == 0

    # Idempotent: the same import again stores nothing and changes nothing.
    again = headwater(database_url, "import", "marquez-db", "--dsn", libpq_url(marquez_url))
    assert again.exit_code == 0, again.output
    assert f"already stored     {len(events):>10,}" in again.output and "stored                      0" in again.output
    assert model.snapshot(engine, json_key_order=False) == imported_model

    # Posted oldest first, events of one instant in the order Marquez received them (as the import reads them).
    empty_everything(engine)
    post_all(client, oldest_first(events))
    assert marquez_answers(client) == imported_answers
    posted_model = model.snapshot(engine, json_key_order=False)
    assert posted_model == imported_model, model.describe_difference(posted_model, imported_model)

    with psycopg.connect(libpq_url(marquez_url)) as conn:  # Marquez's table is only read
        assert conn.execute("SELECT count(*) FROM lineage_events").fetchone()[0] == len(events) + 3


def test_an_older_marquez_table_and_the_filters(client, engine, database_url, marquez_url):
    """An install from before created_at and _event_type; --since/--until/--namespace select what is imported."""
    events = airflow_history() + reference_events()
    create_marquez_table(marquez_url, old=True)
    fill_marquez_table(marquez_url, [marquez_row(e) for e in events], old=True)
    since, until = datetime(2024, 3, 3, tzinfo=UTC), datetime(2024, 3, 6, tzinfo=UTC)
    dsn = libpq_url(marquez_url)
    window = ["--since", "2024-03-03", "--until", "2024-03-06T00:00:00Z", "--namespace", "airflow-prod"]

    selected = [
        e
        for e in events
        if since <= parse_timestamp(e["eventTime"]) < until and e.get("job", {}).get("namespace") == "airflow-prod"
    ]
    assert 0 < len(selected) < len(events) // 2

    dry = headwater(database_url, "import", "marquez-db", "--dsn", dsn, "--dry-run", *window)
    assert dry.exit_code == 0, dry.output
    assert f"would store        {len(selected):>10,}" in dry.output
    assert stored_events(engine) == 0  # a dry run writes nothing

    result = headwater(database_url, "import", "marquez-db", "--dsn", dsn, *window)
    assert result.exit_code == 0, result.output
    assert f"stored             {len(selected):>10,}" in result.output
    imported = model.snapshot(engine, json_key_order=False)

    empty_everything(engine)
    post_all(client, oldest_first(selected))
    assert model.snapshot(engine, json_key_order=False) == imported

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE lineage_events")
    missing = headwater(database_url, "import", "marquez-db", "--dsn", dsn)
    assert missing.exit_code == 2
    assert "error: the Marquez database (marquez-db:" in missing.output
    assert 'relation "lineage_events" does not exist' in missing.output


class _Interrupted(Exception):
    pass


class _StopsAfter:
    """A source that stops (as a process killed mid-import would) after handing out some chunks."""

    def __init__(self, source, chunks: int):
        self.source, self.left = source, chunks
        self.identity = source.identity

    def estimated_total(self):
        return self.source.estimated_total()

    def chunks(self, size, resume_from):
        for chunk in self.source.chunks(size, resume_from):
            if self.left == 0:
                raise _Interrupted
            self.left -= 1
            yield chunk


def test_an_interrupted_import_resumes_from_its_checkpoint_and_ends_identical(
    client, engine, database_url, marquez_url, tmp_path
):
    events = reference_events() + airflow_history(days=10, seed=11)
    create_marquez_table(marquez_url)
    fill_marquez_table(marquez_url, [marquez_row(e) for e in events])
    dsn = libpq_url(marquez_url)

    complete = headwater(database_url, "import", "marquez-db", "--dsn", dsn)
    assert complete.exit_code == 0, complete.output
    uninterrupted = model.snapshot(engine, json_key_order=False)
    empty_everything(engine)

    checkpoint = tmp_path / "import.checkpoint"
    with pytest.raises(_Interrupted):
        run_import(
            engine,
            _StopsAfter(MarquezDatabase(dsn), chunks=4),
            chunk_size=10,
            checkpoint=Checkpoint(checkpoint, MarquezDatabase(dsn).identity),
        )
    halfway = stored_events(engine)
    assert 0 < halfway < len(events)
    saved = json.loads(checkpoint.read_text())
    assert saved["stored"] == 40 and saved["resume_from"].startswith("20")

    resumed = headwater(database_url, "import", "marquez-db", "--dsn", dsn, "--checkpoint", str(checkpoint))
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming from the checkpoint in {checkpoint}: {saved['resume_from']}" in resumed.output
    # It started at the checkpoint: what it read is what was left, plus the instant it stopped at, read again.
    read = int(next(line for line in resumed.output.splitlines() if line.strip().startswith("read")).split()[1])
    assert read < len(events) - 30
    assert model.snapshot(engine, json_key_order=False) == uninterrupted

    # Without a checkpoint a re-run reads everything and skips what is stored.
    again = headwater(database_url, "import", "marquez-db", "--dsn", dsn)
    assert f"already stored     {len(events):>10,}" in again.output
    assert model.snapshot(engine, json_key_order=False) == uninterrupted

    other = headwater(database_url, "import", "file", str(checkpoint), "--checkpoint", str(checkpoint))
    assert other.exit_code == 2 and "belongs to 'marquez-db:" in other.output  # a checkpoint is for one source


def test_import_from_a_running_server_s_events_api(client, engine, database_url, source_headwater_url, tmp_path):
    """`import marquez-api` against a real second Headwater (it serves Marquez's GET /api/v1/events/lineage), in
    pages smaller than the groups of events that share an instant, behind an API key."""
    base = datetime(2024, 5, 1, tzinfo=UTC)
    same_instant = [
        run_event("COMPLETE", job=("batch-ns", f"job_{i}"), run_id=uuid.uuid4(), time=base) for i in range(12)
    ]
    events = reference_events() + airflow_history(days=4) + same_instant
    run_events = [e for e in events if "run" in e]  # the only kind Marquez's events API lists
    env = {"HEADWATER_API_KEYS": "import-key", "HEADWATER_PROTECT_READS": "true"}
    with LiveServer(source_headwater_url, log_path=tmp_path / "source.log", env=env) as source:
        posted = httpx.post(
            f"{source.url}/api/v1/lineage/batch", json=events, headers={"Authorization": "Bearer import-key"}
        )
        assert posted.status_code == 200 and posted.json()["summary"]["failed"] == 0

        refused = headwater(database_url, "import", "marquez-api", "--url", source.url)
        assert refused.exit_code == 2 and "answered 401" in refused.output
        assert "run the same command again" in refused.output

        args = ["import", "marquez-api", "--url", source.url, "--api-key", "import-key", "--batch-size", "5"]
        result = headwater(database_url, *args)
        assert result.exit_code == 0, result.output
        assert f"stored             {len(run_events):>10,}" in result.output
        assert "refused                     0" in result.output
        batch_line = next(line for line in result.output.splitlines() if line.strip().startswith("batch-ns "))
        assert batch_line.split()[1:] == ["12/12", "0/0", "12/12"]
        imported_answers = marquez_answers(client)
        imported_model = model.snapshot(engine)

        only_batch = headwater(database_url, *args, "--namespace", "batch-ns")
        assert f"already stored     {12:>10,}" in only_batch.output
        assert f"outside filters    {len(run_events) - 12:>10,}" in only_batch.output
        recent = headwater(database_url, *args, "--since", "2024-05-01")  # asked of the server: `after`
        assert f"read               {12:>10,}" in recent.output

    empty_everything(engine)
    post_all(client, oldest_first(run_events))
    assert marquez_answers(client) == imported_answers
    assert model.snapshot(engine) == imported_model


def test_export_and_import_a_file(client, engine, database_url, tmp_path):
    """`headwater export` (gzip, filtered) and `headwater import file` carry events between two installs; lines that
    are not events are reported with their line numbers."""
    events = reference_events() + airflow_history(days=3)
    post_all(client, events)
    dump = tmp_path / "events.jsonl.gz"
    exported = headwater(database_url, "export", "-o", str(dump), "--namespace", "airflow-prod")
    assert exported.exit_code == 0, exported.output
    airflow = [e for e in events if e.get("job", {}).get("namespace") == "airflow-prod"]
    lines = gzip.decompress(dump.read_bytes()).splitlines()
    assert len(lines) == len(airflow) and f"exported {len(airflow)} events" in exported.output
    everything = tmp_path / "all.jsonl"
    assert headwater(database_url, "export", "-o", str(everything)).exit_code == 0
    assert len(everything.read_bytes().splitlines()) == len(events)

    empty_everything(engine)
    with gzip.open(dump, "ab") as out:  # what else a hand-made file may hold
        out.write(b"\n{not json\n[1, 2]\n")
    result = headwater(database_url, "import", "file", str(dump))
    assert result.exit_code == 0, result.output
    assert f"stored             {len(airflow):>10,}" in result.output
    assert f"line {len(airflow) + 2}" in result.output and "not JSON" in result.output
    assert f"line {len(airflow) + 3}" in result.output and "must be a JSON object" in result.output
    imported = model.snapshot(engine)

    empty_everything(engine)
    post_all(client, oldest_first(airflow))
    posted = model.snapshot(engine)
    assert posted == imported, model.describe_difference(posted, imported)


def test_an_imported_file_keeps_integers_of_any_size_and_refuses_nan(engine, database_url, tmp_path):
    """Facets are kept exactly as sent, also through `headwater import file`: an integer past 64 bits is not
    rounded to a float, and a NaN (not JSON) is reported as a bad line."""
    run_id = uuid.uuid4()
    big = 123456789012345678901234567890
    event = run_event(
        "COMPLETE",
        job=("imports", "big_numbers"),
        run_id=run_id,
        time=datetime(2024, 11, 1, tzinfo=UTC),
        run_facets={"counts": {"_producer": "test", "_schemaURL": "https://example.com/x", "rows": big}},
    )
    dump = tmp_path / "events.jsonl"
    dump.write_text(json.dumps(event) + "\n" + '{"eventType": "START", "value": NaN}\n')
    result = headwater(database_url, "import", "file", str(dump))
    assert result.exit_code == 0, result.output
    assert "line 2" in result.output and "not JSON" in result.output
    assert model.facets_of(engine, run_id)["counts"]["rows"] == big


def test_progress_without_a_terminal_is_plain_lines(capsys):
    from app.cli.transfer import _progress

    with _progress(1000, "importing", plain_every=0) as progress:
        progress(250)
    line = capsys.readouterr().err.strip()
    assert line.startswith("importing: 250/1,000 events, ") and " events/s, ETA " in line
    assert Filters().selects({"eventTime": "not a time"})  # kept, for validation to report


def test_an_import_killed_mid_chunk_and_run_again_ends_identical(engine, database_url, tmp_path):
    """A real `headwater import` process killed part way (events stored past its checkpoint, some of them not yet
    applied), then the same command again: what was stored after the checkpoint is found stored, what was not
    applied is applied, and the model is the uninterrupted one. (A chunk is stored in one commit of the event log,
    so the kill lands between chunks or while the applier works.)"""
    events = reference_events() + airflow_history(days=12, seed=5)
    dump = tmp_path / "events.jsonl"
    dump.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    checkpoint = tmp_path / "checkpoint.json"
    command = [sys.executable, "-m", "app.cli", "import", "file", str(dump), "--batch-size", "40"]
    env = {**os.environ, "HEADWATER_DATABASE_URL": database_url}

    process = subprocess.Popen(
        [*command, "--checkpoint", str(checkpoint)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and stored_events(engine) < 60:
            time.sleep(0.02)
    finally:
        process.kill()
        output = process.communicate()[0].decode()
    assert process.returncode == -9, output  # killed, not finished
    halfway = stored_events(engine)
    assert 60 <= halfway <= len(events), output
    resume_from = json.loads(checkpoint.read_text())["resume_from"]
    assert int(resume_from) <= halfway  # the checkpoint is at most where storing had got

    resumed = subprocess.run([*command, "--checkpoint", str(checkpoint)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming from the checkpoint in {checkpoint}: {resume_from}" in resumed.stderr
    already = int(next(line for line in resumed.stdout.splitlines() if "already stored" in line).split()[-1])
    assert already == halfway - int(resume_from)  # the half-stored chunk, found stored
    interrupted = model.snapshot(engine)

    empty_everything(engine)
    straight = subprocess.run(command, env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    assert model.snapshot(engine) == interrupted


def test_tags_set_through_the_api_are_copied_after_the_events(client, database_url, source_headwater_url, tmp_path):
    """`import marquez-tags`: the tags a Marquez's users set through its REST API (no event carries them) land on
    the imported datasets, fields and jobs; what Headwater lacks is listed."""
    events = airflow_history(days=2) + [
        run_event("COMPLETE", job=("other-ns", "report"), run_id=uuid.uuid4(), time=datetime(2024, 4, 1, tzinfo=UTC))
    ]
    with LiveServer(source_headwater_url, log_path=tmp_path / "source.log") as source:
        assert httpx.post(f"{source.url}/api/v1/lineage/batch", json=events).json()["summary"]["failed"] == 0
        api = f"{source.url}/api/v1"
        ns, dataset_path = quote(POSTGRES_NS, safe=""), "mart.orders"
        assert httpx.put(f"{api}/tags/gold", json={"description": "Checked by the data team"}).status_code == 200
        assert httpx.post(f"{api}/namespaces/{ns}/datasets/{dataset_path}/tags/gold").status_code == 200
        assert httpx.post(f"{api}/namespaces/{ns}/datasets/{dataset_path}/fields/amount/tags/PII").status_code == 200
        assert httpx.post(f"{api}/namespaces/airflow-prod/jobs/revenue.aggregate/tags/gold").status_code == 200
        assert httpx.post(f"{api}/namespaces/other-ns/jobs/report/tags/gold").status_code == 200

        imported = headwater(database_url, "import", "marquez-api", "--url", source.url, "--namespace", "airflow-prod")
        assert imported.exit_code == 0, imported.output
        copied = headwater(database_url, "import", "marquez-tags", "--url", source.url)

    assert copied.exit_code == 1, copied.output  # the job of other-ns was not imported
    assert "1 dataset tags, 1 field tags and 1 job tags" in copied.output
    assert "job other-ns:report" in copied.output
    assert {"name": "gold", "description": "Checked by the data team"} in client.get("/api/v1/tags").json()["tags"]
    found = client.get(f"/api/v1/namespaces/{ns}/datasets/{dataset_path}").json()
    assert found["tags"] == ["gold"]
    assert next(f for f in found["fields"] if f["name"] == "amount")["tags"] == ["PII"]
    assert client.get("/api/v1/namespaces/airflow-prod/jobs/revenue.aggregate").json()["tags"] == ["gold"]
