"""Running a saved plan through Airflow's REST API, against a fake Airflow (tests/support/fake_airflow.py): the
order of the calls, level by level, what lineage and Airflow's answers do to the plan, failures, pause, resume,
cancel, auth errors, one executor across processes and carrying on after a restart. The real Airflow 3 run is
`make e2e` (e2e/airflow.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import tables as t
from app.main import create_app
from app.services.backfill.executor import BackfillExecutor
from app.settings import AirflowConnectionSetting
from tests.support.events import (
    DBT_PRODUCER,
    POSTGRES_NS,
    airflow_dag_run_id,
    airflow_task_run,
    dataset,
    dbt_run,
    parent_facet,
)
from tests.support.fake_airflow import FakeAirflow
from tests.test_backfill_api import rerun
from tests.test_backfill_plans import DAY, NOV, bookings_day, iso, post

ETL = {"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"}
BAD_DAYS = [NOV + DAY, NOV + 2 * DAY]  # the plan redoes these two logical dates
# The Airflow 3 backfill the plan's first level asks for: the whole DAG over the bad days.
ETL_BACKFILL = {
    "dag_id": "bookings_etl",
    "from_date": "2024-11-02T00:00:00Z",
    "to_date": "2024-11-03T00:00:00Z",
    "run_backwards": False,
    "dag_run_conf": {},
    "reprocess_behavior": "completed",
    "max_active_runs": 10,
}
CONNECTION = {
    "baseUrl": "http://airflow.test:8080",
    "version": 3,
    "namespaces": ["airflow-prod"],
    "username": "headwater",
    "password": "s3cret",
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def airflow() -> FakeAirflow:
    fake = FakeAirflow()
    days = [NOV + d * DAY for d in range(4)]
    fake.dag("bookings_etl", ["load_room_bookings"], days)
    fake.dag("bookings_reports", ["top_rooms", "publish_dashboard", "send_email"], days)
    return fake


@pytest.fixture
def api(settings, engine, airflow) -> Iterator[TestClient]:
    with TestClient(create_app(settings, airflow_transport=airflow.transport)) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def executor(engine, settings, airflow, clock) -> Iterator[BackfillExecutor]:
    runner = BackfillExecutor(engine, settings, clock, transport=airflow.transport, holder="test-executor")
    yield runner
    runner.http.close()


def saved_plan(api: TestClient, *, connection: dict | None = CONNECTION) -> str:
    for day in range(4):
        bookings_day(api, NOV + day * DAY)
    if connection is not None:
        response = api.put("/api/v1/airflow-connections/prod", json=connection)
        assert response.status_code == 200, response.text
    body = {"job": ETL, "start": iso(BAD_DAYS[0]), "end": iso(BAD_DAYS[-1] + DAY), "name": "bad bookings"}
    response = api.post("/api/v1/backfills", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def execution(api: TestClient, plan_id: str) -> dict:
    response = api.get(f"/api/v1/backfills/{plan_id}/execution")
    assert response.status_code == 200, response.text
    return response.json()


def unit_states(api: TestClient, plan_id: str) -> list[tuple[int, str, str]]:
    return [(u["level"], u["dagId"], u["status"]) for lv in execution(api, plan_id)["levels"] for u in lv["units"]]


def redo(api: TestClient, dag_id: str, task_id: str, inputs: list[str], outputs: list[str]) -> None:
    """Airflow re-ran the task for the bad days: its lineage arrives (and is applied before the executor looks)."""
    for day in BAD_DAYS:
        rerun(api, dag_id, task_id, day, inputs, outputs)
    api.get("/api/v1/namespaces")  # a read waits until what was posted before it is applied


def redo_etl(api):
    redo(api, "bookings_etl", "load_room_bookings", ["bookings"], ["room_bookings"])


def redo_top(api):
    redo(api, "bookings_reports", "top_rooms", ["room_bookings"], ["top_room_bookings"])


def redo_publish(api):
    redo(api, "bookings_reports", "publish_dashboard", ["top_room_bookings"], ["room_dashboard"])


# --- connections ----------------------------------------------------------------------------------------------


def test_connections_keep_their_secrets(api, airflow, settings, engine):
    created = api.put("/api/v1/airflow-connections/prod", json=CONNECTION)
    assert created.status_code == 200, created.text
    assert created.json() == {
        "name": "prod",
        "baseUrl": "http://airflow.test:8080",
        "version": 3,
        "namespaces": ["airflow-prod"],
        "username": "headwater",
        "hasPassword": True,
        "hasToken": False,
        "source": "api",
    }
    listed = api.get("/api/v1/airflow-connections")
    assert "s3cret" not in listed.text and listed.json()["connections"][0]["name"] == "prod"
    # A new URL without the password keeps the password; the test call still logs in with it.
    changed = api.put(
        "/api/v1/airflow-connections/prod",
        json={**CONNECTION, "password": None, "baseUrl": "http://airflow.test:8080/"},
    )
    assert changed.json()["hasPassword"] is True and changed.json()["baseUrl"] == "http://airflow.test:8080"
    tested = api.post("/api/v1/airflow-connections/prod/test")
    assert tested.json() == {"ok": True, "version": "3.3.2", "dags": [], "problems": []}
    assert "s3cret" not in tested.text

    wrong_version = api.put("/api/v1/airflow-connections/prod", json={**CONNECTION, "version": 2})
    assert wrong_version.status_code == 200
    problems = api.post("/api/v1/airflow-connections/prod/test").json()
    assert problems["ok"] is False  # Airflow 2's API is not there: a 3 answers under /api/v2 only

    bad = api.put("/api/v1/airflow-connections/x", json={**CONNECTION, "baseUrl": "airflow:8080"})
    assert bad.status_code == 400 and bad.json()["message"] == "baseUrl: String should match pattern '^https?://'"
    assert api.put("/api/v1/airflow-connections/x", json={**CONNECTION, "version": 4}).status_code == 400
    assert api.delete("/api/v1/airflow-connections/prod").status_code == 204
    assert api.delete("/api/v1/airflow-connections/prod").status_code == 404
    assert api.get("/api/v1/airflow-connections/prod").status_code == 404

    ops = AirflowConnectionSetting(name="ops", baseUrl="http://a:8080", namespaces=["x"], password="p")
    configured = settings.model_copy(update={"airflow_connections": [ops]})
    with TestClient(create_app(configured, airflow_transport=airflow.transport)) as other:
        assert other.get("/api/v1/airflow-connections").json()["connections"][0]["source"] == "settings"
        refused = other.delete("/api/v1/airflow-connections/ops")
        assert refused.status_code == 409 and "server's settings" in refused.json()["message"]


def test_connection_test_checks_the_plans_dags(api, airflow):
    plan_id = saved_plan(api)
    airflow.dags["bookings_reports"].paused = True
    del airflow.dags["bookings_etl"]
    tested = api.post("/api/v1/airflow-connections/prod/test", params={"planId": plan_id}).json()
    assert tested["ok"] is False
    assert tested["dags"] == [
        {"dagId": "bookings_etl", "exists": False, "paused": None},
        {"dagId": "bookings_reports", "exists": True, "paused": True},
    ]
    assert tested["problems"] == [
        "DAG bookings_etl does not exist in this Airflow",
        "DAG bookings_reports is paused: its re-runs would not start",
    ]
    wrong = api.put("/api/v1/airflow-connections/prod", json={**CONNECTION, "password": "nope"})
    assert wrong.status_code == 200
    refused = api.post("/api/v1/airflow-connections/prod/test").json()
    assert refused["ok"] is False and "refused the credentials" in refused["problems"][0]


def test_connections_need_a_read_write_key(settings, engine, airflow):
    keyed = settings.model_copy(update={"api_keys": "rw-key,pipeline:write"})
    with TestClient(create_app(keyed, airflow_transport=airflow.transport)) as client:
        assert client.get("/api/v1/airflow-connections").status_code == 401
        write_only = {"Authorization": "Bearer pipeline"}
        assert client.get("/api/v1/airflow-connections", headers=write_only).status_code == 403
        rw = {"Authorization": "Bearer rw-key"}
        assert client.put("/api/v1/airflow-connections/prod", json=CONNECTION, headers=rw).status_code == 200
        assert client.get("/api/v1/airflow-connections", headers=rw).status_code == 200


# --- dry run and the order of calls ---------------------------------------------------------------------------


def test_a_dry_run_lists_the_calls_in_order_and_changes_nothing(api, airflow):
    plan_id = saved_plan(api)
    response = api.post(f"/api/v1/backfills/{plan_id}/run", json={"dryRun": True, "maxActiveRuns": 2})
    assert response.status_code == 200, response.text
    calls = response.json()["calls"]
    base = "http://airflow.test:8080/api/v2"
    assert [(c["level"], c["dagId"], c["method"], c["url"]) for c in calls] == [
        (0, "bookings_etl", "POST", f"{base}/backfills"),
        (1, "bookings_reports", "POST", f"{base}/dags/bookings_reports/clearTaskInstances"),
        (1, "bookings_reports", "POST", f"{base}/dags/bookings_reports/clearTaskInstances"),
        (2, "bookings_reports", "POST", f"{base}/dags/bookings_reports/clearTaskInstances"),
        (2, "bookings_reports", "POST", f"{base}/dags/bookings_reports/clearTaskInstances"),
    ]
    assert calls[0]["body"] == {**ETL_BACKFILL, "max_active_runs": 2}
    assert calls[1]["body"]["dry_run"] is True and calls[2]["body"]["dry_run"] is False
    assert calls[1]["body"]["task_ids"] == ["top_rooms"] and calls[3]["body"]["task_ids"] == ["publish_dashboard"]
    assert calls[2]["body"]["only_failed"] is False and calls[2]["body"]["start_date"] == "2024-11-02T00:00:00Z"
    assert airflow.writes() == []
    not_started = api.get(f"/api/v1/backfills/{plan_id}/execution")
    assert not_started.status_code == 404 and "has not been started" in not_started.json()["message"]


# --- running a plan -------------------------------------------------------------------------------------------


def test_a_plan_runs_level_by_level_until_done(api, airflow, executor, clock):
    plan_id = saved_plan(api)
    started = api.post(f"/api/v1/backfills/{plan_id}/run", json={"startedBy": "alice"})
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["startedBy"].startswith("alice via ")
    assert api.post(f"/api/v1/backfills/{plan_id}/run").status_code == 409  # once

    executor.step()
    assert airflow.writes() == [
        (
            "POST",
            "/api/v2/backfills",
            ETL_BACKFILL,
        )
    ]
    assert unit_states(api, plan_id) == [
        (0, "bookings_etl", "running"),
        (1, "bookings_reports", "pending"),
        (2, "bookings_reports", "pending"),
    ]
    executor.step()  # level 0 is not redone yet: nothing new
    assert len(airflow.writes()) == 1

    airflow.finish("bookings_etl")
    redo_etl(api)
    executor.step()
    writes = airflow.writes()
    assert [(m, p, b["dry_run"], b["task_ids"]) for m, p, b in writes[1:]] == [
        ("POST", "/api/v2/dags/bookings_reports/clearTaskInstances", True, ["top_rooms"]),
        ("POST", "/api/v2/dags/bookings_reports/clearTaskInstances", False, ["top_rooms"]),
    ]
    state = execution(api, plan_id)
    assert [lv["status"] for lv in state["levels"]] == ["done", "running", "pending"]
    assert state["levels"][0]["units"][0]["mode"] == "backfill"
    assert state["levels"][1]["units"][0]["mode"] == "clear"

    airflow.finish("bookings_reports")
    redo_top(api)
    executor.step()
    assert [b["task_ids"] for _, _, b in airflow.writes()[3:]] == [["publish_dashboard"], ["publish_dashboard"]]
    redo_publish(api)
    executor.step()
    done = execution(api, plan_id)
    assert done["status"] == "done" and done["finishedAt"] is not None
    assert [lv["status"] for lv in done["levels"]] == ["done", "done", "done"]
    actions = [a["action"] for a in done["audit"]]
    assert actions[0] == "start" and actions[-1] == "done" and actions.count("level_done") == 3
    calls = [a for a in done["audit"] if a["action"] == "airflow"]
    assert calls[0]["url"] == "http://airflow.test:8080/auth/token"
    assert calls[0]["request"] == {"username": "headwater", "password": "(hidden)"}
    assert calls[0]["response"] == {"access_token": "(hidden)"}
    backfill = next(a for a in calls if a["url"].endswith("/api/v2/backfills"))
    assert backfill["statusCode"] == 200 and backfill["response"]["id"] == 1
    assert "s3cret" not in api.get(f"/api/v1/backfills/{plan_id}/execution").text
    assert api.get(f"/api/v1/backfills/{plan_id}").json()["progress"]["status"] == "done"


def test_airflow_is_polled_with_backoff_for_runs_without_lineage(api, airflow, executor, clock, settings):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    airflow.finish("bookings_etl")  # Airflow re-ran it; no lineage arrives
    gets = lambda: [c for c in airflow.calls if c[1].endswith("/dagRuns")]  # noqa: E731
    executor.step()
    assert gets() == []  # not yet: the first poll waits backfill_poll_seconds
    clock.advance(settings.backfill_poll_seconds + 1)
    executor.step()
    assert len(gets()) == 1
    assert unit_states(api, plan_id)[0] == (0, "bookings_etl", "running")  # lineage gets a poll interval more
    clock.advance(settings.backfill_poll_seconds)
    executor.step()
    assert len(gets()) == 2
    assert unit_states(api, plan_id)[0] == (0, "bookings_etl", "done")
    assert any(
        "Airflow reports every DAG run successful" in (a["message"] or "") for a in execution(api, plan_id)["audit"]
    )

    executor.step()  # level 1 submitted (clear); Airflow is running it: the polls back off, 30 s, 60 s, 120 s…
    waits = []
    for _ in range(4):
        unit = execution(api, plan_id)["levels"][1]["units"][0]
        waits.append((datetime.fromisoformat(unit["nextPollAt"]) - clock.now).total_seconds())
        clock.now = datetime.fromisoformat(unit["nextPollAt"]) - timedelta(seconds=1)
        executor.step()
        polled = len(gets())
        clock.advance(1)
        executor.step()
        assert len(gets()) == polled + 1  # polled when due, not before
    assert waits == [30, 60, 120, 240]
    assert len(gets()) == 6  # two for level 0, four for level 1
    assert execution(api, plan_id)["levels"][1]["units"][0]["status"] == "running"


def test_a_failed_rerun_pauses_the_plan_and_opens_an_incident(api, airflow, executor, clock, settings):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    airflow.finish("bookings_etl", "failed", date=BAD_DAYS[1])
    clock.advance(settings.backfill_poll_seconds + 1)
    executor.step()
    state = execution(api, plan_id)
    assert state["status"] == "paused"
    assert state["reason"].startswith("bookings_etl failed: Airflow DAG run scheduled__2024-11-03T00:00:00Z")
    assert state["link"] == "http://airflow.test:8080/dags/bookings_etl/runs/scheduled__2024-11-03T00:00:00Z"
    assert [lv["status"] for lv in state["levels"]] == ["failed", "pending", "pending"]
    incidents = api.get("/api/v1/incidents", params={"kind": "backfill_failed"}).json()["incidents"]
    assert len(incidents) == 1 and incidents[0]["status"] == "open"
    incident = api.get(f"/api/v1/incidents/{incidents[0]['id']}").json()
    assert incident["details"]["planId"] == plan_id and incident["details"]["link"] == state["link"]
    assert incident["title"].startswith("Backfill plan bad bookings paused: bookings_etl failed")
    # The owners of what the plan redoes are who hear of it (subscriptions match the plan's impact).
    impact = incident["impact"]
    assert set(impact["owners"]) | set(impact["subjectOwners"]) >= {"team-bookings", "team-analytics"}

    executor.step()  # paused: nothing is sent
    writes = len(airflow.writes())
    executor.step()
    assert len(airflow.writes()) == writes

    airflow.finish("bookings_etl", date=BAD_DAYS[0])  # the other day's run ends: the Airflow backfill is over
    resumed = api.post(f"/api/v1/backfills/{plan_id}/resume", json={"by": "bob"})
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    executor.step()  # the failed DAG is tried again: a new backfill (the old one completed)
    assert airflow.writes()[-1][1] == "/api/v2/backfills" and len(airflow.backfills) == 2
    airflow.finish("bookings_etl")
    redo_etl(api)
    redo_top(api)
    redo_publish(api)
    for _ in range(3):
        executor.step()
    assert execution(api, plan_id)["status"] == "done"
    resolved = api.get("/api/v1/incidents", params={"kind": "backfill_failed"}).json()["incidents"][0]
    assert resolved["status"] == "resolved"


def test_a_failure_in_lineage_has_airflow_asked_at_once(api, airflow, executor, clock):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    polls = lambda: [c for c in airflow.calls if c[1].endswith("/dagRuns")]  # noqa: E731
    # Airflow's task fails and retries: lineage says FAIL, Airflow still runs it. Asked once, not again.
    failed = airflow_task_run(
        namespace="airflow-prod", dag_id="bookings_etl", task_id="load_room_bookings", logical_date=BAD_DAYS[0],
        dag_run_id=airflow_dag_run_id(BAD_DAYS[0]), task_run_id=uuid.uuid4(), inputs=[], outputs=[], state="FAIL",
        delay=datetime.now(UTC) - (BAD_DAYS[0] + DAY) + timedelta(seconds=1),
    )  # fmt: skip
    post(api, *failed)
    api.get("/api/v1/namespaces")
    executor.step()
    assert len(polls()) == 1 and execution(api, plan_id)["status"] == "running"
    executor.step()
    assert len(polls()) == 1  # the same failure does not make it ask again
    # The retry fails too: the next poll (when due) finds the DAG run failed.
    airflow.finish("bookings_etl", "failed", date=BAD_DAYS[0])
    unit = execution(api, plan_id)["levels"][0]["units"][0]
    clock.now = datetime.fromisoformat(unit["nextPollAt"])
    executor.step()
    assert execution(api, plan_id)["status"] == "paused"


def test_bad_credentials_pause_the_plan_with_the_reason(api, airflow, executor):
    plan_id = saved_plan(api, connection={**CONNECTION, "password": "wrong"})
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    state = execution(api, plan_id)
    assert state["status"] == "paused"
    assert "refused the credentials of connection 'prod' (401)" in state["reason"]
    assert airflow.writes() == []
    assert "wrong" not in api.get(f"/api/v1/backfills/{plan_id}/execution").text


def test_an_unreachable_airflow_is_retried_not_failed(api, airflow, executor):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    airflow.down = True
    executor.step()
    state = execution(api, plan_id)
    assert state["status"] == "running" and "did not answer" in state["levels"][0]["units"][0]["error"]
    airflow.down = False
    executor.step()
    assert unit_states(api, plan_id)[0] == (0, "bookings_etl", "running") and len(airflow.backfills) == 1


def test_pause_resume_and_cancel(api, airflow, executor):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    paused = api.post(f"/api/v1/backfills/{plan_id}/pause", json={"by": "carol", "reason": "warehouse maintenance"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["reason"] == "warehouse maintenance"
    assert api.post(f"/api/v1/backfills/{plan_id}/pause").status_code == 409
    airflow.finish("bookings_etl")
    redo_etl(api)
    executor.step()  # level 0 done, but paused: level 1 waits
    assert unit_states(api, plan_id)[:2] == [(0, "bookings_etl", "done"), (1, "bookings_reports", "pending")]
    assert len(airflow.writes()) == 1

    api.post(f"/api/v1/backfills/{plan_id}/resume")
    executor.step()
    assert unit_states(api, plan_id)[1] == (1, "bookings_reports", "running")

    cancelled = api.post(f"/api/v1/backfills/{plan_id}/cancel", json={"reason": "wrong plan"})
    assert cancelled.json()["status"] == "cancelling"
    executor.step()
    state = execution(api, plan_id)
    assert state["status"] == "cancelled" and state["reason"] == "wrong plan"
    assert [u[2] for u in unit_states(api, plan_id)] == ["done", "cancelled", "cancelled"]
    assert api.post(f"/api/v1/backfills/{plan_id}/resume").status_code == 409
    actions = [(a["actor"], a["action"]) for a in state["audit"] if a["action"] != "airflow"]
    assert ("carol", "pause") in actions and actions[-1][1] == "cancelled"


def test_cancel_cancels_the_airflow_backfills_it_created(api, airflow, executor):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    api.post(f"/api/v1/backfills/{plan_id}/cancel")
    executor.step()
    assert airflow.writes()[-1][:2] == ("PUT", "/api/v2/backfills/1/cancel")
    assert airflow.backfills[1]["cancelled"] is True
    assert execution(api, plan_id)["status"] == "cancelled"


def test_airflow_clearing_other_task_instances_than_planned_fails_the_dag(api, airflow, executor):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    airflow.finish("bookings_etl")
    redo_etl(api)
    airflow.clear_dry_run_drops.add(("top_rooms", BAD_DAYS[1]))
    executor.step()
    state = execution(api, plan_id)
    assert state["status"] == "paused"
    assert (
        "no task instance to clear for 1 planned run(s) of bookings_reports: top_rooms @ 2024-11-03" in state["reason"]
    )
    clears = [b for _, p, b in airflow.writes() if p.endswith("clearTaskInstances")]
    assert [b["dry_run"] for b in clears] == [True]  # the real clear was never sent


def test_the_concurrency_limit_holds_across_plans(api, airflow, engine, settings, clock):
    first = saved_plan(api)
    body = {"job": ETL, "start": iso(NOV), "end": iso(NOV + DAY), "name": "another"}
    second = api.post("/api/v1/backfills", json=body).json()["id"]
    limited = settings.model_copy(update={"backfill_max_active_dags": 1})
    runner = BackfillExecutor(engine, limited, clock, transport=airflow.transport, holder="limited")
    api.post(f"/api/v1/backfills/{first}/run")
    api.post(f"/api/v1/backfills/{second}/run")
    runner.step()
    assert [c[2]["dag_id"] for c in airflow.writes()] == ["bookings_etl"]
    assert unit_states(api, second)[0] == (0, "bookings_etl", "pending")
    runner.http.close()


def test_one_executor_at_a_time_and_carrying_on_after_a_restart(api, airflow, engine, settings, clock):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    first = BackfillExecutor(engine, settings, clock, transport=airflow.transport, holder="replica-1")
    second = BackfillExecutor(engine, settings, clock, transport=airflow.transport, holder="replica-2")
    assert first.step() is True
    assert second.step() is False  # the lease is replica-1's
    assert len(airflow.backfills) == 1

    # replica-1 dies while submitting level 1 after Airflow cleared the first range: the unit stays
    # "submitting" with what was done recorded.
    airflow.finish("bookings_etl")
    redo_etl(api)
    with engine.begin() as conn:
        conn.execute(
            update(t.backfill_units)
            .where(t.backfill_units.c.level == 1)
            .values(status="submitting", mode="clear", submitted_at=clock.now)
        )
    clock.advance(31)  # the lease runs out
    assert second.step() is True
    writes = airflow.writes()
    assert [b["dry_run"] for _, p, b in writes if p.endswith("clearTaskInstances")] == [True, False]
    assert unit_states(api, plan_id)[1] == (1, "bookings_reports", "running")
    assert first.step() is False
    first.http.close()
    second.http.close()


def test_a_backfill_created_before_a_crash_is_adopted_not_repeated(api, airflow, engine, settings, clock):
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    # The executor sent the backfill and died before recording it.
    with httpx.Client(transport=airflow.transport, base_url="http://airflow.test:8080") as http:
        token = http.post("/auth/token", json={"username": "headwater", "password": "s3cret"}).json()["access_token"]
        http.post(
            "/api/v2/backfills",
            headers={"Authorization": f"Bearer {token}"},
            json=ETL_BACKFILL,
        )
    with engine.begin() as conn:
        conn.execute(
            update(t.backfill_units)
            .where(t.backfill_units.c.level == 0)
            .values(status="submitting", mode="backfill", submitted_at=clock.now - timedelta(seconds=1))
        )
    runner = BackfillExecutor(engine, settings, clock, transport=airflow.transport, holder="restarted")
    runner.step()
    assert len(airflow.backfills) == 1
    unit = execution(api, plan_id)["levels"][0]["units"][0]
    assert unit["status"] == "running" and unit["airflow"]["backfills"][0]["id"] == 1
    runner.http.close()


def test_airflow_2_clears_through_api_v1_with_basic_auth(api, executor):
    airflow2 = FakeAirflow(version=2)
    days = [NOV + d * DAY for d in range(4)]
    airflow2.dag("bookings_etl", ["load_room_bookings"], days)
    airflow2.dag("bookings_reports", ["top_rooms", "publish_dashboard"], days)
    executor.http.close()
    executor.http = httpx.Client(transport=airflow2.transport)
    plan_id = saved_plan(api, connection={**CONNECTION, "version": 2})
    api.post(f"/api/v1/backfills/{plan_id}/run")
    executor.step()
    assert [(m, p, b["dry_run"]) for m, p, b in airflow2.writes()] == [
        ("POST", "/api/v1/dags/bookings_etl/clearTaskInstances", True),
        ("POST", "/api/v1/dags/bookings_etl/clearTaskInstances", False),
    ]
    assert not any(p == "/auth/token" for _, p, _ in airflow2.calls)


def test_starting_needs_a_connection_and_a_known_plan(api, airflow):
    plan_id = saved_plan(api, connection=None)
    missing = api.post(f"/api/v1/backfills/{plan_id}/run")
    assert missing.status_code == 409
    assert missing.json()["message"] == "No Airflow connection serves namespace(s) airflow-prod: add one first."
    assert api.post(f"/api/v1/backfills/{plan_id}/run", json={"dryRun": True}).status_code == 409
    unknown = api.post("/api/v1/backfills/00000000-0000-0000-0000-000000000000/run")
    assert unknown.status_code == 404
    assert api.post(f"/api/v1/backfills/{plan_id}/run", json={"maxActiveRuns": 0}).status_code == 400
    assert api.post(f"/api/v1/backfills/{plan_id}/pause").status_code == 409


def test_a_task_whose_child_jobs_span_levels_is_rerun_once(api, airflow, executor):
    """`transform.dbt_run` runs two dbt models, one reading the other's output: the models are at levels 1 and
    2, both re-run through the task. Headwater re-runs the task once, and waits for both models' lineage."""

    def day_of(day: datetime, at: datetime | None = None) -> None:
        start = at or day + DAY + timedelta(hours=2)
        task_run, invocation, dag_run = uuid.uuid4(), uuid.uuid4(), airflow_dag_run_id(day)
        root = ("airflow-prod", "transform", dag_run)
        raw = dataset(POSTGRES_NS, "warehouse.public.orders")
        events = airflow_task_run(
            namespace="airflow-prod", dag_id="transform", task_id="dbt_run", logical_date=day, dag_run_id=dag_run,
            task_run_id=task_run, inputs=[], outputs=[], delay=start - (day + DAY) - timedelta(minutes=1),
            duration=timedelta(minutes=15),
        )  # fmt: skip
        parent = parent_facet(
            namespace="airflow-prod", name="transform.dbt_run", run_id=task_run, root=root, producer=DBT_PRODUCER
        )
        events += dbt_run(namespace="dbt", name="jaffle", run_id=invocation, parent=parent, kind="JOB", start=start)
        under = parent_facet(namespace="dbt", name="jaffle", run_id=invocation, root=root, producer=DBT_PRODUCER)
        for name, source in (("stg", raw), ("mart", dataset(POSTGRES_NS, "analytics.public.stg"))):
            events += dbt_run(
                namespace="dbt", name=name, run_id=uuid.uuid4(), parent=under, kind="MODEL",
                start=start + timedelta(minutes=1 if name == "stg" else 2), inputs=[source],
                outputs=[dataset(POSTGRES_NS, f"analytics.public.{name}")],
            )  # fmt: skip
        post(api, *events)

    for d in range(3):
        day_of(NOV + d * DAY)
    airflow.dag("transform", ["dbt_run"], [NOV + d * DAY for d in range(3)])
    api.put("/api/v1/airflow-connections/prod", json=CONNECTION)
    window = {"start": iso(NOV + DAY), "end": iso(NOV + 2 * DAY)}
    plan = api.post(
        "/api/v1/backfills", json={"dataset": {"namespace": POSTGRES_NS, "name": "warehouse.public.orders"}, **window}
    ).json()
    levels = {s["job"]["name"]: s["level"] for s in plan["jobs"]}
    assert levels["stg"] < levels["mart"], levels
    api.post(f"/api/v1/backfills/{plan['id']}/run")
    executor.step()
    state = execution(api, plan["id"])
    (unit,) = [u for lv in state["levels"] for u in lv["units"]]
    assert unit["dagId"] == "transform" and len(unit["steps"]) == 2
    assert [p for _, p, _ in airflow.writes()] == ["/api/v2/backfills"]
    day_of(NOV + DAY, at=datetime.now(UTC) + timedelta(seconds=1))  # the task re-ran: both models with it
    api.get("/api/v1/namespaces")
    executor.step()
    assert execution(api, plan["id"])["status"] == "done"
    assert [p for _, p, _ in airflow.writes()] == ["/api/v2/backfills"]


