"""Real Airflow end to end: `make e2e`.

Starts a throwaway PostgreSQL (the warehouse the DAGs write with SQL), `headwater serve`, and a real Airflow 3
(api-server, scheduler and dag-processor, LocalExecutor, SQLite, from its own virtualenv AIRFLOW_VENV) whose
OpenLineage provider sends to Headwater. The scheduler runs the three DAGs of e2e/dags for a week of logical
dates. Then: the cross-DAG lineage and the runs Headwater made of the events, the dbt-like child runs a task of
`transform` emits; one day's bookings are marked bad, the plan is saved, checked against Airflow (test
connection, dry run) and run by Headwater through Airflow's REST API (`headwater backfill run --follow`). It
checks that Airflow re-ran every planned task instance, level by level (the downstream DAGs' re-runs started
after the upstream's finished, by the event times Headwater received), and that the plan ends `done`. Each
part's time is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

from tests.support.live_server import LiveServer, free_port
from tests.support.postgres import TemporaryPostgres

HERE = Path(__file__).resolve().parent
NAMESPACE = "airflow-e2e"
DAGS = ("bookings_etl", "top_rooms", "transform")
WEEK = [f"2024-11-0{day}" for day in range(1, 8)]
BAD_DAY, NEXT_DAY = "2024-11-03", "2024-11-04"
USER, PASSWORD = "headwater", "e2e-password"
UPSTREAM = "bookings_etl.load_room_bookings"
DOWNSTREAM = "top_rooms.build_top_room_bookings"

timings: list[tuple[str, float]] = []


@contextmanager
def part(name: str):
    print(f"\n== {name}", flush=True)
    started = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - started
        timings.append((name, took))
        print(f"   ({name}: {took:.1f}s)", flush=True)


def check(condition: bool, what: str) -> None:
    print(f"  {'ok  ' if condition else 'FAIL'} {what}", flush=True)
    if not condition:
        raise SystemExit(f"check failed: {what}")


def wait_for(what: str, probe, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Airflow:
    """api-server, scheduler and dag-processor in their own process groups, logs in AIRFLOW_HOME."""

    def __init__(self, venv: Path, env: dict, home: Path, port: int) -> None:
        self.venv, self.env, self.home, self.port = venv, env, home, port
        self.processes: list[subprocess.Popen] = []
        self.url = f"http://127.0.0.1:{port}"

    def run(self, *args: str) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args], env=self.env, capture_output=True, text=True
        )
        print(f"  airflow {' '.join(args)}: exit {result.returncode} in {time.monotonic() - started:.1f}s", flush=True)
        if result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-4000:])
            raise SystemExit(f"airflow {' '.join(args)} failed")

    def start(self) -> Airflow:
        for command in (["api-server", "--port", str(self.port)], ["scheduler"], ["dag-processor"]):
            log = open(self.home / f"{command[0]}.log", "wb")
            self.processes.append(
                subprocess.Popen(
                    [str(self.venv / "bin" / "airflow"), *command],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

        def healthy():
            for process in self.processes:
                if process.poll() is not None:
                    self.tail_logs()
                    raise SystemExit(f"airflow {process.args[1]} exited with {process.returncode}")
            try:
                return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("Airflow's API server", healthy, 120)
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the group: the scheduler's task runners too
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def tail_logs(self) -> None:
        for name in ("api-server", "scheduler", "dag-processor"):
            path = self.home / f"{name}.log"
            if path.exists():
                print(f"--- {path} (end)\n" + path.read_text(errors="replace")[-3000:])
        for path in sorted((self.home / "logs").glob("dag_id=*/**/*.log")):
            text = path.read_text(errors="replace")
            if '"level":"error"' in text or "Traceback" in text:
                print(f"--- {path.relative_to(self.home)} (a failed task, end)\n{text[-3000:]}")

    def client(self) -> httpx.Client:
        token = httpx.post(f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=120)
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        # Generous: on a loaded machine Airflow's one API server process also serves every task's calls.
        return httpx.Client(base_url=f"{self.url}/api/v2", headers=headers, timeout=120)


def main() -> int:
    venv = Path(os.environ.get("AIRFLOW_VENV", ".venv-airflow")).resolve()
    started = time.monotonic()
    with TemporaryPostgres(database="warehouse") as pg, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=warehouse", autocommit=True) as c:
            c.execute(
                "CREATE TABLE bookings (room TEXT, booked_on DATE);"
                "CREATE TABLE room_bookings (room TEXT, booked_on DATE);"
                "CREATE TABLE top_room_bookings (room TEXT, bookings INT);"
                "CREATE TABLE rooms_per_day (booked_on DATE, rooms INT);"
            )
            for day in WEEK:
                c.execute("INSERT INTO bookings VALUES ('a', %s), ('b', %s)", (day, day))
        airflow_port = free_port()
        airflow_url = f"http://127.0.0.1:{airflow_port}"
        connection = {
            "name": "e2e",
            "baseUrl": airflow_url,
            "version": 3,
            "namespaces": [NAMESPACE],
            "username": USER,
            "password": PASSWORD,
        }
        headwater_env = {
            "HEADWATER_AIRFLOW_CONNECTIONS": json.dumps([connection]),
            "HEADWATER_BACKFILL_STEP_SECONDS": "1",
            "HEADWATER_BACKFILL_POLL_SECONDS": "5",
            "HEADWATER_BACKFILL_POLL_MAX_SECONDS": "20",
            "HEADWATER_AIRFLOW_TIMEOUT_SECONDS": "120",
        }
        server = LiveServer(f"sqlite:///{home}/headwater.db", log_path=home / "headwater.log", env=headwater_env)
        with part("Headwater start"):
            server.start()
        (home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(airflow_port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # Airflow's metadata database is SQLite: few task processes at once keep it from being locked. On a
            # loaded machine its API server answers slowly: tasks wait for it longer than the default 5 s, and a
            # task that failed for that is retried by Airflow (as in production) rather than failing the check.
            "AIRFLOW__CORE__PARALLELISM": "3",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
            "AIRFLOW_CONN_WAREHOUSE": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": pg.port,
                    "login": "postgres",
                    "schema": "warehouse",
                }
            ),  # fmt: skip
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "http", "url": server.url, "endpoint": "api/v1/lineage"}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
        }
        airflow = Airflow(venv, env, home, airflow_port)
        try:
            with part("Airflow 3 start (db migrate, api-server, scheduler, dag-processor)"):
                airflow.run("db", "migrate")
                airflow.start()
                print(f"  Airflow {httpx.get(f'{airflow_url}/api/v2/monitor/health').status_code} at {airflow_url}")
            with airflow.client() as af:
                with part("the scheduler runs the DAGs for a week of logical dates"):
                    run_the_week(af, airflow)
                api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=60)
                with part("Headwater: lineage, runs and child runs from the week"):
                    check_lineage(api, pg.port)
                    check_child_runs(api)
                with part("mark a day's bookings bad, save the plan, test the connection, dry run"):
                    plan = save_the_plan(api, server.url)
                with part("Headwater runs the plan through Airflow's REST API"):
                    run_the_plan(server.url, plan["id"])
                with part("checks: every planned task instance re-run by Airflow, in level order"):
                    check_the_rerun(api, af, plan)
        except BaseException:
            airflow.tail_logs()
            print("--- headwater.log (end)\n" + (home / "headwater.log").read_text(errors="replace")[-3000:])
            kept = Path("test-output/e2e-airflow").resolve()
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(home, kept, ignore=shutil.ignore_patterns("*.db", "*.db-*"), dirs_exist_ok=True)
            print(f"Airflow's and Headwater's logs are kept in {kept}")
            raise
        finally:
            airflow.stop()
            server.stop()
    print("\nTimings:")
    for name, took in timings:
        print(f"  {took:7.1f}s  {name}")
    print(f"  {time.monotonic() - started:7.1f}s  in all")
    print("OK: real Airflow end to end")
    return 0


def dag_runs(af: httpx.Client, dag_id: str, **params) -> list[dict]:
    response = af.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100, **params})
    response.raise_for_status()
    return response.json()["dag_runs"]


def run_the_week(af: httpx.Client, airflow: Airflow) -> None:
    def parsed():
        return all(af.get(f"/dags/{dag}").status_code == 200 for dag in DAGS)

    wait_for("the DAGs to be parsed", parsed, 120)

    def finished():
        states = {dag: [r["state"] for r in dag_runs(af, dag)] for dag in DAGS}
        if any("failed" in s for s in states.values()):
            raise SystemExit(f"a scheduled DAG run failed: {states}")
        return all(len(s) == len(WEEK) and set(s) == {"success"} for s in states.values())

    wait_for("a week of successful DAG runs", finished, 420, interval=2)
    check(True, f"{len(DAGS)} DAGs x {len(WEEK)} logical dates ran successfully through the scheduler")


def check_lineage(api: httpx.Client, warehouse_port: int) -> None:
    ns = f"postgres://127.0.0.1:{warehouse_port}"
    graph = api.get("/lineage", params={"nodeId": f"job:{NAMESPACE}:{UPSTREAM}", "depth": 5}).json()["graph"]
    edges = {(n["id"], e["destination"]) for n in graph for e in n["outEdges"]}
    chain = [
        (f"dataset:{ns}:warehouse.public.bookings", f"job:{NAMESPACE}:{UPSTREAM}"),
        (f"job:{NAMESPACE}:{UPSTREAM}", f"dataset:{ns}:warehouse.public.room_bookings"),
        (f"dataset:{ns}:warehouse.public.room_bookings", f"job:{NAMESPACE}:{DOWNSTREAM}"),
        (f"job:{NAMESPACE}:{DOWNSTREAM}", f"dataset:{ns}:warehouse.public.top_room_bookings"),
    ]
    check(all(e in edges for e in chain), "cross-DAG lineage bookings → room_bookings → top_room_bookings")
    for job in (UPSTREAM, DOWNSTREAM):
        runs = api.get(f"/namespaces/{NAMESPACE}/jobs/{job}/runs", params={"limit": 100}).json()["runs"]
        days = sorted((r["nominalStartTime"] or "")[:10] for r in runs if r["state"] == "COMPLETED")
        check(days == WEEK, f"{job}: a COMPLETED run for each logical date of the week")
    for dag in DAGS:
        check(api.get(f"/namespaces/{NAMESPACE}/jobs/{dag}").status_code == 200, f"DAG {dag} is a job")


def check_child_runs(api: httpx.Client) -> None:
    """The dbt-like runs `transform.dbt_run` emitted: a child of the task, a grandchild reading room_bookings,
    planned by the task's logical date and re-run through the task."""
    model, invocation, task = "warehouse.public.rooms.rooms_per_day", "dbt-run-rooms", "transform.dbt_run"
    job = api.get(f"/namespaces/dbt-e2e/jobs/{model}").json()
    check(job.get("parentJobName") == invocation, f"{model} runs inside {invocation}")
    children = api.get(f"/namespaces/{NAMESPACE}/jobs/{task}/children").json()["jobs"]
    found = [(j["namespace"], j["name"]) for j in children]
    check(("dbt-e2e", invocation) in found, f"{task} started {invocation} (children: {found})")
    task_runs = api.get(f"/namespaces/{NAMESPACE}/jobs/{task}/runs", params={"limit": 100}).json()["runs"]
    bad_task_run = next(r["id"] for r in task_runs if (r["nominalStartTime"] or "").startswith(BAD_DAY))
    plan = api.post(
        "/backfills/preview",
        json={"job": {"namespace": NAMESPACE, "name": UPSTREAM}, "start": BAD_DAY, "end": NEXT_DAY},
    ).json()
    step = next((s for s in plan["jobs"] if s["job"]["name"] == model), None)
    check(step is not None, f"the plan re-runs {model}")
    run = next((r for r in step["runs"] if r["nominalTimeFrom"] == bad_task_run), None)
    check(
        run is not None and (run["logicalDate"] or "")[:10] == BAD_DAY,
        f"its run takes the data time of the {task} run ({BAD_DAY}), not the wall clock",
    )
    check(step["rerunThrough"] == {"namespace": NAMESPACE, "name": task}, f"it is re-run through {task}")
    dag = next((g for g in plan["dags"] if g["dagId"] == "transform"), None)
    check(dag is not None and dag["tasks"] == ["dbt_run"], "the plan re-runs the task transform.dbt_run")


