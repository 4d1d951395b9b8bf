"""POST /api/v1/lineage/batch (the OpenLineage OpenAPI document's postEventBatch): many events in one request,
each stored on its own, in order, with a per-event account of what was not stored."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta

from app.services.ingest import DatabaseUnavailable
from tests.support import model
from tests.support.events import T0, dataset, facet, run_event

JOB = ("etl", "load_bookings")


def _run(run_id: uuid.UUID) -> list[dict]:
    out = [dataset("warehouse", "public.room_bookings", columns=[("id", "int"), ("room", "text")])]
    return [
        run_event("START", job=JOB, run_id=run_id, time=T0, inputs=[dataset("warehouse", "raw.bookings")]),
        run_event("COMPLETE", job=JOB, run_id=run_id, time=T0 + timedelta(minutes=5), outputs=out),
    ]


def test_a_batch_of_every_kind_of_event_is_stored_in_order(client, engine):
    run_id = uuid.uuid4()
    dataset_event = {
        "eventTime": "2024-11-01T03:00:00Z",
        "producer": "https://example.com/catalog",
        "dataset": {
            "namespace": "warehouse",
            "name": "public.rooms",
            "facets": {"documentation": facet("DocumentationDatasetFacet", description="Every room we rent")},
        },
    }
    job_event = {
        "eventTime": "2024-11-01T03:00:00Z",
        "producer": "https://example.com/catalog",
        "job": {"namespace": "etl", "name": "designed_job"},
        "inputs": [{"namespace": "warehouse", "name": "public.rooms"}],
        "outputs": [],
    }
    response = client.post("/api/v1/lineage/batch", json=[*_run(run_id), dataset_event, job_event])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "success",
        "summary": {"received": 4, "successful": 4, "failed": 0, "retriable": 0, "non_retriable": 0},
        "failed_events": [],
    }
    run = client.get(f"/api/v1/jobs/runs/{run_id}").json()
    assert run["state"] == "COMPLETED"
    assert [d["name"] for d in client.get(f"/api/v1/namespaces/{JOB[0]}/jobs/{JOB[1]}").json()["outputs"]] == [
        "public.room_bookings"
    ]
    rooms = client.get("/api/v1/namespaces/warehouse/datasets/public.rooms").json()
    assert rooms["description"] == "Every room we rent"
    assert client.get("/api/v1/namespaces/etl/jobs/designed_job").status_code == 200

    # The same batch again (a client retry) changes nothing.
    before = model.snapshot(engine)
    again = client.post("/api/v1/lineage/batch", json=[*_run(run_id), dataset_event, job_event])
    assert again.json()["summary"]["successful"] == 4
    assert model.snapshot(engine) == before


def test_bad_events_are_reported_by_index_and_cost_only_themselves(client):
    run_id = uuid.uuid4()
    start, complete = _run(run_id)
    no_job_name = run_event("START", job=("etl", "x"), run_id=uuid.uuid4(), time=T0)
    del no_job_name["job"]["name"]
    bad_run_id = run_event("START", job=("etl", "x"), run_id=uuid.uuid4(), time=T0)
    bad_run_id["run"]["runId"] = "not-a-uuid"
    with_nul = run_event("START", job=("etl", "nul\u0000name"), run_id=uuid.uuid4(), time=T0)
    batch = [start, "just a string", no_job_name, bad_run_id, {"neither": "run nor job"}, with_nul, complete]

    response = client.post("/api/v1/lineage/batch", json=batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "partial_success"
    assert body["summary"] == {"received": 7, "successful": 2, "failed": 5, "retriable": 0, "non_retriable": 5}
    failed = {f["index"]: f for f in body["failed_events"]}
    assert sorted(failed) == [1, 2, 3, 4, 5]
    assert not any(f["retriable"] for f in failed.values())
    assert failed[1]["reason"] == "must be a JSON object (an OpenLineage event), not a string."
    assert "job.name" in failed[2]["reason"]
    assert "run.runId" in failed[3]["reason"]
    assert "Not an OpenLineage event" in failed[4]["reason"]
    assert failed[5]["reason"].startswith("job.name: contains a NUL character")
    # The good events around them were stored, in order: the run completed.
    assert client.get(f"/api/v1/jobs/runs/{run_id}").json()["state"] == "COMPLETED"


def test_a_batch_that_is_not_an_array_gets_a_400_that_says_so(client):
    answer = client.post("/api/v1/lineage/batch", json=_run(uuid.uuid4())[0])
    assert answer.status_code == 400
    assert answer.json()["message"] == "Request body must be a JSON array of OpenLineage events, not an object."
    broken = client.post("/api/v1/lineage/batch", content=b"[{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["message"].startswith("Request body is not valid JSON")
    empty = client.post("/api/v1/lineage/batch", json=[])
    assert empty.status_code == 200
    assert empty.json()["summary"] == {"received": 0, "successful": 0, "failed": 0, "retriable": 0, "non_retriable": 0}


def test_a_gzip_batch_is_read_like_a_gzip_event(client):
    run_id = uuid.uuid4()
    body = gzip.compress(json.dumps(_run(run_id)).encode())
    response = client.post(
        "/api/v1/lineage/batch",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert client.get(f"/api/v1/jobs/runs/{run_id}").json()["state"] == "COMPLETED"


def test_when_the_database_goes_away_mid_batch_the_rest_is_retriable(settings, engine, monkeypatch):
    # The database goes away just before the log commits the batch's last event (the log commits one event at a
    # time here): what was stored is reported stored, the event after it retriable; a batch of which nothing
    # was stored is a 503, as for one event.
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.services.ingest.log import EventLog

    first, second = _run(uuid.uuid4())
    third = run_event("START", job=JOB, run_id=uuid.uuid4(), time=T0)
    real_commit = EventLog._commit
    database_gone = []

    def commit_until_gone(self, rows):
        if database_gone or any(row["run_id"] == uuid.UUID(third["run"]["runId"]) for row in rows):
            database_gone.append(True)
            raise DatabaseUnavailable("connection refused")
        return real_commit(self, rows)

    monkeypatch.setattr(EventLog, "_commit", commit_until_gone)
    with TestClient(create_app(settings.model_copy(update={"log_batch_size": 1}))) as client:
        response = client.post("/api/v1/lineage/batch", json=[first, second, "bad", third])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["summary"] == {"received": 4, "successful": 2, "failed": 2, "retriable": 1, "non_retriable": 1}
        assert [(f["index"], f["retriable"]) for f in body["failed_events"]] == [(2, False), (3, True)]
        assert client.get(f"/api/v1/jobs/runs/{first['run']['runId']}").json()["state"] == "COMPLETED"

        nothing_stored = client.post("/api/v1/lineage/batch", json=["bad", second, third])
        assert nothing_stored.status_code == 503
        assert nothing_stored.json()["message"] == "The database is busy or unavailable; retry shortly."
        assert nothing_stored.headers["Retry-After"] == "2"


def test_readers_of_a_new_dataset_in_one_batch_describe_it_as_the_earliest_does(client):
    """Readers of a dataset share a wave of the batch (app/services/ingest/applier.py): the one that inserts the
    dataset may write its reader facet after a later reader has already described it. The earliest reader's
    description wins, as it does one event per transaction."""
    upstream = dataset("warehouse", "clean.bookings")
    earliest = dataset(
        "warehouse", "mart.daily", facets={"documentation": facet("DocumentationDatasetFacet", description="x")}
    )
    later = dataset(
        "warehouse", "mart.daily", facets={"documentation": facet("DocumentationDatasetFacet", description="y")}
    )
    transform = uuid.uuid4()
    events = [
        # The earliest reader waits for its run's first event, the later one for the table that event writes:
        # both are in the batch's second wave, the earliest first.
        run_event("START", job=("pipeline", "transform"), run_id=transform, time=T0, outputs=[upstream]),
        run_event(
            "RUNNING",
            job=("pipeline", "transform"),
            run_id=transform,
            time=T0,
            inputs=[dataset("warehouse", "raw.bookings"), earliest],
            # More to write before its readers' facets than the later reader has.
            job_facets={"documentation": facet("DocumentationJobFacet", description="Cleans bookings")},
        ),
        run_event(
            "START",
            job=("pipeline", "load"),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(minutes=1),
            inputs=[upstream, later],
        ),
    ]
    response = client.post("/api/v1/lineage/batch", json=events)
    assert response.status_code == 200, response.text
    daily = client.get("/api/v1/namespaces/warehouse/datasets/mart.daily").json()
    assert daily["description"] == "x"
    assert daily["facets"]["documentation"]["description"] == "x"


def test_a_read_beside_a_completion_without_datasets_sees_what_it_publishes(client, engine):
    """A COMPLETE that lists no datasets publishes what its run's START wrote; a later read of that table in the
    same batch must not be applied beside it (neither would see the other): it reads the published version."""
    writer, reader = uuid.uuid4(), uuid.uuid4()
    table = dataset("warehouse", "clean.bookings", columns=[("id", "int")])
    events = [
        # The reader's run has an earlier event, so its read of clean.bookings is written late in its step.
        run_event("START", job=("pipeline", "report"), run_id=reader, time=T0, inputs=[dataset("warehouse", "raw")]),
        run_event("START", job=("pipeline", "transform"), run_id=writer, time=T0, outputs=[table]),
        run_event("COMPLETE", job=("pipeline", "transform"), run_id=writer, time=T0 + timedelta(minutes=1)),
        run_event(
            "RUNNING",
            job=("pipeline", "report"),
            run_id=reader,
            time=T0 + timedelta(minutes=2),
            inputs=[dataset("warehouse", "clean.bookings")],
        ),
    ]
    response = client.post("/api/v1/lineage/batch", json=events)
    assert response.status_code == 200, response.text
    versions = client.get("/api/v1/namespaces/warehouse/datasets/clean.bookings/versions").json()["versions"]
    assert [[f["name"] for f in v["fields"]] for v in versions] == [["id"]]  # no placeholder beside it
    read = client.get(f"/api/v1/jobs/runs/{reader}").json()["inputDatasetVersions"]
    versions_read = {v["datasetVersionId"]["name"]: v["datasetVersionId"]["version"] for v in read}
    assert versions_read["clean.bookings"] == versions[0]["version"]
