"""The backfill API around the planner: saved plans tracked to done by new runs, the impact endpoint, errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.support.events import POSTGRES_NS, airflow_dag_run_id, airflow_task_run, dataset
from tests.test_backfill_plans import DAY, NOV, bookings_day, iso, post

ETL = {"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"}


def rerun(client, dag_id, task_id, logical_date, inputs, outputs):
    """The same task instance run again now (a new try: a new run id), as a backfill does."""
    now = datetime.now(UTC)
    post(
        client,
        *airflow_task_run(
            namespace="airflow-prod",
            dag_id=dag_id,
            task_id=task_id,
            logical_date=logical_date,
            dag_run_id=airflow_dag_run_id(logical_date),
            task_run_id=uuid.uuid4(),
            inputs=[dataset(POSTGRES_NS, f"bookings.public.{i}") for i in inputs],
            outputs=[dataset(POSTGRES_NS, f"bookings.public.{o}") for o in outputs],
            delay=now - (logical_date + DAY) + timedelta(seconds=1),
        ),
    )


def test_a_saved_plan_is_marked_done_as_reruns_complete(client):
    for day in range(3):
        bookings_day(client, NOV + day * DAY)
    request = {"job": ETL, "start": iso(NOV + DAY), "end": iso(NOV + 3 * DAY), "name": "bad bookings load"}
    response = client.post("/api/v1/backfills", json=request)
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["name"] == "bad bookings load"
    assert saved["progress"] == {"status": "open", "stepsDone": 0, "steps": 3, "runsDone": 0, "runs": 6}
    plan_id = saved["id"]

    listed = client.get("/api/v1/backfills").json()
    assert listed["totalCount"] == 1 and listed["plans"][0]["id"] == plan_id

    for day in (1, 2):
        rerun(client, "bookings_etl", "load_room_bookings", NOV + day * DAY, ["bookings"], ["room_bookings"])
    progress = client.get(f"/api/v1/backfills/{plan_id}").json()
    assert progress["progress"] == {"status": "in_progress", "stepsDone": 1, "steps": 3, "runsDone": 2, "runs": 6}
    root_step = progress["levels"][0]["steps"][0]
    assert root_step["job"] == ETL and root_step["done"] is True
    assert all(r["done"] for r in root_step["runs"])
    assert progress["levels"][1]["steps"][0]["done"] is False

    rerun(client, "bookings_reports", "top_rooms", NOV + DAY, ["room_bookings"], ["top_room_bookings"])
    partial = client.get(f"/api/v1/backfills/{plan_id}").json()
    top = next(s for s in partial["jobs"] if s["job"]["name"] == "bookings_reports.top_rooms")
    assert [r["done"] for r in top["runs"]] == [True, False] and top["done"] is False

    rerun(client, "bookings_reports", "top_rooms", NOV + 2 * DAY, ["room_bookings"], ["top_room_bookings"])
    for day in (1, 2):
        rerun(
            client, "bookings_reports", "publish_dashboard", NOV + day * DAY, ["top_room_bookings"], ["room_dashboard"]
        )
    done = client.get(f"/api/v1/backfills/{plan_id}").json()
    assert done["progress"] == {"status": "done", "stepsDone": 3, "steps": 3, "runsDone": 6, "runs": 6}
    assert client.get("/api/v1/backfills").json()["plans"][0]["progress"]["status"] == "done"


def test_the_impact_endpoint_lists_what_went_bad(client):
    bookings_day(client, NOV)
    failed = bookings_day(client, NOV + DAY, state="FAIL")
    impact = client.get("/api/v1/impact", params={"runId": failed}).json()
    assert [j["job"]["name"] for j in impact["jobs"]] == [
        "bookings_etl.load_room_bookings",
        "bookings_reports.top_rooms",
        "bookings_reports.publish_dashboard",
    ]
    assert {d["dataset"]["name"] for d in impact["datasets"]} == {
        "bookings.public.room_bookings",
        "bookings.public.top_room_bookings",
        "bookings.public.room_dashboard",
    }
    assert impact["totals"]["runs"] == 3
    by_job = client.get(
        "/api/v1/impact",
        params={"namespace": "airflow-prod", "job": ETL["name"], "start": iso(NOV), "end": iso(NOV + DAY)},
    ).json()
    assert [j["runs"][0]["nominalStartTime"] for j in by_job["jobs"]] == [iso(NOV)] * 3
    posted = client.post("/api/v1/impact", json={"runId": failed}).json()
    assert posted["jobs"] == impact["jobs"]


def test_bad_requests_say_what_is_wrong(client):
    bookings_day(client, NOV)
    cases = [
        ({}, "give exactly one root cause"),
        ({"runId": str(uuid.uuid4()), "job": ETL, "start": iso(NOV), "end": iso(NOV + DAY)}, "exactly one root"),
        ({"job": ETL}, "job needs a window"),
        ({"job": ETL, "start": iso(NOV + DAY), "end": iso(NOV)}, "start must be before end"),
        ({"runId": "not-a-uuid"}, "runId"),
        ({"runId": str(uuid.uuid4()), "depth": -1}, "depth"),
        ({"version": str(uuid.uuid4()), "runId": str(uuid.uuid4())}, "version needs dataset"),
        ({"runId": str(uuid.uuid4()), "surprise": 1}, "surprise"),
    ]
    for body, message in cases:
        response = client.post("/api/v1/backfills/preview", json=body)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["message"], (body, response.json())
    missing = client.post("/api/v1/backfills/preview", json={"runId": str(uuid.uuid4())})
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    unknown_job = client.post(
        "/api/v1/backfills",
        json={"job": {"namespace": "airflow-prod", "name": "nope"}, "start": iso(NOV), "end": iso(NOV + DAY)},
    )
    assert unknown_job.status_code == 404
    assert client.get("/api/v1/backfills").json()["totalCount"] == 0  # nothing half-saved
    assert client.get(f"/api/v1/backfills/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/v1/backfills/not-a-uuid").status_code == 400
    no_change = client.post(
        "/api/v1/backfills/preview",
        json={"dataset": {"namespace": POSTGRES_NS, "name": "bookings.public.room_bookings"}, "schemaChange": True},
    )
    assert no_change.status_code == 400 and "dropped or retyped no column" in no_change.json()["message"]
    assert client.get("/api/v1/impact", params={"job": "x"}).status_code == 400
