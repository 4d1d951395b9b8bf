"""GET /api/v1/column-lineage over the current versions' column lineage."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.events import T0, column_lineage, dataset, run_event
from tests.support.marquez_spec import assert_conforms

S3 = "s3://lake"


def field(name, column):
    return f"datasetField:{S3}:{name}:{column}"


@pytest.fixture
def chain(client):
    """raw.x -> mid.a -> top.c, raw.y -> mid.b (top reads mid)."""
    raw = dataset(S3, "raw", columns=[("x", "int"), ("y", "text")])
    mid = dataset(
        S3,
        "mid",
        columns=[("a", "int"), ("b", "text")],
        facets={"columnLineage": column_lineage({"a": [(S3, "raw", "x")], "b": [(S3, "raw", "y")]})},
    )
    top = dataset(
        S3,
        "top",
        columns=[("c", "int")],
        facets={"columnLineage": column_lineage({"c": [(S3, "mid", "a")]}, subtype="AGGREGATION")},
    )
    for i, (name, inputs, outputs) in enumerate(
        (("build_mid", [raw], [mid]), ("build_top", [dataset(S3, "mid")], [top]))
    ):
        event = run_event(
            "COMPLETE",
            job=("spark", name),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(hours=i),
            inputs=inputs,
            outputs=outputs,
        )
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    return client


def lineage(client, node, **params):
    response = client.get("/api/v1/column-lineage", params={"nodeId": node, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_conforms(body, "/column-lineage")
    return {n["id"]: n for n in body["graph"]}


def test_upstream_of_a_field(chain):
    nodes = lineage(chain, field("top", "c"))
    assert set(nodes) == {field("top", "c"), field("mid", "a"), field("raw", "x")}
    top = nodes[field("top", "c")]
    assert top["type"] == "DATASET_FIELD"
    assert top["data"]["fieldType"] == "int" and top["data"]["transformationType"] == "DIRECT"
    assert [(f["dataset"], f["field"]) for f in top["data"]["inputFields"]] == [("mid", "a")]
    # Marquez's edge convention (its UI relies on it): origin is always the node itself.
    assert top["inEdges"] == [{"origin": field("top", "c"), "destination": field("mid", "a")}]
    assert nodes[field("mid", "a")]["outEdges"] == [{"origin": field("mid", "a"), "destination": field("top", "c")}]


def test_dataset_job_depth_and_downstream(chain):
    assert set(lineage(chain, f"dataset:{S3}:mid")) == {
        field("mid", "a"),
        field("mid", "b"),
        field("raw", "x"),
        field("raw", "y"),
    }
    assert set(lineage(chain, "job:spark:build_top")) == {field("top", "c"), field("mid", "a"), field("raw", "x")}
    assert set(lineage(chain, field("top", "c"), depth=1)) == {field("top", "c"), field("mid", "a")}
    down = lineage(chain, field("raw", "x"), withDownstream="true")
    assert set(down) == {field("raw", "x"), field("mid", "a"), field("top", "c")}


def test_bad_requests(chain):
    assert chain.get("/api/v1/column-lineage", params={"nodeId": "datasetField:x"}).status_code == 400
    versioned = chain.get("/api/v1/column-lineage", params={"nodeId": f"dataset:{S3}:mid#v1", "withDownstream": "true"})
    assert versioned.status_code == 400
    assert chain.get("/api/v1/column-lineage", params={"nodeId": f"dataset:{S3}:nope"}).status_code == 404
