"""The ``headwater`` command."""

from __future__ import annotations

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
    """Apply migrations, then serve the API."""
    settings = Settings()
    if settings.migrate_on_start:
        # Once here, before the workers start, rather than in every worker.
        engine = create_db_engine(settings)
        upgrade(engine)
        engine.dispose()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=20,
    )


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the database migrations."""
    engine = create_db_engine(Settings())
    upgrade(engine, revision)
    engine.dispose()
    typer.echo(f"database at {revision}")


def main() -> None:
    cli()
