"""The applier alone: how fast the model is built from events already in the log, on a throwaway PostgreSQL.

    python -m bench.apply [--events N] [--batch B] [--statements] [--profile FILE]

bench/ingest.py measures the whole path, where the HTTP layer, the log and the applier share two cores and the
figures move with whatever else the machine runs. This one stores bench/ingest.py's events in the log first
(``--warmup`` of them applied and not counted), then times the applier (``apply_pending``, as the server's
applier thread calls it, with what it keeps from batch to batch) until every event is applied, and splits the
CPU per event between this process (Python: the ingest code, SQLAlchemy, psycopg) and PostgreSQL.
``--statements`` restarts the server with ``pg_stat_statements`` and lists where PostgreSQL's time went;
``--profile FILE`` writes a cProfile of the applier (``python -m pstats FILE``). ``--floor`` then measures the
least PostgreSQL can spend on the model the applier built (``_model_floor``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import time

import orjson
import psycopg

from app.db import tables as t
from app.db.dialect import insert_ignore_rows
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.services.ingest import event_hash, raw_event_row
from app.services.ingest.applier import ValidatedEvents, apply_pending
from app.services.ingest.validation import validate_event
from app.services.ingest.writer import ColumnLineageIds
from app.settings import Settings
from bench.ingest import CpuMeter, generate_events, raw_url
from tests.support.postgres import TemporaryPostgres


def store(engine, bodies: list[bytes], validated: ValidatedEvents, read_back: float) -> None:
    """Put the events in the log as the server does (validated, hashed, one row each), unapplied; all but
    ``read_back`` of them are also kept validated, as by the process that received them."""
    rows = []
    for n, body in enumerate(bodies):
        payload = orjson.loads(body)
        event, digest = validate_event(payload), event_hash(payload)
        rows.append(raw_event_row(payload, event, digest))
        if (n * read_back) % 1 >= read_back or read_back == 0:
            validated.put(digest, event)
    with engine.begin() as connection:
        for start in range(0, len(rows), 500):
            insert_ignore_rows(connection, t.lineage_events, rows[start : start + 500])


def drain(engine, batch: int, validated: ValidatedEvents, lineage_ids: ColumnLineageIds) -> tuple[int, int]:
    """Apply batches until none is left, as the server's applier does; (events applied, batches)."""
    applied = batches = 0
    while (outcome := apply_pending(engine, limit=batch, validated=validated, lineage_ids=lineage_ids)).applied:
        applied += outcome.applied
        batches += 1
    return applied, batches


