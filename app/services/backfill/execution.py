"""Running a saved plan through Airflow: starting it (or saying what it would call), pausing, resuming and
cancelling it, and its state as the API shows it. The state is all in the database (backfill_executions, one
unit per DAG and level, the audit log); the executor (executor.py) advances it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from app.db import tables as t
from app.db.engine import read_connection, write_transaction
from app.schemas.airflow import (
    AuditEntry,
    ConnectionTest,
    ControlRequest,
    DagCheck,
    DryRun,
    Execution,
    ExecutionLevel,
    ExecutionUnit,
    PlannedCall,
    RunRequest,
)
from app.schemas.backfill import PlanStep, SavedPlan, TimeWindow
from app.services.backfill import connections, planner, saved
from app.services.backfill.airflow_api import AirflowApi, AirflowRefused, AirflowUnavailable, Call
from app.services.backfill.connections import ConnectionConfig
from app.services.backfill.notify import announce
from app.services.errors import Conflict, InvalidRequest, NotFound
from app.settings import Settings

ACTIVE = ("running", "paused", "cancelling")
AUDIT_SHOWN = 500  # newest audit entries in the execution's answer


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def dag_key(step: PlanStep) -> tuple[str, str]:
    """(namespace, DAG id) of the DAG that re-runs a step: a job run inside a task belongs to the task's DAG."""
    namespace = step.rerunThrough.namespace if step.rerunThrough else step.job.namespace
    return namespace, step.airflow.dagId  # type: ignore[union-attr]


def build_units(plan: SavedPlan, found: dict[str, ConnectionConfig]) -> list[dict[str, Any]]:
    """One unit per DAG per level (a DAG with tasks at several levels is re-run a level at a time), and one for
    each level's steps no Airflow task re-runs."""
    units = []
    # (namespace, DAG, task) -> the unit re-running it and for which logical dates: a task whose child jobs
    # (dbt models one after the other) sit at several levels is re-run once, at the first, which redoes them all.
    covered: dict[tuple[str, str, str], tuple[dict[str, Any], set[str]]] = {}
    for level in plan.levels:
        runnable = [s for s in level.steps if s.airflow is not None]
        by_dag: dict[tuple[str, str], list[PlanStep]] = {}
        for step in runnable:
            by_dag.setdefault(dag_key(step), []).append(step)
        for group in planner.dag_groups([s.model_dump() for s in runnable]):
            members = by_dag[(group["namespace"], group["dagId"])]
            planned = sorted(
                {(s.airflow.taskId, iso(r.logicalDate)) for s in members for r in s.runs if r.logicalDate}  # type: ignore[union-attr]
            )
            earlier = [covered.get((group["namespace"], group["dagId"], task)) for task in group["tasks"]]
            if all(earlier) and len({id(e[0]) for e in earlier}) == 1:  # type: ignore[index]
                unit, dates = earlier[0]  # type: ignore[misc]
                if all(date in dates for _, date in planned):
                    unit["steps"] += [s.nodeId for s in members]
                    continue
            connection = connections.for_namespace(found, group["namespace"])
            units.append(
                _unit(
                    level.level,
                    group["namespace"],
                    group["dagId"],
                    connection.name if connection else None,
                    group["tasks"],
                    [{"start": iso(r["start"]), "end": iso(r["end"])} for r in group["logicalDateRanges"]],
                    [list(p) for p in planned],
                    [s.nodeId for s in members],
                )
            )
            for task in group["tasks"]:
                covered[(group["namespace"], group["dagId"], task)] = (units[-1], {d for t, d in planned if t == task})
        manual = [s for s in level.steps if s.airflow is None]
        if manual:
            unit = _unit(level.level, manual[0].job.namespace, None, None, [], [], [], [s.nodeId for s in manual])
            units.append({**unit, "mode": "manual"})
    return units


def _unit(level, namespace, dag_id, connection, tasks, ranges, planned, steps) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "level": level,
        "namespace": namespace,
        "dag_id": dag_id,
        "connection": connection,
        "tasks": tasks,
        "ranges": ranges,
        "planned": planned,
        "steps": steps,
        "mode": None,
        "status": "pending",
        "airflow": {},
    }


