"""Marquez's deprecated write API: PUT dataset / job, POST run and its state marks. Each call becomes an
OpenLineage event in the raw log and goes through the same ingest rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from app.db import tables as t
from tests.support.marquez_spec import assert_conforms

NS, PG = "warehouse", "postgres://db:5432"


def enc(name: str) -> str:
    return quote(name, safe="")


def setup_catalog(client):
    assert client.put(f"/api/v1/namespaces/{NS}", json={"ownerName": "me"}).status_code == 200
    assert client.put("/api/v1/sources/pg", json={"type": "POSTGRESQL", "connectionUrl": PG}).status_code == 200
    for name in ("public.orders", "public.daily"):
        body = {
            "type": "DB_TABLE",
            "physicalName": name,
            "sourceName": "pg",
            "fields": [{"name": "id", "type": "INTEGER", "tags": ["PII"]}],
            "tags": ["GOLD"],
            "description": "table",
        }
        response = client.put(f"/api/v1/namespaces/{NS}/datasets/{name}", json=body)
        assert response.status_code == 200, response.text
        assert_conforms(response.json(), "/namespaces/{namespace}/datasets/{dataset}", "put")


def test_put_dataset_makes_a_version_with_tags(client, engine):
    setup_catalog(client)
    dataset = client.get(f"/api/v1/namespaces/{NS}/datasets/public.orders").json()
    assert dataset["sourceName"] == "pg" and dataset["description"] == "table" and dataset["tags"] == ["GOLD"]
    assert dataset["fields"] == [{"name": "id", "type": "INTEGER", "tags": ["PII"], "description": None}]
    assert dataset["currentVersion"]
    missing_source = client.put(
        f"/api/v1/namespaces/{NS}/datasets/x", json={"type": "DB_TABLE", "physicalName": "x", "sourceName": "nope"}
    )
    assert missing_source.json() == {"code": 404, "message": "Source 'nope' not found."}
    with engine.connect() as conn:
        kinds = conn.execute(select(t.lineage_events.c.event_kind)).scalars().all()
    assert kinds == ["DATASET_EVENT", "DATASET_EVENT"]  # kept in the raw log like any event


def test_job_run_lifecycle_through_the_legacy_api(client, engine):
    setup_catalog(client)
    job = client.put(
        f"/api/v1/namespaces/{NS}/jobs/{enc('etl/daily')}",
        json={
            "type": "BATCH",
            "inputs": [{"namespace": NS, "name": "public.orders"}],
            "outputs": [{"namespace": NS, "name": "public.daily"}],
            "location": "https://git.example.com/etl",
            "description": "Daily roll-up",
        },
    )
    assert job.status_code == 200, job.text
    assert_conforms(job.json(), "/namespaces/{namespace}/jobs/{job}", "put")
    assert job.json()["outputs"] == [{"namespace": NS, "name": "public.daily"}]

    created = client.post(
        f"/api/v1/namespaces/{NS}/jobs/{enc('etl/daily')}/runs",
        json={
            "nominalStartTime": "2024-11-01T00:00:00Z",
            "nominalEndTime": "2024-11-02T00:00:00Z",
            "args": {"mode": "full"},
        },
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert created.headers["Location"] == f"/api/v1/jobs/runs/{run['id']}"
    assert (run["state"], run["args"], run["nominalStartTime"]) == ("NEW", {"mode": "full"}, "2024-11-01T00:00:00Z")

    before = client.get(f"/api/v1/namespaces/{NS}/datasets/public.daily").json()["currentVersion"]
    start_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    iso = lambda moment: moment.isoformat().replace("+00:00", "Z")  # noqa: E731
    started = client.post(f"/api/v1/jobs/runs/{run['id']}/start", params={"at": iso(start_at)}).json()
    assert started["state"] == "RUNNING" and started["startedAt"] == iso(start_at)
    done = client.post(f"/api/v1/jobs/runs/{run['id']}/COMPLETE", params={"at": iso(start_at + timedelta(minutes=10))})
    assert done.status_code == 200
    assert_conforms(done.json(), "/jobs/runs/{id}/complete", "post")
    assert (done.json()["state"], done.json()["durationMs"]) == ("COMPLETED", 600000)
    # Completing the run published a new version of the job's output, written by this run.
    after = client.get(f"/api/v1/namespaces/{NS}/datasets/public.daily").json()["currentVersion"]
    assert after != before
    version = client.get(f"/api/v1/namespaces/{NS}/datasets/public.daily/versions/{after}").json()
    assert version["createdByRun"]["id"] == run["id"]
    assert [f["name"] for f in version["fields"]] == ["id"]  # the rewritten table keeps its schema
    # A finished run stays finished (same rule as for events).
    late_start = client.post(
        f"/api/v1/jobs/runs/{run['id']}/start", params={"at": iso(start_at + timedelta(minutes=20))}
    )
    assert late_start.json()["state"] == "COMPLETED"
    assert client.post(f"/api/v1/jobs/runs/{uuid.uuid4()}/start").status_code == 404
    assert client.post(f"/api/v1/jobs/runs/{run['id']}/explode").status_code == 400


LONG = "x" * 1025  # names are capped at 1024 characters, as in Marquez and for events
T = "2024-01-01T00:00:00Z"
_EVENT = {
    "eventType": "COMPLETE",
    "eventTime": T,
    "run": {"runId": str(uuid.UUID(int=7, version=4))},
    "job": {"namespace": NS, "name": "etl"},
}
JOB, DATASET = f"/api/v1/namespaces/{NS}/jobs", f"/api/v1/namespaces/{NS}/datasets"
TABLE = {"type": "DB_TABLE", "physicalName": "x", "sourceName": "pg"}


def job_body(inputs=(), outputs=()):
    return {"type": "BATCH", "inputs": list(inputs), "outputs": list(outputs)}


# (method, path, body, field named in the error): an empty or overlong name on each path that writes names.
BAD_NAMES = [
    ("PUT", f"{JOB}/etl", job_body(outputs=[{"namespace": "", "name": ""}]), "outputs[0].namespace"),
    ("PUT", f"{JOB}/etl", job_body(inputs=[{"namespace": NS, "name": ""}]), "inputs[0].name"),
    ("PUT", f"{JOB}/etl", job_body(inputs=[{"namespace": NS, "name": LONG}]), "inputs[0].name"),
    ("PUT", f"{JOB}/{LONG}", job_body(), "job"),
    ("PUT", f"{DATASET}/{LONG}", TABLE, "dataset"),
    ("PUT", f"{DATASET}/d", {**TABLE, "fields": [{"name": ""}]}, "fields[0].name"),
    ("PUT", f"{DATASET}/d", {**TABLE, "tags": [""]}, "tags[0]"),
    ("PUT", f"{DATASET}/d", {**TABLE, "fields": [{"name": "id", "tags": [""]}]}, "fields[0].tags[0]"),
    ("PUT", f"/api/v1/namespaces/{LONG}", {"ownerName": "me"}, "namespace"),
    ("POST", "/api/v1/lineage", {**_EVENT, "job": {"namespace": NS, "name": ""}}, "job.name"),
    ("POST", "/api/v1/lineage", {**_EVENT, "outputs": [{"namespace": "", "name": "t"}]}, "outputs[0].namespace"),
    ("POST", "/api/v1/lineage", {**_EVENT, "inputs": [{"namespace": NS, "name": LONG}]}, "inputs[0].name"),
    ("POST", "/api/v1/lineage", {"eventTime": T, "dataset": {"namespace": NS, "name": ""}}, "dataset.name"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), BAD_NAMES, ids=[f"{m} {p[:40]} {f}" for m, p, _, f in BAD_NAMES]
)
def test_empty_or_overlong_names_get_a_clear_4xx_and_write_nothing(client, engine, method, path, body, field):
    setup_catalog(client)
    with engine.connect() as conn:
        events_before = conn.execute(select(func.count()).select_from(t.lineage_events)).scalar_one()
    response = client.request(method, path, json=body)
    assert response.status_code in (400, 422), response.text
    error = response.json()
    assert error["code"] == response.status_code and field in error["message"], error
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar_one() == events_before
    assert client.get(f"/api/v1/namespaces/{NS}/jobs/etl").status_code == 404
