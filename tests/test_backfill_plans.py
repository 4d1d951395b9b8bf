"""Backfill planning on event sequences whose correct plan is known: which jobs, which runs, in what order,
grouped by Airflow DAG, with the commands to run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.events import (
    POSTGRES_NS,
    T0,
    airflow_dag_run_id,
    airflow_task_run,
    column_lineage,
    dataset,
    facet,
    nominal_time,
    run_event,
)

DAY = timedelta(days=1)
NOV = datetime(2024, 11, 1, tzinfo=UTC)  # logical date of the first daily run


def post(client, *events):
    for event in events:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text


def preview(client, **request):
    response = client.post("/api/v1/backfills/preview", json=request)
    assert response.status_code == 200, response.text
    return response.json()


def steps_by_job(plan):
    return {s["job"]["name"]: s for s in plan["jobs"]}


def logical_dates(step):
    return [r["logicalDate"] for r in step["runs"]]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the room-bookings example: one DAG writes public.room_bookings, another DAG reads it ----------------


def bookings_day(client, logical_date: datetime, *, state="COMPLETE"):
    """One day of both DAGs: the ETL DAG loads room_bookings; an hour later the reports DAG reads it."""
    ns = "airflow-prod"
    table = lambda name: dataset(POSTGRES_NS, f"bookings.public.{name}")  # noqa: E731
    etl = airflow_task_run(
        namespace=ns,
        dag_id="bookings_etl",
        task_id="load_room_bookings",
        logical_date=logical_date,
        dag_run_id=airflow_dag_run_id(logical_date),
        task_run_id=uuid.uuid4(),
        inputs=[table("bookings")],
        outputs=[table("room_bookings")],
        state=state,
        owner="team-bookings",
    )
    reports_run = airflow_dag_run_id(logical_date)
    top = airflow_task_run(
        namespace=ns,
        dag_id="bookings_reports",
        task_id="top_rooms",
        logical_date=logical_date,
        dag_run_id=reports_run,
        task_run_id=uuid.uuid4(),
        inputs=[table("room_bookings")],
        outputs=[table("top_room_bookings")],
        owner="team-analytics",
        delay=timedelta(hours=1),
    )
    publish = airflow_task_run(
        namespace=ns,
        dag_id="bookings_reports",
        task_id="publish_dashboard",
        logical_date=logical_date,
        dag_run_id=reports_run,
        task_run_id=uuid.uuid4(),
        inputs=[table("top_room_bookings")],
        outputs=[table("room_dashboard")],
        owner="team-analytics",
        delay=timedelta(hours=2),
    )
    post(client, *etl, *top, *publish)
    return etl[0]["run"]["runId"]


@pytest.fixture
def bookings(client):
    return {day: bookings_day(client, NOV + day * DAY) for day in range(5)}


def test_linear_chain_across_two_dags(client, bookings):
    plan = preview(
        client,
        job={"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"},
        start=iso(NOV + 1 * DAY),
        end=iso(NOV + 3 * DAY),
    )
    steps = steps_by_job(plan)
    assert list(steps) == [
        "bookings_etl.load_room_bookings",
        "bookings_reports.top_rooms",
        "bookings_reports.publish_dashboard",
    ]
    expected_dates = [iso(NOV + 1 * DAY), iso(NOV + 2 * DAY)]
    for name, level in [
        ("bookings_etl.load_room_bookings", 0),
        ("bookings_reports.top_rooms", 1),
        ("bookings_reports.publish_dashboard", 2),
    ]:
        assert steps[name]["level"] == level
        assert [r["nominalStartTime"] for r in steps[name]["runs"]] == [
            iso(NOV + 1 * DAY),
            iso(NOV + 2 * DAY),
        ], name
        assert logical_dates(steps[name]) == expected_dates
    assert steps["bookings_etl.load_room_bookings"]["isRoot"] is True
    top = steps["bookings_reports.top_rooms"]
    assert top["airflow"] == {"dagId": "bookings_reports", "taskId": "top_rooms"}
    assert top["owners"] == ["team-analytics"]
    assert top["dependsOn"] == ["job:airflow-prod:bookings_etl.load_room_bookings"]
    assert top["path"] == [
        "job:airflow-prod:bookings_etl.load_room_bookings",
        f"dataset:{POSTGRES_NS}:bookings.public.room_bookings",
        "job:airflow-prod:bookings_reports.top_rooms",
    ]
    assert all(r["reasons"] and r["reasons"][0].startswith("read bad version") for r in top["runs"])
    assert plan["totals"] == {"jobs": 3, "runs": 6, "dags": 2, "datasets": 3, "levels": 3}
    assert [lvl["level"] for lvl in plan["levels"]] == [0, 1, 2]

    etl, reports = plan["dags"]
    assert (etl["dagId"], etl["level"], etl["tasks"], etl["dependsOn"]) == (
        "bookings_etl",
        0,
        ["load_room_bookings"],
        [],
    )
    assert (reports["dagId"], reports["level"], reports["tasks"], reports["dependsOn"]) == (
        "bookings_reports",
        1,
        ["publish_dashboard", "top_rooms"],
        ["bookings_etl"],
    )
    assert reports["owners"] == ["team-analytics"]
    assert reports["logicalDateRanges"] == [{"start": iso(NOV + DAY), "end": iso(NOV + 2 * DAY)}]
    commands = reports["commands"]
    assert commands["airflow2"] == [
        "airflow tasks clear -s 2024-11-02T00:00:00+00:00 -e 2024-11-03T00:00:00+00:00 "
        "-t '^(publish_dashboard|top_rooms)$' -y bookings_reports"
    ]
    assert commands["airflow2Backfill"] == [
        "airflow dags backfill --reset-dagruns -y -s 2024-11-02T00:00:00+00:00 -e 2024-11-03T00:00:00+00:00 "
        "-t '^(publish_dashboard|top_rooms)$' bookings_reports"
    ]
    assert commands["airflow3"] == [
        "airflow backfill create --dag-id bookings_reports --from-date 2024-11-02T00:00:00+00:00 "
        "--to-date 2024-11-03T00:00:00+00:00 --reprocess-behavior completed"
    ]
    assert commands["airflow3Api"] == [
        {
            "method": "POST",
            "path": "/api/v2/backfills",
            "body": {
                "dag_id": "bookings_reports",
                "from_date": "2024-11-02T00:00:00+00:00",
                "to_date": "2024-11-03T00:00:00+00:00",
                "reprocess_behavior": "completed",
                "run_backwards": False,
                "max_active_runs": 10,
                "dag_run_conf": {},
            },
        }
    ]


def test_a_failed_run_is_the_root_and_downstream_read_stale_data(client):
    """The ETL fails on Nov 3; the reports DAG runs anyway and reads Nov 2's table: it must be redone."""
    bookings_day(client, NOV + DAY)
    failed = bookings_day(client, NOV + 2 * DAY, state="FAIL")
    versions = client.get(
        f"/api/v1/namespaces/{POSTGRES_NS.replace('/', '%2F')}/datasets/bookings.public.room_bookings/versions"
    ).json()["versions"]
    stale = [v["version"] for v in versions if v["createdByRun"] and v["createdByRun"]["state"] == "COMPLETED"]
    plan = preview(client, runId=failed)
    steps = steps_by_job(plan)
    assert plan["root"]["kind"] == "run" and plan["root"]["runs"] == [failed]
    root = steps["bookings_etl.load_room_bookings"]
    assert [r["runId"] for r in root["runs"]] == [failed] and root["runs"][0]["state"] == "FAILED"
    top = steps["bookings_reports.top_rooms"]
    assert [r["nominalStartTime"] for r in top["runs"]] == [iso(NOV + 2 * DAY)]
    assert top["runs"][0]["reasons"] == [
        f"its data interval overlaps the bad window of {POSTGRES_NS}:bookings.public.room_bookings, "
        f"but it read stale version {stale[0]}"
    ]
    assert logical_dates(steps["bookings_reports.publish_dashboard"]) == ["2024-11-03T00:00:00Z"]