def _missing_connections(units: list[dict[str, Any]]) -> list[str]:
    return sorted({u["namespace"] for u in units if u["dag_id"] is not None and u["connection"] is None})


def audit(conn: Connection, plan_id: uuid.UUID, actor: str, action: str, *, call: Call | None = None, **fields) -> None:
    values: dict[str, Any] = {"plan_id": plan_id, "at": datetime.now(UTC), "actor": actor, "action": action, **fields}
    if call is not None:
        message = call.error if call.error else values.get("message")
        values.update(
            method=call.method,
            url=call.url,
            request=call.request,
            status_code=call.status_code,
            response=call.response,
            message=message,
        )
    conn.execute(t.backfill_audit.insert().values(**values))


def start(
    engine: Engine,
    settings: Settings,
    plan_id: uuid.UUID,
    request: RunRequest,
    actor: str,
    *,
    now: datetime | None = None,
) -> Execution:
    plan = saved.get(engine, plan_id)
    now = now or datetime.now(UTC)
    with read_connection(engine) as conn:
        found = connections.all_in(conn, settings)
    units = build_units(plan, found)
    if not any(u["dag_id"] for u in units):
        raise InvalidRequest("No step of this plan is an Airflow task: there is nothing for Headwater to run.")
    missing = _missing_connections(units)
    if missing:
        raise Conflict(f"No Airflow connection serves namespace(s) {', '.join(missing)}: add one first.")
    options = {"maxActiveRuns": request.maxActiveRuns or settings.backfill_max_active_runs}
    try:
        _insert(engine, settings, plan, plan_id, units, options, actor, now)
    except IntegrityError:  # started by another request at the same moment
        raise Conflict("This plan was started already: pause, resume or cancel it instead.") from None
    return status(engine, plan_id)


def _insert(engine, settings, plan, plan_id, units, options, actor, now) -> None:
    with write_transaction(engine) as conn:
        existing = conn.execute(
            select(t.backfill_executions.c.status).where(t.backfill_executions.c.plan_id == plan_id)
        ).scalar()
        if existing is not None:
            raise Conflict(f"This plan was started already (it is {existing}): pause, resume or cancel it instead.")
        conn.execute(
            t.backfill_executions.insert().values(
                plan_id=plan_id,
                status="running",
                started_by=actor,
                options=options,
                levels_done=0,
                started_at=now,
                updated_at=now,
            )
        )
        conn.execute(t.backfill_units.insert(), [{**u, "plan_id": plan_id} for u in units])
        audit(conn, plan_id, actor, "start", request={"maxActiveRuns": options["maxActiveRuns"]})
        announce(conn, plan, "backfill.started", now, {"startedBy": actor}, settings.public_url)


def dry_run(engine: Engine, settings: Settings, plan_id: uuid.UUID, request: RunRequest, http: httpx.Client) -> DryRun:
    """The calls that would change something in Airflow, in order, with bodies. Airflow is only read (which DAGs
    exist, which tasks they have: a DAG re-run whole is backfilled, otherwise its tasks are cleared)."""
    plan = saved.get(engine, plan_id)
    with read_connection(engine) as conn:
        found = connections.all_in(conn, settings)
    units = build_units(plan, found)
    missing = _missing_connections(units)
    if missing:
        raise Conflict(f"No Airflow connection serves namespace(s) {', '.join(missing)}: add one first.")
    max_runs = request.maxActiveRuns or settings.backfill_max_active_runs
    calls, manual = [], []
    for unit in units:
        if unit["dag_id"] is None:
            manual += unit["steps"]
            continue
        api = AirflowApi(found[unit["connection"]], http, lambda call: None)
        try:
            mode = choose_mode(api, unit["dag_id"], unit["tasks"])
        except (AirflowUnavailable, AirflowRefused) as exc:
            raise Conflict(f"Cannot read DAG {unit['dag_id']} from Airflow: {exc}") from None
        for window in unit["ranges"]:
            start_at, end_at = parse(window["start"]), parse(window["end"])
            where = {"level": unit["level"], "namespace": unit["namespace"], "dagId": unit["dag_id"]}
            if mode == "backfill":
                calls.append(
                    PlannedCall(
                        **where,
                        method="POST",
                        url=api.url(api.prefix + "/backfills"),
                        body=api.backfill_body(unit["dag_id"], start_at, end_at, max_runs),
                        note="the whole DAG is impacted: an Airflow backfill re-runs its DAG runs",
                    )
                )
            else:
                url = api.url(f"{api.prefix}/dags/{unit['dag_id']}/clearTaskInstances")
                for dry_run, note in _CLEAR_STEPS:
                    body = api.clear_body(unit["tasks"], start_at, end_at, dry_run=dry_run)
                    calls.append(PlannedCall(**where, method="POST", url=url, body=body, note=note))
    return DryRun(calls=calls, manual=manual)


