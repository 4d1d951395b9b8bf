"""Ingest throughput: POST /api/v1/lineage over real HTTP into a throwaway PostgreSQL, next to a floor.

    python -m bench.ingest [--events N] [--workers W] [--concurrency C] [--warmup K] [--time-limit S]

The *HTTP ceiling* is the same requests against the endpoint minus the database (bench/http_ceiling_app.py):
what the machine can ingest through the HTTP layer at all. The *floor* is what the same PostgreSQL server
does with the same serialized events when nothing but a bare ``INSERT ... jsonb`` + commit per event is
asked of it, at the same concurrency. Headwater / floor then says how much of the database's raw write
capacity the service delivers as ingested events.

The phases run in one invocation (the floor and Headwater against one server), so the ratios are
meaningful on any machine even when the absolute figures are not. The load generator is this process and
the server a subprocess (``LiveServer``), so they share no GIL; but they do share the machine's cores, so CPU
seconds are reported for the client, the server and PostgreSQL, which shows whether a run was bound by the client.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.settings import Settings
from tests.support.live_server import LiveServer, free_port
from tests.support.postgres import TemporaryPostgres

# -- event generation ----------------------------------------------------------------------------------

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0"
DATASET_NAMESPACE = "postgres://db.example:5432"
JOB_NAMESPACE = "airflow-warehouse"
T0 = datetime(2024, 11, 1, 0, 0, tzinfo=UTC)

LAYERS = 6
JOBS_PER_LAYER = 50  # 300 jobs
SOURCE_TABLES = 50  # read by the first layer, written by nobody
COLUMNS_PER_TABLE = 20
LAYER_SPACING = timedelta(minutes=10)  # a layer starts after the previous one has finished

# Column vocabulary: name -> type. Tables draw 20 of these so that column lineage can mostly follow names.
COLUMN_TYPES = {
    "id": "BIGINT",
    "customer_id": "BIGINT",
    "order_id": "BIGINT",
    "product_id": "BIGINT",
    "account_id": "BIGINT",
    "store_id": "INTEGER",
    "region_id": "INTEGER",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "event_date": "DATE",
    "loaded_at": "TIMESTAMP",
    "amount": "NUMERIC(18,2)",
    "tax_amount": "NUMERIC(18,2)",
    "discount": "NUMERIC(18,2)",
    "quantity": "INTEGER",
    "unit_price": "NUMERIC(18,4)",
    "currency": "VARCHAR(3)",
    "status": "VARCHAR(32)",
    "channel": "VARCHAR(32)",
    "country_code": "VARCHAR(2)",
    "city": "VARCHAR(128)",
    "email": "VARCHAR(256)",
    "is_active": "BOOLEAN",
    "is_deleted": "BOOLEAN",
    "segment": "VARCHAR(64)",
    "category": "VARCHAR(64)",
    "sku": "VARCHAR(64)",
    "score": "DOUBLE PRECISION",
    "margin": "NUMERIC(18,4)",
    "source_system": "VARCHAR(32)",
    "batch_id": "UUID",
    "row_hash": "CHAR(64)",
}
COLUMN_NAMES = list(COLUMN_TYPES)


def _facet(facet: str, version: str, /, **fields) -> dict:
    return {
        "_producer": PRODUCER,
        "_schemaURL": f"https://openlineage.io/spec/facets/{version}/{facet}.json#/$defs/{facet}",
        **fields,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _table_name(k: int) -> str:
    return f"analytics.public.table_{k}"


@dataclass
class Pipeline:
    """~300 jobs in layers; each job reads two tables of the layer below and writes one table of its own.
    The per-job parts of an event (job, inputs, outputs) never change between runs, so they are built once."""

    rng: random.Random
    columns: dict[int, list[str]] = field(default_factory=dict)
    jobs: list[dict] = field(default_factory=list)  # {"layer", "job", "inputs", "outputs"}

    def __post_init__(self) -> None:
        for k in range(SOURCE_TABLES + LAYERS * JOBS_PER_LAYER):
            self.columns[k] = self.rng.sample(COLUMN_NAMES, COLUMNS_PER_TABLE)
        below = list(range(SOURCE_TABLES))
        next_table = SOURCE_TABLES
        for layer in range(LAYERS):
            written = []
            for _ in range(JOBS_PER_LAYER):
                a, b = self.rng.sample(below, 2)
                self.jobs.append(self._job(layer, a, b, next_table))
                written.append(next_table)
                next_table += 1
            below = written

    def _dataset(self, k: int, extra_facets: dict | None = None) -> dict:
        fields = [
            {"name": c, "type": COLUMN_TYPES[c], "description": f"{c.replace('_', ' ')} ({_table_name(k)})"}
            for c in self.columns[k]
        ]
        facets = {
            "schema": _facet("SchemaDatasetFacet", "1-1-1", fields=fields),
            "dataSource": _facet(
                "DatasourceDatasetFacet", "1-0-1", name=DATASET_NAMESPACE, uri=f"{DATASET_NAMESPACE}/analytics"
            ),
            **(extra_facets or {}),
        }
        return {"namespace": DATASET_NAMESPACE, "name": _table_name(k), "facets": facets}

    def _job(self, layer: int, a: int, b: int, out: int) -> dict:
        lineage, select = {}, []
        for column in self.columns[out]:
            # Same-named column of the first input when there is one; sometimes combined with the second.
            first = column if column in self.columns[a] else self.rng.choice(self.columns[a])
            sources = [(a, first)]
            select_expr = f"a.{first}"
            if self.rng.random() < 0.4:
                second = self.rng.choice(self.columns[b])
                sources.append((b, second))
                select_expr = f"coalesce(a.{first}, b.{second})"
            select.append(f"{select_expr} AS {column}")
            lineage[column] = {
                "inputFields": [
                    {
                        "namespace": DATASET_NAMESPACE,
                        "name": _table_name(k),
                        "field": f,
                        "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                    }
                    for k, f in sources
                ]
            }
        sql = (
            f"INSERT INTO {_table_name(out)} SELECT {', '.join(select)} "
            f"FROM {_table_name(a)} a JOIN {_table_name(b)} b ON a.id = b.id"
        )
        column_lineage = {"columnLineage": _facet("ColumnLineageDatasetFacet", "1-2-0", fields=lineage)}
        return {
            "layer": layer,
            "job": {
                "namespace": JOB_NAMESPACE,
                "name": f"warehouse_layer_{layer}.build_table_{out}",
                "facets": {
                    "jobType": _facet(
                        "JobTypeJobFacet", "2-0-3", processingType="BATCH", integration="AIRFLOW", jobType="TASK"
                    ),
                    "sql": _facet("SQLJobFacet", "1-1-0", query=sql, dialect="postgres"),
                },
            },
            "inputs": [self._dataset(a), self._dataset(b)],
            "outputs": [self._dataset(out, column_lineage)],
        }


def generate_events(total: int, seed: int = 7) -> list[bytes]:
    """`total` distinct RunEvents as JSON bytes, in eventTime order: hourly executions of the whole
    pipeline, layer after layer, each run a START and a later COMPLETE under its own uuid4 runId."""
    rng = random.Random(seed)
    pipeline = Pipeline(rng)
    engine_facet = _facet(
        "ProcessingEngineRunFacet", "1-1-1", version="2.10.3", name="Airflow", openlineageAdapterVersion="1.14.0"
    )
    timeline: list[tuple[datetime, str, dict, dict]] = []
    for r in range((total + 1) // 2):
        execution, job = divmod(r, len(pipeline.jobs))
        spec = pipeline.jobs[job]
        nominal = T0 + timedelta(hours=execution)
        start = nominal + spec["layer"] * LAYER_SPACING + timedelta(seconds=rng.uniform(0, 120))
        end = start + timedelta(seconds=rng.uniform(20, 450))
        run = {
            "runId": str(uuid.uuid4()),
            "facets": {
                "nominalTime": _facet(
                    "NominalTimeRunFacet",
                    "1-0-1",
                    nominalStartTime=_iso(nominal),
                    nominalEndTime=_iso(nominal + timedelta(hours=1)),
                ),
                "processing_engine": engine_facet,
            },
        }
        timeline.append((start, "START", run, spec))
        timeline.append((end, "COMPLETE", run, spec))
    timeline.sort(key=lambda item: item[0])
    return [
        orjson.dumps(
            {
                "eventType": event_type,
                "eventTime": _iso(moment),
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
                "run": run,
                "job": spec["job"],
                "inputs": spec["inputs"],
                "outputs": spec["outputs"],
            }
        )
        for moment, event_type, run, spec in timeline[:total]
    ]


# -- CPU accounting -------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _process_table() -> tuple[dict[int, int], dict[int, float]]:
    """pid → parent pid, and pid → CPU seconds (its own and its reaped children's), from /proc."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry)
        parents[pid] = int(rest[1])
        cpu[pid] = sum(int(x) for x in rest[11:15]) / _TICK  # utime stime cutime cstime
    return parents, cpu


def _tree_cpu(root_pid: int, parents: dict[int, int], cpu: dict[int, float]) -> float:
    total, frontier = 0.0, [root_pid]
    while frontier:
        pid = frontier.pop()
        total += cpu.get(pid, 0.0)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return total


def _process_tree_cpu(root_pid: int) -> float:
    """CPU seconds of a process and its live descendants (plus children it has reaped)."""
    return _tree_cpu(root_pid, *_process_table())


def _children_cpu(root_pid: int) -> dict[int, float]:
    """CPU seconds of each child of a process (a server's workers), with its own descendants."""
    parents, cpu = _process_table()
    return {pid: _tree_cpu(pid, parents, cpu) for pid, parent in parents.items() if parent == root_pid}


def worker_split(before: dict[int, float], after: dict[int, float]) -> str:
    """How a phase's server CPU fell on the workers, busiest first ("3.4s / 0.1s"): uvicorn's workers share one
    listening socket, and a burst of connections may all land on one of them (docs/ingest.md, session 13)."""
    spent = sorted((after[pid] - before[pid] for pid in after if pid in before), reverse=True)
    return " / ".join(f"{seconds:.1f}s" for seconds in spent if seconds >= 0.05) or "none"


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds spent by the client (this process), the Headwater server and PostgreSQL during a phase."""

    def __init__(self, pg: TemporaryPostgres, server_pid: int | None = None):
        self.pg_pid = int((pg.datadir / "postmaster.pid").read_text().split()[0])
        self.server_pid = server_pid

    def sample(self) -> dict[str, float]:
        sample = {"client": _self_cpu(), "postgres": _process_tree_cpu(self.pg_pid)}
        if self.server_pid:
            sample["server"] = _process_tree_cpu(self.server_pid)
        return sample

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before[k] for k in before}


# -- phases ---------------------------------------------------------------------------------------------

TARGET_RATE = 1000  # events/s, issue 2's target for this benchmark
WARMUP_TIME_LIMIT = 20.0  # seconds; a server slow enough to hit it will show in the measured figures anyway
APPLY_TIME_LIMIT = 600.0  # seconds the applier may take to catch up after the last acknowledgement
BATCH_SIZE = 500  # events per POST /api/v1/lineage/batch in the batch phase
CLIENT_TIMEOUT = 5.0  # openlineage-python's default HTTP timeout: slower replies would be failures there


@dataclass
class Phase:
    events: int
    seconds: float
    cpu: dict[str, float]
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # status code, or an exception name
    samples: list[str] = field(default_factory=list)  # a few error responses, for the report
    workers: str = ""  # the server's CPU by worker (worker_split), for the phases that have a server

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if isinstance(s, int) and 200 <= s < 300)


def raw_url(pg: TemporaryPostgres) -> str:
    return f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{pg.database}"


def _drive(
    batch: list[bytes], sessions: list, send: Callable[[Any, bytes], None], time_limit: float | None = None
) -> float:
    """Send `batch` from one thread per session; return the seconds from the common start to the last reply.

    The threads share one cursor into `batch` (`next` on itertools.count is atomic under the GIL), so events
    leave in generation order and a run's START goes out before its COMPLETE, give or take the concurrency.
    """
    cursor = itertools.count()
    start_line = threading.Barrier(len(sessions) + 1)
    began = 0.0

    def worker(session) -> None:
        start_line.wait()
        while (i := next(cursor)) < len(batch):
            if time_limit is not None and time.perf_counter() - began > time_limit:
                break
            send(session, batch[i])

    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    began = time.perf_counter()
    start_line.wait()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def _pass_through(body: bytes) -> bytes:
    return body


def run_floor(pg: TemporaryPostgres, events: list[bytes], warmup: list[bytes], concurrency: int) -> Phase:
    """One INSERT + commit per event, `concurrency` threads with a connection each."""
    url = raw_url(pg)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_events")
        conn.execute("CREATE TABLE floor_events (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")

    def insert(conn: psycopg.Connection, body: bytes) -> None:
        # The bytes as serialized, not re-encoded: the same bytes Headwater receives.
        conn.execute("INSERT INTO floor_events (payload) VALUES (%s)", (Jsonb(body, _pass_through),))
        conn.commit()

    connections = [psycopg.connect(url) for _ in range(concurrency)]
    try:
        _drive(warmup, connections, insert)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE floor_events")
            conn.execute("CHECKPOINT")  # neither phase pays for the other's dirty pages
        meter = CpuMeter(pg)
        before = meter.sample()
        seconds = _drive(events, connections, insert)
        cpu = meter.delta(before, meter.sample())
        with psycopg.connect(url, autocommit=True) as conn:
            stored = conn.execute("SELECT count(*) FROM floor_events").fetchone()[0]
            conn.execute("DROP TABLE floor_events")
    finally:
        for c in connections:
            c.close()
    if stored != len(events):
        raise RuntimeError(f"floor stored {stored} rows for {len(events)} events")
    return Phase(len(events), seconds, cpu)


def run_http_ceiling(
    events: list[bytes], warmup: list[bytes], workers: int, concurrency: int, store_in: TemporaryPostgres | None = None
) -> Phase:
    """The same requests against the endpoint minus the model (bench/http_ceiling_app.py), `workers`
    uvicorn processes: the most this machine can ingest through Headwater's HTTP layer at all, or, with
    `store_in`, while storing each raw event there as ingest does (one transaction each)."""
    port = free_port()
    env = {**os.environ, "HEADWATER_BENCH_STORE_URL": raw_store_database(store_in)} if store_in else None
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.http_ceiling_app:app", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        cwd=Path(__file__).resolve().parent.parent, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/api/v1/health")
                if probe.getresponse().status == 200:
                    probe.close()
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the HTTP ceiling server did not start") from None
                time.sleep(0.1)
        sessions = [_HttpSession("127.0.0.1", port, Phase(0, 0.0, {})) for _ in range(concurrency)]
        _drive(warmup, sessions, _HttpSession.post)
        for s in sessions:
            s.phase = Phase(0, 0.0, {})
        meter = CpuMeter(store_in, process.pid) if store_in else None
        before = meter.sample() if meter else (_process_tree_cpu(process.pid), _self_cpu())
        workers_before = _children_cpu(process.pid)
        seconds = _drive(events, sessions, _HttpSession.post)
        workers = worker_split(workers_before, _children_cpu(process.pid))
        if meter:
            cpu = meter.delta(before, meter.sample())
        else:
            cpu = {"client": _self_cpu() - before[1], "server": _process_tree_cpu(process.pid) - before[0]}
        for s in sessions:
            s.conn.close()
    finally:
        process.terminate()
        process.wait(20)
    phase = _merge(s.phase for s in sessions)
    if phase.ok != len(events):
        raise RuntimeError(f"HTTP ceiling: {dict(phase.statuses)} for {len(events)} events")
    phase.events, phase.seconds, phase.cpu, phase.workers = len(events), seconds, cpu, workers
    return phase


def raw_store_database(pg: TemporaryPostgres) -> str:
    """A second database on the same server with Headwater's schema, for the store-only ceiling (the floor's
    and Headwater's tables stay untouched)."""
    with psycopg.connect(raw_url(pg), autocommit=True) as conn:
        conn.execute("CREATE DATABASE raw_store")
    url = pg.url.rsplit("/", 1)[0] + "/raw_store"
    engine = create_db_engine(Settings(database_url=url, migrate_on_start=False))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def _merge(phases) -> Phase:
    merged = Phase(0, 0.0, {})
    for phase in phases:
        merged.latencies += phase.latencies
        merged.statuses += phase.statuses
        merged.samples += phase.samples
    return merged


class _HttpSession:
    """One keep-alive connection. http.client in threads costs the client ~0.2 ms CPU a request, about a
    fifth of httpx's, which matters when client and server share two cores."""

    HEADERS = {"Content-Type": "application/json"}

    # Each session records into its own Phase (no shared mutable state between threads); merged afterwards.
    def __init__(self, host: str, port: int, phase: Phase, path: str = "/api/v1/lineage"):
        self.host, self.port, self.phase, self.path = host, port, phase, path
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def post(self, body: bytes) -> None:
        began = time.perf_counter()
        try:
            self.conn.request("POST", self.path, body=body, headers=self.HEADERS)
            response = self.conn.getresponse()
            text = response.read()
            status: int | str = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, text = type(exc).__name__, str(exc).encode()
            self.conn.close()  # reconnects on the next request
        self.phase.latencies.append(time.perf_counter() - began)
        self.phase.statuses[status] += 1
        if not (isinstance(status, int) and 200 <= status < 300) and len(self.phase.samples) < 5:
            self.phase.samples.append(f"{status}: {text[:300].decode(errors='replace')}")


def unapplied_events(pg: TemporaryPostgres) -> int:
    with psycopg.connect(raw_url(pg), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM lineage_events WHERE applied_at IS NULL").fetchone()[0]


def wait_until_applied(pg: TemporaryPostgres, limit: float) -> bool:
    """Poll until the applier has built the model from every stored event; False if ``limit`` seconds pass."""
    deadline = time.monotonic() + limit
    with psycopg.connect(raw_url(pg), autocommit=True) as conn:
        while conn.execute("SELECT EXISTS (SELECT 1 FROM lineage_events WHERE applied_at IS NULL)").fetchone()[0]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
    return True


def run_headwater(
    pg: TemporaryPostgres,
    server: LiveServer,
    events: list[bytes],
    warmup: list[bytes],
    concurrency: int,
    time_limit: float,
    path: str = "/api/v1/lineage",
) -> tuple[Phase, Phase, Phase]:
    """Send the warm-up, then the measured events; returns (warm-up, acknowledged, sustained): acknowledged
    stops the clock at the last 201, sustained when the model is built from every event (the applier done)."""
    sessions = [_HttpSession("127.0.0.1", server.port, Phase(0, 0.0, {}), path) for _ in range(concurrency)]

    def phase(batch: list[bytes], limit: float | None) -> Phase:
        # Fresh connections: a thread that ran out of work idled at the end of the previous phase for as long
        # as the slowest request took, and uvicorn drops keep-alive connections idle for 5 s (BrokenPipe).
        for s in sessions:
            s.conn.close()
            s.phase = Phase(0, 0.0, {})
        seconds = _drive(batch, sessions, _HttpSession.post, limit)
        merged = _merge(s.phase for s in sessions)
        merged.seconds = seconds
        merged.events = len(merged.latencies)  # fewer than the batch when the time limit cut it short
        return merged

    try:
        warm = phase(warmup, WARMUP_TIME_LIMIT)
        wait_until_applied(pg, APPLY_TIME_LIMIT)
        with psycopg.connect(raw_url(pg), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        meter = CpuMeter(pg, server.process.pid)
        before, workers_before = meter.sample(), _children_cpu(server.process.pid)
        began = time.perf_counter()
        acknowledged = phase(events, time_limit if time_limit > 0 else None)
        acknowledged.cpu = meter.delta(before, meter.sample())
        acknowledged.workers = worker_split(workers_before, _children_cpu(server.process.pid))
        built = wait_until_applied(pg, APPLY_TIME_LIMIT)
        sustained = Phase(acknowledged.events, time.perf_counter() - began, meter.delta(before, meter.sample()))
        if not built:
            sustained.statuses["apply time limit"] = unapplied_events(pg)
    finally:
        for s in sessions:
            s.conn.close()
    return warm, acknowledged, sustained


def database_counts(pg: TemporaryPostgres) -> dict[str, int]:
    with psycopg.connect(raw_url(pg)) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "lineage_events": one("SELECT count(*) FROM lineage_events"),
            "apply_errors": one("SELECT count(*) FROM lineage_events WHERE apply_error IS NOT NULL"),
            "runs": one("SELECT count(*) FROM runs"),
            "runs_completed": one("SELECT count(*) FROM runs WHERE state = 'COMPLETED'"),
            "jobs": one("SELECT count(*) FROM jobs"),
            "datasets": one("SELECT count(*) FROM datasets"),
            "column_lineage": one("SELECT count(*) FROM column_lineage"),
        }


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*|^(?:ERROR|CRITICAL)\b.*", re.MULTILINE)


def log_problems(path: Path) -> tuple[int, Counter]:
    """Tracebacks in the server log, and how often each exception line (or ERROR log line) appears."""
    text = path.read_text(errors="replace") if path.exists() else ""
    found = Counter(m.group(0)[:200] for m in _EXCEPTION_LINE.finditer(text))
    return text.count("Traceback (most recent call last)"), found


# -- report ---------------------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _cpu(phase: Phase) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in phase.cpu.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=12000, help="measured events (default 12000)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight, and floor threads (default 8)")
    parser.add_argument("--warmup", type=int, default=300, help="events sent before measuring (default 300)")
    parser.add_argument(
        "--batch-events",
        type=int,
        default=10000,
        help=f"events sent afterwards through POST /api/v1/lineage/batch, {BATCH_SIZE} a request (default 10000)",
    )
    parser.add_argument("--batch-concurrency", type=int, default=2, help="batch requests in flight (default 2)")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=140,
        help="stop sending after this many seconds of measuring, so a slow server cannot hold the run "
        "hostage; 0 = send every event (default 140)",
    )
    parser.add_argument("--server-log", type=Path, help="keep the server's log here (default: a temp file)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.concurrency < 1 or args.workers < 1 or args.warmup < 0:
        parser.error("--events, --workers and --concurrency must be positive, --warmup not negative")

    wall = time.perf_counter()
    began = time.perf_counter()
    everything = generate_events(args.warmup + args.events + args.batch_events)
    warmup, events = everything[: args.warmup], everything[args.warmup : args.warmup + args.events]
    batch_events = everything[args.warmup + args.events :]
    chunks = [batch_events[i : i + BATCH_SIZE] for i in range(0, len(batch_events), BATCH_SIZE)]
    batches = [b"[" + b",".join(chunk) + b"]" for chunk in chunks]
    size = sum(map(len, events)) / len(events)
    print(
        f"generated {len(everything)} events ({size / 1024:.1f} KiB average) in {time.perf_counter() - began:.1f}s",
        flush=True,
    )

    ceiling = run_http_ceiling(events, warmup, args.workers, args.concurrency)
    print(f"HTTP ceiling (no database): {ceiling.rate:.0f} events/s", flush=True)
    log_path = args.server_log or Path(tempfile.mkdtemp(prefix="headwater-bench-")) / "server.log"
    with TemporaryPostgres() as pg:
        floor = run_floor(pg, events, warmup, args.concurrency)
        print(f"floor: {floor.rate:.0f} events/s", flush=True)
        stored = run_http_ceiling(events, warmup, args.workers, args.concurrency, store_in=pg)
        print(f"store-only ceiling: {stored.rate:.0f} events/s; starting Headwater", flush=True)
        with LiveServer(pg.url, workers=args.workers, log_path=log_path) as server:
            warm, measured, sustained = run_headwater(pg, server, events, warmup, args.concurrency, args.time_limit)
            print(f"Headwater per event: {measured.rate:.0f} acknowledged, {sustained.rate:.0f} applied", flush=True)
            batch_acked = batch_sustained = None
            if batches:
                _, batch_acked, batch_sustained = run_headwater(
                    pg, server, batches, [], args.batch_concurrency, 0, path="/api/v1/lineage/batch"
                )
        counts = database_counts(pg)

    latencies = sorted(measured.latencies)
    sent_ok = warm.ok + measured.ok + (len(batch_events) if batch_acked and batch_acked.ok == len(batches) else 0)
    errors = measured.events - measured.ok
    stored_match = counts["lineage_events"] == sent_ok
    print()
    cut = f" of {len(events)}: TIME LIMIT {args.time_limit:.0f}s reached" if measured.events < len(events) else ""
    if warm.events < len(warmup):
        print(f"warm-up cut short at {WARMUP_TIME_LIMIT:.0f}s: {warm.events} of {len(warmup)} events sent")
    print(
        f"Headwater ingest: {measured.events} events{cut}, {args.workers} workers, concurrency {args.concurrency}"
        f" ({warm.events} warm-up events not counted)"
    )
    print(f"  acknowledged    {measured.seconds:8.1f} s   {measured.rate:8.0f} events/s   (the last 201)")
    print(f"  workers' cpu    {measured.workers}   (to the last 201, applier included: how connections fell)")
    print(f"  model built     {sustained.seconds:8.1f} s   {sustained.rate:8.0f} events/s   (the applier done)")
    print(f"  latency p50     {_percentile(latencies, 0.50) * 1000:8.1f} ms")
    print(f"  latency p95     {_percentile(latencies, 0.95) * 1000:8.1f} ms")
    print(f"  latency p99     {_percentile(latencies, 0.99) * 1000:8.1f} ms")
    print(
        f"  over {CLIENT_TIMEOUT:.0f} s       {sum(x > CLIENT_TIMEOUT for x in latencies):8d}   "
        "(would time out in openlineage-python's default HTTP transport)"
    )
    print(f"  errors          {errors:8d}   {dict(measured.statuses)}")
    print(f"  cpu             {_cpu(sustained)}   (until the model was built)")
    if batch_acked is not None and batch_sustained is not None:
        n = len(batch_events)
        print(f"Headwater batch ingest: {n} events in {len(batches)} requests of {BATCH_SIZE}, "
              f"concurrency {args.batch_concurrency}")  # fmt: skip
        print(f"  acknowledged    {batch_acked.seconds:8.1f} s   {n / batch_acked.seconds:8.0f} events/s")
        print(f"  workers' cpu    {batch_acked.workers}")
        print(f"  model built     {batch_sustained.seconds:8.1f} s   {n / batch_sustained.seconds:8.0f} events/s")
        print(f"  errors          {batch_acked.events - batch_acked.ok:8d}   {dict(batch_acked.statuses)}"
              f"{' ' + str(dict(batch_sustained.statuses)) if batch_sustained.statuses else ''}")  # fmt: skip
        print(f"  cpu             {_cpu(batch_sustained)}")
    print(f"Floor: {floor.events} events, bare jsonb INSERT + commit each, {args.concurrency} connections")
    print(f"  duration        {floor.seconds:8.1f} s")
    print(f"  throughput      {floor.rate:8.0f} events/s")
    print(f"  cpu             {_cpu(floor)}")
    print(
        f"Headwater / floor: acknowledged {measured.rate / floor.rate:.2f}, "
        f"model built {sustained.rate / floor.rate:.2f}"
    )
    print(f"HTTP ceiling: the endpoint without the database (parse, validate, hash), {args.workers} workers")
    print(f"  throughput      {ceiling.rate:8.0f} events/s")
    print(f"  workers' cpu    {ceiling.workers}")
    per_event = ceiling.cpu["server"] * 1000 / ceiling.events
    print(f"  cpu             {_cpu(ceiling)}   ({per_event:.2f} ms of server CPU per event)")
    print(
        f"Headwater / HTTP ceiling: acknowledged {measured.rate / ceiling.rate:.2f} (target 0.7), "
        f"model built {sustained.rate / ceiling.rate:.2f} (target 0.5); "
        f"p99 acknowledgement {_percentile(latencies, 0.99) * 1000:.0f} ms (target 100)"
    )
    if batch_sustained is not None:
        rate = len(batch_events) / batch_sustained.seconds
        print(f"Headwater batch, model built / floor {rate / floor.rate:.2f} (target 0.5)")
    print("Store-only ceiling: the endpoint storing each raw event (its own transaction, job lock), no model")
    print(f"  throughput      {stored.rate:8.0f} events/s")
    per_event = ", ".join(f"{k} {v * 1000 / stored.events:.2f}" for k, v in stored.cpu.items())
    print(f"  cpu             {_cpu(stored)}   (ms per event: {per_event})")
    print(f"Headwater / store-only ceiling {measured.rate / stored.rate:5.2f}")
    # What a rate costs: every process here shares the machine's cores, so r events/s leaves cores / r seconds
    # of CPU per event for the server, PostgreSQL and the load generator together.
    cores = os.cpu_count() or 1
    budget = cores * 1000 / TARGET_RATE
    print(f"CPU per event, all processes (on {cores} cores, {TARGET_RATE} events/s leaves {budget:.1f} ms)")
    rows = [("Headwater, to the 201", measured), ("Headwater, model built", sustained)]
    if batch_sustained is not None:
        rows.append(("Headwater batch, built", Phase(len(batch_events), 0, batch_sustained.cpu)))
    rows += [("store-only ceiling", stored), ("HTTP ceiling", ceiling)]
    for name, phase in rows:
        parts = ", ".join(f"{k} {v * 1000 / phase.events:.2f}" for k, v in phase.cpu.items())
        print(f"  {name:<24}{sum(phase.cpu.values()) * 1000 / phase.events:8.2f} ms   ({parts})")
    print("Stored")
    print(
        f"  lineage_events  {counts['lineage_events']:8d}   (2xx responses incl. warm-up: {sent_ok}"
        f"{', match' if stored_match else ', MISMATCH'})"
    )
    print(f"  apply errors    {counts['apply_errors']:8d}")
    print(f"  runs            {counts['runs']:8d}   ({counts['runs_completed']} COMPLETED)")
    print(
        f"  jobs / datasets {counts['jobs']:8d} / {counts['datasets']}   column_lineage rows {counts['column_lineage']}"
    )
    for sample in measured.samples + warm.samples:
        print(f"  error sample: {sample}")
    tracebacks, problems = log_problems(log_path)
    if tracebacks or problems:
        print(f"Server log: {tracebacks} tracebacks, see {log_path}")
        for line, n in problems.most_common(8):
            print(f"  {n:5d} x {line}")
    elif not args.server_log:
        shutil.rmtree(log_path.parent, ignore_errors=True)  # nothing worth keeping
    print(f"total wall time {time.perf_counter() - wall:.0f}s")

    healthy = (
        errors == 0
        and warm.ok == warm.events
        and stored_match
        and counts["apply_errors"] == 0
        and not sustained.statuses
        and (batch_sustained is None or not batch_sustained.statuses)
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
