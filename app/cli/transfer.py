"""``headwater import marquez-api | marquez-db | file`` and ``headwater export``: moving history between a
Marquez and Headwater, or between two Headwater installs. They write to the database Headwater is configured
with (HEADWATER_DATABASE_URL), as `reindex` and `purge` do: one process reading the source and ingesting
through the batch path, resumable from a checkpoint file."""

from __future__ import annotations

import gzip
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.schemas.openlineage import parse_timestamp
from app.settings import Settings

import_cli = typer.Typer(help="Import lineage history: from Marquez, or from a JSON Lines file.", no_args_is_help=True)

_err = Console(stderr=True)

# Options shared by every import and by export.
_SINCE = typer.Option(None, "--since", help="Only events at or after this time (ISO 8601, or a date: 2024-01-31).")
_UNTIL = typer.Option(None, "--until", help="Only events before this time (ISO 8601, or a date).")
_NAMESPACE = typer.Option(
    None, "--namespace", help="Only events of this job namespace (a DatasetEvent: its dataset's); repeatable."
)
_DRY_RUN = typer.Option(
    False, "--dry-run", help="Read and check every event, count what would be stored; write nothing."
)
_CHECKPOINT = typer.Option(
    None,
    "--checkpoint",
    help="A file recording how far the import got: read at start (resume there), written after every stored chunk.",
)
_BATCH = typer.Option(500, "--batch-size", min=1, help="Events read and stored per chunk (a page of the API).")


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) == 10:  # a date: its midnight, UTC
        text += "T00:00:00Z"
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} {exc}", param_hint=option) from None


def _filters(since: str | None, until: str | None, namespace: list[str] | None):
    from app.services.transfer.run import Filters

    return Filters(_instant(since, "--since"), _instant(until, "--until"), frozenset(namespace or ()))


class _EventsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "— events/s", style="progress.data.speed")


@contextmanager
def _progress(total: int | None, what: str, plain_every: float = 10.0):
    """A callback ``(done)`` showing how far a transfer is: a bar with events/s and the time left on a terminal,
    a plain line every ``plain_every`` seconds otherwise (logs, CI, `docker compose run` without a tty)."""
    if _err.is_terminal:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _EventsPerSecond(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=_err, transient=False) as bars:
            task = bars.add_task(what, total=total)

            def update(done: int) -> None:
                bars.update(task, completed=done, total=max(total, done) if total is not None else None)

            yield update
        return
    started = time.monotonic()
    last = [started]

    def line(done: int) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        of = f"/{total:,}" if total is not None else ""
        eta = ""
        if total is not None and rate > 0 and done < total:
            eta = f", ETA {_duration((total - done) / rate)}"
        print(f"{what}: {done:,}{of} events, {rate:,.0f} events/s{eta}", file=sys.stderr, flush=True)

    def update(done: int) -> None:
        if time.monotonic() - last[0] >= plain_every:
            last[0] = time.monotonic()
            line(done)

    yield update


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _engine(settings: Settings):
    engine = create_db_engine(settings)
    if settings.migrate_on_start:
        upgrade(engine)  # an import into a new install needs no `serve` first
    return engine


def _run(source, *, filters, dry_run: bool, checkpoint: Path | None, batch_size: int) -> None:
    from app.services.transfer.run import Checkpoint, run_import
    from app.services.transfer.sources import SourceError
    from app.services.transfer.store import StoreUnavailable

    settings = Settings()
    engine = _engine(settings)
    try:
        marker = Checkpoint(checkpoint, source.identity) if checkpoint is not None else None
        try:
            if marker is not None and (position := marker.load()) is not None:
                typer.echo(f"resuming from the checkpoint in {checkpoint}: {position}", err=True)
            total = source.estimated_total()
            with _progress(total, "dry run" if dry_run else "importing") as progress:
                report = run_import(
                    engine,
                    source,
                    filters=filters,
                    chunk_size=batch_size,
                    dry_run=dry_run,
                    checkpoint=marker,
                    progress=lambda read, report: progress(read),
                    settings=settings,
                )
        except KeyboardInterrupt:
            typer.echo("\ninterrupted: what was stored stays; run the same command again to resume.", err=True)
            raise typer.Exit(130) from None
        except (SourceError, StoreUnavailable, SQLAlchemyError, ValueError, OSError) as exc:
            if isinstance(exc, SQLAlchemyError):
                exc = f"the Headwater database: {str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]}"
            typer.echo(f"error: {exc}", err=True)
            if checkpoint is not None:
                typer.echo(f"what was stored stays; run the same command again to resume ({checkpoint}).", err=True)
            else:
                typer.echo("what was stored stays; run the same command again: stored events are skipped.", err=True)
            raise typer.Exit(2) from None
    finally:
        engine.dispose()
    _print_report(report)
    if not report.dry_run and not report.verified:
        raise typer.Exit(1)