def save_the_plan(api: httpx.Client, server_url: str) -> dict:
    body = {"job": {"namespace": NAMESPACE, "name": UPSTREAM}, "start": BAD_DAY, "end": NEXT_DAY}
    plan = api.post("/backfills", json={**body, "name": f"bad bookings of {BAD_DAY}"}).json()
    print(f"  plan {plan['id']}: {plan['totals']}")
    for step in plan["jobs"]:
        dates = sorted({(r["logicalDate"] or "")[:10] for r in step["runs"]})
        print(f"    level {step['level']} {step['job']['namespace']}:{step['job']['name']} {dates} — {step['rerun']}")
    levels = {g["dagId"]: g["level"] for g in plan["dags"]}
    check(levels.get("bookings_etl") == 0 and levels.get("top_rooms", 0) > 0 and levels.get("transform", 0) > 0,
          f"bookings_etl first, then top_rooms and transform (levels {levels})")  # fmt: skip
    tested = api.post("/airflow-connections/e2e/test", params={"planId": plan["id"]}).json()
    check(tested["ok"] and tested["version"].startswith("3."), f"test connection: Airflow {tested['version']}, "
          f"DAGs {[(d['dagId'], d['exists'], d['paused']) for d in tested['dags']]}")  # fmt: skip
    dry = subprocess.run(
        [sys.executable, "-m", "app.cli", "backfill", "run", plan["id"], "--dry-run", "--server", server_url],
        capture_output=True,
        text=True,
    )
    print(dry.stdout)
    check(dry.returncode == 0 and "1. level 0 bookings_etl: POST" in dry.stdout, "dry run: the calls, in order")
    return plan


