"""What resolving the job hierarchy at plan time costs (see docs/job-hierarchy.md).

    python -m bench.hierarchy [--models 100] [--days 30] [--repeat 5] [--database-url sqlite:///…]

One daily Airflow task `load.orders` writes the raw orders; the daily task `transform.dbt_run` starts a dbt
invocation whose `models` model runs each read them and write a table of their own. Two installations of the
same events: dbt runs **without** nominal times (as openlineage-dbt sends them: the plan takes them from the
Airflow task run up the parent links), and **with** the task's nominal times copied onto every dbt run (what an
ingest-time resolution would have stored). A plan for a bad day of `load.orders` is timed on both, in process,
with the SQL statements it runs: the difference is what plan-time resolution costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event

from app.db.engine import create_db_engine
from app.main import create_app
from app.schemas.backfill import BackfillRequest
from app.services.backfill import planner
from app.settings import Settings
from tests.support.events import (
    DBT_PRODUCER,
    POSTGRES_NS,
    airflow_dag_run_id,
    airflow_task_run,
    dataset,
    dbt_run,
    nominal_time,
    parent_facet,
)

DAY = timedelta(days=1)
START = datetime(2024, 11, 1, tzinfo=UTC)
RAW = "warehouse.public.orders"


def events(models: int, days: int, *, own_times: bool) -> list[dict]:
    found = []
    for i in range(days):
        day = START + i * DAY
        found += airflow_task_run(
            namespace="airflow",
            dag_id="load",
            task_id="orders",
            logical_date=day,
            dag_run_id=airflow_dag_run_id(day),
            task_run_id=uuid.uuid4(),
            inputs=[dataset(POSTGRES_NS, "shop.public.orders")],
            outputs=[dataset(POSTGRES_NS, RAW)],
        )
        dag_run, task_run, invocation = airflow_dag_run_id(day), uuid.uuid4(), uuid.uuid4()
        found += airflow_task_run(
            namespace="airflow",
            dag_id="transform",
            task_id="dbt_run",
            logical_date=day,
            dag_run_id=dag_run,
            task_run_id=task_run,
            inputs=[],
            outputs=[],
            delay=timedelta(hours=2),
        )
        root = ("airflow", "transform", dag_run)
        times = {"nominalTime": nominal_time(day, day + DAY)} if own_times else None
        at = day + DAY + timedelta(hours=2, minutes=1)
        found += dbt_run(
            namespace="dbt",
            name="dbt-run-shop",
            run_id=invocation,
            kind="JOB",
            start=at,
            run_facets=times,
            parent=parent_facet(
                namespace="airflow", name="transform.dbt_run", run_id=task_run, root=root, producer=DBT_PRODUCER
            ),
        )
        for m in range(models):
            found += dbt_run(
                namespace="dbt",
                name=f"shop.model_{m}",
                run_id=uuid.uuid4(),
                kind="MODEL",
                start=at,
                run_facets=times,
                inputs=[dataset(POSTGRES_NS, RAW)],
                outputs=[dataset(POSTGRES_NS, f"analytics.public.model_{m}")],
                parent=parent_facet(
                    namespace="dbt", name="dbt-run-shop", run_id=invocation, root=root, producer=DBT_PRODUCER
                ),
            )
    return found  # fmt: skip


def measure(url: str, models: int, days: int, repeat: int, *, own_times: bool) -> dict:
    settings = Settings(database_url=url, incident_worker=False)
    with TestClient(create_app(settings)) as client:
        sent = events(models, days, own_times=own_times)
        for chunk in range(0, len(sent), 500):
            response = client.post("/api/v1/lineage/batch", json=sent[chunk : chunk + 500])
            assert response.status_code == 200 and response.json()["summary"]["failed"] == 0, response.text
    engine = create_db_engine(settings)
    middle = START + (days // 2) * DAY
    request = BackfillRequest.model_validate(
        {"job": {"namespace": "airflow", "name": "load.orders"}, "start": middle, "end": middle + DAY}
    )
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(1))
    times = []
    for _ in range(repeat + 1):  # the first warms caches
        statements.clear()
        started = time.perf_counter()
        plan = planner.plan_document(engine, request)
        times.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    steps = [s for s in plan["jobs"] if not s["isRoot"]]
    assert len(steps) == models and all(len(s["runs"]) == 1 for s in steps), "every model, one run"
    assert {s["runs"][0]["nominalStartTime"] for s in steps} == {middle}
    assert [g["tasks"] for g in plan["dags"] if g["dagId"] == "transform"] == [["dbt_run"]]
    return {"events": len(sent), "p50": statistics.median(times[1:]), "max": max(times[1:]), "sql": len(statements)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file per variant")
    args = parser.parse_args()
    print(f"{args.models} dbt models under one Airflow task, daily for {args.days} days; plan for one bad day")
    for own_times in (True, False):
        with tempfile.TemporaryDirectory() as home:
            url = args.database_url or f"sqlite:///{Path(home) / 'bench.db'}"
            found = measure(url, args.models, args.days, args.repeat, own_times=own_times)
        label = "nominal times on every dbt run (ingest-time)" if own_times else "times from the parent chain (plan)"
        print(
            f"  {label:46} {found['events']:>6} events  plan p50 {found['p50']:7.1f} ms  max {found['max']:7.1f} ms"
            f"  {found['sql']:>3} SQL statements"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
