"""GET /search and GET /runlineage/upstream."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.support.events import T0, dataset, run_event
from tests.support.marquez_spec import assert_conforms

NS, DB = "etl", "postgres://db:5432"


def post_run(client, job, inputs, outputs, minutes):
    run_id = uuid.uuid4()
    event = run_event(
        "COMPLETE",
        job=(NS, job),
        run_id=run_id,
        time=T0 + timedelta(minutes=minutes),
        inputs=[dataset(DB, i) for i in inputs],
        outputs=[dataset(DB, o) for o in outputs],
    )
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    return run_id


def test_search_by_substring_any_case(client, engine):
    post_run(client, "load_orders", ["raw_orders"], ["orders"], 0)
    post_run(client, "daily_report", ["orders"], ["report_100%"], 5)
    body = client.get("/api/v1/search", params={"q": "ORDERS"}).json()
    assert_conforms(body, "/search")
    assert [(r["type"], r["name"]) for r in body["results"]] == [
        ("JOB", "load_orders"),
        ("DATASET", "orders"),
        ("DATASET", "raw_orders"),
    ]
    assert body["totalCount"] == 3
    assert body["results"][1]["nodeId"] == f"dataset:{DB}:orders"
    jobs_only = client.get("/api/v1/search", params={"q": "orders", "filter": "JOB"}).json()
    assert [r["name"] for r in jobs_only["results"]] == ["load_orders"]
    limited = client.get("/api/v1/search", params={"q": "o", "limit": 2, "sort": "UPDATE_AT"}).json()
    assert len(limited["results"]) == 2 and limited["totalCount"] == 5
    # % and _ are literal characters, not wildcards.
    assert [r["name"] for r in client.get("/api/v1/search", params={"q": "100%"}).json()["results"]] == ["report_100%"]
    assert client.get("/api/v1/search", params={"q": "_"}).json()["totalCount"] == 4
    assert client.get("/api/v1/search", params={"q": " "}).status_code == 400
    assert client.get("/api/v1/search").status_code == 400


def test_upstream_run_lineage_follows_the_versions_read(client, engine):
    first = post_run(client, "extract", ["api"], ["raw"], 0)
    second = post_run(client, "transform", ["raw"], ["clean"], 5)
    third = post_run(client, "publish", ["clean"], ["mart"], 10)
    response = client.get("/api/v1/runlineage/upstream", params={"runId": str(third)})
    assert response.status_code == 200
    body = response.json()
    assert_conforms(body, "/runlineage/upstream")
    assert [r["run"]["id"] for r in body["runs"]] == [str(third), str(second), str(first)]
    assert body["runs"][0]["inputs"][0]["name"] == "clean"
    assert body["runs"][0]["inputs"][0]["producedByRunId"] == str(second)
    assert body["runs"][2]["inputs"][0]["producedByRunId"] is None  # 'api' has no known writer
    shallow = client.get("/api/v1/runlineage/upstream", params={"runId": str(third), "depth": 1}).json()
    assert [r["run"]["id"] for r in shallow["runs"]] == [str(third), str(second)]
    assert client.get("/api/v1/runlineage/upstream", params={"runId": str(uuid.uuid4())}).status_code == 404
