"""What realistic events (Airflow, Spark, dbt, static Dataset/Job events) turn into in the versioned model."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db import tables as t
from app.services import identifiers as ids
from tests.support import model
from tests.support.events import (
    POSTGRES_NS,
    T0,
    airflow_dag_run,
    airflow_dag_run_id,
    airflow_task_run,
    column_lineage,
    dataset,
    facet,
    iso,
    run_event,
)

BOOKING_COLUMNS = [("booking_id", "integer"), ("room_id", "integer"), ("booked_at", "timestamp")]


@pytest.fixture
def post(client):
    def post(*events):
        for event in events:
            response = client.post("/api/v1/lineage", json=event)
            assert response.status_code == 201, response.text

    return post


def test_airflow_dag_and_task_runs(post, engine):
    ns, dag = "airflow-prod", "bookings_daily"
    logical = T0
    dag_run, task_run = airflow_dag_run_id(logical), airflow_dag_run_id(logical)
    bookings = dataset(POSTGRES_NS, "hotel.public.bookings", columns=BOOKING_COLUMNS)
    rooms = dataset(POSTGRES_NS, "hotel.public.room_bookings", columns=BOOKING_COLUMNS)
    task_events = airflow_task_run(
        namespace=ns,
        dag_id=dag,
        task_id="load_room_bookings",
        logical_date=logical,
        dag_run_id=dag_run,
        task_run_id=task_run,
        inputs=[bookings],
        outputs=[rooms],
    )
    start_time = logical + timedelta(days=1)
    post(
        airflow_dag_run(
            namespace=ns, dag_id=dag, logical_date=logical, dag_run_id=dag_run, event_type="START", time=start_time
        ),
        *task_events,
        airflow_dag_run(
            namespace=ns,
            dag_id=dag,
            logical_date=logical,
            dag_run_id=dag_run,
            event_type="COMPLETE",
            time=start_time + timedelta(minutes=10),
        ),
    )

    dag_job = model.job(engine, ns, dag)
    task_job = model.job(engine, ns, f"{dag}.load_room_bookings")
    assert (dag_job.job_type, dag_job.integration, dag_job.parent_job_id) == ("DAG", "AIRFLOW", None)
    assert task_job.parent_job_id == dag_job.id
    assert task_job.simple_name == "load_room_bookings"
    assert (task_job.job_type, task_job.type) == ("TASK", "BATCH")

    task = model.run(engine, task_run)
    assert task.state == "COMPLETED"
    assert task.parent_run_id == dag_run
    assert task.started_at.isoformat() == "2024-11-02T02:05:00+00:00"
    assert task.ended_at.isoformat() == "2024-11-02T02:08:00+00:00"
    assert (task.nominal_start_time, task.nominal_end_time) == (logical, logical + timedelta(days=1))
    states = model.all_rows(
        engine, t.run_states, t.run_states.c.run_id == task_run, order_by=t.run_states.c.transitioned_at
    )
    assert [(s.event_type, s.state) for s in states] == [("START", "RUNNING"), ("COMPLETE", "COMPLETED")]
    assert model.run(engine, dag_run).state == "COMPLETED"
    assert task_job.current_run_id == task_run

    # The job version is Marquez's name-based id over the task's inputs, outputs and location.
    expected_version = ids.job_version(
        ns,
        f"{dag}.load_room_bookings",
        [(POSTGRES_NS, "hotel.public.bookings")],
        [(POSTGRES_NS, "hotel.public.room_bookings")],
        None,
    )
    assert task_job.current_version_id == expected_version == task.job_version_id

    written = model.dataset(engine, POSTGRES_NS, "hotel.public.room_bookings")
    version = model.one(engine, t.dataset_versions, t.dataset_versions.c.id == written.current_version_id)
    assert version.run_id == task_run
    assert [f["name"] for f in version.fields] == ["booking_id", "room_id", "booked_at"]
    assert written.current_version_id == ids.dataset_version(
        POSTGRES_NS,
        "default",
        "hotel.public.room_bookings",
        "hotel.public.room_bookings",
        [{"name": n, "type": ty} for n, ty in BOOKING_COLUMNS],
        "",
        task_run,
    )
    io = {(r.io_type, r.dataset_version_id) for r in model.all_rows(engine, t.run_io, t.run_io.c.run_id == task_run)}
    read = model.dataset(engine, POSTGRES_NS, "hotel.public.bookings")
    assert io == {("INPUT", read.current_version_id), ("OUTPUT", written.current_version_id)}

    assert model.edges(engine) == {
        (f"{dag}.load_room_bookings", "INPUT", "hotel.public.bookings"),
        (f"{dag}.load_room_bookings", "OUTPUT", "hotel.public.room_bookings"),
    }
    run_facets = model.facets_of(engine, task_run)
    assert {"airflow", "nominalTime", "parent", "processing_engine"} <= set(run_facets)
    assert run_facets["airflow"]["dagRun"]["logical_date"] == logical.isoformat()
    assert model.facets_of(engine, task_job.id)["ownership"]["owners"] == [{"name": "team-bookings", "type": "team"}]


def test_failed_run_keeps_the_previous_current_versions(post, engine):
    ns, dag, table = "airflow", "etl", dataset(POSTGRES_NS, "public.sales", columns=[("id", "int")])
    first, second = airflow_dag_run_id(T0), airflow_dag_run_id(T0 + timedelta(days=1))
    common = dict(namespace=ns, dag_id=dag, task_id="load", inputs=[], outputs=[table])
    post(*airflow_task_run(logical_date=T0, dag_run_id=uuid.uuid4(), task_run_id=first, **common))
    good = model.dataset(engine, POSTGRES_NS, "public.sales").current_version_id
    good_job_version = model.job(engine, ns, f"{dag}.load").current_version_id
    post(
        *airflow_task_run(
            logical_date=T0 + timedelta(days=1), dag_run_id=uuid.uuid4(), task_run_id=second, state="FAIL", **common
        )
    )
    failed = model.run(engine, second)
    assert failed.state == "FAILED"
    assert "errorMessage" in model.facets_of(engine, second)
    # The failed run wrote a version, but the dataset's current version is still the good one.
    versions = model.all_rows(engine, t.dataset_versions)
    assert len(versions) == 2
    assert model.dataset(engine, POSTGRES_NS, "public.sales").current_version_id == good
    assert failed.job_version_id == good_job_version  # same IO → same job version, recorded on the run


def test_spark_job_with_column_lineage_and_symlinks(post, engine):
    s3, hive = "s3://lake", "hive://metastore:9083"
    orders = dataset(
        s3,
        "raw/orders",
        columns=[("order_id", "bigint"), ("customer_id", "bigint"), ("amount", "decimal(10,2)")],
        facets={
            "symlinks": facet(
                "SymlinksDatasetFacet", identifiers=[{"namespace": hive, "name": "raw.orders", "type": "TABLE"}]
            )
        },
    )
    customers = dataset(s3, "raw/customers", columns=[("customer_id", "bigint"), ("country", "string")])
    lineage = column_lineage(
        {
            "order_id": [(s3, "raw/orders", "order_id")],
            "country": [(s3, "raw/customers", "country")],
            "revenue": [(s3, "raw/orders", "amount")],
        }
    )
    lineage["fields"]["revenue"]["inputFields"][0]["transformations"] = [
        {"type": "DIRECT", "subtype": "AGGREGATION", "description": "sum(amount)"}
    ]
    enriched = dataset(
        s3,
        "gold/revenue_by_country",
        columns=[("order_id", "bigint"), ("country", "string"), ("revenue", "decimal(20,2)")],
        facets={"columnLineage": lineage},
    )
    run_id = uuid.uuid4()
    spark_facets = {"jobType": facet("JobTypeJobFacet", processingType="BATCH", integration="SPARK", jobType="SQL_JOB")}
    for event_type, minutes in (("START", 0), ("COMPLETE", 4)):
        post(
            run_event(
                event_type,
                job=("spark", "revenue_app.insert_into_gold"),
                run_id=run_id,
                time=T0 + timedelta(minutes=minutes),
                inputs=[orders, customers],
                outputs=[enriched],
                job_facets=spark_facets,
            )
        )

    out = model.dataset(engine, s3, "gold/revenue_by_country")
    rows = model.all_rows(engine, t.column_lineage)
    by_field = {r.output_field: r for r in rows}
    assert set(by_field) == {"order_id", "country", "revenue"}
    version = model.one(engine, t.dataset_versions, t.dataset_versions.c.id == out.current_version_id)
    assert all(r.lineage_id == version.column_lineage_id for r in rows)
    revenue = by_field["revenue"]
    assert (revenue.input_field, revenue.transformation_type, revenue.transformation_subtype) == (
        "amount",
        "DIRECT",
        "AGGREGATION",
    )
    assert revenue.transformation_description == "sum(amount)"
    orders_row = model.dataset(engine, s3, "raw/orders")
    assert revenue.input_dataset_id == orders_row.id
    read = model.one(engine, t.run_io, t.run_io.c.run_id == run_id, t.run_io.c.dataset_id == orders_row.id)
    assert read.dataset_version_id == orders_row.current_version_id

    # A later job that names the Hive table reads the same dataset, through the symlink.
    post(
        run_event(
            "COMPLETE",
            job=("spark", "report"),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(hours=1),
            inputs=[dataset(hive, "raw.orders")],
        )
    )
    assert ("report", "INPUT", "raw/orders") in model.edges(engine)
    assert len(model.all_rows(engine, t.datasets, t.datasets.c.namespace_name == hive)) == 0


def test_dbt_model_and_failed_assertions(post, engine):
    ns, wh = "dbt", "snowflake://acme.eu-west-1"
    model_run, test_run = uuid.uuid4(), uuid.uuid4()
    dim = dataset(wh, "analytics.core.dim_customers", columns=[("customer_id", "number"), ("email", "varchar")])
    dbt_facets = {"jobType": facet("JobTypeJobFacet", processingType="BATCH", integration="DBT", jobType="MODEL")}
    post(
        run_event(
            "START", job=(ns, "acme.dim_customers"), run_id=model_run, time=T0, outputs=[dim], job_facets=dbt_facets
        ),
        run_event(
            "COMPLETE",
            job=(ns, "acme.dim_customers"),
            run_id=model_run,
            time=T0 + timedelta(minutes=1),
            outputs=[dim],
            job_facets=dbt_facets,
        ),
    )
    assertions = facet(
        "DataQualityAssertionsDatasetFacet",
        assertions=[
            {"assertion": "not_null", "success": True, "column": "customer_id"},
            {"assertion": "unique", "success": False, "column": "email"},
        ],
    )
    tested = dataset(wh, "analytics.core.dim_customers", input_facets={"dataQualityAssertions": assertions})
    post(
        run_event(
            "COMPLETE",
            job=(ns, "acme.dim_customers.test"),
            run_id=test_run,
            time=T0 + timedelta(minutes=2),
            inputs=[tested],
        )
    )

    dim_row = model.dataset(engine, wh, "analytics.core.dim_customers")
    link = model.one(engine, t.run_io, t.run_io.c.run_id == test_run)
    # The test read exactly the version the model run produced, and its assertions sit on that read.
    assert link.dataset_version_id == dim_row.current_version_id
    assert model.one(engine, t.dataset_versions, t.dataset_versions.c.id == link.dataset_version_id).run_id == model_run
    stored = model.facets_of(engine, link.id)["dataQualityAssertions"]
    assert [a["success"] for a in stored["assertions"]] == [True, False]


def test_dataset_event_versions_a_dataset_without_a_run(post, engine):
    ns, name = "postgres://db:5432", "shop.public.products"
    event = {
        "eventTime": iso(T0),
        "producer": "https://example.com/catalog-sync",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset(
            ns,
            name,
            columns=[("id", "int"), ("title", "text")],
            facets={"documentation": facet("DocumentationDatasetFacet", description="Products on sale")},
        ),
    }
    post(event)
    row = model.dataset(engine, ns, name)
    assert row.description == "Products on sale"
    version = model.one(engine, t.dataset_versions, t.dataset_versions.c.id == row.current_version_id)
    assert version.run_id is None
    assert model.all_rows(engine, t.runs) == []

    # Facets alone (no schema) describe the dataset without making a new version.
    later = {
        **event,
        "eventTime": iso(T0 + timedelta(hours=1)),
        "dataset": dataset(
            ns, name, facets={"documentation": facet("DocumentationDatasetFacet", description="Products")}
        ),
    }
    post(later)
    row = model.dataset(engine, ns, name)
    assert row.description == "Products"
    assert row.current_version_id == version.id
    assert len(model.all_rows(engine, t.dataset_versions)) == 1


def test_job_event_declares_lineage(post, engine):
    event = {
        "eventTime": iso(T0),
        "producer": "https://example.com/static",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {
            "namespace": "static",
            "name": "nightly_export",
            "facets": {
                "sourceCodeLocation": facet(
                    "SourceCodeLocationJobFacet", type="git", url="https://git.example.com/export"
                )
            },
        },
        "inputs": [dataset("db", "a")],
        "outputs": [dataset("s3://bucket", "exports/a.csv")],
    }
    post(event)
    job = model.job(engine, "static", "nightly_export")
    assert job.location == "https://git.example.com/export"
    assert job.current_version_id == ids.job_version(
        "static", "nightly_export", [("db", "a")], [("s3://bucket", "exports/a.csv")], "https://git.example.com/export"
    )
    assert model.edges(engine) == {("nightly_export", "INPUT", "a"), ("nightly_export", "OUTPUT", "exports/a.csv")}
    assert model.all_rows(engine, t.runs) == []


def test_deleted_facet_removes_it_for_good(post, engine):
    job, doc = ("ns", "documented"), facet("DocumentationJobFacet", description="old words")
    post(run_event("START", job=job, run_id=uuid.uuid4(), time=T0, job_facets={"documentation": doc}))
    assert model.job(engine, *job).description == "old words"
    post(
        run_event(
            "START",
            job=job,
            run_id=uuid.uuid4(),
            time=T0 + timedelta(hours=2),
            job_facets={"documentation": {"_deleted": True}},
        )
    )
    row = model.job(engine, *job)
    assert row.description is None
    assert "documentation" not in model.facets_of(engine, row.id)
    # An older event arriving late does not bring the deleted facet back.
    post(
        run_event(
            "START", job=job, run_id=uuid.uuid4(), time=T0 + timedelta(hours=1), job_facets={"documentation": doc}
        )
    )
    assert model.job(engine, *job).description is None


def test_a_nested_schema_is_kept_as_sent_and_shown_by_its_top_level_fields(post, client, engine):
    nested = dataset(
        "kafka://broker:9092",
        "customers",
        columns=[
            {"name": "id", "type": "long"},
            {
                "name": "address",
                "type": "struct",
                "fields": [
                    {"name": "city", "type": "string"},
                    {"name": "geo", "type": "struct", "fields": [{"name": "lat", "type": "double"}]},
                ],
            },
        ],
    )
    post(run_event("COMPLETE", job=("flink", "ingest"), run_id=uuid.uuid4(), time=T0, outputs=[nested]))
    shown = client.get("/api/v1/namespaces/kafka%3A%2F%2Fbroker%3A9092/datasets/customers").json()["fields"]
    assert [(f["name"], f["type"]) for f in shown] == [("id", "long"), ("address", "struct")]
    version = model.one(engine, t.dataset_versions)
    assert version.fields[1]["fields"][0]["name"] == "city"  # the version keeps the schema as sent


def test_run_facets_merge_across_events_later_wins(post, engine):
    run_id, job = uuid.uuid4(), ("ns", "merge")
    nominal = facet("NominalTimeRunFacet", nominalStartTime=iso(T0))
    post(
        run_event(
            "START",
            job=job,
            run_id=run_id,
            time=T0,
            run_facets={"nominalTime": nominal, "custom_a": {"v": 1}, "custom_b": {"v": 1}},
        ),
        run_event(
            "COMPLETE", job=job, run_id=run_id, time=T0 + timedelta(minutes=1), run_facets={"custom_b": {"v": 2}}
        ),
    )
    facets = model.facets_of(engine, run_id)
    assert facets["custom_a"] == {"v": 1} and facets["custom_b"] == {"v": 2}
    assert model.run(engine, run_id).nominal_start_time == T0  # kept although COMPLETE lacks nominalTime


def test_each_completed_run_writes_a_new_version_and_moves_current(post, engine):
    job, out = ("ns", "writer"), dataset("db", "table", columns=[("id", "int")])
    runs = [uuid.uuid4() for _ in range(3)]
    for i, run_id in enumerate(runs):
        post(
            run_event("START", job=job, run_id=run_id, time=T0 + timedelta(hours=i), outputs=[out]),
            run_event("COMPLETE", job=job, run_id=run_id, time=T0 + timedelta(hours=i, minutes=5), outputs=[out]),
        )
    versions = model.all_rows(engine, t.dataset_versions, order_by=t.dataset_versions.c.created_at)
    assert [v.run_id for v in versions] == runs
    row = model.dataset(engine, "db", "table")
    assert row.current_version_id == versions[-1].id
    assert row.last_modified_at == T0 + timedelta(hours=2, minutes=5)
    assert len(model.all_rows(engine, t.job_versions)) == 1  # same IO, same job version


def test_start_without_schema_then_complete_with_schema_leaves_one_version(post, engine):
    job, run_id = ("spark", "app.write"), uuid.uuid4()
    post(
        run_event("START", job=job, run_id=run_id, time=T0, outputs=[dataset("s3://b", "out")]),
        run_event(
            "COMPLETE",
            job=job,
            run_id=run_id,
            time=T0 + timedelta(minutes=1),
            outputs=[dataset("s3://b", "out", columns=[("a", "int")])],
        ),
    )
    (version,) = model.all_rows(engine, t.dataset_versions)
    assert [f["name"] for f in version.fields] == ["a"]
    assert model.dataset(engine, "s3://b", "out").current_version_id == version.id


def test_bare_start_does_not_wipe_edges_and_new_io_retires_old_edges(post, engine):
    job = ("ns", "moving")
    first = uuid.uuid4()
    post(
        run_event("COMPLETE", job=job, run_id=first, time=T0, inputs=[dataset("db", "a")], outputs=[dataset("db", "x")])
    )
    # A START without datasets (as some producers send) leaves the graph alone (Marquez #2543/#3093).
    post(run_event("START", job=job, run_id=uuid.uuid4(), time=T0 + timedelta(hours=1)))
    assert model.edges(engine) == {("moving", "INPUT", "a"), ("moving", "OUTPUT", "x")}
    # A newer completed run that reads b instead of a makes a new job version; a stops being current.
    post(
        run_event(
            "COMPLETE",
            job=job,
            run_id=uuid.uuid4(),
            time=T0 + timedelta(hours=2),
            inputs=[dataset("db", "b")],
            outputs=[dataset("db", "x")],
        )
    )
    assert model.edges(engine) == {("moving", "INPUT", "b"), ("moving", "OUTPUT", "x")}
    assert ("moving", "INPUT", "a") in model.edges(engine, current_only=False)
    assert len(model.all_rows(engine, t.job_versions)) == 2


def test_lifecycle_drop_marks_dataset_deleted(post, engine):
    drop = dataset(
        "db",
        "tmp_table",
        facets={"lifecycleStateChange": facet("LifecycleStateChangeDatasetFacet", lifecycleStateChange="DROP")},
    )
    post(
        run_event(
            "COMPLETE",
            job=("ns", "cleanup"),
            run_id=uuid.uuid4(),
            time=T0,
            outputs=[dataset("db", "tmp_table", columns=[("a", "int")])],
        )
    )
    assert model.dataset(engine, "db", "tmp_table").is_deleted is False
    post(
        run_event("COMPLETE", job=("ns", "cleanup"), run_id=uuid.uuid4(), time=T0 + timedelta(hours=1), outputs=[drop])
    )
    row = model.dataset(engine, "db", "tmp_table")
    assert (row.is_deleted, row.last_lifecycle_state) == (True, "DROP")


def test_data_source_facet_creates_the_source(post, engine):
    ds = dataset(
        "postgres://db.example:5432",
        "shop.orders",
        facets={
            "dataSource": facet(
                "DatasourceDatasetFacet", name="postgres://db.example:5432", uri="postgres://db.example:5432"
            )
        },
    )
    post(run_event("COMPLETE", job=("ns", "j"), run_id=uuid.uuid4(), time=T0, inputs=[ds]))
    with model.applied(engine).connect() as conn:
        sources = {r.name: (r.type, r.connection_url) for r in conn.execute(select(t.sources))}
    assert sources["postgres://db.example:5432"] == ("POSTGRESQL", "postgres://db.example:5432")
    assert (
        model.dataset(engine, "postgres://db.example:5432", "shop.orders").source_name == "postgres://db.example:5432"
    )


@pytest.mark.parametrize("order", ["start-first", "complete-first"])
def test_column_lineage_sent_only_on_start_counts_in_any_order(post, engine, order):
    """Spark often sends the columnLineage facet on one event of a run only."""
    run_id, job = uuid.uuid4(), ("spark", "app.copy")
    source = dataset("s3://b", "in", columns=[("a", "int")])
    lineage = column_lineage({"a_copy": [("s3://b", "in", "a")]})
    start = run_event(
        "START",
        job=job,
        run_id=run_id,
        time=T0,
        inputs=[source],
        outputs=[dataset("s3://b", "out", columns=[("a_copy", "int")], facets={"columnLineage": lineage})],
    )
    complete = run_event(
        "COMPLETE",
        job=job,
        run_id=run_id,
        time=T0 + timedelta(minutes=1),
        inputs=[source],
        outputs=[dataset("s3://b", "out", columns=[("a_copy", "int")])],
    )
    post(*([start, complete] if order == "start-first" else [complete, start]))
    (edge,) = model.all_rows(engine, t.column_lineage)
    assert (edge.output_field, edge.input_field) == ("a_copy", "a")
    current = model.dataset(engine, "s3://b", "out").current_version_id
    assert (
        edge.lineage_id == model.one(engine, t.dataset_versions, t.dataset_versions.c.id == current).column_lineage_id
    )


def test_readers_schemas_do_not_become_dataset_versions(post, client, engine):
    """A dataset's fields are what its published versions say; a reader's schema facet is kept as a facet, and
    describes the dataset's fields only while no version has a schema."""
    post(
        run_event(
            "COMPLETE",
            job=("ns", "reader"),
            run_id=uuid.uuid4(),
            time=T0,
            inputs=[dataset("db", "src", columns=[("x", "int")])],
        )
    )
    versions = client.get("/api/v1/namespaces/db/datasets/src/versions").json()["versions"]
    assert [v["fields"] for v in versions] == [[]]
    shown = client.get("/api/v1/namespaces/db/datasets/src").json()["fields"]
    assert [(f["name"], f["type"]) for f in shown] == [("x", "int")]
    src = model.dataset(engine, "db", "src")
    assert model.facets_of(engine, src.id)["schema"]["fields"] == [{"name": "x", "type": "int"}]
