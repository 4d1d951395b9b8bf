"""Airflow awareness: which DAG and task a job is, the logical date of a run, and the commands that redo a
DAG's tasks for merged ranges of logical dates (Airflow 2 and Airflow 3)."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row

from app.schemas.backfill import AirflowCommands, AirflowTask, TimeWindow

# Facets the Airflow provider puts on task runs (`airflow`) and DAG runs (`airflowDagRun`).
TASK_FACET = "airflow"
DAG_RUN_FACET = "airflowDagRun"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def task_from_facets(run_facets: dict[str, Any]) -> AirflowTask | None:
    """From the provider's `airflow` run facet: dag.dag_id and task.task_id."""
    facet = run_facets.get(TASK_FACET)
    if not isinstance(facet, dict):
        return None
    dag, task = facet.get("dag"), facet.get("task")
    dag_id = _text(dag.get("dag_id")) if isinstance(dag, dict) else None
    dag_run = facet.get("dagRun")
    if dag_id is None and isinstance(dag_run, dict):
        dag_id = _text(dag_run.get("dag_id"))
    task_id = _text(task.get("task_id")) if isinstance(task, dict) else None
    if task_id is None:
        instance = facet.get("taskInstance")
        task_id = _text(instance.get("task_id")) if isinstance(instance, dict) else None
    return AirflowTask(dagId=dag_id, taskId=task_id) if dag_id and task_id else None


def dag_of_dag_run(run_facets: dict[str, Any]) -> str | None:
    """The DAG id of a DAG run, from the provider's `airflowDagRun` facet."""
    facet = run_facets.get(DAG_RUN_FACET)
    if not isinstance(facet, dict):
        return None
    dag, dag_run = facet.get("dag"), facet.get("dagRun")
    found = _text(dag.get("dag_id")) if isinstance(dag, dict) else None
    return found or (_text(dag_run.get("dag_id")) if isinstance(dag_run, dict) else None)


def task_from_parent(job: Row, parent: Row | None) -> AirflowTask | None:
    """A job whose parent job is an Airflow DAG is one of its tasks (the `parent` run facet names the DAG).
    The task id is the job name after the DAG id, when the name starts with it."""
    if parent is None or (parent.job_type or "").upper() == "TASK":
        return None  # no parent, or the parent is a task itself (a dbt or Spark run started by an Airflow task)
    airflow = (parent.integration or "").upper() == "AIRFLOW" or (job.integration or "").upper() == "AIRFLOW"
    if not airflow:
        return None
    dag_id = parent.name
    task_id = job.name[len(dag_id) + 1 :] if job.name.startswith(f"{dag_id}.") else job.name
    return AirflowTask(dagId=dag_id, taskId=task_id)


def logical_date(run: Row, run_facets: dict[str, Any]) -> datetime | None:
    """Airflow's logical date as the run recorded it, else the nominal start (the data interval start, which
    is the logical date of a scheduled Airflow 2 run)."""
    for name in (TASK_FACET, DAG_RUN_FACET):
        facet = run_facets.get(name)
        dag_run = facet.get("dagRun") if isinstance(facet, dict) else None
        if isinstance(dag_run, dict):
            for key in ("logical_date", "execution_date"):
                moment = _moment(dag_run.get(key))
                if moment is not None:
                    return moment
    return run.nominal_start_time


def owners_from_facets(facets: dict[str, Any]) -> list[str]:
    ownership = facets.get("ownership")
    owners = ownership.get("owners") if isinstance(ownership, dict) else None
    if not isinstance(owners, list):
        return []
    return [o["name"] for o in owners if isinstance(o, dict) and _text(o.get("name"))]


def dag_owner(run_facets: dict[str, Any]) -> list[str]:
    """The DAG's `owner` argument from the `airflow` facet (Airflow's default "airflow" says nothing)."""
    facet = run_facets.get(TASK_FACET)
    dag = facet.get("dag") if isinstance(facet, dict) else None
    owner = _text(dag.get("owner")) if isinstance(dag, dict) else None
    if owner is None:
        return []
    return [o.strip() for o in owner.split(",") if o.strip() and o.strip() != "airflow"]


def merge_logical_dates(dates: list[datetime], intervals: list[timedelta]) -> list[TimeWindow]:
    """Logical dates in ranges [first, last] (inclusive, as Airflow's -s/-e and --from/--to-date are): dates
    one schedule step apart join. The step is the DAG's most common data interval, else the smallest gap."""
    distinct = sorted(set(dates))
    if not distinct:
        return []
    positive = [i for i in intervals if i > timedelta(0)]
    if positive:
        step = Counter(positive).most_common(1)[0][0]
    else:
        gaps = [b - a for a, b in zip(distinct, distinct[1:], strict=False)]
        step = min(gaps) if gaps else timedelta(0)
    ranges: list[TimeWindow] = [TimeWindow(start=distinct[0], end=distinct[0])]
    for moment in distinct[1:]:
        if moment - ranges[-1].end <= step:
            ranges[-1] = TimeWindow(start=ranges[-1].start, end=moment)
        else:
            ranges.append(TimeWindow(start=moment, end=moment))
    return ranges


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def task_regex(tasks: list[str]) -> str:
    return "^(" + "|".join(re.escape(task) for task in sorted(tasks)) + ")$"


def commands(dag_id: str, tasks: list[str], ranges: list[TimeWindow]) -> AirflowCommands:
    """Airflow 2: clear exactly the impacted tasks of the existing DAG runs (or backfill them); Airflow 3:
    a backfill re-running the DAG runs, by CLI or REST API."""
    regex, dag = shlex.quote(task_regex(tasks)), shlex.quote(dag_id)
    result = AirflowCommands(airflow2=[], airflow2Backfill=[], airflow3=[], airflow3Api=[])
    for r in ranges:
        start, end = _date(r.start), _date(r.end)
        result.airflow2.append(f"airflow tasks clear -s {start} -e {end} -t {regex} -y {dag}")
        result.airflow2Backfill.append(f"airflow dags backfill --reset-dagruns -y -s {start} -e {end} -t {regex} {dag}")
        result.airflow3.append(
            f"airflow backfill create --dag-id {dag} --from-date {start} --to-date {end} --reprocess-behavior completed"
        )
        result.airflow3Api.append(
            {
                "method": "POST",
                "path": "/api/v2/backfills",
                "body": {
                    "dag_id": dag_id,
                    "from_date": start,
                    "to_date": end,
                    "reprocess_behavior": "completed",
                    "run_backwards": False,
                    "max_active_runs": 10,
                    "dag_run_conf": {},
                },
            }
        )
    return result
