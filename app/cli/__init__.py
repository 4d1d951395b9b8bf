"""The ``headwater`` command."""

from __future__ import annotations

import asyncio
import logging.config
import os
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta

import typer
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from app.cli.backfill import backfill_cli
from app.cli.demo import demo_cli
from app.cli.incidents import incidents_cli, subscriptions_cli
from app.cli.maintenance import purge_command, reindex_command
from app.cli.transfer import export_command, import_cli
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.logs import log_config
from app.metrics import MULTIPROCESS_DIR
from app.settings import Settings

cli = typer.Typer(help="Headwater: OpenLineage metadata service, compatible with Marquez.", no_args_is_help=True)
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(backfill_cli, name="backfill")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(incidents_cli, name="incidents")
cli.add_typer(subscriptions_cli, name="subscriptions")
cli.add_typer(import_cli, name="import")
cli.command("export")(export_command)
cli.command("purge")(purge_command)
cli.command("reindex")(reindex_command)


@cli.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [default: HEADWATER_HOST or 0.0.0.0]."),
    port: int = typer.Option(None, help="Port [default: HEADWATER_PORT / MARQUEZ_PORT or 5000]."),
    workers: int = typer.Option(None, help="Worker processes [default: HEADWATER_WORKERS or 1]."),
) -> None:
    """Apply migrations, then serve the API (and, with one worker, the admin endpoints on the admin port)."""
    settings = Settings()
    engine = create_db_engine(settings)
    try:
        _wait_for_database(engine, settings.db_wait_seconds)
        if settings.migrate_on_start:
            upgrade(engine)  # once here, before the workers start, rather than in every worker
    finally:
        engine.dispose()
    host, port, workers = host or settings.host, port or settings.port, workers or settings.workers
    with _retention(settings):
        _serve(settings, host, port, workers)


@contextmanager
def _retention(settings: Settings):
    """Periodic retention (HEADWATER_RETENTION_DAYS) on a thread of this process: one schedule per `serve`,
    however many workers it starts."""
    if not settings.retention_days:
        yield
        return
    from app.services.retention import RetentionSchedule

    logging.config.dictConfig(log_config(settings.log_format, settings.log_level))  # before uvicorn does
    engine = create_db_engine(settings)
    schedule = RetentionSchedule(
        engine,
        timedelta(days=settings.retention_days),
        settings.retention_interval_seconds,
        batch_size=settings.retention_batch_size,
    ).start()
    try:
        yield
    finally:
        schedule.stop()
        engine.dispose()


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    if workers == 1:
        asyncio.run(_serve_in_process(settings, host, port))
        return
    # Several workers: uvicorn's process manager; the admin endpoints stay on the main port.
    with _shared_metrics_directory():
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            log_config=log_config(settings.log_format, settings.log_level),
            access_log=False,  # RequestIdMiddleware writes the access lines, with the request id
            timeout_graceful_shutdown=20,
            timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
        )


@contextmanager
def _shared_metrics_directory():
    """prometheus_client's multiprocess mode for the workers (they inherit the environment): a fresh directory
    for their metric files, removed afterwards. One the operator set (PROMETHEUS_MULTIPROC_DIR) is used as is."""
    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    directory = tempfile.mkdtemp(prefix="headwater-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for_database(engine, seconds: float) -> None:
    """Retry the first connection for up to ``seconds`` (a database starting beside us), then fail clearly."""
    where = engine.url.render_as_string(hide_password=True)
    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return
        except SQLAlchemyError as exc:
            if time.monotonic() + delay > deadline:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
                typer.echo(f"error: the database at {where} did not answer within {seconds:g}s: {reason}", err=True)
                raise typer.Exit(1) from None
            typer.echo(f"waiting for the database at {where}…", err=True)
            time.sleep(delay)
            delay = min(delay * 2, 5)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve`: uvicorn's own handling re-raises SIGTERM once it has
    shut down gracefully, which would end the process with a signal instead of exit status 0."""

    @contextmanager
    def capture_signals(self):
        yield


async def _serve_in_process(settings: Settings, host: str, port: int) -> None:
    """One app, two listeners: the API on ``port``, only /ping, /healthcheck and /metrics on the admin port
    (unless it is 0). SIGTERM or SIGINT stops accepting connections, lets requests in flight finish (up to 20 s),
    then returns; a second SIGINT stops at once."""
    from app.main import admin_only, create_app

    app = create_app(settings)
    logs = {
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_format, settings.log_level),
        "access_log": False,  # RequestIdMiddleware writes the access lines, with the request id
    }
    servers = [_Server(uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=20, **logs))]
    if settings.admin_port:
        admin = uvicorn.Config(admin_only(app), host=host, port=settings.admin_port, lifespan="off", **logs)
        servers.append(_Server(admin))

    def stop(sig: signal.Signals) -> None:
        for server in servers:
            server.force_exit = server.should_exit and sig == signal.SIGINT
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    admin_task = asyncio.create_task(servers[1].serve()) if len(servers) > 1 else None
    try:
        await servers[0].serve()
    finally:
        if admin_task is not None:
            servers[1].should_exit = True
            await admin_task


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the database migrations (after waiting for the database, as `serve` does)."""
    settings = Settings()
    engine = create_db_engine(settings)
    try:
        _wait_for_database(engine, settings.db_wait_seconds)
        upgrade(engine, revision)
    finally:
        engine.dispose()
    typer.echo(f"database at {revision}")


def main() -> None:
    cli()
