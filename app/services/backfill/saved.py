"""Saved plans and their progress. A plan is stored as computed; whether each of its runs has been redone is
worked out when the plan is read, from the COMPLETE runs of its jobs that ended after it was saved, so one
shared plan shows what is still outstanding without any bookkeeping at ingest."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select

from app.db import tables as t
from app.db.dialect import in_values
from app.db.engine import read_connection, write_transaction
from app.schemas.backfill import (
    BackfillPlan,
    BackfillRequest,
    PlanProgress,
    PlanStep,
    SavedPlan,
    SavedPlanList,
    SavedPlanSummary,
    SavePlanRequest,
)
from app.services import identifiers as ids
from app.services.backfill import hierarchy
from app.services.backfill.planner import plan_in
from app.services.backfill.roots import window_of
from app.services.backfill.windows import Window, run_window
from app.services.errors import NotFound


def save(engine: Engine, request: SavePlanRequest, *, now: datetime | None = None) -> SavedPlan:
    plan_request = BackfillRequest(**request.model_dump(exclude={"name"}))
    with read_connection(engine) as conn:
        computed = plan_in(conn, plan_request)
    plan_id = uuid.uuid4()
    created = now or datetime.now(UTC)
    with write_transaction(engine) as conn:
        conn.execute(
            t.backfill_plans.insert().values(
                id=plan_id,
                name=request.name,
                request=plan_request.model_dump(mode="json"),
                plan=computed.model_dump(mode="json"),
                created_at=created,
            )
        )
    return get(engine, plan_id)


def get(engine: Engine, plan_id: uuid.UUID) -> SavedPlan:
    with read_connection(engine) as conn:
        row = conn.execute(select(t.backfill_plans).where(t.backfill_plans.c.id == plan_id)).first()
        if row is None:
            raise NotFound(f"Backfill plan '{plan_id}' not found.")
        plan = BackfillPlan.model_validate(row.plan)
        progress = _track(conn, plan, row.created_at)
    return SavedPlan(
        **plan.model_dump(),
        id=str(row.id),
        name=row.name,
        createdAt=row.created_at,
        request=BackfillRequest.model_validate(row.request),
        progress=progress,
    )


def list_plans(engine: Engine, *, limit: int, offset: int) -> SavedPlanList:
    p = t.backfill_plans.c
    with read_connection(engine) as conn:
        total = conn.execute(select(func.count()).select_from(t.backfill_plans)).scalar_one()
        rows = list(
            conn.execute(select(t.backfill_plans).order_by(p.created_at.desc(), p.id).limit(limit).offset(offset))
        )
        plans = []
        for row in rows:
            plan = BackfillPlan.model_validate(row.plan)
            plans.append(
                SavedPlanSummary(
                    id=str(row.id),
                    name=row.name,
                    createdAt=row.created_at,
                    root=plan.root,
                    totals=plan.totals,
                    progress=_track(conn, plan, row.created_at),
                )
            )
    return SavedPlanList(plans=plans, totalCount=total)


def _track(conn: Connection, plan: BackfillPlan, saved_at: datetime) -> PlanProgress:
    """Mark runs and steps done in place; return the totals."""
    steps = [s for level in plan.levels for s in level.steps]
    job_ids = {ids.job_id(s.job.namespace, s.job.name): s for s in steps}
    r = t.runs.c
    redone: dict[uuid.UUID, list[Window | None]] = defaultdict(list)  # None: a rerun with no nominal time
    if job_ids:
        rows = conn.execute(
            select(t.runs).where(in_values(conn, r.job_id, job_ids), r.state == "COMPLETED", r.ended_at >= saved_at)
        )
        rows = rows.all()
        # A rerun of a job run inside another (a dbt model re-run by clearing its Airflow task) has the data
        # time of its ancestors, as the plan's runs do.
        inherited = hierarchy.inherited(conn, [str(row.id) for row in rows if row.nominal_start_time is None])
        for row in rows:
            logical = inherited.get(str(row.id))
            if logical is not None:
                redone[row.job_id].append(logical.window())
            else:
                redone[row.job_id].append(window_of(row) if row.nominal_start_time else None)
    runs_done = runs_total = steps_done = 0
    for job_id, step in job_ids.items():
        reruns = redone.get(job_id, [])
        step.done = _step_done(step, reruns)
        steps_done += step.done
        runs_total += len(step.runs)
        runs_done += sum(bool(run.done) for run in step.runs)
    # The flat list and the levels hold the same steps: keep them in agreement.
    by_node = {s.nodeId: s for s in steps}
    plan.jobs = [by_node.get(s.nodeId, s) for s in plan.jobs]
    status = "done" if steps and steps_done == len(steps) else ("in_progress" if runs_done or steps_done else "open")
    return PlanProgress(status=status, stepsDone=steps_done, steps=len(steps), runsDone=runs_done, runs=runs_total)


def _covered(window: Window | None, reruns: list[Window | None]) -> bool:
    if window is None:  # an unscheduled run: any later successful run redid it
        return bool(reruns)
    return any(r is not None and r.overlaps(window) for r in reruns)


def _step_done(step: PlanStep, reruns: list[Window | None]) -> bool:
    for run in step.runs:
        if run.nominalStartTime is None:
            run.done = _covered(None, reruns)
        else:
            window = run_window(run.nominalStartTime, run.nominalEndTime, None, None, run.nominalStartTime)
            run.done = _covered(window, reruns)
    if step.runs:
        return all(run.done for run in step.runs)
    return all(_covered(Window(w.start, w.end), reruns) for w in step.windows) if step.windows else bool(reruns)
