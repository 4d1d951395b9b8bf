"""Marquez API: jobs, their runs and versions, validated against Marquez's reference OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.support.events import (
    POSTGRES_NS,
    T0,
    airflow_dag_run_id,
    airflow_task_run,
    dataset,
)
from tests.support.marquez_spec import assert_conforms

NS, DAG, TASK = "airflow://prod", "bookings_daily", "bookings_daily.load"


def enc(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def seeded(client):
    """Three daily runs of an Airflow task; the third fails."""
    runs = []
    for day in range(3):
        logical = T0 + timedelta(days=day)
        run_id = airflow_dag_run_id(logical)
        runs.append(run_id)
        for event in airflow_task_run(
            namespace=NS,
            dag_id=DAG,
            task_id="load",
            logical_date=logical,
            dag_run_id=airflow_dag_run_id(logical),
            task_run_id=run_id,
            inputs=[dataset(POSTGRES_NS, "hotel.bookings", columns=[("id", "int")])],
            outputs=[dataset(POSTGRES_NS, "hotel.room_bookings", columns=[("id", "int")])],
            state="FAIL" if day == 2 else "COMPLETE",
        ):
            assert client.post("/api/v1/lineage", json=event).status_code == 201
    client.runs = runs
    return client


def test_list_jobs_everywhere_and_per_namespace(seeded):
    everywhere = seeded.get("/api/v1/jobs").json()
    assert_conforms(everywhere, "/namespaces/{namespace}/jobs")
    assert {j["name"] for j in everywhere["jobs"]} == {DAG, TASK} and everywhere["totalCount"] == 2
    per_ns = seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs").json()
    assert_conforms(per_ns, "/namespaces/{namespace}/jobs")
    assert per_ns["totalCount"] == 2


def test_last_run_states_filter_in_any_case(seeded):
    failed = seeded.get("/api/v1/jobs", params={"lastRunStates": ["failed"]}).json()
    assert [j["name"] for j in failed["jobs"]] == [TASK]
    assert seeded.get("/api/v1/jobs", params={"lastRunStates": "COMPLETED"}).json()["jobs"] == []
    bad = seeded.get("/api/v1/jobs", params={"lastRunStates": "EXPLODED"})
    assert bad.status_code == 400 and "EXPLODED" in bad.json()["message"]


def test_get_job(seeded):
    response = seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}")
    assert response.status_code == 200, response.text
    job = response.json()
    assert_conforms(job, "/namespaces/{namespace}/jobs/{job}")
    assert (job["simpleName"], job["parentJobName"]) == ("load", DAG)
    assert job["inputs"] == [{"namespace": POSTGRES_NS, "name": "hotel.bookings"}]
    assert job["outputs"] == [{"namespace": POSTGRES_NS, "name": "hotel.room_bookings"}]
    assert job["latestRun"]["id"] == str(seeded.runs[2]) and job["latestRun"]["state"] == "FAILED"
    assert [r["id"] for r in job["latestRuns"]] == [str(r) for r in reversed(seeded.runs)]
    assert job["currentVersion"] and set(job["facets"]) >= {"jobType", "ownership", "sql"}
    missing = seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs/nope")
    assert missing.json() == {"code": 404, "message": "Job 'nope' not found."}


def test_job_runs_newest_first(seeded):
    response = seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}/runs", params={"limit": 2})
    body = response.json()
    assert_conforms(body, "/namespaces/{namespace}/jobs/{job}/runs")
    assert body["totalCount"] == 3
    assert [(r["id"], r["state"]) for r in body["runs"]] == [
        (str(seeded.runs[2]), "FAILED"),
        (str(seeded.runs[1]), "COMPLETED"),
    ]
    assert body["runs"][0]["nominalStartTime"] == "2024-11-03T02:00:00Z"


def test_job_versions(seeded):
    body = seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}/versions").json()
    assert_conforms(body, "/namespaces/{namespace}/jobs/{job}/versions")
    (version,) = body["versions"]  # same IO and location on every run: one version
    assert version["inputs"] == [{"namespace": POSTGRES_NS, "name": "hotel.bookings"}]
    one = seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}/versions/{version['version']}")
    assert one.status_code == 200
    assert_conforms(one.json(), "/namespaces/{namespace}/jobs/{job}/versions/{version}")
    missing = uuid.uuid4()
    assert seeded.get(f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}/versions/{missing}").status_code == 404


def test_soft_delete_job_until_the_next_event(seeded):
    path = f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}"
    deleted = seeded.delete(path)
    assert deleted.status_code == 200 and deleted.json()["name"] == TASK
    assert seeded.get(path).status_code == 404
    assert TASK not in {j["name"] for j in seeded.get("/api/v1/jobs").json()["jobs"]}
    logical = T0 + timedelta(days=5)
    for event in airflow_task_run(
        namespace=NS,
        dag_id=DAG,
        task_id="load",
        logical_date=logical,
        dag_run_id=airflow_dag_run_id(logical),
        task_run_id=airflow_dag_run_id(logical),
        inputs=[],
        outputs=[],
    ):
        seeded.post("/api/v1/lineage", json=event)
    assert seeded.get(path).status_code == 200


def test_job_tags(seeded):
    path = f"/api/v1/namespaces/{enc(NS)}/jobs/{enc(TASK)}"
    assert seeded.post(f"{path}/tags/critical").json()["tags"] == ["critical"]
    assert seeded.get(path).json()["tags"] == ["critical"]
    assert seeded.delete(f"{path}/tags/critical").json()["tags"] == []


def test_a_job_asked_for_by_its_marquez_name_redirects_to_the_name_it_was_sent_with(client):
    """Marquez names a child job `parent.child`; Headwater keeps the name as sent and redirects (301) the
    Marquez form there, as Marquez's JobRedirectFilter does for aliases."""
    from tests.support.events import T0, facet, run_event

    parent = facet("ParentRunFacet", run={"runId": str(uuid.uuid4())}, job={"namespace": "etl-ns", "name": "nightly"})
    event = run_event("COMPLETE", job=("etl-ns", "load.users"), run_id=uuid.uuid4(), time=T0,
                      run_facets={"parent": parent})  # fmt: skip
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    moved = client.get("/api/v1/namespaces/etl-ns/jobs/nightly.load.users/runs?limit=5", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == "/api/v1/namespaces/etl-ns/jobs/load.users/runs?limit=5"
    followed = client.get("/api/v1/namespaces/etl-ns/jobs/nightly.load.users")
    assert followed.status_code == 200 and followed.json()["name"] == "load.users"
    assert client.get("/api/v1/namespaces/etl-ns/jobs/other.load.users").status_code == 404
