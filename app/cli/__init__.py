"""The ``headwater`` command."""

from __future__ import annotations

import asyncio
import time

import typer
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from app.cli.backfill import backfill_cli
from app.cli.demo import demo_cli
from app.cli.incidents import incidents_cli, subscriptions_cli
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.logs import log_config
from app.settings import Settings

cli = typer.Typer(help="Headwater: OpenLineage metadata service, compatible with Marquez.", no_args_is_help=True)
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(backfill_cli, name="backfill")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(incidents_cli, name="incidents")
cli.add_typer(subscriptions_cli, name="subscriptions")


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
    if workers == 1 and settings.admin_port:
        asyncio.run(_serve_with_admin_port(settings, host, port))
        return
    # Several workers: uvicorn's process manager; the admin endpoints stay on the main port.
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
    )


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


async def _serve_with_admin_port(settings: Settings, host: str, port: int) -> None:
    """One app, two listeners: the API on ``port``, only /ping, /healthcheck and /metrics on the admin port."""
    from app.main import admin_only, create_app

    app = create_app(settings)
    logs = {
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_format, settings.log_level),
        "access_log": False,  # RequestIdMiddleware writes the access lines, with the request id
    }
    main = uvicorn.Server(uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=20, **logs))
    admin_app = admin_only(app)
    admin = uvicorn.Server(uvicorn.Config(admin_app, host=host, port=settings.admin_port, lifespan="off", **logs))
    admin_task = asyncio.create_task(admin.serve())
    try:
        await main.serve()
    finally:
        admin.should_exit = True
        await admin_task


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the database migrations."""
    engine = create_db_engine(Settings())
    upgrade(engine, revision)
    engine.dispose()
    typer.echo(f"database at {revision}")


def main() -> None:
    cli()
