"""From an impact to a plan: steps in topological levels, Airflow tasks grouped by DAG with merged logical
date ranges and commands, owners, explanations, totals."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from fnmatch import fnmatchcase
from operator import attrgetter
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Row, select

from app.db import tables as t
from app.db.dialect import in_values, uuid_text
from app.db.engine import read_connection
from app.db.json import dumps_bytes
from app.schemas.backfill import AirflowTask, BackfillPlan, BackfillRequest, DagGroup, Impact
from app.services.backfill import airflow, hierarchy
from app.services.backfill.impact import ImpactResult, JobImpact, SelectedRun, compute_impact
from app.services.backfill.roots import Affected
from app.services.backfill.windows import Window
from app.services.facets import facets_by_entity
from app.services.lineage import node_id

# A window with no recorded run is redone for every logical date inside it: [start, end - this].
_LAST_MOMENT = timedelta(seconds=1)

# A step's runs in data-time order (then by id): a key made in C for tens of thousands of runs.
_RUN_ORDER = attrgetter("window", "id")


def _windows(windows: list[Window]) -> list[dict[str, Any]]:
    return [{"start": w.start, "end": w.end} for w in windows]


def _columns(a: Affected) -> list[str] | None:
    return None if a.columns is None else sorted(a.columns)


def _kept(request: BackfillRequest, namespace: str, name: str) -> bool:
    if request.includeNamespaces and namespace not in request.includeNamespaces:
        return False
    if namespace in request.excludeNamespaces:
        return False
    if request.includeJobs and not any(fnmatchcase(name, p) for p in request.includeJobs):
        return False
    return not any(fnmatchcase(name, p) for p in request.excludeJobs)


def _run_facets(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Only the Airflow facets: a plan over thousands of runs must not load every facet they carry. Runs by
    their id as text."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    f = t.facets.c
    names = (airflow.TASK_FACET, airflow.DAG_RUN_FACET)
    # Run facets are stored with kind RUN (ingest): one probe of ix_facets_kind_name tells whether any run
    # has them at all, before sending tens of thousands of run ids (Postgres parses each) to find none.
    if (
        not run_ids
        or conn.execute(
            select(f.entity_id).where(f.kind == "RUN", f.name.in_(names), f.facet.is_not(None)).limit(1)
        ).first()
        is None
    ):
        return found
    for chunk in range(0, len(run_ids), 5000):
        rows = conn.execute(
            select(uuid_text(conn, f.entity_id), f.name, f.facet).where(
                in_values(conn, f.entity_id, run_ids[chunk : chunk + 5000]),
                f.name.in_(names),
                f.facet.is_not(None),
            )
        )
        for entity, name, facet in rows:
            found[entity][name] = facet
    return found


class _Builder:
    def __init__(self, conn: Connection, request: BackfillRequest, result: ImpactResult) -> None:
        self.conn, self.request, self.result = conn, request, result
        jobs = result.job_rows
        # Each job's ancestors (parent jobs, nearest first): an Airflow task's DAG, or the task a dbt or Spark
        # job runs inside (one query per generation, for the jobs that have a parent).
        self.ancestry = hierarchy.ancestry(conn, {j: row for j, row in jobs.items() if row.parent_job_id})
        ancestors = {a.id for chain in self.ancestry.values() for a in chain}
        # The nearest timed ancestor run of the runs with nominal times of their own of jobs that run inside
        # another (not Airflow tasks under their DAG): the Airflow task run whose logical date re-runs them.
        nested = {
            j
            for j, chain in self.ancestry.items()
            if (jobs[j].integration or "").upper() != "AIRFLOW" and airflow.task_from_parent(jobs[j], chain[0]) is None
        }
        self.timed_ancestor = {
            run: logical.source
            for run, logical in hierarchy.inherited(
                conn,
                [s.id for j in nested if j in result.jobs for s in result.jobs[j].runs.values() if s.time_from is None],
            ).items()
        }
        run_ids = [run for j in result.jobs.values() for run in j.runs]
        run_ids += [str(row.current_run_id) for row in jobs.values() if row.current_run_id]
        # The ancestor runs child runs took their data time from (an Airflow task run): their logical dates.
        run_ids += list({s.time_from for j in result.jobs.values() for s in j.runs.values() if s.time_from})
        run_ids += list(set(self.timed_ancestor.values()))
        self.run_facets = _run_facets(conn, run_ids)
        self.job_facets = facets_by_entity(conn, [*jobs, *result.datasets, *(ancestors - jobs.keys())])
        self.runnable: dict[uuid.UUID, tuple[AirflowTask | None, Row | None, bool]] = {}

    def job_node(self, job: uuid.UUID) -> str:
        row = self.result.job_rows[job]
        return node_id("JOB", row.namespace_name, row.name)

    def _facets_of_runs(self, impact: JobImpact):
        """The Airflow facets of the job's runs to redo, then of its current run: only runs that have some (a
        job without any has thousands of runs to skip)."""
        facets = self.run_facets
        if not facets:
            return
        current = self.result.job_rows[impact.job_id].current_run_id
        for run in [*impact.runs, str(current) if current is not None else None]:
            found = facets.get(run) if run is not None else None
            if found:
                yield found

    def _ancestor_facets(self, impact: JobImpact):
        """The Airflow facets of the ancestor runs the job's runs took their data time from."""
        facets = self.run_facets
        if facets:
            for run in impact.runs.values():
                found = facets.get(run.time_from) if run.time_from is not None else None
                if found:
                    yield found

    def airflow_task(self, impact: JobImpact) -> tuple[AirflowTask | None, Row | None, bool]:
        """The Airflow task that re-runs the job, the ancestor job it is (when known) and whether it is the job
        itself: the job is a task (its runs' `airflow` facet, or a DAG parent), else the nearest ancestor that
        is one (by its DAG parent, else by the `airflow` facet of the run the child took its time from)."""
        known = self.runnable.get(impact.job_id)
        if known is not None:
            return known
        row = self.result.job_rows[impact.job_id]
        chain = self.ancestry.get(row.id, [])
        found = self.runnable[impact.job_id] = self._find_task(impact, row, chain)
        return found

    def _find_task(self, impact: JobImpact, row: Row, chain: list[Row]) -> tuple[AirflowTask | None, Row | None, bool]:
        for facets in self._facets_of_runs(impact):
            task = airflow.task_from_facets(facets)
            if task is not None:
                return task, None, True
        task = airflow.task_from_parent(row, chain[0] if chain else None)
        if task is not None:
            return task, None, True
        for i, ancestor in enumerate(chain):
            task = airflow.task_from_parent(ancestor, chain[i + 1] if i + 1 < len(chain) else None)
            if task is not None:
                return task, ancestor, False
        for facets in self._ancestor_facets(impact):
            task = airflow.task_from_facets(facets)
            if task is not None:
                name = f"{task.dagId}.{task.taskId}"
                return task, next((a for a in chain if a.name == name), None), False
            # Time from the `root` DAG run (the task's own events never came: emission off for its operator):
            # the ancestor named `<dag_id>.<task_id>` is the task.
            dag_id = airflow.dag_of_dag_run(facets)
            for ancestor in chain if dag_id else ():
                if ancestor.name.startswith(f"{dag_id}.") and len(ancestor.name) > len(dag_id) + 1:
                    return AirflowTask(dagId=dag_id, taskId=ancestor.name[len(dag_id) + 1 :]), ancestor, False
        return None, None, False

    def rerun(self, impact: JobImpact) -> tuple[dict[str, Any] | None, str]:
        """The ancestor job that re-runs this one (as a NodeRef dict) and how the step is redone, in words."""
        task, through, own = self.airflow_task(impact)
        if task is None:
            chain = self.ancestry.get(impact.job_id, [])
            if chain:
                return None, f"no Airflow task runs it (nor its parent `{chain[0].name}`): re-run it by hand"
            return None, "no Airflow task runs it: re-run it by hand"
        what = f"Airflow task `{task.taskId}` of DAG `{task.dagId}`"
        if own:
            return None, what
        if through is None:
            return None, f"re-run through {what}"
        return {"namespace": through.namespace_name, "name": through.name}, f"re-run through `{through.name}` ({what})"

    def owners(self, impact: JobImpact) -> list[str]:
        row = self.result.job_rows[impact.job_id]
        owners = airflow.owners_from_facets(self.job_facets.get(row.id, {}))
        if not owners:
            for facets in self._facets_of_runs(impact):
                owners = airflow.dag_owner(facets)
                if owners:
                    break
        if not owners:  # a job without owners of its own: the owners of the Airflow task it runs inside
            _, through, _ = self.airflow_task(impact)
            if through is not None:
                owners = airflow.owners_from_facets(self.job_facets.get(through.id, {}))
            if not owners:
                for facets in self._ancestor_facets(impact):
                    owners = airflow.dag_owner(facets)
                    if owners:
                        break
        return sorted(set(owners))

    @staticmethod
    def versions(versions: set[str]) -> list[str]:
        """Sorted (kept as text: a bad version shows in its dataset, in every step that read it and in reasons)."""
        return sorted(versions)

    def step(self, impact: JobImpact) -> dict[str, Any]:
        """A PlanStep as a plain dict: thousands of runs, all from the database, need no validation, and dicts
        serialize through orjson in one pass."""
        row = self.result.job_rows[impact.job_id]
        names = self.result.dataset_rows
        facets = self.run_facets
        runs = sorted(impact.runs.values(), key=_RUN_ORDER)
        task = self.airflow_task(impact)[0]
        through, rerun = self.rerun(impact)
        return {
            "level": impact.level,
            "nodeId": node_id("JOB", row.namespace_name, row.name),
            "job": {"namespace": row.namespace_name, "name": row.name},
            "isRoot": impact.is_root,
            "airflow": _dumped(task),
            "rerunThrough": through,
            "rerun": rerun,
            "owners": self.owners(impact),
            "path": impact.path,
            "dependsOn": sorted(self.job_node(j) for j in self.result.upstream.get(impact.job_id, ())),
            "inputs": [
                {
                    "dataset": {"namespace": names[d].namespace_name, "name": names[d].name},
                    "versions": self.versions(a.versions),
                    "columns": _columns(a),
                    "windows": _windows(a.windows),
                }
                for d, a in sorted(
                    impact.bad_inputs.items(), key=lambda kv: (names[kv[0]].namespace_name, names[kv[0]].name)
                )
            ],
            "windows": _windows(impact.windows),
            "runs": [
                {
                    "runId": s.id,
                    "state": s.state,
                    "nominalStartTime": s.nominal_start_time,
                    "nominalEndTime": s.nominal_end_time,
                    "nominalTimeFrom": s.time_from,
                    "logicalDate": _logical_date(s, facets, self.timed_ancestor),
                    "startedAt": s.started_at,
                    "endedAt": s.ended_at,
                    "reasons": s.reasons,
                    "done": None,
                }
                for s in runs
            ],
            "inCycle": impact.in_cycle,
            "done": None,
        }

    def impact(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        result, request = self.result, self.request
        steps, excluded = [], []
        for impact in result.jobs.values():
            row = result.job_rows[impact.job_id]
            if impact.is_root and not request.includeRoot:
                continue
            if not _kept(request, row.namespace_name, row.name):
                excluded.append(node_id("JOB", row.namespace_name, row.name))
                continue
            steps.append(self.step(impact))
        steps.sort(key=lambda s: (s["level"], s["nodeId"]))
        datasets = [
            {
                "nodeId": node_id("DATASET", row.namespace_name, row.name),
                "dataset": {"namespace": row.namespace_name, "name": row.name},
                "versions": self.versions(result.datasets[d].versions),
                "columns": _columns(result.datasets[d]),
                "windows": _windows(result.datasets[d].windows),
                "path": result.datasets[d].path,
                "owners": sorted(set(airflow.owners_from_facets(self.job_facets.get(d, {})))),
            }
            for d, row in result.dataset_rows.items()
        ]
        datasets.sort(key=lambda d: d["nodeId"])

        dags = {_dag_key(s) for s in steps if s["airflow"]}
        impact = {
            "root": result.root.cause.model_dump(),
            "jobs": steps,
            "datasets": datasets,
            "cycles": [{"jobs": sorted(self.job_node(j) for j in c)} for c in result.cycles],
            "excluded": sorted(excluded),
            "notImpacted": sorted(self.job_node(j) for j in result.cleared),
            "totals": {
                "jobs": len(steps),
                "runs": sum(len(s["runs"]) for s in steps),
                "dags": len(dags),
                "datasets": len(datasets),
                "levels": len({s["level"] for s in steps}),
            },
        }
        return impact, steps


def _logical_date(run: SelectedRun, facets: dict[str, dict[str, Any]], timed_ancestor: dict[str, str]):
    """Airflow's logical date from the run's facets, else from those of the ancestor run it took its data time
    from or, with nominal times of its own, of its nearest timed ancestor (the Airflow task a dbt model or Spark
    job ran under: re-running that task is what redoes it), else its nominal start."""
    if facets:
        found = facets.get(run.id)
        if found is None:
            ancestor = run.time_from or timed_ancestor.get(run.id)
            found = facets.get(ancestor) if ancestor is not None else None
        if found is not None:
            return airflow.logical_date(run, found)
    return run.nominal_start_time


def _dumped(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump()


def _dag_key(step: dict[str, Any]) -> tuple[str, str]:
    """(namespace, DAG id) of the Airflow DAG that re-runs a step: a job run inside an Airflow task (a dbt or
    Spark job, in a namespace of its own) belongs to its task's DAG, in the task's namespace."""
    through = step.get("rerunThrough")
    return (through["namespace"] if through else step["job"]["namespace"], step["airflow"]["dagId"])


def dag_groups(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Airflow steps by DAG: one group per DAG with its tasks, merged logical-date ranges and commands."""
    by_dag: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        if s["airflow"] is not None:
            by_dag[_dag_key(s)].append(s)
    dag_of_job = {s["nodeId"]: _dag_key(s) for s in steps if s["airflow"]}
    groups = []
    for (namespace, dag_id), members in by_dag.items():
        dates, intervals = [], []
        for s in members:
            for run in s["runs"]:
                if run["logicalDate"] is not None:
                    dates.append(run["logicalDate"])
                if run["nominalStartTime"] and run["nominalEndTime"]:
                    intervals.append(run["nominalEndTime"] - run["nominalStartTime"])
            if not s["runs"]:  # nothing recorded: every logical date in the window
                for w in s["windows"]:
                    dates += [w["start"], max(w["start"], w["end"] - _LAST_MOMENT)]
        ranges = airflow.merge_logical_dates(dates, intervals)
        tasks = sorted({s["airflow"]["taskId"] for s in members if s["airflow"]})
        depends = set()
        for s in members:
            for node in s["dependsOn"]:
                upstream = dag_of_job.get(node)
                if upstream is not None and upstream != (namespace, dag_id):
                    depends.add(upstream[1])
        groups.append(
            DagGroup(
                namespace=namespace,
                dagId=dag_id,
                level=min(s["level"] for s in members),
                tasks=tasks,
                logicalDateRanges=ranges,
                owners=sorted({o for s in members for o in s["owners"]}),
                dependsOn=sorted(depends),
                commands=airflow.commands(dag_id, tasks, ranges),
            ).model_dump()
        )
    groups.sort(key=lambda g: (g["level"], g["namespace"], g["dagId"]))
    return groups


def _build(conn: Connection, request: BackfillRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return _Builder(conn, request, compute_impact(conn, request)).impact()


def impact_document(engine: Engine, request: BackfillRequest) -> dict[str, Any]:
    """The Impact as the API returns it, in plain dicts and lists (serialize with app.db.json.dumps_bytes)."""
    with read_connection(engine) as conn:
        return _build(conn, request)[0]


def impact(engine: Engine, request: BackfillRequest) -> Impact:
    return Impact.model_validate(impact_document(engine, request))


def plan_document_in(conn: Connection, request: BackfillRequest) -> dict[str, Any]:
    """The BackfillPlan as the API returns it, in plain dicts and lists (same fields, same order)."""
    found, steps = _build(conn, request)
    by_level: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        by_level[s["level"]].append(s)
    return {
        **found,
        "levels": [{"level": level, "steps": by_level[level]} for level in sorted(by_level)],
        "dags": dag_groups(steps),
    }


def plan_document(engine: Engine, request: BackfillRequest) -> dict[str, Any]:
    with read_connection(engine) as conn:
        return plan_document_in(conn, request)


def plan_body(document: dict[str, Any]) -> bytes:
    """A plan document's JSON body, the bytes dumps_bytes(document) writes, with each step serialized once: a
    step is listed in jobs and again in its level, and a day-wide plan's steps are most of a 24 MB body."""
    try:
        steps = {id(s): orjson.Fragment(dumps_bytes(s)) for s in document["jobs"]}
        return dumps_bytes(
            {
                **document,
                "jobs": [steps[id(s)] for s in document["jobs"]],
                "levels": [{**level, "steps": [steps[id(s)] for s in level["steps"]]} for level in document["levels"]],
            }
        )
    except (KeyError, TypeError):  # not a plan as plan_document builds it: serialize it as it is
        return dumps_bytes(document)


def plan_in(conn: Connection, request: BackfillRequest) -> BackfillPlan:
    return BackfillPlan.model_validate(plan_document_in(conn, request))


def plan(engine: Engine, request: BackfillRequest) -> BackfillPlan:
    with read_connection(engine) as conn:
        return plan_in(conn, request)
