"""A throwaway Postgres holding a synthetic installation, for the benchmarks that read at scale."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.services import synthetic
from app.settings import Settings
from tests.support.postgres import TemporaryPostgres


@dataclass
class Installation:
    url: str
    engine: Engine
    counts: dict[str, int]


@contextmanager
def synthetic_postgres(shape: synthetic.Shape) -> Iterator[Installation]:
    """Start Postgres, migrate, write the installation in bulk, analyze; print what was built."""
    with TemporaryPostgres() as pg:
        engine = create_db_engine(Settings(database_url=pg.url, migrate_on_start=False))
        upgrade(engine)
        started = time.perf_counter()
        counts = synthetic.generate(engine, shape)
        synthetic.analyze(engine)
        print(
            f"installation: {shape.jobs:,} jobs, {counts['datasets']:,} datasets, {counts['runs']:,} runs, "
            f"{counts['run_io']:,} run<->version links, written in {time.perf_counter() - started:.0f}s"
        )
        try:
            yield Installation(pg.url, engine, counts)
        finally:
            engine.dispose()
