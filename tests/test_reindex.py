"""`headwater reindex`: the model rebuilt from the raw events equals the model before, and a fresh ingest of the
same events; events that failed to apply are applied; what only the API sets (tags, soft deletes) survives."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import tables as t
from app.services import ingest
from app.services.reindex import reindex
from tests.support import model
from tests.support.events import (
    POSTGRES_NS,
    SPARK_PRODUCER,
    T0,
    airflow_dag_run,
    airflow_dag_run_id,
    airflow_task_run,
    column_lineage,
    dataset,
    facet,
    iso,
    run_event,
)

BOOKINGS = [("booking_id", "integer"), ("room_id", "integer"), ("booked_at", "timestamp")]


def realistic_events(rng: random.Random) -> list[dict]:
    """Three days of an Airflow DAG (the second day's load fails), a Spark job with column lineage and a symlink,
    a static DatasetEvent and JobEvent, a facet deleted later."""
    events = []
    for day in range(3):
        logical = T0 + timedelta(days=day)
        dag_run = airflow_dag_run_id(logical)
        events.append(
            airflow_dag_run(
                namespace="airflow-prod",
                dag_id="bookings",
                logical_date=logical,
                dag_run_id=dag_run,
                event_type="START",
                time=logical + timedelta(days=1, minutes=1),
            )
        )
        events += airflow_task_run(
            namespace="airflow-prod",
            dag_id="bookings",
            task_id="extract",
            logical_date=logical,
            dag_run_id=dag_run,
            task_run_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            inputs=[dataset(POSTGRES_NS, "public.bookings", columns=BOOKINGS)],
            outputs=[dataset(POSTGRES_NS, "staging.bookings", columns=BOOKINGS)],
        )
        events += airflow_task_run(
            namespace="airflow-prod",
            dag_id="bookings",
            task_id="load",
            logical_date=logical,
            dag_run_id=dag_run,
            task_run_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            inputs=[dataset(POSTGRES_NS, "staging.bookings", columns=BOOKINGS)],
            outputs=[dataset(POSTGRES_NS, "public.room_bookings", columns=BOOKINGS[:2])],
            state="FAIL" if day == 1 else "COMPLETE",
            delay=timedelta(minutes=10),
        )
        events.append(
            airflow_dag_run(
                namespace="airflow-prod",
                dag_id="bookings",
                logical_date=logical,
                dag_run_id=dag_run,
                event_type="COMPLETE",
                time=logical + timedelta(days=1, minutes=30),
            )
        )
    spark_run = uuid.UUID(int=rng.getrandbits(128), version=4)
    lineage = column_lineage({"rooms": [(POSTGRES_NS, "public.room_bookings", "room_id")]})
    output = dataset(
        "s3://lake",
        "warehouse/room_usage",
        columns=[("rooms", "bigint")],
        facets={
            "columnLineage": lineage,
            "symlinks": facet(
                "SymlinksDatasetFacet",
                SPARK_PRODUCER,
                identifiers=[{"namespace": "hive://metastore", "name": "warehouse.room_usage", "type": "TABLE"}],
            ),
        },
    )
    for offset, kind in ((0, "START"), (4, "COMPLETE")):
        events.append(
            run_event(
                kind,
                job=("spark-prod", "room_usage"),
                run_id=spark_run,
                time=T0 + timedelta(days=4, minutes=offset),
                inputs=[dataset(POSTGRES_NS, "public.room_bookings")],
                outputs=[output],
                producer=SPARK_PRODUCER,
                run_facets={"spark_version": facet("SparkVersionFacet", SPARK_PRODUCER, spark_version="3.5.1")},
            )
        )
    events.append(
        {
            "eventTime": iso(T0 + timedelta(days=5)),
            "producer": SPARK_PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {
                "namespace": "s3://lake",
                "name": "warehouse/room_usage",
                "facets": {"documentation": facet("DocumentationDatasetFacet", description="Rooms used per day")},
            },
        }
    )
    events.append(
        {
            "eventTime": iso(T0 + timedelta(days=5, hours=1)),
            "producer": SPARK_PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "spark-prod", "name": "room_forecast", "facets": {}},
            "inputs": [{"namespace": "s3://lake", "name": "warehouse/room_usage"}],
            "outputs": [{"namespace": "s3://lake", "name": "warehouse/room_forecast"}],
        }
    )
    events.append(
        run_event(
            "OTHER",
            job=("spark-prod", "room_usage"),
            run_id=spark_run,
            time=T0 + timedelta(days=4, minutes=5),
            run_facets={"spark_version": {"_deleted": True}},
            producer=SPARK_PRODUCER,
        )
    )
    return events


def delivered(rng: random.Random, events: list[dict]) -> list[dict]:
    """Out of order, with a few client retries."""
    deliveries = events + rng.sample(events, 5)
    rng.shuffle(deliveries)
    return deliveries


def incident_rows(engine) -> dict[str, list]:
    with model.applied(engine).connect() as conn:
        return {
            table.name: conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            for table in (t.incidents, t.incident_outbox)
        }


def post_all(client, events) -> None:
    for event in events:
        assert client.post("/api/v1/lineage", json=event).status_code == 201


def empty_everything(engine) -> None:
    with engine.begin() as conn:
        for table in [*t.MODEL_TABLES, t.lineage_events]:
            conn.execute(table.delete())


def test_reindex_equals_the_model_before_and_a_fresh_ingest(news_client, engine):
    client = news_client  # the export's failure, dated in the past, raises its incident
    rng = random.Random(5)
    deliveries = delivered(rng, realistic_events(rng))
    failed_export = run_event(
        "FAIL", job=("spark-prod", "nightly_export"), run_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        time=T0 + timedelta(days=4), inputs=[dataset(POSTGRES_NS, "public.room_bookings")],
    )  # fmt: skip
    deliveries.append(failed_export)
    post_all(client, deliveries)
    before = model.snapshot(engine)
    assert len(before["runs"]) == 11 and before["column_lineage"] and before["dataset_symlinks"]
    incidents_before = incident_rows(engine)
    assert [row.kind for row in incidents_before["incidents"]] == ["run_failed"]  # the export's failure
    assert incidents_before["incident_outbox"]  # and its notification

    # A model that drifted from its events (as after an upgrade that changed the mapping): rebuilt to match them.
    with model.applied(engine).begin() as conn:
        conn.execute(t.lineage_edges.delete())
        conn.execute(t.jobs.update().values(description="stale"))
        conn.execute(t.facets.delete().where(t.facets.c.kind == "RUN"))
    assert model.snapshot(engine) != before

    report = reindex(engine, chunk_size=7)
    assert report.events == len(before["lineage_events"]) and report.failed == 0
    rebuilt = model.snapshot(engine)
    assert rebuilt == before, model.describe_difference(before, rebuilt)
    # Incidents are not part of the model: replaying history neither raises nor notifies them again.
    assert incident_rows(engine) == incidents_before

    empty_everything(engine)
    post_all(client, deliveries)
    fresh = model.snapshot(engine)
    assert rebuilt == fresh, model.describe_difference(fresh, rebuilt)


def test_reindex_applies_events_that_failed_before(client, engine, monkeypatch):
    rng = random.Random(9)
    events = realistic_events(rng)
    broken_job = "bookings.load"

    def mapping_bug(conn, ctx, event):
        if event.job.name == broken_job and event.eventType == "COMPLETE":
            raise KeyError("a bug in the mapping")
        return original(conn, ctx, event)

    original = ingest.APPLY["RUN_EVENT"]
    monkeypatch.setitem(ingest.APPLY, "RUN_EVENT", mapping_bug)
    post_all(client, events)  # accepted: stored raw, marked
    with model.applied(engine).connect() as conn:
        marked = conn.execute(select(t.lineage_events.c.id).where(t.lineage_events.c.apply_error.is_not(None))).all()
    assert len(marked) == 2  # the two COMPLETE events of the load task (the third day's failed)
    monkeypatch.setitem(ingest.APPLY, "RUN_EVENT", original)  # the fix

    report = reindex(engine)
    assert report.recovered == 2 and report.failed == 0
    rebuilt = model.snapshot(engine)
    empty_everything(engine)
    post_all(client, events)
    assert rebuilt == model.snapshot(engine), model.describe_difference(model.snapshot(engine), rebuilt)


def test_reindex_command_keeps_tags_and_soft_deletes(client, engine, database_url):
    rng = random.Random(3)
    post_all(client, realistic_events(rng))
    ds = f"/api/v1/namespaces/{quote(POSTGRES_NS, safe='')}/datasets/public.room_bookings"
    job = "/api/v1/namespaces/spark-prod/jobs/room_forecast"
    assert client.put("/api/v1/tags/PII", json={"description": "personal data"}).status_code in (200, 201)
    assert client.post(f"{ds}/tags/PII").status_code in (200, 201)
    assert client.post(f"{ds}/fields/room_id/tags/PII").status_code in (200, 201)
    assert client.post("/api/v1/namespaces/spark-prod/jobs/room_usage/tags/PII").status_code in (200, 201)
    assert client.delete(job).status_code == 200
    dataset_before = client.get(ds).json()

    result = CliRunner().invoke(cli, ["reindex"], env={"HEADWATER_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert "rebuilt the model from" in result.output

    dataset_after = client.get(ds).json()
    assert dataset_after["tags"] == ["PII"]
    assert [f["tags"] for f in dataset_after["fields"] if f["name"] == "room_id"] == [["PII"]]
    assert dataset_after == dataset_before
    assert client.get("/api/v1/namespaces/spark-prod/jobs/room_usage").json()["tags"] == ["PII"]
    assert client.get(job).status_code == 404  # still deleted


@pytest.mark.parametrize("chunk_size", [1, 1000])
def test_reindex_of_an_empty_database(engine, chunk_size):
    assert reindex(engine, chunk_size=chunk_size).events == 0