def _statement_report(pg: TemporaryPostgres, events: int, top: int) -> None:
    with psycopg.connect(raw_url(pg), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT calls, total_exec_time, rows, query FROM pg_stat_statements "
            "WHERE query NOT ILIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC"
        ).fetchall()
    calls = sum(r[0] for r in rows)
    total = sum(r[1] for r in rows)
    print(f"PostgreSQL statements: {calls} ({calls / events:.1f} per event), {total:.0f} ms executing")
    written = sum(r[2] for r in rows if r[3].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")))
    print(f"  rows inserted, updated or deleted (or returned by those): {written / events:.1f} per event")
    for n, ms, count, query in rows[:top]:
        text = " ".join(query.split())
        print(f"  {ms / total:5.1%} {ms:8.0f} ms {n:7d} calls {count:8d} rows  {text[:110]}")


def _model_floor(pg: TemporaryPostgres, meter: CpuMeter, events: int, rounds: int = 3) -> None:
    """What the model's rows cost PostgreSQL at the least: each row the applier left in a table, sent once by
    a client with ``COPY … FROM STDIN`` into an empty copy of the table (``LIKE … INCLUDING ALL``: the same
    indexes, defaults and storage, no foreign keys) — no updates, no reads of state, no statement per event,
    no Python. The log's own rows are sent the same way, as the measure to set it against. Per event of the
    whole log (warm-up included: the tables hold the model of all of it); ``rounds`` times, into emptied copies,
    as /proc counts CPU time in 10 ms ticks."""
    tables = [*t.MODEL_TABLES, t.lineage_events]
    spent = dict.fromkeys((table.name for table in tables), 0.0)
    data, rows = {}, {}
    with psycopg.connect(raw_url(pg), autocommit=True) as conn:
        for table in tables:
            conn.execute(f'CREATE TABLE "floor_{table.name}" (LIKE "{table.name}" INCLUDING ALL)')
            with conn.cursor().copy(f'COPY "{table.name}" TO STDOUT') as copy:
                data[table.name] = b"".join(bytes(chunk) for chunk in copy)
            rows[table.name] = data[table.name].count(b"\n")
        for _ in range(rounds):
            conn.execute("TRUNCATE " + ", ".join(f'"floor_{table.name}"' for table in tables))
            conn.execute("CHECKPOINT")
            for table in tables:
                before = meter.sample()
                with conn.cursor().copy(f'COPY "floor_{table.name}" FROM STDIN') as copy:
                    copy.write(data[table.name])
                spent[table.name] += meter.delta(before, meter.sample())["postgres"] / rounds
    log = t.lineage_events.name
    model_rows = sum(n for name, n in rows.items() if name != log)
    print(f"Model floor: its {model_rows} rows ({model_rows / events:.1f} per event) copied in once")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        if rows[name]:
            print(f"  {name:<20} {rows[name] / events:6.2f} rows/event  {seconds * 1000 / events:6.3f} ms/event")
    model = sum(seconds for name, seconds in spent.items() if name != log)
    per_event = f"model {model * 1000 / events:.3f} ms, the log's rows {spent[log] * 1000 / events:.3f} ms"
    print(f"  postgres cpu per event: {per_event}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000, help="measured events (default 4000)")
    parser.add_argument("--warmup", type=int, default=1000, help="events applied before measuring (default 1000)")
    parser.add_argument("--batch", type=int, help="events per batch (default: the server's, 1000 on Postgres)")
    parser.add_argument(
        "--read-back",
        type=float,
        default=0.5,
        help="share of events another process received, read back and validated again (default 0.5, as with "
        "two server processes)",
    )
    parser.add_argument("--statements", action="store_true", help="where PostgreSQL's time went")
    parser.add_argument("--top", type=int, default=25, help="statements listed with --statements (default 25)")
    parser.add_argument("--profile", help="write a cProfile of the measured applier to this file")
    parser.add_argument("--floor", action="store_true", help="then the least PostgreSQL spends on the model")
    args = parser.parse_args(argv)

    bodies = generate_events(args.warmup + args.events)
    options = ("-c shared_preload_libraries=pg_stat_statements", "-c pg_stat_statements.max=2000")
    with TemporaryPostgres(options=options if args.statements else ()) as pg:
        settings = Settings(database_url=pg.url)
        engine = create_db_engine(settings)
        upgrade(engine)
        batch = args.batch or settings.apply_batch
        validated, lineage_ids = ValidatedEvents(capacity=len(bodies)), ColumnLineageIds()
        store(engine, bodies[: args.warmup], validated, args.read_back)
        drain(engine, batch, validated, lineage_ids)
        store(engine, bodies[args.warmup :], validated, args.read_back)
        with psycopg.connect(raw_url(pg), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
            if args.statements:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                conn.execute("SELECT pg_stat_statements_reset()")

        # As the server runs (app/main.py): fewer young-generation collections, start-up objects frozen.
        gc.set_threshold(settings.gc_young_threshold, *gc.get_threshold()[1:])
        gc.collect()
        gc.freeze()
        meter = CpuMeter(pg)
        before = meter.sample()  # this process ("client": the applier's Python) and PostgreSQL
        profiler = cProfile.Profile() if args.profile else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        applied, batches = drain(engine, batch, validated, lineage_ids)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - began
        spent = meter.delta(before, meter.sample())
        python, postgres = spent["client"], spent["postgres"]

        print(
            f"Applier alone: {applied} events in {batches} batches of up to {batch}, on PostgreSQL; "
            f"{args.read_back:.0%} of them read back from the log"
        )
        print(f"  duration        {seconds:6.1f} s      {applied / seconds:6.0f} events/s")
        print(
            f"  cpu per event   {(python + postgres) * 1000 / applied:6.2f} ms   "
            f"(python {python * 1000 / applied:.2f}, postgres {postgres * 1000 / applied:.2f})"
        )
        if args.statements:
            _statement_report(pg, applied, args.top)
        if profiler:
            profiler.dump_stats(args.profile)
            print(f"profile written to {args.profile}")
        if args.floor:
            _model_floor(pg, meter, args.warmup + applied)
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
