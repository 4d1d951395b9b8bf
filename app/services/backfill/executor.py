"""The executor: advances every running plan a step at a time, in a thread of each server process. Only the
holder of the lease row acts, so one executor drives the plans however many processes or replicas run; its
state is in the database, so another process (or this one after a restart) carries on where it stopped.

A step, per plan: units whose steps lineage shows redone are done (the plan's own progress, from the runs that
completed after it was saved); Airflow is polled, with backoff, only for units lineage has not finished (runs
that emit no lineage, failures); a failed DAG run pauses the plan and opens an incident; the lowest level not
done yet is submitted, a DAG at a time within the concurrency limit, and the next level waits for it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, or_, select, update

from app.db import tables as t
from app.db.dialect import in_values, upsert
from app.db.engine import read_connection, write_transaction
from app.schemas.backfill import SavedPlan
from app.services import identifiers as ids
from app.services.backfill import connections, saved
from app.services.backfill.airflow_api import AirflowApi, AirflowRefused, AirflowUnavailable, Call
from app.services.backfill.execution import audit, choose_mode, parse
from app.services.backfill.notify import announce, deliver_due, failure_incident, resolve_failure
from app.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
LEASE = timedelta(seconds=30)
LEASE_NAME = "executor"
EXECUTOR = "headwater-executor"  # the actor of what the executor does on its own


def system_clock() -> datetime:
    return datetime.now(UTC)


class _Failed(Exception):
    """A unit cannot go on: the reason (and where to look)."""

    def __init__(self, reason: str, link: str | None = None):
        super().__init__(reason)
        self.link = link


class BackfillExecutor:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock = system_clock,
        transport: httpx.BaseTransport | None = None,
        holder: str | None = None,
    ) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.http = httpx.Client(timeout=settings.airflow_timeout_seconds, transport=transport, follow_redirects=False)
        self.webhooks = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        self.tokens: dict = {}  # Airflow 3 tokens, reused across steps
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the lease ------------------------------------------------------------------------------------------

    def acquire(self, now: datetime) -> bool:
        lease = t.backfill_executor_lease.c
        with write_transaction(self.engine) as conn:
            conn.execute(
                upsert(conn, t.backfill_executor_lease)
                .values(name=LEASE_NAME, holder=self.holder, lease_until=now + LEASE)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            won = conn.execute(
                update(t.backfill_executor_lease)
                .where(lease.name == LEASE_NAME, or_(lease.holder == self.holder, lease.lease_until < now))
                .values(holder=self.holder, lease_until=now + LEASE)
            ).rowcount
        return won == 1

    def release(self) -> None:
        lease = t.backfill_executor_lease.c
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(t.backfill_executor_lease)
                .where(lease.name == LEASE_NAME, lease.holder == self.holder)
                .values(lease_until=self.clock() - timedelta(seconds=1))
            )

    # --- a step ---------------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Advance every running, paused or cancelling plan once; False when another process holds the lease."""
        now = self.clock()
        if not self.acquire(now):
            return False
        e = t.backfill_executions.c
        with read_connection(self.engine) as conn:
            plans = list(
                conn.execute(
                    select(e.plan_id)
                    .where(e.status.in_(("running", "paused", "cancelling")))
                    .order_by(e.started_at, e.plan_id)
                ).scalars()
            )
        for plan_id in plans:
            if self._stop.is_set():
                break
            try:
                self.advance(plan_id, now)
            except Exception:  # one plan's trouble (a database hiccup) must not stop the others
                log.exception("backfill executor: plan %s", plan_id)
        try:
            deliver_due(self.engine, self.settings, self.webhooks, now)
        except Exception:
            log.exception("backfill executor: webhooks")
        return True

    def _recorder(self, plan_id: uuid.UUID) -> Callable[[Call], None]:
        def record(call: Call) -> None:
            with write_transaction(self.engine) as conn:
                audit(conn, plan_id, EXECUTOR, "airflow", call=call)

        return record

    def _api(self, plan_id: uuid.UUID, name: str | None) -> AirflowApi:
        with read_connection(self.engine) as conn:
            found = connections.all_in(conn, self.settings)
        if name is None or name not in found:
            raise _Failed(f"Airflow connection '{name}' no longer exists: add it again, then resume the plan")
        return AirflowApi(found[name], self.http, self._recorder(plan_id), self.tokens)

    def _update_unit(self, unit_id: uuid.UUID, **values: Any) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(update(t.backfill_units).where(t.backfill_units.c.id == unit_id).values(**values))

    def advance(self, plan_id: uuid.UUID, now: datetime) -> None:
        e, u = t.backfill_executions.c, t.backfill_units.c
        with read_connection(self.engine) as conn:
            execution = conn.execute(select(t.backfill_executions).where(e.plan_id == plan_id)).first()
            units = [
                dict(row._mapping)
                for row in conn.execute(
                    select(t.backfill_units).where(u.plan_id == plan_id).order_by(u.level, u.dag_id)
                )
            ]
        if execution is None or execution.status not in ("running", "paused", "cancelling"):
            return
        if execution.status == "cancelling":
            self._cancel(plan_id, units, now)
            return
        plan = saved.get(self.engine, plan_id)
        done_steps = {s.nodeId for s in plan.jobs if s.done}
        failing = self._failing_in_lineage(plan, units)

        for unit in units:
            if unit["status"] in ("pending", "running", "submitting") and set(unit["steps"]) <= done_steps:
                self._finish(plan_id, unit, now, "lineage shows every planned run of it redone")
            elif unit["status"] == "submitting" and execution.status == "running":
                self._submit(plan_id, unit, execution.options, now)  # a submission cut short: carry on, idempotently
            elif unit["status"] == "running" and unit["mode"] != "manual":
                # A failed run in lineage is confirmed with Airflow at once (it may still retry the task).
                due = unit["next_poll_at"] is None or unit["next_poll_at"] <= now
                if unit["id"] in failing:
                    unit["airflow"] = {**unit["airflow"], "failureSeen": failing[unit["id"]].isoformat()}
                    self._update_unit(unit["id"], airflow=unit["airflow"])
                if due or unit["id"] in failing:
                    self._poll(plan_id, unit, execution.options, now)

        failed = [x for x in units if x["status"] == "failed"]
        if failed and execution.status == "running":
            self._pause_for(plan, failed[0], now)
            return

        levels = sorted({x["level"] for x in units})
        done_levels = 0
        for level in levels:
            if all(x["status"] == "done" for x in units if x["level"] == level):
                done_levels += 1
            else:
                break
        if done_levels > execution.levels_done:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(t.backfill_executions)
                    .where(e.plan_id == plan_id)
                    .values(levels_done=done_levels, updated_at=now)
                )
                for level in levels[execution.levels_done : done_levels]:
                    audit(conn, plan_id, EXECUTOR, "level_done", message=f"level {level} done")
                    announce(conn, plan, "backfill.level_done", now, {"level": level}, self.settings.public_url)
        if done_levels == len(levels):
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(t.backfill_executions)
                    .where(e.plan_id == plan_id)
                    .values(status="done", finished_at=now, updated_at=now, reason=None, link=None)
                )
                audit(conn, plan_id, EXECUTOR, "done", message="every level is done")
                announce(conn, plan, "backfill.done", now, {}, self.settings.public_url)
                resolve_failure(conn, plan_id, now)
            return
        if execution.status != "running":
            return
        current = levels[done_levels]
        with read_connection(self.engine) as conn:
            active = conn.execute(
                select(u.id)
                .join(t.backfill_executions, e.plan_id == u.plan_id)
                .where(
                    u.status.in_(("running", "submitting")),
                    or_(u.mode.is_(None), u.mode != "manual"),
                    e.status.in_(("running", "paused")),
                )
            ).all()
        room = self.settings.backfill_max_active_dags - len(active)
        for unit in units:
            if unit["level"] != current or unit["status"] != "pending":
                continue
            if unit["mode"] == "manual":
                self._update_unit(unit["id"], status="running", submitted_at=now)
                continue
            if room <= 0:
                break
            room -= 1
            self._submit(plan_id, unit, execution.options, now)
            if unit["status"] == "failed":
                self._pause_for(plan, unit, now)
                return

    def _failing_in_lineage(self, plan: SavedPlan, units: list[dict[str, Any]]) -> dict[uuid.UUID, datetime]:
        """Running units with a step whose job has a FAILED run since the unit was submitted that Airflow was
        not asked about yet: the time of the latest."""
        running = [x for x in units if x["status"] == "running" and x["mode"] != "manual" and x["submitted_at"]]
        if not running:
            return {}
        job_of = {s.nodeId: ids.job_id(s.job.namespace, s.job.name) for s in plan.jobs}
        since = min(x["submitted_at"] for x in running)
        r = t.runs.c
        with read_connection(self.engine) as conn:
            failed = conn.execute(
                select(r.job_id, func.max(r.ended_at))
                .where(
                    in_values(conn, r.job_id, {job_of[n] for x in running for n in x["steps"] if n in job_of}),
                    r.state == "FAILED",
                    r.ended_at >= since,
                )
                .group_by(r.job_id)
            ).all()
        last_failure = dict(failed)
        found: dict[uuid.UUID, datetime] = {}
        for unit in running:
            seen = unit["airflow"].get("failureSeen")
            for node in unit["steps"]:
                at = last_failure.get(job_of.get(node))
                if at is None or at < unit["submitted_at"] or (seen and at <= parse(seen)):
                    continue
                found[unit["id"]] = max(at, found.get(unit["id"], at))
        return found

    # --- one unit -------------------------------------------------------------------------------------------

    def _finish(self, plan_id: uuid.UUID, unit: dict[str, Any], now: datetime, why: str) -> None:
        unit["status"] = "done"
        self._update_unit(unit["id"], status="done", finished_at=now, error=None)
        with write_transaction(self.engine) as conn:
            audit(conn, plan_id, EXECUTOR, "dag_done", message=f"{unit['dag_id'] or 'manual steps'}: {why}")

    def _fail(self, unit: dict[str, Any], now: datetime, reason: str, link: str | None) -> None:
        unit.update(status="failed", error=reason, link=link)
        self._update_unit(unit["id"], status="failed", error=reason, link=link, finished_at=now)

    def _submit(self, plan_id: uuid.UUID, unit: dict[str, Any], options: dict[str, Any], now: datetime) -> None:
        """Start the unit's re-runs in Airflow. State is written before and after each call that changes
        anything, so a submission cut short is carried on, not repeated, after a restart."""
        resuming = unit["status"] == "submitting"
        if not resuming:
            unit.update(status="submitting", submitted_at=now)
            self._update_unit(unit["id"], status="submitting", submitted_at=now)
        try:
            api = self._api(plan_id, unit["connection"])
            dag = api.dag(unit["dag_id"])
            if dag is None:
                raise _Failed(f"DAG {unit['dag_id']} does not exist in Airflow ({api.connection.name})")
            if dag.get("is_paused"):
                raise _Failed(f"DAG {unit['dag_id']} is paused in Airflow: unpause it, then resume the plan")
            mode = unit["mode"] or choose_mode(api, unit["dag_id"], unit["tasks"])
            if unit["mode"] != mode:
                unit["mode"] = mode
                self._update_unit(unit["id"], mode=mode)
            if mode == "backfill":
                self._create_backfills(api, unit, options, adopt=resuming)
            else:
                self._clear(api, unit)
        except _Failed as failure:
            self._fail(unit, now, str(failure), failure.link)
            return
        except AirflowRefused as refused:
            self._fail(unit, now, str(refused), None)
            return
        except AirflowUnavailable as unavailable:
            # Nothing is lost: the unit is submitted (again, idempotently) at a later step.
            self._update_unit(unit["id"], error=str(unavailable))
            return
        unit["status"] = "running"
        self._update_unit(
            unit["id"],
            status="running",
            error=None,
            next_poll_at=now + timedelta(seconds=self.settings.backfill_poll_seconds),
            poll_seconds=self.settings.backfill_poll_seconds,
        )

    def _create_backfills(
        self, api: AirflowApi, unit: dict[str, Any], options: dict[str, Any], *, adopt: bool = False
    ) -> bool:
        """One Airflow 3 backfill per logical-date range. Airflow runs one backfill of a DAG at a time: a range
        it refuses for that (409) is created at a later poll. True when every range has its backfill."""
        made = dict(unit["airflow"])
        backfills = list(made.get("backfills", []))
        have = {(b["from"], b["to"]) for b in backfills}
        if adopt:
            # A submission cut short after Airflow created a backfill: adopt it rather than create another.
            response = api.call("GET", "/backfills", params={"dag_id": unit["dag_id"], "limit": 100})
            if response.status_code == 200:
                for found in response.json().get("backfills", []):
                    key = (_iso(found["from_date"]), _iso(found["to_date"]))
                    created = parse(found["created_at"])
                    wanted = any((_iso(r["start"]), _iso(r["end"])) == key for r in unit["ranges"])
                    if wanted and key not in have and created >= unit["submitted_at"] - timedelta(seconds=5):
                        backfills.append({"from": key[0], "to": key[1], "id": found["id"]})
                        have.add(key)
        for window in unit["ranges"]:
            key = (_iso(window["start"]), _iso(window["end"]))
            if key in have:
                continue
            body = api.backfill_body(
                unit["dag_id"], parse(window["start"]), parse(window["end"]), int(options.get("maxActiveRuns", 10))
            )
            response = api.call("POST", "/backfills", body=body)
            if response.status_code == 409:
                break  # a backfill of this DAG is still running in Airflow: this range waits for it
            if response.status_code not in (200, 201):
                raise _Failed(f"Airflow refused the backfill of {unit['dag_id']}: {api.message(response)}")
            backfills.append({"from": key[0], "to": key[1], "id": response.json()["id"]})
            have.add(key)
            made["backfills"] = backfills
            unit["airflow"] = made
            self._update_unit(unit["id"], airflow=made)
        made["backfills"] = backfills
        unit["airflow"] = made
        self._update_unit(unit["id"], airflow=made)
        return len(have) >= len(unit["ranges"])

    def _clear(self, api: AirflowApi, unit: dict[str, Any]) -> None:
        """Clear the impacted tasks for each range, after Airflow's own dry run agreed with the plan's runs."""
        made = dict(unit["airflow"])
        cleared = list(made.get("cleared", []))
        planned = {(task, parse(date)) for task, date in unit["planned"]}
        path = f"/dags/{unit['dag_id']}/clearTaskInstances"
        for window in unit["ranges"]:
            key = [_iso(window["start"]), _iso(window["end"])]
            if key in cleared:
                continue
            start, end = parse(window["start"]), parse(window["end"])
            response = api.call("POST", path, body=api.clear_body(unit["tasks"], start, end, dry_run=True))
            if response.status_code != 200:
                raise _Failed(f"Airflow refused the dry run of clearing {unit['dag_id']}: {api.message(response)}")
            would = set()
            for ti in response.json().get("task_instances", []):
                date = ti.get("logical_date") or ti.get("execution_date")
                if date:
                    would.add((ti["task_id"], parse(date)))
            expected = {(task, date) for task, date in planned if start <= date <= end}
            missing = expected - would
            if missing:
                shown = ", ".join(f"{task} @ {_iso(date)}" for task, date in sorted(missing)[:5])
                raise _Failed(
                    f"Airflow has no task instance to clear for {len(missing)} planned run(s) of {unit['dag_id']}: "
                    f"{shown}"
                )
            response = api.call("POST", path, body=api.clear_body(unit["tasks"], start, end, dry_run=False))
            if response.status_code != 200:
                raise _Failed(f"Airflow refused clearing {unit['dag_id']}: {api.message(response)}")
            cleared.append(key)
            made["cleared"] = cleared
            unit["airflow"] = made
            self._update_unit(unit["id"], airflow=made)

    def _poll(self, plan_id: uuid.UUID, unit: dict[str, Any], options: dict[str, Any], now: datetime) -> None:
        """Ask Airflow how the unit's DAG runs went: lineage has not shown them all redone yet."""
        seconds = min(
            (unit["poll_seconds"] or self.settings.backfill_poll_seconds) * 2, self.settings.backfill_poll_max_seconds
        )
        try:
            api = self._api(plan_id, unit["connection"])
            complete = True
            if unit["mode"] == "backfill":
                complete = self._create_backfills(api, unit, options)  # ranges Airflow made wait
            runs = []
            for window in unit["ranges"]:
                runs += api.dag_runs(unit["dag_id"], parse(window["start"]), parse(window["end"]))
        except _Failed as failure:
            self._fail(unit, now, str(failure), failure.link)
            return
        except (AirflowRefused, AirflowUnavailable) as exc:
            self._update_unit(
                unit["id"], error=str(exc), next_poll_at=now + timedelta(seconds=seconds), poll_seconds=seconds
            )
            return
        failed = [r for r in runs if r.get("state") == "failed"]
        if failed:
            run = failed[0]
            when = run.get("logical_date") or run.get("execution_date")
            self._fail(
                unit,
                now,
                f"Airflow DAG run {run.get('dag_run_id')} of {unit['dag_id']} ({when}) failed",
                api.run_link(unit["dag_id"], str(run.get("dag_run_id"))),
            )
            return
        if not complete:  # a range waits for Airflow to finish the DAG's current backfill: ask again soon
            seconds = self.settings.backfill_poll_seconds
        if complete and runs and all(r.get("state") == "success" for r in runs):
            # Lineage usually follows within seconds: give it one poll interval before taking Airflow's word
            # (runs that emit no lineage, events lost on the way).
            seen = unit["airflow"].get("successSeen")
            if seen is not None and now - parse(seen) >= timedelta(seconds=self.settings.backfill_poll_seconds):
                self._finish(plan_id, unit, now, "Airflow reports every DAG run successful (no lineage showed it)")
                return
            if seen is None:
                unit["airflow"] = {**unit["airflow"], "successSeen": now.isoformat()}
                self._update_unit(unit["id"], airflow=unit["airflow"])
            seconds = self.settings.backfill_poll_seconds
        self._update_unit(unit["id"], next_poll_at=now + timedelta(seconds=seconds), poll_seconds=seconds)

    # --- pausing for a failure, cancelling ------------------------------------------------------------------

    def _pause_for(self, plan: SavedPlan, unit: dict[str, Any], now: datetime) -> None:
        plan_id = uuid.UUID(plan.id)
        e = t.backfill_executions.c
        reason = f"{unit['dag_id'] or 'a step'} failed: {unit['error']}"
        with write_transaction(self.engine) as conn:
            paused = conn.execute(
                update(t.backfill_executions)
                .where(e.plan_id == plan_id, e.status == "running")
                .values(status="paused", reason=reason, link=unit["link"], updated_at=now)
            ).rowcount
            if not paused:
                return
            audit(conn, plan_id, EXECUTOR, "failed", message=reason, response={"link": unit["link"]})
            failure_incident(conn, plan, unit, reason, now, self.settings.public_url)
            details = {"dagId": unit["dag_id"], "reason": reason, "link": unit["link"]}
            announce(conn, plan, "backfill.failed", now, details, self.settings.public_url)

    def _cancel(self, plan_id: uuid.UUID, units: list[dict[str, Any]], now: datetime) -> None:
        for unit in units:
            if unit["status"] in ("done", "failed", "cancelled"):
                continue
            if unit["mode"] == "backfill":
                for backfill in unit["airflow"].get("backfills", []):
                    if backfill.get("cancelled"):
                        continue
                    try:
                        api = self._api(plan_id, unit["connection"])
                        response = api.call("PUT", f"/backfills/{backfill['id']}/cancel")
                    except (AirflowUnavailable, AirflowRefused, _Failed) as exc:
                        with write_transaction(self.engine) as conn:
                            audit(conn, plan_id, EXECUTOR, "cancel", message=f"backfill {backfill['id']}: {exc}")
                        if isinstance(exc, AirflowUnavailable):
                            return  # try again at the next step
                        continue
                    if response.status_code in (200, 409):  # 409: it had completed already
                        backfill["cancelled"] = True
                self._update_unit(unit["id"], airflow=unit["airflow"])
            self._update_unit(unit["id"], status="cancelled", finished_at=now)
        e = t.backfill_executions.c
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(t.backfill_executions)
                .where(e.plan_id == plan_id, e.status == "cancelling")
                .values(status="cancelled", finished_at=now, updated_at=now)
            )
            audit(conn, plan_id, EXECUTOR, "cancelled", message="the plan is cancelled")

    # --- the thread -----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("backfill executor step failed")
            self._stop.wait(self.settings.backfill_step_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="headwater-backfills", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.airflow_timeout_seconds + 5)
            try:
                self.release()
            except Exception:
                log.exception("backfill executor: releasing the lease")
        self.http.close()
        self.webhooks.close()


def _iso(value: str | datetime) -> str:
    moment = parse(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
