"""`headwater import` (a Marquez database, a Marquez server's events API, a JSON Lines file) and
`headwater export`: what an import builds is what posting the same events builds, re-runs and resumed runs end
identical, bad rows are reported and not fatal, and the source is only read."""

from __future__ import annotations

import gzip
import json
import random
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
from tests.test_reindex import empty_everything, post_all, realistic_events

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "marquez-fixtures"
if not FIXTURES.exists():  # CI lays shared/ beside the clone
    FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "marquez-fixtures"


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
        answers[path] = response.json()
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