def _print_report(report) -> None:
    echo = typer.echo
    title = "dry run of the import from" if report.dry_run else "imported from"
    echo(f"{title} {report.source} in {_duration(report.seconds)} ({report.rate:,.0f} events/s)")
    if report.resumed_from:
        echo(f"  resumed from       {report.resumed_from}")
    echo(f"  read               {report.read:>10,}")
    echo(f"  {'would store' if report.dry_run else 'stored':<19}{report.stored:>10,}")
    echo(f"  already stored     {report.already_stored:>10,}")
    echo(f"  outside filters    {report.skipped:>10,}")
    echo(f"  refused            {len(report.refused):>10,}")
    if report.namespaces:
        echo("")
        echo("verification: what the imported events name, and what Headwater has of it")
        echo(f"  {'namespace':<40}{'jobs':>17}{'datasets':>17}{'runs':>21}")
        for namespace, c in report.namespaces.items():
            mark = "" if c.complete else "   MISSING: " + ", ".join(c.missing)
            echo(
                f"  {namespace[:39]:<40}{f'{c.jobs_in_headwater:,}/{c.jobs:,}':>17}"
                f"{f'{c.datasets_in_headwater:,}/{c.datasets:,}':>17}{f'{c.runs_in_headwater:,}/{c.runs:,}':>21}{mark}"
            )
        echo("  (in Headwater / in the source)")
    if report.refused:
        echo("")
        echo(f"refused events ({len(report.refused):,}), by reason:")
        for reason, places in report.refusals_by_reason():
            shown = "; ".join(places[:3]) + (f"; … {len(places) - 3} more" if len(places) > 3 else "")
            echo(f"  {len(places):>6,} × {reason}")
            echo(f"           {shown}")


@import_cli.command("marquez-api")
def import_marquez_api(
    url: str = typer.Option(..., "--url", help="The Marquez server, e.g. http://marquez:5000."),
    api_key: str = typer.Option(None, "--api-key", envvar="MARQUEZ_API_KEY", help="Sent as 'Authorization: Bearer'."),
    since: str = _SINCE,
    until: str = _UNTIL,
    namespace: list[str] = _NAMESPACE,
    dry_run: bool = _DRY_RUN,
    checkpoint: Path = _CHECKPOINT,
    batch_size: int = _BATCH,
) -> None:
    """Import a running Marquez's events through its GET /api/v1/events/lineage, oldest first (RunEvents:
    Marquez's events API has no others)."""
    from app.services.transfer.sources import MarquezApi

    filters = _filters(since, until, namespace)
    source = MarquezApi(url, since=filters.since, until=filters.until, api_key=api_key)
    _run(source, filters=filters, dry_run=dry_run, checkpoint=checkpoint, batch_size=batch_size)