# Clearing part of a DAG: Airflow's dry run, compared with the plan, then the clear itself.
_CLEAR_STEPS = (
    (True, "Airflow's own dry run first: its task instances are compared with the plan's runs"),
    (False, "only these tasks of the DAG are impacted: clear them for the logical dates"),
)


def choose_mode(api: AirflowApi, dag_id: str, tasks: list[str]) -> str:
    """Airflow 3 backfills a DAG whose every task is impacted; otherwise (and on Airflow 2) the tasks are cleared."""
    if api.connection.version < 3:
        return "clear"
    return "backfill" if set(api.tasks(dag_id)) <= set(tasks) else "clear"


def _control(engine: Engine, plan_id: uuid.UUID, actor: str, action: str, allowed: tuple[str, ...], new: str, **extra):
    e = t.backfill_executions.c
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        current = conn.execute(select(e.status).where(e.plan_id == plan_id)).scalar()
        if current is None:
            saved.get(engine, plan_id)  # 404 for an unknown plan
            raise Conflict("This plan has not been started.")
        if current not in allowed:
            raise Conflict(f"Cannot {action} a plan that is {current}.")
        conn.execute(
            update(t.backfill_executions).where(e.plan_id == plan_id).values(status=new, updated_at=now, **extra)
        )
        if action == "resume":
            # A failed DAG is tried again from scratch: the user fixed what failed (or wants another try). What
            # was created in Airflow before stays in the audit log.
            u = t.backfill_units.c
            conn.execute(
                update(t.backfill_units)
                .where(u.plan_id == plan_id, u.status == "failed")
                .values(status="pending", mode=None, airflow={}, error=None, link=None, next_poll_at=None)
            )
        audit(conn, plan_id, actor, action, message=extra.get("reason"))


def pause(engine: Engine, plan_id: uuid.UUID, request: ControlRequest, actor: str) -> Execution:
    reason = request.reason or f"paused by {request.by or actor}"
    _control(engine, plan_id, request.by or actor, "pause", ("running",), "paused", reason=reason, link=None)
    return status(engine, plan_id)


def resume(engine: Engine, plan_id: uuid.UUID, request: ControlRequest, actor: str) -> Execution:
    _control(engine, plan_id, request.by or actor, "resume", ("paused",), "running", reason=None, link=None)
    return status(engine, plan_id)


def cancel(engine: Engine, plan_id: uuid.UUID, request: ControlRequest, actor: str) -> Execution:
    """The executor cancels the Airflow 3 backfills it created, then marks the plan cancelled."""
    reason = request.reason or f"cancelled by {request.by or actor}"
    _control(engine, plan_id, request.by or actor, "cancel", ("running", "paused"), "cancelling", reason=reason)
    return status(engine, plan_id)


def _level_status(units: list[ExecutionUnit], cancelled: bool) -> str:
    states = {u.status for u in units}
    if "failed" in states:
        return "failed"
    if states == {"done"}:
        return "done"
    if cancelled:
        return "cancelled"
    if states & {"running", "submitting"} or "done" in states:
        return "running"
    return "pending"


