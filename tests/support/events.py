"""Builders for realistic OpenLineage events, written from the spec (2-0-2) and from what the Airflow
provider, Spark and dbt integrations really send (see shared/reference/openlineage-notes.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PYTHON_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
AIRFLOW_PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
SPARK_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
DBT_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/dbt"
FACET_URL = "https://openlineage.io/spec/facets/1-0-0/{}.json"

T0 = datetime(2024, 11, 1, 2, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def facet(schema_name: str, producer: str = PYTHON_PRODUCER, /, **fields: Any) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": FACET_URL.format(schema_name), **fields}


def schema(*columns: tuple[str, str] | dict, producer: str = PYTHON_PRODUCER) -> dict[str, Any]:
    fields = [c if isinstance(c, dict) else {"name": c[0], "type": c[1]} for c in columns]
    return facet("SchemaDatasetFacet", producer, fields=fields)


def dataset(
    namespace: str,
    name: str,
    *,
    columns: list | None = None,
    facets: dict | None = None,
    input_facets: dict | None = None,
    output_facets: dict | None = None,
) -> dict[str, Any]:
    all_facets = dict(facets or {})
    if columns is not None:
        all_facets["schema"] = schema(*columns)
    d: dict[str, Any] = {"namespace": namespace, "name": name, "facets": all_facets}
    if input_facets:
        d["inputFacets"] = input_facets
    if output_facets:
        d["outputFacets"] = output_facets
    return d


def run_event(
    event_type: str | None,
    *,
    job: tuple[str, str],
    run_id: str | uuid.UUID,
    time: datetime,
    inputs: list | None = None,
    outputs: list | None = None,
    run_facets: dict | None = None,
    job_facets: dict | None = None,
    producer: str = PYTHON_PRODUCER,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventTime": iso(time),
        "producer": producer,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": str(run_id), "facets": run_facets or {}},
        "job": {"namespace": job[0], "name": job[1], "facets": job_facets or {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
    }
    if event_type is not None:
        event["eventType"] = event_type
    return event


def nominal_time(start: datetime, end: datetime | None) -> dict[str, Any]:
    fields = {"nominalStartTime": iso(start)}
    if end is not None:
        fields["nominalEndTime"] = iso(end)
    return facet("NominalTimeRunFacet", **fields)


def column_lineage(mapping: dict[str, list[tuple[str, str, str]]], **transformation: str) -> dict[str, Any]:
    """output column → [(input namespace, input dataset, input column)]."""
    transformations = [
        {"type": transformation.get("type", "DIRECT"), "subtype": transformation.get("subtype", "IDENTITY")}
    ]
    return facet(
        "ColumnLineageDatasetFacet",
        fields={
            out: {
                "inputFields": [
                    {"namespace": ns, "name": name, "field": field, "transformations": transformations}
                    for ns, name, field in sources
                ]
            }
            for out, sources in mapping.items()
        },
    )


# --- Airflow ------------------------------------------------------------------------------------------

POSTGRES_NS = "postgres://warehouse.example.com:5432"


def airflow_dag_run_id(logical_date: datetime) -> uuid.UUID:
    """UUIDv7-shaped, with the logical date in the first 48 bits, as the provider builds them."""
    ms = int(logical_date.timestamp() * 1000)
    tail = uuid.uuid4().int & ((1 << 80) - 1)
    value = (ms << 80) | tail
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return uuid.UUID(int=value)


def airflow_task_run(
    *,
    namespace: str,
    dag_id: str,
    task_id: str,
    logical_date: datetime,
    dag_run_id: uuid.UUID,
    task_run_id: uuid.UUID,
    inputs: list,
    outputs: list,
    state: str = "COMPLETE",
    duration: timedelta = timedelta(minutes=3),
    owner: str = "team-bookings",
    delay: timedelta = timedelta(minutes=5),
    interval: timedelta = timedelta(days=1),
) -> list[dict[str, Any]]:
    """The START and COMPLETE/FAIL events of one Airflow task instance (provider 2.x): it starts `delay` after
    its data interval ends."""
    interval_end = logical_date + interval
    dag_run_facet = {
        "dag_id": dag_id,
        "run_id": f"scheduled__{logical_date.isoformat()}",
        "run_type": "scheduled",
        "logical_date": logical_date.isoformat(),
        "data_interval_start": logical_date.isoformat(),
        "data_interval_end": interval_end.isoformat(),
    }
    run_facets = {
        "nominalTime": nominal_time(logical_date, interval_end),
        "parent": facet(
            "ParentRunFacet",
            AIRFLOW_PRODUCER,
            run={"runId": str(dag_run_id)},
            job={"namespace": namespace, "name": dag_id},
            root={"run": {"runId": str(dag_run_id)}, "job": {"namespace": namespace, "name": dag_id}},
        ),
        "airflow": {
            "_producer": AIRFLOW_PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet",
            "dag": {"dag_id": dag_id, "owner": owner, "schedule_interval": "@daily", "tags": "[]"},
            "dagRun": dag_run_facet,
            "taskInstance": {"try_number": 1, "pool": "default_pool"},
            "task": {"task_id": task_id, "operator_class": "SQLExecuteQueryOperator"},
            "taskUuid": str(task_run_id),
        },
        "processing_engine": facet(
            "ProcessingEngineRunFacet",
            AIRFLOW_PRODUCER,
            version="2.10.3",
            name="Airflow",
            openlineageAdapterVersion="2.20.3",
        ),
    }
    job_facets = {
        "jobType": facet(
            "JobTypeJobFacet", AIRFLOW_PRODUCER, processingType="BATCH", integration="AIRFLOW", jobType="TASK"
        ),
        "ownership": facet("OwnershipJobFacet", AIRFLOW_PRODUCER, owners=[{"name": owner, "type": "team"}]),
        "sql": facet(
            "SQLJobFacet",
            AIRFLOW_PRODUCER,
            query="INSERT INTO room_bookings SELECT * FROM bookings",
            dialect="postgres",
        ),
    }
    name = f"{dag_id}.{task_id}"
    start_time = interval_end + delay
    end_facets = dict(run_facets)
    if state == "FAIL":
        end_facets["errorMessage"] = facet(
            "ErrorMessageRunFacet", AIRFLOW_PRODUCER, message="relation does not exist", programmingLanguage="python"
        )
    common = {"job": (namespace, name), "run_id": task_run_id, "job_facets": job_facets, "producer": AIRFLOW_PRODUCER}
    return [
        run_event("START", time=start_time, inputs=inputs, outputs=outputs, run_facets=run_facets, **common),
        run_event(state, time=start_time + duration, inputs=inputs, outputs=outputs, run_facets=end_facets, **common),
    ]


def airflow_dag_run(
    *, namespace: str, dag_id: str, logical_date: datetime, dag_run_id: uuid.UUID, event_type: str, time: datetime
) -> dict[str, Any]:
    interval_end = logical_date + timedelta(days=1)
    return run_event(
        event_type,
        job=(namespace, dag_id),
        run_id=dag_run_id,
        time=time,
        producer=AIRFLOW_PRODUCER,
        run_facets={
            "nominalTime": nominal_time(logical_date, interval_end),
            "airflowDagRun": {
                "_producer": AIRFLOW_PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet",
                "dag": {"dag_id": dag_id, "schedule_interval": "@daily"},
                "dagRun": {
                    "dag_id": dag_id,
                    "run_id": f"scheduled__{logical_date.isoformat()}",
                    "logical_date": logical_date.isoformat(),
                    "data_interval_start": logical_date.isoformat(),
                    "data_interval_end": interval_end.isoformat(),
                },
            },
        },
        job_facets={
            "jobType": facet(
                "JobTypeJobFacet", AIRFLOW_PRODUCER, processingType="BATCH", integration="AIRFLOW", jobType="DAG"
            ),
        },
    )


# --- jobs started by an Airflow task: dbt (openlineage-dbt) and Spark (openlineage-spark) -------------------


def parent_facet(
    *, namespace: str, name: str, run_id: uuid.UUID, root: tuple[str, str, uuid.UUID] | None, producer: str
) -> dict[str, Any]:
    """A ParentRunFacet 1-2-0: the parent run and job, and the `root` (namespace, name, run) of the hierarchy,
    as the dbt and Spark integrations fill it from the Airflow macros (`lineage_parent_id`, `lineage_root_*`)."""
    fields: dict[str, Any] = {"run": {"runId": str(run_id)}, "job": {"namespace": namespace, "name": name}}
    if root is not None:
        fields["root"] = {"run": {"runId": str(root[2])}, "job": {"namespace": root[0], "name": root[1]}}
    return {
        "_producer": producer,
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
        **fields,
    }


def job_type(integration: str, kind: str, producer: str) -> dict[str, Any]:
    return facet("JobTypeJobFacet", producer, processingType="BATCH", integration=integration, jobType=kind)


def dbt_run(
    *,
    namespace: str,
    name: str,
    run_id: uuid.UUID,
    parent: dict[str, Any] | None,
    kind: str,
    start: datetime,
    inputs: list | None = None,
    outputs: list | None = None,
    state: str = "COMPLETE",
    run_facets: dict | None = None,
    duration: timedelta = timedelta(minutes=2),
) -> list[dict[str, Any]]:
    """START and COMPLETE/FAIL of a dbt run: the invocation (`jobType JOB`, named `dbt-run-<project>`) or one
    model (`jobType MODEL`), as openlineage-dbt sends them: `dbt_version`, `dbt_run`, `processing_engine` and
    `parent` run facets, no `nominalTime`."""
    facets = {
        "dbt_version": {"_producer": DBT_PRODUCER, "_schemaURL": FACET_URL.format("DbtVersionRunFacet"),
                        "version": "1.8.7"},
        "dbt_run": {"_producer": DBT_PRODUCER, "_schemaURL": FACET_URL.format("DbtRunRunFacet"),
                    "invocation_id": str(run_id)},
        "processing_engine": facet("ProcessingEngineRunFacet", DBT_PRODUCER, version="1.8.7", name="dbt",
                                   openlineageAdapterVersion="1.23.0"),
        **(run_facets or {}),
    }  # fmt: skip
    return _start_and_end((namespace, name), run_id, "DBT", kind, DBT_PRODUCER, facets, parent, inputs, outputs,
                          start, state, start + duration)  # fmt: skip


def spark_run(
    *,
    namespace: str,
    name: str,
    run_id: uuid.UUID,
    parent: dict[str, Any] | None,
    kind: str,
    start: datetime,
    inputs: list | None = None,
    outputs: list | None = None,
    run_facets: dict | None = None,
) -> list[dict[str, Any]]:
    """START and COMPLETE of a Spark application (`jobType APPLICATION`) or of one of its SQL jobs
    (`jobType SQL_JOB`, named `<app>.<command>.<table>`, parent = the application run), as openlineage-spark
    sends them: `spark_properties`, `processing_engine`, `parent`; no `nominalTime`."""
    facets = {
        "spark_properties": {"_producer": SPARK_PRODUCER, "_schemaURL": FACET_URL.format("SparkPropertiesFacet"),
                             "properties": {"spark.master": "yarn", "spark.app.name": name.split(".")[0]}},
        "processing_engine": facet("ProcessingEngineRunFacet", SPARK_PRODUCER, version="3.5.1", name="spark",
                                   openlineageAdapterVersion="1.23.0"),
        **(run_facets or {}),
    }  # fmt: skip
    return _start_and_end((namespace, name), run_id, "SPARK", kind, SPARK_PRODUCER, facets, parent, inputs, outputs,
                          start, "COMPLETE", start + timedelta(minutes=4))  # fmt: skip


def _start_and_end(job, run_id, integration, kind, producer, facets, parent, inputs, outputs, start, state, end):
    """The START and the final event of an integration's run (dbt, Spark), with its `parent` facet if any."""
    if parent is not None:
        facets["parent"] = parent
    common = {
        "job": job,
        "run_id": run_id,
        "job_facets": {"jobType": job_type(integration, kind, producer)},
        "producer": producer,
        "inputs": inputs,
        "outputs": outputs,
        "run_facets": facets,
    }
    return [run_event("START", time=start, **common), run_event(state, time=end, **common)]
