"""Jobs that run inside Airflow tasks (dbt models under a dbt invocation under an Airflow task run, Spark jobs
under a Spark application submitted by an Airflow task): planned by their Airflow parent's data time, re-run
through that task, owned by its owners when they have none; the hierarchy shown by the Marquez API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.support.events import (
    DBT_PRODUCER,
    POSTGRES_NS,
    SPARK_PRODUCER,
    airflow_dag_run,
    airflow_dag_run_id,
    airflow_task_run,
    dataset,
    dbt_run,
    nominal_time,
    parent_facet,
    spark_run,
)
from tests.test_backfill_plans import post, preview, steps_by_job

DAY = timedelta(days=1)
NOV = datetime(2024, 11, 1, tzinfo=UTC)
AF, DBT, SPARK = "airflow-prod", "dbt", "spark-prod"
RAW = "warehouse.public.orders"
INVOCATION = "dbt-run-jaffle"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def model(name: str) -> str:
    return f"analytics.public.jaffle.{name}"


def load_day(client, day: datetime, *, state: str = "COMPLETE") -> str:
    """The daily Airflow task `load.orders` writes the raw orders table (5 minutes after its interval)."""
    run = uuid.uuid4()
    post(
        client,
        *airflow_task_run(
            namespace=AF,
            dag_id="load",
            task_id="orders",
            logical_date=day,
            dag_run_id=airflow_dag_run_id(day),
            task_run_id=run,
            inputs=[dataset(POSTGRES_NS, "shop.public.orders")],
            outputs=[dataset(POSTGRES_NS, RAW)],
            state=state,
            owner="team-load",
        ),
    )
    return str(run)


def dbt_day(
    client,
    day: datetime,
    *,
    models=("orders_daily",),
    children_first=False,
    state="COMPLETE",
    at: datetime | None = None,
) -> dict:
    """`transform.dbt_run` (a BashOperator running `dbt build`, no datasets of its own) for one logical date: its
    dbt invocation run has the task run as parent, each model run the invocation; root is the DAG run. They run
    two hours after the data interval, i.e. on the next day by the wall clock."""
    dag_run, task_run, invocation = airflow_dag_run_id(day), uuid.uuid4(), uuid.uuid4()
    root = (AF, "transform", dag_run)
    start = at or day + DAY + timedelta(hours=2, minutes=1)  # `at`: a rerun of that logical date, now
    task = airflow_task_run(
        namespace=AF,
        dag_id="transform",
        task_id="dbt_run",
        logical_date=day,
        dag_run_id=dag_run,
        task_run_id=task_run,
        inputs=[],
        outputs=[],
        owner="team-transform",
        delay=start - (day + DAY) - timedelta(minutes=1),
        duration=timedelta(minutes=15),
    )
    invocation_events = dbt_run(
        namespace=DBT,
        name=INVOCATION,
        run_id=invocation,
        parent=parent_facet(namespace=AF, name="transform.dbt_run", run_id=task_run, root=root, producer=DBT_PRODUCER),
        kind="JOB",
        start=start,
        duration=timedelta(minutes=10),
    )
    model_runs = {name: uuid.uuid4() for name in models}
    model_events = [
        event
        for name, run in model_runs.items()
        for event in dbt_run(
            namespace=DBT,
            name=model(name),
            run_id=run,
            parent=parent_facet(namespace=DBT, name=INVOCATION, run_id=invocation, root=root, producer=DBT_PRODUCER),
            kind="MODEL",
            start=start + timedelta(minutes=1),
            inputs=[dataset(POSTGRES_NS, RAW)],
            outputs=[dataset(POSTGRES_NS, f"analytics.public.{name}")],
            state=state,
        )
    ]
    if children_first:  # the Airflow task's events come last (a slow listener, a replay in another order)
        post(client, *model_events, *invocation_events, *task)
    else:
        post(client, *task, *invocation_events, *model_events)
    return {"task": str(task_run), "invocation": str(invocation), **{n: str(r) for n, r in model_runs.items()}}


@pytest.mark.parametrize("children_first", [False, True], ids=["parent-first", "children-first"])
def test_dbt_models_under_an_airflow_task_are_planned_by_its_logical_date_and_rerun_through_it(client, children_first):
    """Nov 2's load fails. The model run for Nov 1 ran (wall clock) on Nov 2 but processed Nov 1: not in the
    plan. The model run for Nov 2 ran on Nov 3 and read Nov 1's table: in the plan, re-run through the task."""
    runs = {}
    for i in range(3):
        day = NOV + i * DAY
        load = load_day(client, day, state="FAIL" if i == 1 else "COMPLETE")
        models = dbt_day(client, day, models=("orders_daily", "customers"), children_first=children_first)
        runs[i] = {"load": load, **models}
    plan = preview(client, runId=runs[1]["load"])
    steps = steps_by_job(plan)
    assert set(steps) == {"load.orders", model("orders_daily"), model("customers")}

    versions = client.get(f"/api/v1/namespaces/{quote(POSTGRES_NS, safe='')}/datasets/{RAW}/versions").json()
    nov1 = next(v["version"] for v in versions["versions"] if v["createdByRun"]["id"] == runs[0]["load"])
    for name in ("orders_daily", "customers"):
        step = steps[model(name)]
        assert [r["runId"] for r in step["runs"]] == [runs[1][name]]
        (run,) = step["runs"]
        assert (run["nominalStartTime"], run["nominalEndTime"]) == (iso(NOV + DAY), iso(NOV + 2 * DAY))
        assert run["nominalTimeFrom"] == runs[1]["task"]
        assert run["logicalDate"] == iso(NOV + DAY)
        assert run["startedAt"] == iso(NOV + 2 * DAY + timedelta(hours=2, minutes=2))  # ran on Nov 3
        assert run["reasons"] == [
            f"its data interval overlaps the bad window of {POSTGRES_NS}:{RAW}, but it read stale version {nov1}"
        ]
        assert step["windows"] == [{"start": iso(NOV + DAY), "end": iso(NOV + 2 * DAY)}]
        assert step["airflow"] == {"dagId": "transform", "taskId": "dbt_run"}
        assert step["rerunThrough"] == {"namespace": AF, "name": "transform.dbt_run"}
        assert step["rerun"] == "re-run through `transform.dbt_run` (Airflow task `dbt_run` of DAG `transform`)"
        assert step["owners"] == ["team-transform"]  # the models have none of their own

    # Both models collapse into one re-run of the task, for Nov 2 only.
    transform = next(g for g in plan["dags"] if g["dagId"] == "transform")
    assert transform["tasks"] == ["dbt_run"]
    assert transform["dependsOn"] == ["load"]
    assert transform["logicalDateRanges"] == [{"start": iso(NOV + DAY), "end": iso(NOV + DAY)}]
    assert transform["commands"]["airflow2"] == [
        "airflow tasks clear -s 2024-11-02T00:00:00+00:00 -e 2024-11-02T00:00:00+00:00 -t '^(dbt_run)$' -y transform"
    ]
    assert transform["commands"]["airflow3"] == [
        "airflow backfill create --dag-id transform --from-date 2024-11-02T00:00:00+00:00 "
        "--to-date 2024-11-02T00:00:00+00:00 --reprocess-behavior completed"
    ]
    assert plan["totals"]["dags"] == 2