def test_the_owners_subscriptions_hear_the_plan_start_progress_fail_and_finish(api, airflow, executor, clock, settings):
    from tests.support.webhook_receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
        listening = {"url": receiver.url("/analytics"), "owners": ["team-analytics"], "secret": secret}
        assert api.post("/api/v1/subscriptions", json=listening).status_code == 201
        other = {"url": receiver.url("/others"), "owners": ["team-elsewhere"]}
        assert api.post("/api/v1/subscriptions", json=other).status_code == 201
        plan_id = saved_plan(api)
        api.post(f"/api/v1/backfills/{plan_id}/run")
        executor.step()
        airflow.finish("bookings_etl", "failed")
        clock.advance(settings.backfill_poll_seconds + 1)
        executor.step()  # paused for the failure
        executor.step()
        api.post(f"/api/v1/backfills/{plan_id}/resume")
        executor.step()
        airflow.finish("bookings_etl")
        redo_etl(api)
        redo_top(api)
        redo_publish(api)
        for _ in range(4):
            executor.step()
        received = receiver.calls("/analytics")
        assert [(r.json["event"], r.json.get("level")) for r in received] == [
            ("backfill.started", None),
            ("backfill.failed", None),
            ("backfill.level_done", 0),
            ("backfill.level_done", 1),
            ("backfill.level_done", 2),
            ("backfill.done", None),
        ]
        assert received[0].json["plan"]["id"] == plan_id and received[0].json["plan"]["name"] == "bad bookings"
        assert received[1].json["text"].startswith(":warning: Backfill plan bad bookings paused: bookings_etl failed")
        assert received[1].json["link"].startswith("http://airflow.test:8080/dags/bookings_etl/runs/")
        assert all(r.headers.get("webhook-signature", "").startswith("v1,") for r in received)
        assert receiver.calls("/others") == []


