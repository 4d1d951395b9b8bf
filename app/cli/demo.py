"""``headwater demo synthetic``: fill a database with a synthetic installation (benchmarks, demos)."""

from __future__ import annotations

import time
from datetime import timedelta

import typer

demo_cli = typer.Typer(help="Demo and benchmark data.", no_args_is_help=True)


@demo_cli.command("synthetic")
def synthetic_command(
    pipelines: int = typer.Option(200, help="Independent pipelines."),
    layers: int = typer.Option(20, help="Jobs deep per pipeline."),
    width: int = typer.Option(5, help="Jobs per layer of a pipeline."),
    fan_in: int = typer.Option(2, help="Datasets each job reads."),
    outputs: int = typer.Option(2, help="Datasets each job writes."),
    runs_per_job: int = typer.Option(1, help="Runs of every job, one per period."),
    period_minutes: int = typer.Option(60, help="Schedule period of every job."),
    seed: int = typer.Option(7, help="Random seed: the same options give the same installation."),
) -> None:
    """Write a synthetic installation (layered pipelines with run history) into the configured database,
    which must be empty. About 20,000 jobs and 40,000 datasets with the defaults."""
    from app.db.engine import create_db_engine
    from app.db.migrate import upgrade
    from app.services import synthetic
    from app.settings import Settings

    shape = synthetic.Shape(
        pipelines=pipelines,
        layers=layers,
        width=width,
        fan_in=fan_in,
        outputs=outputs,
        runs_per_job=runs_per_job,
        period=timedelta(minutes=period_minutes),
        seed=seed,
    )
    engine = create_db_engine(Settings())
    upgrade(engine)
    started = time.perf_counter()
    counts = synthetic.generate(engine, shape, progress=lambda message: typer.echo(f"  {message}"))
    synthetic.analyze(engine)
    engine.dispose()
    typer.echo(
        f"{shape.jobs:,} jobs, {counts['datasets']:,} datasets, {counts.get('runs', 0):,} runs "
        f"in {time.perf_counter() - started:.1f}s"
    )
