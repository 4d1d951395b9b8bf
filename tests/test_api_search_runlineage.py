"""GET /search and GET /runlineage/upstream."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, text

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


def test_search_ignores_the_case_of_stored_names_and_takes_backslash_literally(client, engine):
    post_run(client, "Load_DIM_Customers", [r"raw\customers"], ["DIM_Customers"], 0)
    body = client.get("/api/v1/search", params={"q": "dim_cust"}).json()
    assert_conforms(body, "/search")
    assert [(r["type"], r["name"]) for r in body["results"]] == [
        ("DATASET", "DIM_Customers"),
        ("JOB", "Load_DIM_Customers"),
    ]
    found = client.get("/api/v1/search", params={"q": "W\\C"}).json()["results"]
    assert [r["name"] for r in found] == [r"raw\customers"]
    assert client.get("/api/v1/search", params={"q": "w%c"}).json()["totalCount"] == 0


def _postgres_only(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("trigram indexes are Postgres only; SQLite scans")


def test_search_trigram_indexes_exist_on_postgres(engine):
    _postgres_only(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar() == 1
        indexes = dict(
            conn.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%\\_name\\_trgm'")
            ).all()
        )
    assert set(indexes) == {"ix_jobs_name_trgm", "ix_datasets_name_trgm"}
    for name, table in (("ix_jobs_name_trgm", "jobs"), ("ix_datasets_name_trgm", "datasets")):
        assert f"ON public.{table} USING gin (name gin_trgm_ops)" in indexes[name]


def test_search_uses_the_trigram_indexes_on_postgres(client, engine):
    """With enough rows (and the statistics autovacuum keeps), Postgres picks the trigram indexes by itself:
    no enable_seqscan=off."""
    _postgres_only(engine)
    rows = 20_000
    with engine.begin() as conn:
        namespace = conn.execute(
            text(
                "INSERT INTO namespaces (id, name, created_at, updated_at) "
                "VALUES (gen_random_uuid(), 'bulk', now(), now()) RETURNING id"
            )
        ).scalar_one()
        for table, other_name, name in (
            ("jobs", "simple_name", "'dag_' || (i % 500) || '.task_' || md5(i::text)"),
            ("datasets", "physical_name", "'warehouse.s' || (i % 50) || '.t_' || md5(i::text)"),
        ):
            conn.execute(
                text(
                    f"INSERT INTO {table} (id, namespace_id, namespace_name, name, {other_name}, created_at, "
                    "updated_at) SELECT gen_random_uuid(), :ns, 'bulk', n, n, now(), now() "
                    f"FROM (SELECT CASE WHEN i % 4000 = 0 THEN 'Quarterly_Ledger_' || i ELSE {name} END AS n "
                    f"FROM generate_series(1, {rows}) AS i) AS names"
                ),
                {"ns": namespace},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs, datasets"))

    app_engine = client.app.state.engine
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(app_engine, "before_cursor_execute", record)
    try:
        body = client.get("/api/v1/search", params={"q": "LEDGER", "limit": 3}).json()
    finally:
        event.remove(app_engine, "before_cursor_execute", record)
    assert body["totalCount"] == 2 * rows // 4000
    assert [r["name"] for r in body["results"]] == ["Quarterly_Ledger_12000"] * 2 + ["Quarterly_Ledger_16000"]
    searches = [(s, p) for s, p in statements if "ILIKE" in s]
    assert len(searches) == 2  # the count and the page
    with engine.connect() as conn:
        for statement, parameters in searches:
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
            assert "Seq Scan" not in plan, plan
            assert "Bitmap Index Scan on ix_jobs_name_trgm" in plan, plan
            assert "Bitmap Index Scan on ix_datasets_name_trgm" in plan, plan


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
