"""``headwater backfill plan``: a backfill plan from the local database or a running server, as a readable
table, JSON, or the Airflow commands alone."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

import typer
from pydantic import ValidationError

from app.cli.server_api import request_server
from app.schemas.backfill import BackfillPlan, BackfillRequest, NodeRef
from app.services.lineage import split_qualified_name

backfill_cli = typer.Typer(help="Plan what must be re-run downstream of a bad run or bad data.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    airflow2 = "airflow2"
    airflow3 = "airflow3"


def _ref(option: str, text: str | None) -> NodeRef | None:
    if text is None:
        return None
    try:
        namespace, name = split_qualified_name(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (expected <namespace>:<name>)", param_hint=option) from None
    return NodeRef(namespace=namespace, name=name)


@backfill_cli.command("plan")
def plan_command(
    run_id: str = typer.Option(None, "--run-id", help="A run that failed or wrote bad data."),
    dataset: str = typer.Option(None, "--dataset", help="A dataset with bad data, as <namespace>:<name>."),
    version: str = typer.Option(None, "--version", help="The bad version of --dataset (default: current)."),
    job: str = typer.Option(None, "--job", help="A job that wrote bad data, as <namespace>:<name>."),
    start: datetime = typer.Option(None, "--start", help="Start of the bad window (with --job or --dataset)."),
    end: datetime = typer.Option(None, "--end", help="End of the bad window, exclusive."),
    columns: list[str] = typer.Option(None, "--column", help="Only this column of --dataset is bad (repeatable)."),
    depth: int = typer.Option(20, "--depth", help="Job hops downstream of the root."),
    namespace: list[str] = typer.Option(None, "--namespace", help="Only plan jobs in this namespace (repeatable)."),
    exclude_job: list[str] = typer.Option(None, "--exclude-job", help="Leave out jobs matching this glob."),
    no_root: bool = typer.Option(False, "--no-root", help="Do not re-run the root job itself."),
    output: Format = typer.Option(Format.table, "--format", help="table, json, airflow2 or airflow3."),
    server: str = typer.Option(
        None, "--server", envvar="HEADWATER_URL", help="Ask a running server (e.g. http://localhost:5000)."
    ),
    api_key: str = typer.Option(None, "--api-key", envvar="HEADWATER_API_KEY", help="API key for --server."),
) -> None:
    """Plan a backfill: which jobs, which runs, in what order, with the Airflow commands."""
    try:
        request = BackfillRequest(
            runId=run_id,
            dataset=_ref("--dataset", dataset),
            version=version,
            job=_ref("--job", job),
            start=start,
            end=end,
            columns=columns or None,
            depth=depth,
            includeNamespaces=namespace or [],
            excludeJobs=exclude_job or [],
            includeRoot=not no_root,
        )
    except ValidationError as exc:
        messages = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise typer.BadParameter(messages) from None
    plan = _from_server(server, api_key, request) if server else _from_database(request)
    typer.echo(render(plan, output))


def _from_database(request: BackfillRequest) -> BackfillPlan:
    from app.cli.local_database import caught_up_engine
    from app.services.backfill import planner
    from app.services.errors import InvalidRequest, NotFound

    with caught_up_engine() as engine:
        try:
            return planner.plan(engine, request)
        except (NotFound, InvalidRequest) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None


def _from_server(server: str, api_key: str | None, request: BackfillRequest) -> BackfillPlan:
    body = request.model_dump(mode="json")
    return BackfillPlan.model_validate(_call(server, api_key, "POST", "/api/v1/backfills/preview", body))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _windows(windows: list[Any]) -> str:
    return ", ".join(f"{_when(w.start)} → {_when(w.end)}" for w in windows) or "-"


def render(plan: BackfillPlan, output: Format) -> str:
    if output is Format.json:
        return json.dumps(plan.model_dump(mode="json"), indent=2)
    if output in (Format.airflow2, Format.airflow3):
        lines = []
        for dag in plan.dags:
            commands = dag.commands.airflow2 if output is Format.airflow2 else dag.commands.airflow3
            lines.append(f"# {dag.dagId} (level {dag.level}; tasks: {', '.join(dag.tasks)})")
            lines += commands
        if not lines:
            lines.append("# no Airflow DAG in this plan")
        return "\n".join(lines)
    return _table(plan)


def _table(plan: BackfillPlan) -> str:
    t = plan.totals
    lines = [
        f"Root cause: {plan.root.description}",
        f"Bad window: {_windows(plan.root.windows)} UTC",
    ]
    for a in plan.root.failedAssertions:
        lines.append(f"Failed assertion: {a.assertion}" + (f" on {a.column}" if a.column else ""))
    lines.append(f"{t.jobs} jobs, {t.runs} runs, {t.dags} Airflow DAGs, {t.levels} levels")
    for level in plan.levels:
        lines.append("")
        lines.append(f"Level {level.level}" + (" (the root)" if level.level == 0 else " (steps may run in parallel)"))
        for step in level.steps:
            where = f"  [{step.airflow.dagId} / {step.airflow.taskId}]" if step.airflow else ""
            owners = f"  owners: {', '.join(step.owners)}" if step.owners else ""
            lines.append(f"  {step.job.namespace}:{step.job.name}{where}{owners}")
            lines.append(f"    redo: {_windows(step.windows)}")
            for run in step.runs:
                when = _when(run.logicalDate or run.nominalStartTime or run.startedAt)
                lines.append(f"    run {run.runId} ({run.state}, {when}): {'; '.join(run.reasons)}")
            if not step.runs:
                lines.append("    no recorded run in the window: run it for the window")
            if not step.isRoot:
                lines.append(f"    why: {' → '.join(step.path)}")
    for cycle in plan.cycles:
        lines.append("")
        lines.append(f"Cycle (each job planned once): {', '.join(cycle.jobs)}")
    if plan.excluded:
        lines.append("")
        lines.append(f"Left out by filters: {', '.join(plan.excluded)}")
    if plan.notImpacted:
        lines.append(f"Cleared by column lineage: {', '.join(plan.notImpacted)}")
    for dag in plan.dags:
        lines.append("")
        after = f", after {', '.join(dag.dependsOn)}" if dag.dependsOn else ""
        lines.append(f"DAG {dag.dagId} (level {dag.level}{after}; owners: {', '.join(dag.owners) or '-'})")
        lines += [f"  Airflow 2: {c}" for c in dag.commands.airflow2]
        lines += [f"  Airflow 3: {c}" for c in dag.commands.airflow3]
    return "\n".join(lines)


# --- running a saved plan through Airflow (the server's executor does the work) ---------------------------------

SERVER_OPTION = typer.Option(
    "http://localhost:5000", "--server", envvar="HEADWATER_URL", help="The Headwater server that runs the plan."
)
KEY_OPTION = typer.Option(None, "--api-key", envvar="HEADWATER_API_KEY", help="A read+write API key.")


def _call(server: str, api_key: str | None, method: str, path: str, body: dict | None = None) -> dict:
    return request_server(server, api_key, method, path, json=body, timeout=120).json()


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render_execution(execution: dict) -> list[str]:
    """One progress bar per level (its DAGs done), then each DAG's state."""
    lines = [
        f"Plan {execution['planId']}: {execution['status']}"
        + (f" — {execution['reason']}" if execution["reason"] else "")
    ]
    if execution.get("link"):
        lines.append(f"  see {execution['link']}")
    for level in execution["levels"]:
        units = level["units"]
        done = sum(u["status"] == "done" for u in units)
        lines.append(
            f"Level {level['level']} {_bar(done, len(units))} {done}/{len(units)} DAGs done  {level['status']}"
        )
        for unit in units:
            what = unit["dagId"] or "steps re-run by hand"
            steps = f"{unit['stepsDone']}/{len(unit['steps'])} steps redone"
            mode = f" ({unit['mode']})" if unit["mode"] and unit["dagId"] else ""
            error = f" — {unit['error']}" if unit["error"] else ""
            lines.append(f"  {what}{mode}: {unit['status']}, {steps}{error}")
    return lines