# --- plain (non-Airflow) jobs on a daily schedule ------------------------------------------------------

NS, DB = "pipelines", "postgres://db:5432"


def daily(client, name, inputs, outputs, day, *, state="COMPLETE", columns=None, lineage=None, hour=0, minutes=0):
    start = NOV + day * DAY
    run_id = uuid.uuid4()
    outs = [dataset(DB, o, columns=columns, facets={"columnLineage": lineage} if lineage else None) for o in outputs]
    facets = {"nominalTime": nominal_time(start, start + DAY)}
    time = start + DAY + timedelta(hours=hour, minutes=minutes)
    post(
        client,
        run_event("START", job=(NS, name), run_id=run_id, time=time, inputs=[dataset(DB, i) for i in inputs],
                  outputs=outs, run_facets=facets),
        run_event(state, job=(NS, name), run_id=run_id, time=time + timedelta(minutes=1),
                  inputs=[dataset(DB, i) for i in inputs], outputs=outs, run_facets=facets),
    )  # fmt: skip
    return str(run_id)


def test_a_diamond_plans_the_join_once_after_both_branches(client):
    roots = {}
    for day in range(3):
        roots[day] = daily(client, "clean", ["raw"], ["clean_t"], day, hour=1)
        daily(client, "left", ["clean_t"], ["left_t"], day, hour=2)
        daily(client, "right", ["clean_t"], ["right_t"], day, hour=2)
        daily(client, "report", ["left_t", "right_t"], ["report_t"], day, hour=3)
    plan = preview(client, runId=roots[1])
    steps = steps_by_job(plan)
    assert [(s["job"]["name"], s["level"]) for s in plan["jobs"]] == [
        ("clean", 0),
        ("left", 1),
        ("right", 1),
        ("report", 2),
    ]
    for name in ("left", "right", "report"):
        assert [r["nominalStartTime"] for r in steps[name]["runs"]] == [iso(NOV + DAY)], name
        assert steps[name]["airflow"] is None
    assert steps["report"]["dependsOn"] == [f"job:{NS}:left", f"job:{NS}:right"]
    assert {i["dataset"]["name"] for i in steps["report"]["inputs"]} == {"left_t", "right_t"}
    assert plan["dags"] == [] and plan["cycles"] == []
    assert plan["totals"]["runs"] == 4


