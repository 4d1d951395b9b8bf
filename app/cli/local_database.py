"""The local database for commands that read the model without a server (``--server`` not given)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import Engine

from app.db.engine import create_db_engine
from app.services.ingest.barrier import ReadBarrier
from app.settings import Settings


@contextmanager
def caught_up_engine() -> Iterator[Engine]:
    """An engine on the configured database, once the events stored before the command started are applied
    (as the API's reads wait; a server's applier applies them). Says so when the model is still behind."""
    settings = Settings()
    engine = create_db_engine(settings)
    try:
        lag = ReadBarrier(engine, wait_seconds=settings.read_wait_seconds).wait()
        if lag is not None:
            typer.echo(
                f"warning: {lag.unapplied} stored events are not applied to the model yet "
                f"(oldest {lag.seconds:.0f} s ago; is a server running?)",
                err=True,
            )
        yield engine
    finally:
        engine.dispose()
