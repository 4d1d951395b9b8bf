"""The ``headwater`` command."""

from __future__ import annotations

import asyncio

import typer
import uvicorn

from app.cli.backfill import backfill_cli
from app.cli.demo import demo_cli
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.settings import Settings

cli = typer.Typer(help="Headwater: OpenLineage metadata service, compatible with Marquez.", no_args_is_help=True)
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(backfill_cli, name="backfill")
cli.add_typer(demo_cli, name="demo")


@cli.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [default: HEADWATER_HOST or 0.0.0.0]."),
    port: int = typer.Option(None, help="Port [default: HEADWATER_PORT / MARQUEZ_PORT or 5000]."),
    workers: int = typer.Option(None, help="Worker processes [default: HEADWATER_WORKERS or 1]."),
) -> None:
    """Apply migrations, then serve the API (and, with one worker, the admin endpoints on the admin port)."""
    settings = Settings()
    if settings.migrate_on_start:
        # Once here, before the workers start, rather than in every worker.
        engine = create_db_engine(settings)
        upgrade(engine)
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
        timeout_graceful_shutdown=20,
    )


async def _serve_with_admin_port(settings: Settings, host: str, port: int) -> None:
    """One app, two listeners: the API on ``port``, only /ping, /healthcheck and /metrics on the admin port."""
    from app.main import admin_only, create_app

    app = create_app(settings)
    main = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=settings.log_level, timeout_graceful_shutdown=20)
    )
    admin = uvicorn.Server(
        uvicorn.Config(
            admin_only(app), host=host, port=settings.admin_port, log_level=settings.log_level, lifespan="off"
        )
    )
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
