"""Maintenance commands: ``headwater purge`` (retention) and ``headwater reindex`` (rebuild from raw events)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.db.engine import create_db_engine
from app.settings import Settings

_err = Console(stderr=True)


@contextmanager
def _progress_bar():
    """A progress callback ``(step, done, total)`` drawing one bar per step on stderr (plain when not a tty)."""
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=False) as bars:
        tasks: dict[str, int] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=max(total, done))

        yield update


def purge_command(
    older_than: str = typer.Option(..., "--older-than", help="Age to purge past: 30d, 12h, 2w, 90m."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be deleted; delete nothing."),
    batch_size: int = typer.Option(1000, min=1, help="Rows per transaction."),
) -> None:
    """Delete runs, dataset and job versions and raw events older than --older-than, keeping every dataset's
    and job's current version and the runs behind them. Prints the rows deleted per table."""
    from app.services.retention import parse_duration, purge

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    engine = create_db_engine(Settings())
    try:
        with _progress_bar() as progress:
            report = purge(engine, datetime.now(UTC) - age, dry_run=dry_run, batch_size=batch_size, progress=progress)
    finally:
        engine.dispose()
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} what is older than {report.cutoff:%Y-%m-%d %H:%M:%S} UTC:")
    for table, count in report.deleted.items():
        typer.echo(f"  {table:<18}{count:>10}")
    typer.echo(f"  {'total':<18}{report.total:>10}")


def reindex_command(
    chunk_size: int = typer.Option(500, min=1, help="Events read from the database at a time."),
) -> None:
    """Rebuild the model (datasets, jobs, runs, versions, facets, lineage) from the stored raw events, in one
    transaction; tags, namespaces, sources and soft deletes set through the API are kept. Events that failed to
    apply before (apply_error) are tried again."""
    from app.services.reindex import reindex

    engine = create_db_engine(Settings())
    try:
        with _progress_bar() as progress:
            report = reindex(engine, chunk_size=chunk_size, progress=lambda n, total: progress("events", n, total))
    finally:
        engine.dispose()
    typer.echo(f"rebuilt the model from {report.events} events")
    if report.recovered:
        typer.echo(f"  {report.recovered} events that had failed to apply before were applied")
    if report.failed:
        typer.echo(f"  {report.failed} events could not be applied (marked in lineage_events.apply_error):", err=True)
        for event_id, error in list(report.errors.items())[:20]:
            typer.echo(f"    event {event_id}: {error}", err=True)
        raise typer.Exit(1)
