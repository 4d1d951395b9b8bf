"""The real openlineage-python client, unmodified, against a real `headwater serve` process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    job_type_job,
    nominal_time_run,
    parent_run,
    schema_dataset,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.uuid import generate_new_uuid

from app.db import tables as t
from tests.support import model
from tests.support.live_server import LiveServer

API_KEY = "hw-test-key-123"
NS = "postgres://warehouse:5432"


@pytest.fixture
def server(database_url, engine, tmp_path):
    with LiveServer(
        database_url, log_path=tmp_path / "server.log", env={"HEADWATER_API_KEYS": f"other-key,{API_KEY}"}
    ) as server:
        yield server


def make_client(url: str, api_key: str | None) -> OpenLineageClient:
    config = HttpConfig(
        url=url,
        compression=HttpCompression.GZIP,
        auth=ApiKeyTokenProvider({"apiKey": api_key}) if api_key else TokenProvider({}),
        retry={"total": 0},
    )
    return OpenLineageClient(transport=HttpTransport(config))


def _schema(*names: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type="varchar") for n in names]
    )


def test_client_with_gzip_and_api_key_is_stored(server, engine):
    client = make_client(server.url, API_KEY)
    run_id, parent_id = str(generate_new_uuid()), str(generate_new_uuid())
    now = datetime(2024, 11, 1, 3, tzinfo=UTC)
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "guest": column_lineage_dataset.Fields(
                inputFields=[column_lineage_dataset.InputField(namespace=NS, name="hotel.bookings", field="guest_name")]
            )
        }
    )
    inputs = [InputDataset(namespace=NS, name="hotel.bookings", facets={"schema": _schema("guest_name", "room")})]
    outputs = [
        OutputDataset(namespace=NS, name="hotel.guests", facets={"schema": _schema("guest"), "columnLineage": lineage})
    ]
    run_facets = {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime="2024-11-01T00:00:00Z", nominalEndTime="2024-11-02T00:00:00Z"
        ),
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_id), job=parent_run.Job(namespace="airflow", name="hotel_dag")
        ),
    }
    job = Job(
        namespace="airflow",
        name="hotel_dag.extract_guests",
        facets={"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="AIRFLOW", jobType="TASK")},
    )
    for state, offset in ((RunState.START, 0), (RunState.COMPLETE, 90)):
        client.emit(
            RunEvent(
                eventType=state,
                eventTime=(now + timedelta(seconds=offset)).isoformat(),
                run=Run(runId=run_id, facets=run_facets),
                job=job,
                inputs=inputs,
                outputs=outputs,
            )
        )
    client.emit(
        DatasetEvent(
            eventTime=now.isoformat(),
            dataset=StaticDataset(namespace=NS, name="hotel.rooms", facets={"schema": _schema("room")}),
        )
    )
    client.emit(
        JobEvent(
            eventTime=now.isoformat(),
            job=Job(namespace="static", name="exporter"),
            inputs=[InputDataset(namespace=NS, name="hotel.guests")],
            outputs=[],
        )
    )

    with engine.connect() as conn:
        kinds = sorted(
            r[0] for r in conn.execute(t.lineage_events.select().with_only_columns(t.lineage_events.c.event_kind))
        )
    assert kinds == ["DATASET_EVENT", "JOB_EVENT", "RUN_EVENT", "RUN_EVENT"]
    run = model.run(engine, run_id)
    assert run.state == "COMPLETED"
    assert str(run.parent_run_id) == parent_id
    assert run.nominal_start_time == datetime(2024, 11, 1, tzinfo=UTC)
    assert (
        model.job(engine, "airflow", "hotel_dag.extract_guests").parent_job_id
        == model.job(engine, "airflow", "hotel_dag").id
    )
    (edge,) = model.all_rows(engine, t.column_lineage)
    assert (edge.output_field, edge.input_field) == ("guest", "guest_name")
    assert model.dataset(engine, NS, "hotel.rooms").current_version_id is not None
    assert ("exporter", "INPUT", "hotel.guests") in model.edges(engine)


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_client_without_a_valid_key_is_refused(server, engine, key, caplog):
    client = make_client(server.url, key)
    event = RunEvent(
        eventType=RunState.START,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(generate_new_uuid())),
        job=Job(namespace="ns", name="j"),
    )
    with caplog.at_level(logging.ERROR), pytest.raises(Exception) as info:
        client.emit(event)
    assert "401" in str(info.value)
    assert model.all_rows(engine, t.lineage_events) == []


def test_reads_and_health_need_no_key(server):
    import httpx

    assert httpx.get(f"{server.url}/api/v1/health").json()["status"] == "ok"
    response = httpx.post(f"{server.url}/api/v1/lineage", json={"eventTime": "2024-01-01T00:00:00Z"})
    assert response.status_code == 401
    assert response.json() == {
        "code": 401,
        "message": "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
    }
