"""The real marquez-python client, unmodified, against a live `headwater serve`: the read side it offers
for namespaces, sources, datasets, dataset versions, jobs and runs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from marquez_client import MarquezClient
from marquez_client.models import DatasetId, DatasetType, JobType

from tests.support.events import T0, column_lineage, dataset, facet, run_event

PG = "postgres://warehouse:5432"
S3 = "s3://lake"


@pytest.fixture
def marquez(live_server):
    run_id = uuid.uuid4()
    source = dataset(
        PG,
        "shop.public.orders",
        columns=[("id", "int"), ("amount", "numeric")],
        facets={"dataSource": facet("DatasourceDatasetFacet", name=PG, uri=PG)},
    )
    out = dataset(
        S3,
        "gold/orders.parquet",
        columns=[("id", "int")],
        facets={"columnLineage": column_lineage({"id": [(PG, "shop.public.orders", "id")]})},
    )
    for kind, minutes in (("START", 0), ("COMPLETE", 2)):
        event = run_event(
            kind,
            job=("etl", "export/orders"),
            run_id=run_id,
            time=T0 + timedelta(minutes=minutes),
            inputs=[source],
            outputs=[out],
        )
        assert httpx.post(f"{live_server.url}/api/v1/lineage", json=event).status_code == 201
    client = MarquezClient(url=live_server.url)
    client.run_id = str(run_id)
    return client


def test_namespaces_and_sources(marquez):
    assert {n["name"] for n in marquez.list_namespaces()["namespaces"]} == {"etl", PG, S3}
    assert marquez.get_namespace(S3)["name"] == S3
    created = marquez.create_namespace("team/finance", "finance-owners", "Finance pipelines")
    assert created["ownerName"] == "finance-owners"
    assert marquez.get_namespace("team/finance")["description"] == "Finance pipelines"
    assert marquez.get_source(PG)["connectionUrl"] == PG
    assert PG in {s["name"] for s in marquez.list_sources()["sources"]}


def test_datasets_and_versions(marquez):
    listed = marquez.list_datasets(S3)
    assert [d["name"] for d in listed["datasets"]] == ["gold/orders.parquet"]
    got = marquez.get_dataset(S3, "gold/orders.parquet")
    assert got["fields"][0]["name"] == "id"
    assert got["columnLineage"][0]["inputFields"][0]["field"] == "id"
    versions = marquez.list_dataset_versions(S3, "gold/orders.parquet")["versions"]
    assert [v["version"] for v in versions] == [got["currentVersion"]]
    version = marquez.get_dataset_version(S3, "gold/orders.parquet", got["currentVersion"])
    assert version["createdByRun"]["id"] == marquez.run_id


def test_jobs_and_runs(marquez):
    assert [j["name"] for j in marquez.list_jobs("etl")["jobs"]] == ["export/orders"]
    job = marquez.get_job("etl", "export/orders")
    assert job["latestRun"]["state"] == "COMPLETED"
    assert job["outputs"] == [{"namespace": S3, "name": "gold/orders.parquet"}]
    runs = marquez.list_job_runs("etl", "export/orders")["runs"]
    assert [r["id"] for r in runs] == [marquez.run_id]
    assert marquez.get_job_run(marquez.run_id)["durationMs"] == 120000


def test_legacy_writes_through_the_client(marquez):
    marquez.create_namespace("legacy", "me")
    marquez.create_source("pg2", "POSTGRESQL", "postgresql://db2:5432/app")
    marquez.create_dataset(
        "legacy",
        "public.items",
        DatasetType.DB_TABLE,
        "public.items",
        "pg2",
        fields=[{"name": "id", "type": "INTEGER"}],
    )
    assert marquez.get_dataset("legacy", "public.items")["fields"][0]["name"] == "id"
    marquez.create_job("legacy", "copy_items", JobType.BATCH, inputs=[DatasetId("legacy", "public.items")])
    run = marquez.create_job_run("legacy", "copy_items")
    marquez.mark_job_run_as_started(run["id"])
    assert marquez.mark_job_run_as_completed(run["id"])["state"] == "COMPLETED"
    assert marquez.tag_dataset("legacy", "public.items", "PII")["tags"] == ["PII"]
    marquez.create_tag("SENSITIVE", "restricted")
    assert {t["name"] for t in marquez.list_tags()["tags"]} == {"PII", "SENSITIVE"}
