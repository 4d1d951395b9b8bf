"""GET /api/v1/column-lineage over the current versions' column lineage, or from a given version."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

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


@pytest.fixture
def rewired(client):
    """spark/build_mid writes mid twice. First from raw: a <- raw.x, b <- raw.y. Then, reading extra as well
    (so a new job version): a <- extra.z (now a bigint), b <- raw.y."""
    raw = dataset(S3, "raw", columns=[("x", "int"), ("y", "text")])
    extra = dataset(S3, "extra", columns=[("z", "bigint")])
    wirings = (
        ([raw], "int", {"a": [(S3, "raw", "x")], "b": [(S3, "raw", "y")]}),
        ([raw, extra], "bigint", {"a": [(S3, "extra", "z")], "b": [(S3, "raw", "y")]}),
    )
    for i, (inputs, a_type, mapping) in enumerate(wirings):
        mid = dataset(
            S3, "mid", columns=[("a", a_type), ("b", "text")], facets={"columnLineage": column_lineage(mapping)}
        )
        event = run_event(
            "COMPLETE",
            job=("spark", "build_mid"),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(hours=i),
            inputs=inputs,
            outputs=[mid],
        )
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    return client


def dataset_versions(client, name):
    """Oldest first."""
    body = client.get(f"/api/v1/namespaces/{quote(S3, safe='')}/datasets/{name}/versions").json()
    return [v["version"] for v in sorted(body["versions"], key=lambda v: v["createdAt"])]


def job_versions(client, name):
    """Oldest first."""
    body = client.get(f"/api/v1/namespaces/spark/jobs/{name}/versions").json()
    return [v["version"] for v in sorted(body["versions"], key=lambda v: v["createdAt"])]


def test_versioned_nodes_start_from_that_versions_column_lineage(rewired):
    old, new = dataset_versions(rewired, "mid")
    now = lineage(rewired, field("mid", "a"))
    assert set(now) == {field("mid", "a"), field("extra", "z")}
    assert now[field("mid", "a")]["data"]["datasetVersion"] == new
    assert now[field("mid", "a")]["data"]["fieldType"] == "bigint"

    then = lineage(rewired, f"{field('mid', 'a')}#{old}")
    assert set(then) == {field("mid", "a"), field("raw", "x")}
    mid_a = then[field("mid", "a")]
    assert mid_a["data"]["datasetVersion"] == old and mid_a["data"]["fieldType"] == "int"
    assert [(f["dataset"], f["field"]) for f in mid_a["data"]["inputFields"]] == [("raw", "x")]
    assert mid_a["inEdges"] == [{"origin": field("mid", "a"), "destination": field("raw", "x")}]
    assert lineage(rewired, f"{field('mid', 'a')}#{new}") == now

    assert set(lineage(rewired, f"dataset:{S3}:mid")) == {
        field("mid", "a"),
        field("mid", "b"),
        field("extra", "z"),
        field("raw", "y"),
    }
    assert set(lineage(rewired, f"dataset:{S3}:mid#{old}")) == {
        field("mid", "a"),
        field("mid", "b"),
        field("raw", "x"),
        field("raw", "y"),
    }


def test_versioned_job_node_starts_from_what_that_job_version_wrote(rewired):
    first, second = job_versions(rewired, "build_mid")
    old, new = dataset_versions(rewired, "mid")
    then = lineage(rewired, f"job:spark:build_mid#{first}")
    assert set(then) == {field("mid", "a"), field("mid", "b"), field("raw", "x"), field("raw", "y")}
    assert then[field("mid", "a")]["data"]["datasetVersion"] == old
    assert set(lineage(rewired, f"job:spark:build_mid#{second}")) == set(lineage(rewired, "job:spark:build_mid"))
    assert lineage(rewired, f"job:spark:build_mid#{second}")[field("mid", "a")]["data"]["datasetVersion"] == new


def test_unknown_and_malformed_versions(rewired):
    def get(node):
        return rewired.get("/api/v1/column-lineage", params={"nodeId": node})

    (raw_version,) = dataset_versions(rewired, "raw")
    for node in (
        f"dataset:{S3}:mid#{uuid.uuid4()}",
        f"dataset:{S3}:mid#{raw_version}",  # a version, but of another dataset
        f"{field('mid', 'a')}#{uuid.uuid4()}",
        f"job:spark:build_mid#{uuid.uuid4()}",
        f"job:spark:build_mid#{dataset_versions(rewired, 'mid')[0]}",  # a dataset version is no job version
    ):
        response = get(node)
        assert response.status_code == 404, node
        assert response.json()["code"] == 404 and response.json()["message"], node
    for node in (f"dataset:{S3}:mid#v1", f"{field('mid', 'a')}#", "job:spark:build_mid#not-a-uuid"):
        response = get(node)
        assert response.status_code == 400, node
        assert response.json()["code"] == 400 and "UUID" in response.json()["message"], node
