"""Import throughput: `headwater import marquez-db` from a Marquez-shaped ``lineage_events`` table into
Headwater, both on one throwaway PostgreSQL server, next to the raw-insert floor measured in the same run.

    python -m bench.import_ [--events N] [--batch-size B]

The source is Marquez's raw event table (the columns a current Marquez gives it) filled with N realistic
RunEvents (bench.ingest's hourly pipeline: START and COMPLETE per run, inputs, outputs, schemas, column
lineage). The import is one process reading the table through a server-side cursor and storing through
Headwater's batch ingest, one transaction per event, as `headwater import` does. The *floor* is the same
serialized events as a bare ``INSERT ... jsonb`` + commit each on one connection (the import writes on one
connection too), so Headwater / floor says how much of the database's raw write rate the import delivers.
A second pass imports the same table again: everything is already stored and skipped by hash, which is what
a re-run after an interruption costs.
"""

from __future__ import annotations

import argparse
import time

import orjson
import psycopg

from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.services.transfer.run import run_import
from app.services.transfer.sources import MarquezDatabase
from app.settings import Settings
from bench.ingest import generate_events, raw_url, run_floor
from tests.support.marquez_db import create_marquez_table, fill_marquez_table, marquez_row
from tests.support.postgres import TemporaryPostgres

PROGRESS_EVERY = 15.0  # seconds between progress lines


def _marquez_database(pg: TemporaryPostgres, events: list[bytes]) -> str:
    with psycopg.connect(raw_url(pg), autocommit=True) as conn:
        conn.execute("CREATE DATABASE marquez")
    url = f"postgresql://{pg.user}@127.0.0.1:{pg.port}/marquez"
    create_marquez_table(url)
    fill_marquez_table(url, (marquez_row(orjson.loads(body)) for body in events))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE lineage_events")
    return url


def _import(engine, dsn: str, batch_size: int, label: str):
    last = [time.monotonic()]

    def progress(read: int, report) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY:
            last[0] = time.monotonic()
            rate = read / report.seconds if report.seconds else 0.0
            print(f"  {label}: {read:,} events, {rate:,.0f} events/s", flush=True)

    return run_import(engine, MarquezDatabase(dsn), chunk_size=batch_size, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the Marquez table (default 100000)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per chunk (default 500)")
    parser.add_argument("--floor-events", type=int, default=20_000, help="events the floor inserts (default 20000)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch_size < 1 or args.floor_events < 1:
        parser.error("--events, --batch-size and --floor-events must be positive")

    began = time.perf_counter()
    events = generate_events(args.events)
    size = sum(map(len, events)) / len(events)
    print(f"generated {len(events):,} events ({size / 1024:.1f} KiB average) in {time.perf_counter() - began:.1f}s")
    with TemporaryPostgres() as pg:
        began = time.perf_counter()
        dsn = _marquez_database(pg, events)
        print(f"filled the Marquez table in {time.perf_counter() - began:.1f}s", flush=True)

        sample = events[: args.floor_events]
        floor = run_floor(pg, sample, events[-300:], concurrency=1)
        print(f"floor: {floor.rate:,.0f} events/s ({floor.events:,} events, one connection)", flush=True)

        engine = create_db_engine(Settings(database_url=pg.url, incident_worker=False))
        try:
            upgrade(engine)
            with psycopg.connect(raw_url(pg), autocommit=True) as conn:
                conn.execute("CHECKPOINT")  # the import does not pay for the floor's dirty pages
            first = _import(engine, dsn, args.batch_size, "import")
            print(f"import: {first.rate:,.0f} events/s", flush=True)
            again = _import(engine, dsn, args.batch_size, "re-run")
        finally:
            engine.dispose()

    complete = all(counts.complete for counts in first.namespaces.values())
    print()
    print(f"Import of {first.read:,} events from a Marquez lineage_events table (batch size {args.batch_size})")
    verified = "complete" if complete else "INCOMPLETE"
    print(f"  stored          {first.stored:>10,}   refused {len(first.refused):,}, verification {verified}")
    print(f"  stored          {first.stored_seconds:10.1f} s   {first.read / first.stored_seconds:10,.0f} events/s"
          "   (in the event log)")  # fmt: skip
    print(f"  model built     {first.seconds:10.1f} s   {first.rate:10,.0f} events/s   (the applier done)")
    print(f"  throughput      {first.rate:10,.0f} events/s")
    print(f"  1M events       {1_000_000 / first.rate / 60:10.1f} min at this rate")
    print(f"Floor: bare jsonb INSERT + commit per event, one connection, {floor.events:,} events")
    print(f"  throughput      {floor.rate:10,.0f} events/s")
    print(f"Import / floor    {first.rate / floor.rate:10.2f}")
    print(f"Re-run (every event already stored, skipped by hash): {again.rate:,.0f} events/s, {again.seconds:.1f} s")
    ok = first.stored == args.events and again.already_stored == args.events and again.stored == 0 and complete
    if not ok:
        print("FAILED: the import did not store every event exactly once")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
