"""A synthetic installation for benchmarks and demos: layered pipelines of jobs and datasets with run history,
written in bulk as the same rows ingest writes (ids from ``identifiers``, current edges, current versions,
column lineage, run↔version links), so reads behave as on an ingested installation of that size. Going
through the HTTP ingest would take hours at these sizes.

Shape: ``pipelines`` independent pipelines, each ``layers`` deep and ``width`` jobs wide. A job reads
``fan_in`` datasets of the layer before it (a small share from another pipeline: cross-team links), and
writes ``outputs`` datasets. Every job runs once per ``period`` for ``runs_per_job`` periods; run i of a job
reads version i of its inputs and writes version i of its outputs, as a scheduled chain does.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Table, text
from sqlalchemy.exc import DBAPIError

from app.db import tables as t
from app.db.dialect import bulk_insert
from app.services import identifiers as ids

JOB_NAMESPACE = "synthetic"
DATASET_NAMESPACE = "warehouse://synthetic"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = ("id", "key", "amount", "updated_at", "payload")
# The event key of every synthetic fact: lower than any real event's, so real events ingested later win.
SYNTHETIC_KEY = "0|synthetic"
_SYNTHETIC = uuid.UUID("6d0f1b8e-3f52-4d1c-9a63-7c1e5a0b2f44")


@dataclass(frozen=True)
class Shape:
    pipelines: int = 200
    layers: int = 20
    width: int = 5
    fan_in: int = 2
    outputs: int = 2
    runs_per_job: int = 1
    period: timedelta = timedelta(hours=1)
    cross_links: float = 0.02
    seed: int = 7

    @property
    def jobs(self) -> int:
        return self.pipelines * self.layers * self.width


def job_name(pipeline: int, layer: int, slot: int) -> str:
    return f"p{pipeline:04d}.l{layer:02d}.job{slot:02d}"


def dataset_name(pipeline: int, layer: int, slot: int, output: int) -> str:
    return f"p{pipeline:04d}.l{layer:02d}.t{slot:02d}_{output}"


def source_name(pipeline: int, slot: int) -> str:
    return f"p{pipeline:04d}.src.t{slot:02d}"


def _uuid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_SYNTHETIC, "|".join(str(p) for p in parts))


def version_id(dataset: uuid.UUID, period: int) -> uuid.UUID:
    return _uuid("version", dataset, period)


def run_id(job: uuid.UUID, period: int) -> uuid.UUID:
    return _uuid("run", job, period)


@dataclass
class _Graph:
    jobs: dict[uuid.UUID, str]
    datasets: dict[uuid.UUID, str]
    reads: dict[uuid.UUID, list[uuid.UUID]]
    writes: dict[uuid.UUID, list[uuid.UUID]]


def _graph(shape: Shape) -> _Graph:
    rng = random.Random(shape.seed)
    g = _Graph({}, {}, {}, {})
    previous: dict[int, list[uuid.UUID]] = {}
    for p in range(shape.pipelines):
        sources = []
        for slot in range(shape.width * shape.outputs):
            d = ids.dataset_id(DATASET_NAMESPACE, source_name(p, slot))
            g.datasets[d] = source_name(p, slot)
            sources.append(d)
        previous[p] = sources
    for layer in range(1, shape.layers + 1):
        current: dict[int, list[uuid.UUID]] = {}
        for p in range(shape.pipelines):
            produced = []
            for slot in range(shape.width):
                j = ids.job_id(JOB_NAMESPACE, job_name(p, layer, slot))
                g.jobs[j] = job_name(p, layer, slot)
                pool = previous[p]
                inputs = []
                for _ in range(shape.fan_in):
                    if shape.pipelines > 1 and rng.random() < shape.cross_links:
                        inputs.append(rng.choice(previous[rng.randrange(shape.pipelines)]))
                    else:
                        inputs.append(rng.choice(pool))
                g.reads[j] = sorted(set(inputs), key=str)
                outs = []
                for o in range(shape.outputs):
                    d = ids.dataset_id(DATASET_NAMESPACE, dataset_name(p, layer, slot, o))
                    g.datasets[d] = dataset_name(p, layer, slot, o)
                    outs.append(d)
                g.writes[j] = outs
                produced += outs
            current[p] = produced
        previous = current
    return g


def _writer(engine: Engine, counts: dict[str, int], progress) -> Callable[[Table, Iterator[dict]], None]:
    """Bulk-insert rows into a table in their own transaction, adding to ``counts`` and reporting progress."""

    def put(table: Table, rows: Iterator[dict]) -> None:
        with engine.begin() as conn:
            counts[table.name] = counts.get(table.name, 0) + bulk_insert(conn, table, rows)
        progress(f"{table.name}: {counts[table.name]:,} rows")

    return put


def _fields() -> list[dict]:
    return [{"name": c, "type": "text" if c in ("key", "payload") else "bigint"} for c in COLUMNS]


def generate(engine: Engine, shape: Shape, *, progress=lambda message: None) -> dict[str, int]:
    """Write the installation into an empty (migrated) database. Returns row counts per table."""
    g = _graph(shape)
    now = EPOCH + shape.period * shape.runs_per_job
    last = shape.runs_per_job - 1
    writer_of = {d: j for j, outs in g.writes.items() for d in outs}
    counts: dict[str, int] = {}

    put = _writer(engine, counts, progress)

    ns_rows = [
        {"id": ids.namespace_id(n), "name": n, "created_at": EPOCH, "updated_at": now}
        for n in (JOB_NAMESPACE, DATASET_NAMESPACE)
    ]
    put(t.namespaces, iter(ns_rows))
    fields = _fields()
    put(
        t.datasets,
        (
            {
                "id": d,
                "namespace_id": ids.namespace_id(DATASET_NAMESPACE),
                "namespace_name": DATASET_NAMESPACE,
                "name": name,
                "physical_name": name,
                "type": "DB_TABLE",
                "current_version_id": version_id(d, last if d in writer_of else 0),
                "current_version_key": SYNTHETIC_KEY,
                "last_modified_at": now if d in writer_of else None,
                "created_at": EPOCH,
                "updated_at": now,
            }
            for d, name in g.datasets.items()
        ),
    )
    put(
        t.jobs,
        (
            {
                "id": j,
                "namespace_id": ids.namespace_id(JOB_NAMESPACE),
                "namespace_name": JOB_NAMESPACE,
                "name": name,
                "simple_name": name,
                "type": "BATCH",
                "current_version_id": _uuid("job-version", j),
                "current_version_key": SYNTHETIC_KEY,
                "current_run_id": run_id(j, last) if shape.runs_per_job else None,
                "current_run_key": SYNTHETIC_KEY,
                "created_at": EPOCH,
                "updated_at": now,
            }
            for j, name in g.jobs.items()
        ),
    )
    put(
        t.job_versions,
        (
            {
                "id": _uuid("job-version", j),
                "job_id": j,
                "namespace_name": JOB_NAMESPACE,
                "job_name": name,
                "latest_run_id": run_id(j, last) if shape.runs_per_job else None,
                "created_at": EPOCH,
                "updated_at": now,
            }
            for j, name in g.jobs.items()
        ),
    )
    edges = [(j, d, "INPUT") for j, ins in g.reads.items() for d in ins]
    edges += [(j, d, "OUTPUT") for j, outs in g.writes.items() for d in outs]
    put(
        t.job_version_io,
        ({"job_version_id": _uuid("job-version", j), "dataset_id": d, "io_type": io} for j, d, io in edges),
    )
    put(
        t.lineage_edges,
        (
            {
                "job_id": j,
                "dataset_id": d,
                "io_type": io,
                "is_current": True,
                "first_seen_at": EPOCH,
                "last_seen_at": now,
                "last_seen_key": SYNTHETIC_KEY,
                "last_run_id": run_id(j, last) if shape.runs_per_job else None,
            }
            for j, d, io in edges
        ),
    )
    # Current versions: one per dataset (sources: the version their readers saw), with the schema.
    put(
        t.dataset_versions,
        (
            {
                "id": version_id(d, last if d in writer_of else 0),
                "dataset_id": d,
                "namespace_name": DATASET_NAMESPACE,
                "dataset_name": name,
                "run_id": run_id(writer_of[d], last) if d in writer_of and shape.runs_per_job else None,
                "fields": fields,
                "published_key": SYNTHETIC_KEY if d in writer_of else "",
                "column_lineage_id": _uuid("column-lineage", d) if d in writer_of else None,
                "created_at": now,
            }
            for d, name in g.datasets.items()
        ),
    )
    # Column lineage of the current versions: each output column comes from the same column of the inputs.
    put(
        t.column_lineage,
        (
            {
                "lineage_id": _uuid("column-lineage", o),
                "output_field": c,
                "input_dataset_id": i,
                "input_field": c,
                "output_dataset_id": o,
                "transformation_type": "DIRECT",
                "transformation_subtype": "IDENTITY",
            }
            for j, outs in g.writes.items()
            for o in outs
            for i in g.reads[j]
            for c in COLUMNS
        ),
    )
    add_history(engine, shape, periods=range(shape.runs_per_job), graph=g, counts=counts, progress=progress)
    return counts


def add_history(
    engine: Engine,
    shape: Shape,
    *,
    periods: range,
    graph: _Graph | None = None,
    counts: dict[str, int] | None = None,
    progress=lambda message: None,
) -> dict[str, int]:
    """Runs for the given periods of every job, with what each read and wrote. Older periods can be added
    later (negative numbers) to grow history without changing what is current."""
    g = graph or _graph(shape)
    counts = counts if counts is not None else {}
    writer_of = {d: j for j, outs in g.writes.items() for d in outs}

    put = _writer(engine, counts, progress)

    def runs() -> Iterator[dict]:
        for j, name in g.jobs.items():
            for i in periods:
                start = EPOCH + shape.period * i
                yield {
                    "id": run_id(j, i),
                    "job_id": j,
                    "namespace_name": JOB_NAMESPACE,
                    "job_name": name,
                    "job_version_id": _uuid("job-version", j),
                    "state": "COMPLETED",
                    "state_rank": 2,
                    "state_key": SYNTHETIC_KEY,
                    "transitioned_at": start + shape.period + timedelta(minutes=10),
                    "started_at": start + shape.period + timedelta(minutes=5),
                    "ended_at": start + shape.period + timedelta(minutes=10),
                    "nominal_start_time": start,
                    "nominal_end_time": start + shape.period,
                    "nominal_key": SYNTHETIC_KEY,
                    "created_at": start + shape.period,
                    "updated_at": start + shape.period,
                }

    def links() -> Iterator[dict]:
        for j in g.jobs:
            for i in periods:
                r = run_id(j, i)
                for io, datasets in (("INPUT", g.reads[j]), ("OUTPUT", g.writes[j])):
                    for d in datasets:
                        # Sources are never written: every run reads their one version.
                        v = version_id(d, i if d in writer_of else 0)
                        yield {
                            "run_id": r,
                            "dataset_id": d,
                            "io_type": io,
                            "id": ids.run_io_id(r, d, io),
                            "dataset_version_id": v,
                            "event_key": SYNTHETIC_KEY,
                            "version_key": SYNTHETIC_KEY,
                        }

    def versions() -> Iterator[dict]:
        last = shape.runs_per_job - 1
        for j, outs in g.writes.items():
            for i in periods:
                for d in outs:
                    if i == last:
                        continue  # the current version, written with the datasets
                    yield {
                        "id": version_id(d, i),
                        "dataset_id": d,
                        "namespace_name": DATASET_NAMESPACE,
                        "dataset_name": g.datasets[d],
                        "run_id": run_id(j, i),
                        "fields": [],
                        "published_key": SYNTHETIC_KEY,
                        "created_at": EPOCH + shape.period * (i + 1),
                    }

    put(t.runs, runs())
    put(t.run_io, links())
    put(t.dataset_versions, versions())
    return counts


def analyze(engine: Engine) -> None:
    """After a bulk load (Postgres): what autovacuum gives a real installation in its steady state — planner
    statistics, hint bits and the visibility map — done now, so that measurements do not share the machine with
    autovacuum working through millions of fresh rows, or with the checkpoint writing them out."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
            try:  # and the gigabytes just written flushed now, not while measuring (needs pg_checkpoint or superuser)
                conn.execute(text("CHECKPOINT"))
            except DBAPIError:
                pass