def test_a_saved_plan_is_done_once_the_task_rerun_redid_the_models(client):
    failed = None
    for i in range(3):
        day = NOV + i * DAY
        load = load_day(client, day, state="FAIL" if i == 1 else "COMPLETE")
        failed = load if i == 1 else failed
        dbt_day(client, day)
    saved = client.post("/api/v1/backfills", json={"runId": failed, "includeRoot": False}).json()
    assert saved["progress"] == {"status": "open", "stepsDone": 0, "steps": 1, "runsDone": 0, "runs": 1}
    dbt_day(client, NOV, at=datetime.now(UTC) + timedelta(seconds=1))  # the wrong day: still open
    assert client.get(f"/api/v1/backfills/{saved['id']}").json()["progress"]["status"] == "open"
    dbt_day(client, NOV + DAY, at=datetime.now(UTC) + timedelta(seconds=1))  # `airflow tasks clear` for Nov 2
    progress = client.get(f"/api/v1/backfills/{saved['id']}").json()
    assert progress["progress"] == {"status": "done", "stepsDone": 1, "steps": 1, "runsDone": 1, "runs": 1}


def test_a_dbt_model_as_the_root_is_taken_by_its_logical_dates(client):
    runs = {i: dbt_day(client, NOV + i * DAY) for i in range(3)}
    plan = preview(
        client, job={"namespace": DBT, "name": model("orders_daily")}, start=iso(NOV + DAY), end=iso(NOV + 2 * DAY)
    )
    # The run for Nov 2, which ran on Nov 3; not the one for Nov 1, which ran on Nov 2.
    assert plan["root"]["runs"] == [runs[1]["orders_daily"]]
    assert plan["root"]["windows"] == [{"start": iso(NOV + DAY), "end": iso(NOV + 2 * DAY)}]
    (step,) = plan["jobs"]
    assert [(r["runId"], r["nominalTimeFrom"]) for r in step["runs"]] == [(runs[1]["orders_daily"], runs[1]["task"])]
    assert [(g["dagId"], g["tasks"], g["logicalDateRanges"]) for g in plan["dags"]] == [
        ("transform", ["dbt_run"], [{"start": iso(NOV + DAY), "end": iso(NOV + DAY)}])
    ]


