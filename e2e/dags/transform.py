"""A DAG whose task starts jobs of its own, as a BashOperator running `dbt build` does: the task `dbt_run`
runs the SQL of one "model" and emits the dbt invocation's and the model's OpenLineage runs itself, with the
`parent` facet pointing at the Airflow task run and `root` at the DAG run (the provider's macros give their
ids, as they give them to dbt through OPENLINEAGE_PARENT_ID). The model reads `room_bookings`."""

import json
import os
import uuid
from datetime import UTC, datetime

from airflow.providers.openlineage.plugins.macros import (
    lineage_job_name,
    lineage_job_namespace,
    lineage_root_job_name,
    lineage_root_job_namespace,
    lineage_root_run_id,
    lineage_run_id,
)
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import job_type_job, parent_run

DBT_NAMESPACE = "dbt-e2e"
INVOCATION = "dbt-run-rooms"
MODEL = "warehouse.public.rooms.rooms_per_day"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt"


def _events(job: Job, run: Run, inputs=(), outputs=()):
    for state in (RunState.START, RunState.COMPLETE):
        yield RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=run,
            job=job,
            producer=PRODUCER,
            inputs=list(inputs),
            outputs=list(outputs),
        )


def dbt_build(ti, **_):
    hook = PostgresHook(postgres_conn_id="warehouse")
    hook.run(
        "INSERT INTO rooms_per_day (booked_on, rooms) SELECT booked_on, count(DISTINCT room) FROM room_bookings "
        "GROUP BY booked_on"
    )
    connection = hook.get_connection("warehouse")
    tables = f"postgres://{connection.host}:{connection.port}"
    root = parent_run.Root(
        run=parent_run.RootRun(runId=lineage_root_run_id(ti)),
        job=parent_run.RootJob(namespace=lineage_root_job_namespace(ti), name=lineage_root_job_name(ti)),
    )
    invocation = str(uuid.uuid4())
    under_task = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=lineage_run_id(ti)),
        job=parent_run.Job(namespace=lineage_job_namespace(), name=lineage_job_name(ti)),
        root=root,
    )
    under_invocation = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=invocation), job=parent_run.Job(namespace=DBT_NAMESPACE, name=INVOCATION), root=root
    )

    def job(name, kind):
        facet = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DBT", jobType=kind)
        return Job(namespace=DBT_NAMESPACE, name=name, facets={"jobType": facet})

    client = OpenLineageClient(config={"transport": json.loads(os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])})
    events = [
        *_events(job(INVOCATION, "JOB"), Run(runId=invocation, facets={"parent": under_task})),
        *_events(
            job(MODEL, "MODEL"),
            Run(runId=str(uuid.uuid4()), facets={"parent": under_invocation}),
            inputs=[InputDataset(namespace=tables, name="warehouse.public.room_bookings")],
            outputs=[OutputDataset(namespace=tables, name="warehouse.public.rooms_per_day")],
        ),
    ]
    for event in events:
        client.emit(event)


WEEK = {"start_date": datetime(2024, 11, 1), "end_date": datetime(2024, 11, 7), "schedule": "@daily", "catchup": True}

with DAG("transform", **WEEK):
    PythonOperator(task_id="dbt_run", python_callable=dbt_build)
