"""GET /api/v1/lineage: exact node and edge sets on known graphs, directed, depth-limited, capped."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.support.events import T0, dataset, facet, run_event
from tests.support.marquez_spec import assert_conforms

NS, DB = "pipelines", "postgres://db:5432"


def job(client, name, inputs, outputs, minutes=0):
    event = run_event(
        "COMPLETE",
        job=(NS, name),
        run_id=uuid.uuid4(),
        time=T0 + timedelta(minutes=minutes),
        inputs=[dataset(DB, i) for i in inputs],
        outputs=[dataset(DB, o) for o in outputs],
    )
    assert client.post("/api/v1/lineage", json=event).status_code == 201


def graph(client, node, **params):
    response = client.get("/api/v1/lineage", params={"nodeId": node, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_conforms(body, "/lineage")
    nodes = {n["id"] for n in body["graph"]}
    edges = {(e["origin"], e["destination"]) for n in body["graph"] for e in n["inEdges"] + n["outEdges"]}
    return nodes, edges, body


def d(name):
    return f"dataset:{DB}:{name}"


def j(name):
    return f"job:{NS}:{name}"


@pytest.fixture
def diamond(client):
    """raw -> clean -> (left, right) -> report; 'audit' also reads raw (a sibling of clean)."""
    job(client, "clean", ["raw"], ["clean_t"])
    job(client, "left", ["clean_t"], ["left_t"])
    job(client, "right", ["clean_t"], ["right_t"])
    job(client, "report", ["left_t", "right_t"], ["report_t"])
    job(client, "audit", ["raw"], ["audit_t"])
    return client


def test_downstream_of_a_dataset(diamond):
    nodes, edges, _ = graph(diamond, d("clean_t"), direction="downstream")
    assert nodes == {d("clean_t"), j("left"), j("right"), d("left_t"), d("right_t"), j("report"), d("report_t")}
    assert (d("clean_t"), j("left")) in edges and (j("report"), d("report_t")) in edges


def test_both_directions_leave_out_siblings(diamond):
    nodes, _, body = graph(diamond, d("clean_t"))
    # Upstream: clean and raw. Downstream: the diamond. 'audit' only shares an input: not lineage of clean_t.
    assert j("audit") not in nodes and d("audit_t") not in nodes
    assert {j("clean"), d("raw"), j("report")} <= nodes
    assert [n["id"] for n in body["graph"]] == sorted(n["id"] for n in body["graph"])
    assert body["truncated"] is False


def test_depth_counts_job_hops(diamond):
    nodes, _, _ = graph(diamond, j("clean"), depth=1, direction="downstream")
    assert nodes == {j("clean"), d("clean_t"), j("left"), j("right"), d("left_t"), d("right_t")}
    nodes, _, _ = graph(diamond, j("clean"), depth=0, direction="downstream")
    assert nodes == {j("clean"), d("clean_t")}
    nodes, _, _ = graph(diamond, j("report"), depth=5, direction="upstream")
    assert nodes == {j("report"), d("left_t"), d("right_t"), j("left"), j("right"), d("clean_t"), j("clean"), d("raw")}


def test_node_data_and_edges(diamond):
    _, _, body = graph(diamond, j("report"), direction="upstream", depth=1)
    report = next(n for n in body["graph"] if n["id"] == j("report"))
    assert report["type"] == "JOB" and report["data"]["latestRun"]["state"] == "COMPLETED"
    assert report["data"]["currentRunUuid"] == report["data"]["latestRun"]["id"]
    assert report["inEdges"] == [
        {"origin": d("left_t"), "destination": j("report")},
        {"origin": d("right_t"), "destination": j("report")},
    ]
    left = next(n for n in body["graph"] if n["id"] == d("left_t"))
    assert left["type"] == "DATASET" and left["data"]["id"] == {"namespace": DB, "name": "left_t"}


def test_node_data_is_marquez_lineage_shape(client):
    """Marquez's lineage nodes carry JobData / DatasetData: no facets or column lineage, a job's current inputs
    and outputs (also those outside the graph), its latest run, a dataset's current schema with field tags."""
    run_id = uuid.uuid4()
    event = run_event(
        "COMPLETE",
        job=(NS, "load"),
        run_id=run_id,
        time=T0,
        inputs=[dataset(DB, "raw", columns=[("id", "INTEGER")]), dataset(DB, "lookup")],
        outputs=[dataset(DB, "clean", columns=[("id", "INTEGER"), ("email", "VARCHAR")])],
    )
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert client.put("/api/v1/tags/PII", json={"description": "personal data"}).status_code in (200, 201)
    encoded = quote(DB, safe="")
    assert client.post(f"/api/v1/namespaces/{encoded}/datasets/clean/fields/email/tags/PII").status_code == 200
    _, _, body = graph(client, d("clean"), direction="upstream", depth=0)
    assert [n["id"] for n in body["graph"]] == [d("clean")]  # depth 0 from a dataset: the dataset alone
    _, _, body = graph(client, d("clean"), direction="upstream", depth=1)
    by_id = {n["id"]: n for n in body["graph"]}
    load = by_id[j("load")]["data"]
    assert set(load) == {
        "id", "type", "name", "simpleName", "parentJobName", "parentJobUuid", "currentRunUuid", "createdAt",
        "updatedAt", "namespace", "inputs", "outputs", "location", "description", "latestRun",
    }  # fmt: skip
    assert load["inputs"] == [{"namespace": DB, "name": "lookup"}, {"namespace": DB, "name": "raw"}]
    assert load["outputs"] == [{"namespace": DB, "name": "clean"}]
    assert load["latestRun"]["id"] == str(run_id) == load["currentRunUuid"]
    assert load["latestRun"]["state"] == "COMPLETED"
    assert [v["datasetVersionId"]["name"] for v in load["latestRun"]["outputDatasetVersions"]] == ["clean"]
    assert load["createdAt"].endswith("Z")
    clean = by_id[d("clean")]["data"]
    assert "facets" not in clean and "columnLineage" not in clean
    assert clean["fields"] == [
        {"name": "id", "type": "INTEGER", "tags": [], "description": None},
        {"name": "email", "type": "VARCHAR", "tags": ["PII"], "description": None},
    ]
    assert (
        clean["currentVersion"] == client.get(f"/api/v1/namespaces/{encoded}/datasets/clean").json()["currentVersion"]
    )
    # A dataset only ever read shows the schema its readers describe.
    assert by_id[d("raw")]["data"]["fields"] == [{"name": "id", "type": "INTEGER", "tags": [], "description": None}]
    raw = client.get(f"/api/v1/namespaces/{encoded}/datasets/raw").json()
    assert by_id[d("raw")]["data"]["fields"] == raw["fields"]


