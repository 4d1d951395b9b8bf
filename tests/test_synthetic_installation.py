"""The synthetic installation behind the benchmarks reads like an ingested one through the API."""

from __future__ import annotations

from urllib.parse import quote

from app.services import synthetic


def test_a_synthetic_installation_is_walkable_and_plannable(client, engine):
    shape = synthetic.Shape(pipelines=2, layers=3, width=2, fan_in=1, outputs=1, runs_per_job=4, cross_links=0)
    counts = synthetic.generate(engine, shape)
    assert counts["runs"] == shape.jobs * 4 == 48
    jobs = client.get("/api/v1/namespaces/synthetic/jobs", params={"limit": 100}).json()
    assert jobs["totalCount"] == shape.jobs
    first = synthetic.job_name(0, 1, 0)
    job = client.get(f"/api/v1/namespaces/synthetic/jobs/{quote(first)}").json()
    assert job["latestRun"]["state"] == "COMPLETED"
    assert client.get(f"/api/v1/namespaces/synthetic/jobs/{quote(first)}/runs").json()["totalCount"] == 4
    # The API's downstream walk finds exactly the generator's own closure.
    g = synthetic._graph(shape)
    expected, frontier = set(), {synthetic.ids.job_id("synthetic", first)}
    while frontier:
        expected |= frontier
        outputs = {d for j in frontier for d in g.writes[j]}
        frontier = {j for j, ins in g.reads.items() if outputs & set(ins)} - expected
    graph = client.get(
        "/api/v1/lineage", params={"nodeId": f"job:synthetic:{first}", "direction": "downstream"}
    ).json()["graph"]
    downstream_jobs = [n["id"] for n in graph if n["type"] == "JOB"]
    assert sorted(downstream_jobs) == sorted(f"job:synthetic:{g.jobs[j]}" for j in expected)
    plan = client.post(
        "/api/v1/backfills/preview",
        json={"runId": str(synthetic.run_id(synthetic.ids.job_id("synthetic", first), 2))},
    ).json()
    assert len(plan["jobs"]) == len(expected)
    assert all(s["level"] == int(s["job"]["name"].split(".l")[1][:2]) - 1 for s in plan["jobs"])
    assert all(len(s["runs"]) == 1 and s["runs"][0]["nominalStartTime"] == "2026-01-01T02:00:00Z" for s in plan["jobs"])
    assert all(s["runs"][0]["reasons"][0].startswith("read bad version") for s in plan["jobs"][1:])
    dataset = synthetic.dataset_name(0, 1, 0, 0)
    columns = client.get(
        "/api/v1/column-lineage",
        params={"nodeId": f"datasetField:{synthetic.DATASET_NAMESPACE}:{dataset}:amount", "depth": 1},
    )
    assert columns.status_code == 200 and any(n["id"].endswith(":amount") for n in columns.json()["graph"])
