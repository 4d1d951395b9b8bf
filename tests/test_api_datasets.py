"""Marquez API: datasets, validated against Marquez's reference OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.support.events import T0, column_lineage, dataset, facet, run_event
from tests.support.marquez_spec import assert_conforms

S3 = "s3://lake"
FILE = "gold/revenue by country.parquet"


def enc(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def seeded(client):
    orders = dataset(
        S3,
        "raw/orders",
        columns=[("order_id", "bigint"), ("amount", "decimal")],
        facets={
            "symlinks": facet(
                "SymlinksDatasetFacet", identifiers=[{"namespace": "hive://m", "name": "raw.orders", "type": "TABLE"}]
            )
        },
    )
    out = dataset(
        S3,
        FILE,
        columns=[{"name": "order_id", "type": "bigint", "description": "the order"}, ("revenue", "decimal")],
        facets={
            "columnLineage": column_lineage(
                {"order_id": [(S3, "raw/orders", "order_id")], "revenue": [(S3, "raw/orders", "amount")]}
            ),
            "documentation": facet("DocumentationDatasetFacet", description="Revenue per country"),
        },
    )
    run_id = uuid.uuid4()
    for kind, minutes in (("START", 0), ("COMPLETE", 3)):
        event = run_event(
            kind,
            job=("spark", "revenue"),
            run_id=run_id,
            time=T0 + timedelta(minutes=minutes),
            inputs=[orders],
            outputs=[out],
        )
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    return client


def test_list_datasets(seeded):
    response = seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets")
    assert response.status_code == 200
    body = response.json()
    assert_conforms(body, "/namespaces/{namespace}/datasets")
    assert body["totalCount"] == 2
    assert [d["name"] for d in body["datasets"]] == [FILE, "raw/orders"]
    assert body["datasets"][0]["id"] == {"namespace": S3, "name": FILE}
    assert [
        d["name"] for d in seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets?limit=1&offset=1").json()["datasets"]
    ] == ["raw/orders"]


def test_get_dataset_with_schema_facets_and_column_lineage(seeded):
    response = seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets/{enc(FILE)}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert_conforms(body, "/namespaces/{namespace}/datasets/{dataset}")
    assert body["fields"] == [
        {"name": "order_id", "type": "bigint", "tags": [], "description": "the order"},
        {"name": "revenue", "type": "decimal", "tags": [], "description": None},
    ]
    assert body["description"] == "Revenue per country"
    assert body["lastModifiedAt"] == "2024-11-01T02:03:00Z"
    assert body["currentVersion"] and body["deleted"] is False and body["tags"] == []
    assert set(body["facets"]) >= {"schema", "columnLineage", "documentation"}
    lineage = {c["name"]: c for c in body["columnLineage"]}
    assert lineage["revenue"]["inputFields"] == [
        {
            "namespace": S3,
            "dataset": "raw/orders",
            "field": "amount",
            "transformationDescription": None,
            "transformationType": "DIRECT",
        }
    ]


def test_dataset_read_only_shows_its_readers_schema(seeded):
    body = seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets/{enc('raw/orders')}").json()
    assert [f["name"] for f in body["fields"]] == ["order_id", "amount"]
    assert body["columnLineage"] is None


def test_symlinked_name_finds_the_dataset(seeded):
    found = seeded.get(f"/api/v1/namespaces/{enc('hive://m')}/datasets/raw.orders")
    assert found.status_code == 200, found.text
    assert found.json()["id"] == {"namespace": S3, "name": "raw/orders"}


def test_missing_and_hidden_datasets_are_404(seeded):
    missing = seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets/nope")
    assert missing.json() == {"code": 404, "message": "Dataset 'nope' not found."}
    assert seeded.get("/api/v1/namespaces/nope/datasets").json() == {
        "code": 404,
        "message": "Namespace 'nope' not found.",
    }
    seeded.delete(f"/api/v1/namespaces/{enc(S3)}")
    assert seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets/{enc(FILE)}").status_code == 404
    assert seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets").json() == {"datasets": [], "totalCount": 0}


def test_dataset_versions_with_the_run_that_wrote_them(seeded):
    base = f"/api/v1/namespaces/{enc(S3)}/datasets/{enc(FILE)}"
    listing = seeded.get(f"{base}/versions")
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert_conforms(body, "/namespaces/{namespace}/datasets/{dataset}/versions")
    assert body["totalCount"] == 1
    (version,) = body["versions"]
    current = seeded.get(base).json()["currentVersion"]
    assert version["version"] == current and version["id"]["version"] == current
    run = version["createdByRun"]
    assert run["state"] == "COMPLETED" and run["durationMs"] == 180000
    assert [v["datasetVersionId"]["name"] for v in run["outputDatasetVersions"]] == [FILE]
    assert [v["datasetVersionId"]["name"] for v in run["inputDatasetVersions"]] == ["raw/orders"]
    one = seeded.get(f"{base}/versions/{current}")
    assert one.status_code == 200
    assert_conforms(one.json(), "/namespaces/{namespace}/datasets/{dataset}/versions/{version}")
    missing = str(uuid.uuid4())
    assert seeded.get(f"{base}/versions/{missing}").json() == {
        "code": 404,
        "message": f"Dataset version '{missing}' not found.",
    }
    assert seeded.get(f"{base}/versions/not-a-uuid").status_code == 400


def test_runs_and_their_facets(seeded):
    run_id = seeded.get(f"/api/v1/namespaces/{enc(S3)}/datasets/{enc(FILE)}/versions").json()["versions"][0][
        "createdByRun"
    ]["id"]
    response = seeded.get(f"/api/v1/jobs/runs/{run_id}")
    assert response.status_code == 200
    body = response.json()
    assert_conforms(body, "/jobs/runs/{id}")
    assert body["startedAt"] == "2024-11-01T02:00:00Z" and body["endedAt"] == "2024-11-01T02:03:00Z"
    assert body["jobVersion"]["name"] == "revenue"
    facets = seeded.get(f"/api/v1/jobs/runs/{run_id}/facets", params={"type": "JOB"})
    assert facets.status_code == 200 and facets.json()["runId"] == run_id
    assert_conforms(facets.json(), "/jobs/runs/{id}/facets")
    assert seeded.get(f"/api/v1/jobs/runs/{run_id}/facets", params={"type": "dataset"}).status_code == 400
    missing = str(uuid.uuid4())
    assert seeded.get(f"/api/v1/jobs/runs/{missing}").json() == {"code": 404, "message": f"Run '{missing}' not found."}


def test_soft_delete_dataset_until_the_next_event(seeded):
    path = f"/api/v1/namespaces/{enc(S3)}/datasets/{enc(FILE)}"
    deleted = seeded.delete(path)
    assert deleted.status_code == 200
    assert_conforms(deleted.json(), "/namespaces/{namespace}/datasets/{dataset}", "delete")
    assert seeded.get(path).status_code == 404
    event = run_event(
        "START", job=("spark", "revenue"), run_id=uuid.uuid4(), time=T0 + timedelta(days=1), outputs=[dataset(S3, FILE)]
    )
    seeded.post("/api/v1/lineage", json=event)
    assert seeded.get(path).status_code == 200


def test_tags_on_datasets_and_fields(seeded):
    catalogue = seeded.put("/api/v1/tags/PII", json={"description": "Personal data"})
    assert catalogue.status_code == 200 and catalogue.json() == {"name": "PII", "description": "Personal data"}
    path = f"/api/v1/namespaces/{enc(S3)}/datasets/{enc(FILE)}"
    tagged = seeded.post(f"{path}/tags/SENSITIVE")
    assert tagged.status_code == 200
    assert_conforms(tagged.json(), "/namespaces/{namespace}/datasets/{dataset}/tags/{tag}", "post")
    assert tagged.json()["tags"] == ["SENSITIVE"]
    field = seeded.post(f"{path}/fields/order_id/tags/PII").json()
    assert [f["tags"] for f in field["fields"]] == [["PII"], []]
    # A reader-only dataset's fields can be tagged too.
    assert (
        seeded.post(f"/api/v1/namespaces/{enc(S3)}/datasets/{enc('raw/orders')}/fields/amount/tags/PII").status_code
        == 200
    )
    assert seeded.post(f"{path}/fields/nope/tags/PII").json() == {"code": 404, "message": "Field 'nope' not found."}
    assert seeded.get(path).json()["tags"] == ["SENSITIVE"]
    assert seeded.delete(f"{path}/tags/SENSITIVE").json()["tags"] == []
    assert seeded.delete(f"{path}/fields/order_id/tags/PII").json()["fields"][0]["tags"] == []
    tags = seeded.get("/api/v1/tags").json()
    assert_conforms(tags, "/tags")
    assert [t["name"] for t in tags["tags"]] == ["PII", "SENSITIVE"]


@pytest.mark.parametrize(
    "namespace, name, job",
    [
        ("café://données:5432", "表/🐍 data.csv", "équipe.tâche"),
        ("s3://bucket", "path/to/file.parquet", "dag.task@v2"),
        ("postgres://db:5432", "db.schema.100% table", "job with spaces"),
    ],
)
def test_hostile_names_round_trip(client, namespace, name, job):
    event = run_event(
        "COMPLETE",
        job=(namespace, job),
        run_id=uuid.uuid4(),
        time=T0,
        outputs=[dataset(namespace, name, columns=[("a", "int")])],
    )
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    got = client.get(f"/api/v1/namespaces/{enc(namespace)}/datasets/{enc(name)}")
    assert got.status_code == 200, got.text
    assert got.json()["id"] == {"namespace": namespace, "name": name}
    job_body = client.get(f"/api/v1/namespaces/{enc(namespace)}/jobs/{enc(job)}").json()
    assert job_body["name"] == job and job_body["outputs"] == [{"namespace": namespace, "name": name}]
    assert client.get(f"/api/v1/namespaces/{enc(namespace)}/datasets/{enc(name)}/versions").json()["totalCount"] == 1