def test_fan_out_with_a_namespace_filter(client):
    for ns, name in [("team_a", "a1"), ("team_a", "a2"), ("team_b", "b1")]:
        post(
            client,
            run_event("COMPLETE", job=(ns, name), run_id=uuid.uuid4(), time=T0, inputs=[dataset(DB, "raw")],
                      outputs=[dataset(DB, f"{name}_out")], run_facets={"nominalTime": nominal_time(NOV, NOV + DAY)}),
        )  # fmt: skip
    plan = preview(
        client,
        dataset={"namespace": DB, "name": "raw"},
        start=iso(NOV),
        end=iso(NOV + DAY),
        includeNamespaces=["team_a"],
    )
    assert [s["nodeId"] for s in plan["jobs"]] == ["job:team_a:a1", "job:team_a:a2"]
    assert plan["excluded"] == ["job:team_b:b1"]
    unfiltered = preview(client, dataset={"namespace": DB, "name": "raw"}, start=iso(NOV), end=iso(NOV + DAY))
    assert [s["nodeId"] for s in unfiltered["jobs"]] == ["job:team_a:a1", "job:team_a:a2", "job:team_b:b1"]
    excluded = preview(
        client, dataset={"namespace": DB, "name": "raw"}, start=iso(NOV), end=iso(NOV + DAY), excludeJobs=["a*"]
    )
    assert [s["nodeId"] for s in excluded["jobs"]] == ["job:team_b:b1"]


def test_a_cycle_is_reported_and_each_job_planned_once(client):
    for day in range(2):
        daily(client, "a", ["src", "d2"], ["d1"], day, hour=1)
        daily(client, "b", ["d1"], ["d2"], day, hour=2)
        daily(client, "after", ["d2"], ["final"], day, hour=3)
    plan = preview(client, dataset={"namespace": DB, "name": "src"}, start=iso(NOV + DAY), end=iso(NOV + 2 * DAY))
    assert plan["cycles"] == [{"jobs": [f"job:{NS}:a", f"job:{NS}:b"]}]
    assert [(s["job"]["name"], s["inCycle"]) for s in plan["jobs"]] == [("a", True), ("b", True), ("after", False)]
    steps = steps_by_job(plan)
    assert steps["a"]["level"] == steps["b"]["level"] < steps["after"]["level"]
    for name in ("a", "b", "after"):
        assert [r["nominalStartTime"] for r in steps[name]["runs"]] == [iso(NOV + DAY)], name