def run_the_plan(server_url: str, plan_id: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "backfill", "run", plan_id, "--follow", "--interval", "2",
         "--timeout", "300", "--server", server_url],
    )  # fmt: skip
    check(result.returncode == 0, "headwater backfill run --follow: the plan is done")


def check_the_rerun(api: httpx.Client, af: httpx.Client, plan: dict) -> None:
    execution = api.get(f"/backfills/{plan['id']}/execution").json()
    check(execution["status"] == "done", "the execution is done")
    # The plan's own progress comes from the re-runs' lineage, which may trail Airflow's answers by a moment.
    progress = wait_for(
        "the plan's progress (from lineage) to be done",
        lambda: (p := api.get(f"/backfills/{plan['id']}").json()["progress"])["status"] == "done" and p,
        60,
    )
    check(progress["status"] == "done", f"the plan's progress is done (from lineage: {progress})")
    created = datetime.fromisoformat(plan["createdAt"].replace("Z", "+00:00"))
    planned = set()
    for step in plan["jobs"]:
        if step["airflow"] is None:
            continue
        for run in step["runs"]:
            planned.add((step["airflow"]["dagId"], step["airflow"]["taskId"], run["logicalDate"]))
    for dag_id, task_id, logical_date in sorted(planned):
        (dag_run,) = dag_runs(af, dag_id, logical_date_gte=logical_date, logical_date_lte=logical_date)
        ti = af.get(f"/dags/{dag_id}/dagRuns/{dag_run['dag_run_id']}/taskInstances/{task_id}").json()
        started = datetime.fromisoformat(ti["start_date"].replace("Z", "+00:00"))
        check(
            ti["state"] == "success" and ti["try_number"] >= 2 and started > created,
            f"Airflow re-ran {dag_id}.{task_id} @ {logical_date[:10]} (try {ti['try_number']}, {ti['state']})",
        )
    backfilled = {u["dagId"] for level in execution["levels"] for u in level["units"] if u["mode"] == "backfill"}
    for dag_id in sorted(backfilled):
        # The scheduler marks a backfill completed on one of its loops after its last run ended.
        def completed(dag_id=dag_id):
            found = af.get("/backfills", params={"dag_id": dag_id}).json()["backfills"]
            return found if found and all(b["completed_at"] for b in found) else None

        backfills = wait_for(f"Airflow to complete the backfill of {dag_id}", completed, 60)
        check(len(backfills) == 1, f"one Airflow backfill of {dag_id} (id {backfills[0]['id']}), completed")
    # Level order, from the event times Headwater received: each level's re-runs started after the previous
    # level's had finished.
    spans: dict[int, list[tuple[datetime, datetime]]] = {}
    for step in plan["jobs"]:
        ns, name = step["job"]["namespace"], step["job"]["name"]
        runs = api.get(f"/namespaces/{ns}/jobs/{name}/runs", params={"limit": 100}).json()["runs"]
        for run in runs:
            if run["state"] == "COMPLETED" and run["startedAt"] and run["startedAt"] >= plan["createdAt"]:
                start = datetime.fromisoformat(run["startedAt"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(run["endedAt"].replace("Z", "+00:00"))
                spans.setdefault(step["level"], []).append((start, end))
    levels = sorted(spans)
    check(levels == sorted({s["level"] for s in plan["jobs"]}), f"re-runs seen by Headwater at every level {levels}")
    for before, after in zip(levels, levels[1:], strict=False):
        last_end = max(end for _, end in spans[before])
        first_start = min(start for start, _ in spans[after])
        check(
            first_start > last_end,
            f"level {after} re-runs started ({first_start:%H:%M:%S}) after level {before}'s ended "
            f"({last_end:%H:%M:%S})",
        )
    calls = [a for a in execution["audit"] if a["action"] == "airflow" and a["method"] != "GET"]
    print("  calls Headwater made to Airflow:")
    for call in calls:
        print(f"    {call['at'][11:19]} {call['method']} {call['url']} -> {call['statusCode']}")


if __name__ == "__main__":
    sys.exit(main())
