"""GET /api/v1/runs/failures: the latest failed runs, newest end first, with their job."""

from __future__ import annotations

from tests.test_backfill_plans import DAY, NOV, bookings_day


def test_recent_failures_newest_first_with_their_job(client):
    bookings_day(client, NOV)
    first = bookings_day(client, NOV + DAY, state="FAIL")
    bookings_day(client, NOV + 2 * DAY)
    second = bookings_day(client, NOV + 3 * DAY, state="FAIL")

    response = client.get("/api/v1/runs/failures")
    assert response.status_code == 200
    failures = response.json()["failures"]
    assert [f["run"]["id"] for f in failures] == [second, first]
    assert failures[0]["job"] == {"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"}
    assert failures[0]["run"]["state"] == "FAILED"
    assert failures[0]["run"]["facets"]["errorMessage"]["message"] == "relation does not exist"

    assert [f["run"]["id"] for f in client.get("/api/v1/runs/failures", params={"limit": 1}).json()["failures"]] == [
        second
    ]


def test_a_hidden_job_has_no_failures_listed_and_bad_limits_are_refused(client):
    bookings_day(client, NOV, state="FAIL")
    assert client.delete("/api/v1/namespaces/airflow-prod/jobs/bookings_etl.load_room_bookings").status_code == 200
    assert client.get("/api/v1/runs/failures").json() == {"failures": []}
    for limit in (0, 501, "x"):
        response = client.get("/api/v1/runs/failures", params={"limit": limit})
        assert response.status_code == 400 and "limit" in response.json()["message"]