def test_hourly_bad_hours_widen_to_whole_days_downstream(client):
    hour = timedelta(hours=1)
    day2 = NOV + DAY
    for h in range(6):
        start = day2 + h * hour
        run_id = uuid.uuid4()
        post(
            client,
            run_event("COMPLETE", job=(NS, "ingest_hourly"), run_id=run_id, time=start + hour,
                      outputs=[dataset(DB, "events")], run_facets={"nominalTime": nominal_time(start, start + hour)}),
        )  # fmt: skip
    for day in range(3):
        daily(client, "daily_rollup", ["events"], ["rollup"], day - 1, hour=2)
    for moment in (day2 + 10 * hour, day2 + 20 * hour, day2 + DAY + hour):
        post(
            client,
            run_event("COMPLETE", job=(NS, "rollup_export"), run_id=uuid.uuid4(), time=moment + hour,
                      inputs=[dataset(DB, "rollup")], outputs=[dataset(DB, "export")],
                      run_facets={"nominalTime": nominal_time(moment, moment + hour)}),
        )  # fmt: skip
    plan = preview(
        client,
        job={"namespace": NS, "name": "ingest_hourly"},
        start=iso(day2 + 3 * hour),
        end=iso(day2 + 5 * hour),
    )
    steps = steps_by_job(plan)
    assert [r["nominalStartTime"] for r in steps["ingest_hourly"]["runs"]] == [
        iso(day2 + 3 * hour),
        iso(day2 + 4 * hour),
    ]
    assert [r["nominalStartTime"] for r in steps["daily_rollup"]["runs"]] == [iso(day2)]
    assert steps["daily_rollup"]["windows"] == [{"start": iso(day2), "end": iso(day2 + DAY)}]
    # The daily rollup is bad for the whole of Nov 2: every hourly export of that day is redone, not Nov 3's.
    assert [r["nominalStartTime"] for r in steps["rollup_export"]["runs"]] == [
        iso(day2 + 10 * hour),
        iso(day2 + 20 * hour),
    ]


def test_a_failed_data_quality_assertion_names_the_bad_version(client):
    daily(client, "load_orders", [], ["orders"], 0, columns=[("id", "int"), ("amount", "decimal")])
    test_run = uuid.uuid4()
    assertions = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[
            {"assertion": "not_null", "column": "id", "success": False},
            {"assertion": "unique", "column": "id", "success": True},
        ],
    )
    post(
        client,
        run_event("COMPLETE", job=("dbt", "orders.test"), run_id=test_run, time=NOV + DAY + timedelta(hours=1),
                  inputs=[dataset(DB, "orders", input_facets={"dataQualityAssertions": assertions})]),
    )  # fmt: skip
    daily(client, "revenue", ["orders"], ["revenue_t"], 0, hour=2)
    version = client.get(f"/api/v1/namespaces/{DB.replace('/', '%2F')}/datasets/orders").json()["currentVersion"]
    plan = preview(client, dataset={"namespace": DB, "name": "orders"}, version=version)
    assert plan["root"]["versions"] == [version]
    assert plan["root"]["failedAssertions"] == [
        {
            "assertion": "not_null",
            "column": "id",
            "runId": str(test_run),
            "job": {"namespace": "dbt", "name": "orders.test"},
        }
    ]
    steps = steps_by_job(plan)
    assert set(steps) == {"orders.test", "revenue"}
    assert steps["revenue"]["runs"][0]["reasons"][0] == f"read bad version {version} of {DB}:orders"


def test_a_dropped_column_only_impacts_its_consumers(client):
    cols_v1 = [("id", "int"), ("email", "text"), ("country", "text")]
    daily(client, "load_customers", [], ["customers"], 0, columns=cols_v1)
    customers = [(DB, "customers", "email")]
    daily(client, "marketing", ["customers"], ["mailing_list"], 0, hour=1, columns=[("address", "text")],
          lineage=column_lineage({"address": customers}))  # fmt: skip
    daily(client, "geo", ["customers"], ["by_country"], 0, hour=1, columns=[("country", "text")],
          lineage=column_lineage({"country": [(DB, "customers", "country")]}))  # fmt: skip
    daily(client, "mailer", ["mailing_list"], ["sent"], 0, hour=2)
    daily(client, "load_customers", [], ["customers"], 1, columns=[("id", "int"), ("country", "text")])
    daily(client, "marketing", ["customers"], ["mailing_list"], 1, hour=1, columns=[("address", "text")],
          lineage=column_lineage({"address": customers}))  # fmt: skip
    daily(client, "geo", ["customers"], ["by_country"], 1, hour=1, columns=[("country", "text")],
          lineage=column_lineage({"country": [(DB, "customers", "country")]}))  # fmt: skip
    daily(client, "mailer", ["mailing_list"], ["sent"], 1, hour=2)
    version = client.get(f"/api/v1/namespaces/{DB.replace('/', '%2F')}/datasets/customers").json()["currentVersion"]
    plan = preview(client, dataset={"namespace": DB, "name": "customers"}, version=version, schemaChange=True)
    assert plan["root"]["columns"] == ["email"]
    assert "email" in plan["root"]["description"]
    steps = steps_by_job(plan)
    assert list(steps) == ["marketing", "mailer"]
    assert [r["nominalStartTime"] for r in steps["marketing"]["runs"]] == [iso(NOV + DAY)]
    assert plan["notImpacted"] == [f"job:{NS}:geo"]
    mailing = next(d for d in plan["datasets"] if d["dataset"]["name"] == "mailing_list")
    assert mailing["columns"] == ["address"]