@import_cli.command("marquez-db")
def import_marquez_db(
    dsn: str = typer.Option(..., "--dsn", help="The Marquez database, postgresql://user:password@host:5432/marquez."),
    since: str = _SINCE,
    until: str = _UNTIL,
    namespace: list[str] = _NAMESPACE,
    dry_run: bool = _DRY_RUN,
    checkpoint: Path = _CHECKPOINT,
    batch_size: int = _BATCH,
) -> None:
    """Import every event a Marquez database kept (its lineage_events table: run, dataset and job events), read
    in one read-only transaction; nothing is written to Marquez."""
    from app.services.transfer.sources import MarquezDatabase

    filters = _filters(since, until, namespace)
    try:
        source = MarquezDatabase(dsn, since=filters.since, until=filters.until)
    except Exception as exc:  # psycopg's conninfo parser: a DSN it cannot read
        raise typer.BadParameter(str(exc), param_hint="--dsn") from None
    _run(source, filters=filters, dry_run=dry_run, checkpoint=checkpoint, batch_size=batch_size)


@import_cli.command("marquez-tags")
def import_marquez_tags(
    url: str = typer.Option(..., "--url", help="The Marquez server, e.g. http://marquez:5000."),
    api_key: str = typer.Option(None, "--api-key", envvar="MARQUEZ_API_KEY", help="Sent as 'Authorization: Bearer'."),
    namespace: list[str] = _NAMESPACE,
) -> None:
    """Copy the tags set through Marquez's REST API (tag definitions; tags on datasets, fields and jobs) onto
    what Headwater has: run it after importing the events. No event carries them."""
    import httpx

    from app.services.transfer.marquez_tags import copy_marquez_tags
    from app.services.transfer.sources import SourceError

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    engine = _engine(Settings())
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60) as client:
            report = copy_marquez_tags(engine, client, frozenset(namespace or ()))
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(
        f"copied {report.defined:,} tag definitions, {report.dataset_tags:,} dataset tags, "
        f"{report.field_tags:,} field tags and {report.job_tags:,} job tags from {url}"
    )
    if report.not_in_headwater:
        missing = report.not_in_headwater
        typer.echo(f"not in Headwater (import their events first), {len(missing):,}:", err=True)
        for what in missing[:20]:
            typer.echo(f"  {what}", err=True)
        raise typer.Exit(1)


@import_cli.command("file")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="events.jsonl or events.jsonl.gz"),
    since: str = _SINCE,
    until: str = _UNTIL,
    namespace: list[str] = _NAMESPACE,
    dry_run: bool = _DRY_RUN,
    checkpoint: Path = _CHECKPOINT,
    batch_size: int = _BATCH,
) -> None:
    """Import events from a JSON Lines file, gzip-compressed or not (`headwater export`, OpenLineage's file
    transport)."""
    from app.services.transfer.sources import JsonLinesFile

    filters = _filters(since, until, namespace)
    _run(JsonLinesFile(path), filters=filters, dry_run=dry_run, checkpoint=checkpoint, batch_size=batch_size)


def export_command(
    output: str = typer.Option("-", "--output", "-o", help="File to write ('-': standard output)."),
    compress: bool = typer.Option(
        None, "--gzip/--no-gzip", help="gzip the output [default: when the file name ends in .gz]."
    ),
    since: str = _SINCE,
    until: str = _UNTIL,
    namespace: list[str] = _NAMESPACE,
) -> None:
    """Write the stored events as JSON Lines, oldest first, each as it was received (`headwater import file`
    reads it back)."""
    from app.services.transfer.export import count_events, export_events

    filters = _filters(since, until, namespace)
    if compress is None:
        compress = output.endswith(".gz")
    engine = create_db_engine(Settings())
    started = time.monotonic()
    try:
        target = sys.stdout.buffer if output == "-" else open(output, "wb")
        stream = gzip.GzipFile(fileobj=target, mode="wb") if compress else target
        try:
            with _progress(count_events(engine, filters), "exporting") as progress:
                written = export_events(engine, stream, filters, progress=progress)
        finally:
            if compress:
                stream.close()
            if target is not sys.stdout.buffer:
                target.close()
            else:
                target.flush()
    finally:
        engine.dispose()
    seconds = time.monotonic() - started
    where = "standard output" if output == "-" else output
    typer.echo(f"exported {written:,} events to {where} in {_duration(seconds)}", err=True)