def test_ranges_of_one_dag_are_backfilled_one_after_the_other(api, airflow, executor, engine, clock, settings):
    """Airflow runs one backfill of a DAG at a time (409 for a second): the next range goes once it is over."""
    plan_id = saved_plan(api)
    api.post(f"/api/v1/backfills/{plan_id}/run")
    two = [{"start": iso(d), "end": iso(d)} for d in BAD_DAYS]  # as if the days were not adjacent
    with engine.begin() as conn:
        conn.execute(update(t.backfill_units).where(t.backfill_units.c.level == 0).values(ranges=two))
    executor.step()
    posts = lambda: [b["from_date"] for m, p, b in airflow.calls if p == "/api/v2/backfills" and m == "POST"]  # noqa: E731
    assert posts() == ["2024-11-02T00:00:00Z", "2024-11-03T00:00:00Z"]  # the second refused: one is running
    assert len(airflow.backfills) == 1
    airflow.finish("bookings_etl")
    clock.advance(settings.backfill_poll_seconds + 1)
    executor.step()
    assert posts()[-1] == "2024-11-03T00:00:00Z" and len(airflow.backfills) == 2
    unit = execution(api, plan_id)["levels"][0]["units"][0]
    assert [b["id"] for b in unit["airflow"]["backfills"]] == [1, 2] and unit["status"] == "running"