def test_cycles_terminate(client):
    job(client, "a", ["x"], ["y"])
    job(client, "b", ["y"], ["x"])
    nodes, edges, _ = graph(client, j("a"))
    assert nodes == {j("a"), j("b"), d("x"), d("y")}
    assert len(edges) == 4


def test_node_cap_truncates(diamond):
    _, _, body = graph(diamond, d("raw"), direction="downstream", maxNodes=3)
    assert body["truncated"] is True


def test_soft_deleted_nodes_are_left_out(diamond):
    assert diamond.delete(f"/api/v1/namespaces/{NS}/jobs/left").status_code == 200
    nodes, _, _ = graph(diamond, d("clean_t"), direction="downstream")
    assert j("left") not in nodes and d("left_t") not in nodes and j("right") in nodes


def test_symlinked_dataset_is_one_node(client):
    hive = facet("SymlinksDatasetFacet", identifiers=[{"namespace": "hive://m", "name": "db.events", "type": "TABLE"}])
    event = run_event(
        "COMPLETE",
        job=(NS, "writer"),
        run_id=uuid.uuid4(),
        time=T0,
        outputs=[dataset("s3://lake", "events", facets={"symlinks": hive})],
    )
    client.post("/api/v1/lineage", json=event)
    job(client, "reader", [], [])
    reader = run_event(
        "COMPLETE",
        job=(NS, "reader"),
        run_id=uuid.uuid4(),
        time=T0 + timedelta(hours=1),
        inputs=[dataset("hive://m", "db.events")],
    )
    client.post("/api/v1/lineage", json=reader)
    nodes, _, _ = graph(client, "dataset:hive://m:db.events")
    assert nodes == {"dataset:s3://lake:events", j("writer"), j("reader")}


def test_bad_and_unknown_node_ids(client):
    for bad in ("table:x:y", "dataset:nocolon", "dataset::name"):
        response = client.get("/api/v1/lineage", params={"nodeId": bad})
        assert response.status_code == 400 and "nodeId" in response.json()["message"], bad
    missing = client.get("/api/v1/lineage", params={"nodeId": f"job:{NS}:nope"})
    assert missing.status_code == 404
    assert client.get("/api/v1/lineage").status_code == 400


def test_node_ids_with_ports_and_schemes_parse(client):
    job(client, "etl", ["schema.table:with:colons"], [])
    nodes, _, _ = graph(client, f"dataset:{DB}:schema.table:with:colons")
    assert d("schema.table:with:colons") in nodes


def test_fan_in_and_fan_out_across_namespaces_at_each_depth(client):
    """Two teams' jobs (namespaces team_a, team_b) fan into one table; two jobs of a third namespace fan out
    of it. Exact node sets upstream and downstream at depths 0, 1 and 2."""

    def ns_job(namespace, name, inputs, outputs):
        event = run_event(
            "COMPLETE",
            job=(namespace, name),
            run_id=uuid.uuid4(),
            time=T0,
            inputs=[dataset(DB, i) for i in inputs],
            outputs=[dataset(DB, o) for o in outputs],
        )
        assert client.post("/api/v1/lineage", json=event).status_code == 201

    ns_job("team_a", "load_a", ["src_a"], ["a"])
    ns_job("team_b", "load_b", ["src_b"], ["b"])
    ns_job("shared", "merge", ["a", "b"], ["merged"])
    ns_job("reports", "daily", ["merged"], ["daily_t"])
    ns_job("reports", "weekly", ["merged"], ["weekly_t"])
    ns_job("reports", "rollup", ["daily_t", "weekly_t"], ["rollup_t"])

    def nodes(depth, direction):
        found, _, _ = graph(client, "job:shared:merge", depth=depth, direction=direction)
        return found

    merge = {"job:shared:merge", d("a"), d("b"), d("merged")}
    assert nodes(0, "upstream") == {"job:shared:merge", d("a"), d("b")}
    assert nodes(1, "upstream") == merge - {d("merged")} | {
        "job:team_a:load_a",
        "job:team_b:load_b",
        d("src_a"),
        d("src_b"),
    }
    assert nodes(0, "downstream") == {"job:shared:merge", d("merged")}
    assert nodes(1, "downstream") == {"job:shared:merge", d("merged"), "job:reports:daily", "job:reports:weekly",
                                      d("daily_t"), d("weekly_t")}  # fmt: skip
    assert nodes(2, "downstream") == nodes(1, "downstream") | {"job:reports:rollup", d("rollup_t")}
    assert nodes(2, "both") == nodes(2, "downstream") | nodes(2, "upstream")
