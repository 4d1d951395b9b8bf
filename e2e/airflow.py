"""Real Airflow end to end: `make e2e`.

Starts a throwaway PostgreSQL (the warehouse the DAGs write with SQL) and `headwater serve`, points the
OpenLineage provider's HTTP transport at Headwater, runs the three DAGs of e2e/dags with `airflow dags test`
(Airflow from its own virtualenv, AIRFLOW_VENV), then checks what Headwater made of the events: the
cross-DAG lineage graph, the task runs with their logical dates, a backfill plan for a bad day of the
upstream DAG with the right Airflow commands, and the dbt-like child runs a task of `transform` emits: planned
by the task's logical date and re-run through that task.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from tests.support.live_server import LiveServer
from tests.support.postgres import TemporaryPostgres

HERE = Path(__file__).resolve().parent
NAMESPACE = "airflow-e2e"
DAY = "2024-11-01"


def airflow(venv: Path, env: dict, *args: str) -> None:
    started = time.monotonic()
    result = subprocess.run([str(venv / "bin" / "airflow"), *args], env=env, capture_output=True, text=True)
    print(f"  airflow {' '.join(args)}: exit {result.returncode} in {time.monotonic() - started:.1f}s", flush=True)
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:])
        raise SystemExit(f"airflow {' '.join(args)} failed")


def check(condition: bool, what: str) -> None:
    print(f"  {'ok  ' if condition else 'FAIL'} {what}")
    if not condition:
        raise SystemExit(f"check failed: {what}")


def main() -> int:
    venv = Path(os.environ.get("AIRFLOW_VENV", ".venv-airflow")).resolve()
    with TemporaryPostgres(database="warehouse") as pg, tempfile.TemporaryDirectory() as home:
        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=warehouse", autocommit=True) as c:
            c.execute(
                "CREATE TABLE bookings (room TEXT, booked_on DATE);"
                "CREATE TABLE room_bookings (room TEXT, booked_on DATE);"
                "CREATE TABLE top_room_bookings (room TEXT, bookings INT);"
                "CREATE TABLE rooms_per_day (booked_on DATE, rooms INT);"
                "INSERT INTO bookings VALUES ('a', '2024-11-01'), ('b', '2024-11-01'), ('a', '2024-11-02')"
            )
        with LiveServer(f"sqlite:///{home}/headwater.db", log_path=Path(home) / "headwater.log") as server:
            env = {
                **os.environ,
                "AIRFLOW_HOME": home,
                "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_WAREHOUSE": json.dumps(
                    {"conn_type": "postgres", "host": "127.0.0.1", "port": pg.port, "login": "postgres",
                     "schema": "warehouse"}
                ),
                "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                    {"type": "http", "url": server.url, "endpoint": "api/v1/lineage"}
                ),
                "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
            }
            print("Airflow:", flush=True)
            airflow(venv, env, "db", "migrate")
            airflow(venv, env, "dags", "test", "bookings_etl", DAY)
            airflow(venv, env, "dags", "test", "top_rooms", DAY)
            airflow(venv, env, "dags", "test", "transform", DAY)

            print("Headwater:")
            api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)
            ns = f"postgres://127.0.0.1:{pg.port}"
            upstream = "bookings_etl.load_room_bookings"
            downstream = "top_rooms.build_top_room_bookings"
            graph = api.get("/lineage", params={"nodeId": f"job:{NAMESPACE}:{upstream}", "depth": 5}).json()["graph"]
            edges = {(n["id"], e["destination"]) for n in graph for e in n["outEdges"]}
            chain = [
                (f"dataset:{ns}:warehouse.public.bookings", f"job:{NAMESPACE}:{upstream}"),
                (f"job:{NAMESPACE}:{upstream}", f"dataset:{ns}:warehouse.public.room_bookings"),
                (f"dataset:{ns}:warehouse.public.room_bookings", f"job:{NAMESPACE}:{downstream}"),
                (f"job:{NAMESPACE}:{downstream}", f"dataset:{ns}:warehouse.public.top_room_bookings"),
            ]
            check(all(e in edges for e in chain), "cross-DAG lineage bookings → room_bookings → top_room_bookings")
            for job in (upstream, downstream):
                runs = api.get(f"/namespaces/{NAMESPACE}/jobs/{job}/runs").json()["runs"]
                check(
                    [(r["state"], (r["nominalStartTime"] or "")[:10]) for r in runs] == [("COMPLETED", DAY)],
                    f"{job}: one COMPLETED run with logical date {DAY}",
                )
            for dag in ("bookings_etl", "top_rooms"):
                check(api.get(f"/namespaces/{NAMESPACE}/jobs/{dag}").status_code == 200, f"DAG {dag} is a job")
            plans = {}
            for fmt in ("airflow2", "airflow3"):
                plans[fmt] = subprocess.run(
                    [sys.executable, "-m", "app.cli", "backfill", "plan", "--server", server.url,
                     "--job", f"{NAMESPACE}:{upstream}", "--start", DAY, "--end", "2024-11-02", "--format", fmt],
                    capture_output=True, text=True, check=True,
                ).stdout
                print(plans[fmt])
            check(
                "airflow backfill create --dag-id bookings_etl" in plans["airflow3"]
                and "airflow backfill create --dag-id top_rooms" in plans["airflow3"]
                and plans["airflow3"].index("bookings_etl") < plans["airflow3"].index("top_rooms"),
                "Airflow 3 plan: backfill bookings_etl, then top_rooms",
            )
            check(
                "airflow tasks clear" in plans["airflow2"] and "top_rooms" in plans["airflow2"],
                "Airflow 2 plan: tasks clear for both DAGs",
            )
            check_child_runs(api, upstream)
    print("OK: real Airflow end to end")
    return 0


def check_child_runs(api: httpx.Client, upstream: str) -> None:
    """The dbt-like runs `transform.dbt_run` emitted: a child of the task, a grandchild reading room_bookings."""
    model, invocation, task = "warehouse.public.rooms.rooms_per_day", "dbt-run-rooms", "transform.dbt_run"
    job = api.get(f"/namespaces/dbt-e2e/jobs/{model}").json()
    check(job.get("parentJobName") == invocation, f"{model} runs inside {invocation}")
    children = api.get(f"/namespaces/{NAMESPACE}/jobs/{task}/children").json()["jobs"]
    found = [(j["namespace"], j["name"]) for j in children]
    # The provider adds its own: the SQL the task ran through a hook is a child run (`transform.dbt_run.query.1`).
    check(("dbt-e2e", invocation) in found, f"{task} started {invocation} (children: {found})")
    task_runs = api.get(f"/namespaces/{NAMESPACE}/jobs/{task}/runs").json()["runs"]
    plan = api.post(
        "/backfills/preview",
        json={"job": {"namespace": NAMESPACE, "name": upstream}, "start": DAY, "end": "2024-11-02"},
    ).json()
    step = next((s for s in plan["jobs"] if s["job"]["name"] == model), None)
    check(step is not None, f"the plan re-runs {model}")
    for s in plan["jobs"]:
        print(f"  {s['job']['namespace']}:{s['job']['name']}: {s['rerun']}")
    (run,) = step["runs"]
    check(
        run["nominalTimeFrom"] == task_runs[0]["id"] and (run["logicalDate"] or "")[:10] == DAY,
        f"its run takes the data time of the {task} run ({DAY}), not the wall clock ({run['startedAt'][:10]})",
    )
    check(step["rerunThrough"] == {"namespace": NAMESPACE, "name": task}, f"it is re-run through {task}")
    dag = next((g for g in plan["dags"] if g["dagId"] == "transform"), None)
    check(dag is not None and dag["tasks"] == ["dbt_run"], "the plan re-runs the task transform.dbt_run")
    clear, backfill = dag["commands"]["airflow2"][0], dag["commands"]["airflow3"][0]
    check(
        clear.startswith("airflow tasks clear -s 2024-11-01") and clear.endswith("-t '^(dbt_run)$' -y transform")
        and backfill.startswith("airflow backfill create --dag-id transform --from-date 2024-11-01"),
        "Airflow 2 clears dbt_run of transform; Airflow 3 backfills transform from 2024-11-01",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