def test_the_marquez_api_shows_the_hierarchy_and_the_children_of_a_job(client):
    runs = dbt_day(client, NOV, models=("orders_daily", "customers"))
    jobs = f"/api/v1/namespaces/{DBT}/jobs"
    invocation = client.get(f"{jobs}/{INVOCATION}").json()
    task = client.get(f"/api/v1/namespaces/{AF}/jobs/transform.dbt_run").json()
    dag = client.get(f"/api/v1/namespaces/{AF}/jobs/transform").json()
    orders = client.get(f"{jobs}/{model('orders_daily')}").json()
    customers = client.get(f"{jobs}/{model('customers')}").json()
    assert (orders["parentJobName"], orders["simpleName"]) == (INVOCATION, model("orders_daily"))
    assert orders["parentJobUuid"] == customers["parentJobUuid"] == str(uuid.UUID(orders["parentJobUuid"]))
    assert invocation["parentJobUuid"] not in (None, orders["parentJobUuid"])
    assert (invocation["parentJobName"], task["parentJobName"], dag["parentJobName"]) == (
        "transform.dbt_run",
        "transform",
        None,
    )
    assert task["simpleName"] == "dbt_run"
    # Marquez's `parent.child` name leads to the child.
    moved = client.get(f"{jobs}/{INVOCATION}.{model('orders_daily')}", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"].endswith(f"/jobs/{model('orders_daily')}")
    children = client.get(f"/api/v1/namespaces/{AF}/jobs/transform.dbt_run/children").json()
    assert [(j["namespace"], j["name"]) for j in children["jobs"]] == [(DBT, INVOCATION)]
    assert children["totalCount"] == 1
    below = client.get(f"{jobs}/{INVOCATION}/children").json()["jobs"]
    assert [(j["name"], j["latestRun"]["id"]) for j in below] == [
        (model("customers"), runs["customers"]),
        (model("orders_daily"), runs["orders_daily"]),
    ]
    assert client.get(f"{jobs}/nope/children").json() == {"code": 404, "message": "Job 'nope' not found."}


def spark_day(client, day: datetime, *, weekly_child: bool = False) -> dict:
    """`spark_etl.submit_orders` submits the Spark application `orders_enrichment` (parent: the task run); its
    SQL job writing orders_enriched has the application run as parent: two levels under the task."""
    dag_run, task_run, app = airflow_dag_run_id(day), uuid.uuid4(), uuid.uuid4()
    root = (AF, "spark_etl", dag_run)
    start = day + DAY + timedelta(hours=1)
    task = airflow_task_run(
        namespace=AF,
        dag_id="spark_etl",
        task_id="submit_orders",
        logical_date=day,
        dag_run_id=dag_run,
        task_run_id=task_run,
        inputs=[],
        outputs=[],
        owner="team-spark",
        delay=timedelta(hours=1),
        duration=timedelta(minutes=20),
    )
    app_events = spark_run(
        namespace=SPARK,
        name="orders_enrichment",
        run_id=app,
        parent=parent_facet(namespace=AF, name="spark_etl.submit_orders", run_id=task_run, root=root,
                            producer=SPARK_PRODUCER),
        kind="APPLICATION",
        start=start,
    )  # fmt: skip
    under_app = parent_facet(namespace=SPARK, name="orders_enrichment", run_id=app, root=root, producer=SPARK_PRODUCER)
    sql_run = uuid.uuid4()
    sql = spark_run(
        namespace=SPARK,
        name="orders_enrichment.execute_insert_into_hadoop_fs_relation_command.warehouse_orders_enriched",
        run_id=sql_run,
        parent=under_app,
        kind="SQL_JOB",
        start=start + timedelta(minutes=1),
        inputs=[dataset(POSTGRES_NS, RAW)],
        outputs=[dataset(POSTGRES_NS, "warehouse.public.orders_enriched")],
    )
    found = {"task": str(task_run), "app": str(app), "sql": str(sql_run)}
    if weekly_child:  # a child with a nominal time of its own: the week it aggregates
        weekly_run = uuid.uuid4()
        sql += spark_run(
            namespace=SPARK,
            name="orders_enrichment.execute_insert_into_hadoop_fs_relation_command.warehouse_orders_weekly",
            run_id=weekly_run,
            parent=under_app,
            kind="SQL_JOB",
            start=start + timedelta(minutes=2),
            inputs=[dataset(POSTGRES_NS, RAW)],
            outputs=[dataset(POSTGRES_NS, "warehouse.public.orders_weekly")],
            run_facets={"nominalTime": nominal_time(NOV - 4 * DAY, NOV + 3 * DAY)},
        )
        found["weekly"] = str(weekly_run)
    post(client, *task, *app_events, *sql)
    return found


def test_spark_jobs_two_levels_under_an_airflow_task_and_a_child_with_its_own_nominal_time(client):
    runs = {}
    for i in range(3):
        day = NOV + i * DAY
        load_day(client, day)
        runs[i] = spark_day(client, day, weekly_child=i == 1)
    plan = preview(client, job={"namespace": AF, "name": "load.orders"}, start=iso(NOV + DAY), end=iso(NOV + 2 * DAY))
    steps = steps_by_job(plan)
    enriched = steps["orders_enrichment.execute_insert_into_hadoop_fs_relation_command.warehouse_orders_enriched"]
    (run,) = enriched["runs"]
    assert run["runId"] == runs[1]["sql"]
    assert (run["nominalStartTime"], run["nominalTimeFrom"], run["logicalDate"]) == (
        iso(NOV + DAY),
        runs[1]["task"],  # from the Airflow task run, two parent links up
        iso(NOV + DAY),
    )
    assert enriched["airflow"] == {"dagId": "spark_etl", "taskId": "submit_orders"}
    assert enriched["rerunThrough"] == {"namespace": AF, "name": "spark_etl.submit_orders"}
    assert enriched["owners"] == ["team-spark"]

    weekly = steps["orders_enrichment.execute_insert_into_hadoop_fs_relation_command.warehouse_orders_weekly"]
    (own,) = weekly["runs"]
    assert (own["runId"], own["nominalStartTime"], own["nominalEndTime"], own["nominalTimeFrom"]) == (
        runs[1]["weekly"],
        "2024-10-28T00:00:00Z",  # its own nominal time wins over its parents'
        "2024-11-04T00:00:00Z",
        None,
    )
    assert own["logicalDate"] == iso(NOV + DAY)  # but its task is re-run for the task's logical date
    spark_etl = next(g for g in plan["dags"] if g["dagId"] == "spark_etl")
    assert spark_etl["tasks"] == ["submit_orders"]
    assert spark_etl["logicalDateRanges"][0]["start"] == iso(NOV + DAY)


def test_without_the_task_run_the_root_dag_run_gives_the_time_and_names_the_task(client):
    """The task's operator has OpenLineage emission turned off: only the DAG run and the dbt runs report. The
    model's `root` facet names the DAG run, whose nominal time it takes; the task is its parent's name."""
    for i in range(3):
        load_day(client, NOV + i * DAY)
    day = NOV + DAY
    dag_run, task_run, invocation, model_run = airflow_dag_run_id(day), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    root = (AF, "transform", dag_run)
    at = day + DAY + timedelta(hours=2)
    post(
        client,
        airflow_dag_run(namespace=AF, dag_id="transform", logical_date=day, dag_run_id=dag_run, event_type="START",
                        time=at),
        *dbt_run(namespace=DBT, name=INVOCATION, run_id=invocation, kind="JOB", start=at,
                 parent=parent_facet(namespace=AF, name="transform.dbt_run", run_id=task_run, root=root,
                                     producer=DBT_PRODUCER)),
        *dbt_run(namespace=DBT, name=model("orders_daily"), run_id=model_run, kind="MODEL", start=at,
                 parent=parent_facet(namespace=DBT, name=INVOCATION, run_id=invocation, root=root,
                                     producer=DBT_PRODUCER),
                 inputs=[dataset(POSTGRES_NS, RAW)], outputs=[dataset(POSTGRES_NS, "analytics.public.orders_daily")]),
    )  # fmt: skip
    plan = preview(client, job={"namespace": AF, "name": "load.orders"}, start=iso(day), end=iso(day + DAY))
    step = steps_by_job(plan)[model("orders_daily")]
    (run,) = step["runs"]
    assert (run["nominalStartTime"], run["nominalTimeFrom"], run["logicalDate"]) == (iso(day), str(dag_run), iso(day))
    assert step["rerunThrough"] == {"namespace": AF, "name": "transform.dbt_run"}
    assert step["airflow"] == {"dagId": "transform", "taskId": "dbt_run"}


def test_a_dbt_run_from_a_laptop_has_no_runnable_ancestor_and_is_judged_by_when_it_ran(client):
    for i in range(3):
        load_day(client, NOV + i * DAY)
    invocation = uuid.uuid4()
    at = NOV + DAY + timedelta(hours=10)  # Nov 2, 10:00, by hand
    post(
        client,
        *dbt_run(namespace=DBT, name=INVOCATION, run_id=invocation, parent=None, kind="JOB", start=at),
        *dbt_run(
            namespace=DBT,
            name=model("adhoc"),
            run_id=uuid.uuid4(),
            parent=parent_facet(namespace=DBT, name=INVOCATION, run_id=invocation, root=None, producer=DBT_PRODUCER),
            kind="MODEL",
            start=at,
            inputs=[dataset(POSTGRES_NS, RAW)],
            outputs=[dataset(POSTGRES_NS, "analytics.public.adhoc")],
        ),
    )
    plan = preview(client, job={"namespace": AF, "name": "load.orders"}, start=iso(NOV + DAY), end=iso(NOV + 2 * DAY))
    step = steps_by_job(plan)[model("adhoc")]
    assert step["airflow"] is None and step["rerunThrough"] is None
    assert step["rerun"] == f"no Airflow task runs it (nor its parent `{INVOCATION}`): re-run it by hand"
    assert [(r["nominalStartTime"], r["nominalTimeFrom"]) for r in step["runs"]] == [(None, None)]
    assert [g["dagId"] for g in plan["dags"]] == ["load"]


def test_a_failed_dbt_model_is_an_incident_of_the_airflow_tasks_owners(client):
    # Happening now (an hour ago): events received long after their time are history, not incidents.
    day = (datetime.now(UTC) - DAY - timedelta(hours=3)).replace(microsecond=0)
    load_day(client, day)
    runs = dbt_day(client, day, state="FAIL")
    incidents = client.get("/api/v1/incidents", params={"kind": "run_failed"}).json()["incidents"]
    failed = next(i for i in incidents if i["job"]["name"] == model("orders_daily"))
    assert failed["runId"] == runs["orders_daily"]
    impact = client.get(f"/api/v1/incidents/{failed['id']}").json()["impact"]
    assert impact["subjectOwners"] == ["team-transform"]
    plan = preview(client, runId=runs["orders_daily"])
    (root,) = [s for s in plan["jobs"] if s["isRoot"]]
    assert root["runs"][0]["nominalStartTime"] == iso(day)  # the root run's data time is its task's, too
    assert [(g["dagId"], g["tasks"]) for g in plan["dags"]] == [("transform", ["dbt_run"])]
    assert plan["root"]["windows"] == [{"start": iso(day), "end": iso(day + DAY)}]