def _dry_run_lines(dry: dict) -> list[str]:
    lines = []
    for i, call in enumerate(dry["calls"], 1):
        lines.append(f"{i}. level {call['level']} {call['dagId']}: {call['method']} {call['url']}")
        if call.get("note"):
            lines.append(f"   # {call['note']}")
        lines.append("   " + json.dumps(call["body"], sort_keys=True))
    if dry["manual"]:
        lines.append(
            f"Not run by Headwater (no Airflow task re-runs them; it waits for them): {', '.join(dry['manual'])}"
        )
    if not lines:
        lines.append("Nothing to call.")
    return lines


@backfill_cli.command("run")
def run_command(
    plan_id: str = typer.Argument(..., help="The saved plan's id."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print the calls to Airflow, in order, with bodies."),
    follow: bool = typer.Option(False, "--follow", help="Show progress until the plan is done, paused or cancelled."),
    max_active_runs: int = typer.Option(None, "--max-active-runs", help="max_active_runs of each Airflow 3 backfill."),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between progress updates with --follow."),
    timeout: float = typer.Option(0, "--timeout", help="With --follow: give up after this many seconds (0: never)."),
    server: str = SERVER_OPTION,
    api_key: str = KEY_OPTION,
) -> None:
    """Run a saved plan through Airflow, level by level, on the server (which needs an Airflow connection)."""
    import getpass

    body: dict[str, Any] = {"dryRun": dry_run, "startedBy": f"{getpass.getuser()} (CLI)"}
    if max_active_runs:
        body["maxActiveRuns"] = max_active_runs
    answer = _call(server, api_key, "POST", f"/api/v1/backfills/{plan_id}/run", body)
    if dry_run:
        typer.echo("\n".join(_dry_run_lines(answer)))
        return
    if not follow:
        typer.echo("\n".join(render_execution(answer)))
        return
    _follow(server, api_key, plan_id, interval, timeout)


def _follow(server: str, api_key: str | None, plan_id: str, interval: float, timeout: float) -> None:
    import time

    started, shown = time.monotonic(), None
    while True:
        execution = _call(server, api_key, "GET", f"/api/v1/backfills/{plan_id}/execution")
        lines = render_execution(execution)
        if lines != shown:
            typer.echo(f"--- {datetime.now().strftime('%H:%M:%S')}")
            typer.echo("\n".join(lines))
            shown = lines
        if execution["status"] in ("done", "cancelled"):
            return
        if execution["status"] == "paused":
            raise typer.Exit(2)
        if timeout and time.monotonic() - started > timeout:
            typer.echo(f"error: not done after {timeout:.0f}s", err=True)
            raise typer.Exit(3)
        time.sleep(interval)


def _control(action: str, plan_id: str, reason: str | None, server: str, api_key: str | None) -> None:
    import getpass

    body = {"by": f"{getpass.getuser()} (CLI)", "reason": reason}
    answer = _call(server, api_key, "POST", f"/api/v1/backfills/{plan_id}/{action}", body)
    typer.echo("\n".join(render_execution(answer)))


@backfill_cli.command("pause")
def pause_command(
    plan_id: str = typer.Argument(...),
    reason: str = typer.Option(None, "--reason"),
    server: str = SERVER_OPTION,
    api_key: str = KEY_OPTION,
) -> None:
    """Pause a running plan: nothing new is started in Airflow."""
    _control("pause", plan_id, reason, server, api_key)


@backfill_cli.command("resume")
def resume_command(plan_id: str = typer.Argument(...), server: str = SERVER_OPTION, api_key: str = KEY_OPTION) -> None:
    """Resume a paused plan; DAGs whose re-run failed are tried again."""
    _control("resume", plan_id, None, server, api_key)


@backfill_cli.command("cancel")
def cancel_command(
    plan_id: str = typer.Argument(...),
    reason: str = typer.Option(None, "--reason"),
    server: str = SERVER_OPTION,
    api_key: str = KEY_OPTION,
) -> None:
    """Cancel a plan, and the Airflow 3 backfills it created."""
    _control("cancel", plan_id, reason, server, api_key)


@backfill_cli.command("status")
def status_command(plan_id: str = typer.Argument(...), server: str = SERVER_OPTION, api_key: str = KEY_OPTION) -> None:
    """How running a plan goes: each level and DAG."""
    execution = _call(server, api_key, "GET", f"/api/v1/backfills/{plan_id}/execution")
    typer.echo("\n".join(render_execution(execution)))