def status(engine: Engine, plan_id: uuid.UUID) -> Execution:
    plan = saved.get(engine, plan_id)
    done = {s.nodeId for s in plan.jobs if s.done}
    e, u, a = t.backfill_executions.c, t.backfill_units.c, t.backfill_audit.c
    with read_connection(engine) as conn:
        row = conn.execute(select(t.backfill_executions).where(e.plan_id == plan_id)).first()
        if row is None:
            raise NotFound(f"Backfill plan '{plan_id}' has not been started.")
        units = conn.execute(select(t.backfill_units).where(u.plan_id == plan_id).order_by(u.level, u.dag_id)).all()
        entries = conn.execute(
            select(t.backfill_audit).where(a.plan_id == plan_id).order_by(a.id.desc()).limit(AUDIT_SHOWN)
        ).all()
    by_level: dict[int, list[ExecutionUnit]] = {}
    for unit in units:
        by_level.setdefault(unit.level, []).append(
            ExecutionUnit(
                id=str(unit.id),
                level=unit.level,
                namespace=unit.namespace,
                dagId=unit.dag_id,
                connection=unit.connection,
                tasks=unit.tasks,
                logicalDateRanges=[TimeWindow(start=r["start"], end=r["end"]) for r in unit.ranges],
                mode=unit.mode,
                status=unit.status,
                airflow=unit.airflow,
                error=unit.error,
                link=unit.link,
                steps=unit.steps,
                stepsDone=sum(1 for s in unit.steps if s in done),
                submittedAt=unit.submitted_at,
                finishedAt=unit.finished_at,
                nextPollAt=unit.next_poll_at if unit.status == "running" and unit.mode != "manual" else None,
            )
        )
    cancelled = row.status in ("cancelled", "cancelling")
    return Execution(
        planId=str(plan_id),
        status=row.status,
        startedBy=row.started_by,
        startedAt=row.started_at,
        updatedAt=row.updated_at,
        finishedAt=row.finished_at,
        reason=row.reason,
        link=row.link,
        options=row.options,
        levels=[
            ExecutionLevel(level=level, status=_level_status(members, cancelled), units=members)  # type: ignore[arg-type]
            for level, members in sorted(by_level.items())
        ],
        audit=[
            AuditEntry(
                at=x.at,
                actor=x.actor,
                action=x.action,
                method=x.method,
                url=x.url,
                request=x.request,
                statusCode=x.status_code,
                response=x.response,
                message=x.message,
            )
            for x in reversed(entries)
        ],
    )


def test_connection(
    engine: Engine, settings: Settings, name: str, plan_id: uuid.UUID | None, http: httpx.Client
) -> ConnectionTest:
    """Airflow answers with the version configured, and (with a plan) the plan's DAGs it serves exist, unpaused."""
    connection = connections.get(engine, settings, name)
    api = AirflowApi(connection, http, lambda call: None)
    problems: list[str] = []
    version = None
    try:
        version = api.version()
        if version is None:
            problems.append(f"Airflow did not say its version at {api.prefix}/version")
        elif not version.startswith(f"{connection.version}."):
            problems.append(f"Airflow is version {version}, the connection says {connection.version}")
    except (AirflowUnavailable, AirflowRefused) as exc:
        return ConnectionTest(ok=False, version=None, dags=[], problems=[str(exc)])
    dags: list[DagCheck] = []
    if plan_id is not None:
        plan = saved.get(engine, plan_id)
        wanted = sorted({g.dagId for g in plan.dags if g.namespace in connection.namespaces})
        if not wanted:
            problems.append("none of the plan's DAGs is in this connection's namespaces")
        for dag_id in wanted:
            try:
                dag = api.dag(dag_id)
            except (AirflowUnavailable, AirflowRefused) as exc:
                problems.append(str(exc))
                continue
            paused = bool(dag.get("is_paused")) if dag else None
            dags.append(DagCheck(dagId=dag_id, exists=dag is not None, paused=paused))
            if dag is None:
                problems.append(f"DAG {dag_id} does not exist in this Airflow")
            elif paused:
                problems.append(f"DAG {dag_id} is paused: its re-runs would not start")
    return ConnectionTest(ok=not problems, version=version, dags=dags, problems=problems)
