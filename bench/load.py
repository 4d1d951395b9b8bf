"""Load with zero loss: concurrent clients against `headwater serve --workers 2` on one throwaway PostgreSQL
for a bounded time, optionally restarting PostgreSQL in the middle; then proof that nothing acknowledged
was lost.

    python -m bench.load [--clients N] [--seconds S] [--events E] [--restart-db-at T --down-seconds D]

Each client posts distinct OpenLineage events (bench.ingest's realistic pipeline) like a well-behaved
OpenLineage client: a 503 is retried after its Retry-After, a connection error or timeout is retried (the
event may or may not have been stored: resending is safe, ingest is idempotent). An event counts as
acknowledged when a 2xx came back. Afterwards:

- every acknowledged event is in `lineage_events` exactly once, with the payload that was sent (loss = the
  acknowledged events not found; must be 0);
- the model built under load equals the model of a fresh, sequential re-ingest of the same events into a
  second database (tests/support/model.py's snapshot, every model table).

It prints throughput, p50/p99 latency, statuses, the loss count, and, with a restart, how long clients saw
503s and how soon after the database came back the server answered 2xx again. Exit status 1 on any loss,
any 5xx other than 503, a request that hung past the client timeout, or a model mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, select

from app.api.lineage import validate_event
from app.db import tables as t
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.services.ingest import event_hash, ingest_event
from app.services.ingest.barrier import apply_lag
from app.settings import Settings
from bench.ingest import generate_events
from tests.support import model
from tests.support.live_server import LiveServer
from tests.support.postgres import TemporaryPostgres


@dataclass
class LoadResult:
    sent: int = 0  # distinct events a client started to send
    acknowledged: dict[str, dict] = field(default_factory=dict)  # event hash -> payload, 2xx received
    statuses: Counter = field(default_factory=Counter)  # every response status, "error" for transport errors
    latencies: list[float] = field(default_factory=list)  # seconds, of 2xx requests
    hung: int = 0  # requests that hit the client timeout
    seconds: float = 0.0
    unavailable_at: list[float] = field(default_factory=list)  # times (since start) of 503s / transport errors
    acked_at: list[float] = field(default_factory=list)  # times of 2xx

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def run_load(
    urls: list[str],
    events: list[bytes],
    *,
    clients: int,
    seconds: float,
    timeout: float = 10.0,
    during: Callable[[float], None] | None = None,
) -> LoadResult:
    """`clients` threads post `events` (each once, until acknowledged) round-robin over `urls` until the
    events run out or `seconds` pass. `during(elapsed)` runs in its own thread (e.g. a database restart)."""
    result = LoadResult()
    lock = threading.Lock()
    next_event = iter(enumerate(events))
    start = time.monotonic()
    deadline = start + seconds

    def client(number: int) -> None:
        with httpx.Client(timeout=timeout, headers={"content-type": "application/json"}) as http:
            while time.monotonic() < deadline:
                with lock:
                    item = next(next_event, None)
                    if item is None:
                        return
                    result.sent += 1
                i, body = item
                url = urls[(i + number) % len(urls)]
                # Until acknowledged (or the run ends): a client keeps its event, as OpenLineage clients do.
                while time.monotonic() < deadline + timeout:
                    began = time.monotonic()
                    try:
                        response = http.post(url, content=body)
                        status: int | str = response.status_code
                    except httpx.TimeoutException:
                        status = "timeout"
                    except httpx.TransportError:
                        status = "error"
                    now = time.monotonic()
                    with lock:
                        result.statuses[status] += 1
                        if status == "timeout":
                            result.hung += 1
                        if isinstance(status, int) and 200 <= status < 300:
                            payload = json.loads(body)
                            result.acknowledged[event_hash(payload)] = payload
                            result.latencies.append(now - began)
                            result.acked_at.append(now - start)
                            break
                        if status in (503, "error", "timeout"):
                            result.unavailable_at.append(now - start)
                    if status == 503:
                        time.sleep(min(float(response.headers.get("retry-after", "1")), 0.5))
                    elif status in ("error", "timeout"):
                        time.sleep(0.2)
                    else:
                        break  # a 4xx or 500: not retried (counted, and fails the check)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    if during is not None:
        threads.append(threading.Thread(target=during, args=(start,), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - start
    return result


@dataclass
class LossReport:
    acknowledged: int
    stored: int
    lost: list[str]
    altered: list[str]  # stored, but not with the payload that was sent


def check_stored(engine: Engine, result: LoadResult) -> LossReport:
    """Every acknowledged event is stored exactly once (event_hash is unique) with the payload sent."""
    with engine.connect() as conn:
        stored = dict(conn.execute(select(t.lineage_events.c.event_hash, t.lineage_events.c.payload)).all())
    lost = [h for h in result.acknowledged if h not in stored]
    altered = [h for h, payload in result.acknowledged.items() if h in stored and stored[h] != payload]
    return LossReport(len(result.acknowledged), len(stored), lost, altered)


def stored_payloads(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [p for (p,) in conn.execute(select(t.lineage_events.c.payload).order_by(t.lineage_events.c.id))]


def reingest(engine: Engine, payloads: list[dict]) -> None:
    """The same events, one transaction each, in the order they were stored, with nothing else running."""
    for payload in payloads:
        ingest_event(engine, payload, validate_event(payload))


def _report(result: LoadResult, loss: LossReport, model_equal: bool | None, restart: dict | None) -> bool:
    throughput = len(result.acknowledged) / result.seconds if result.seconds else 0.0
    server_errors = {s: n for s, n in result.statuses.items() if isinstance(s, int) and s >= 500 and s != 503}
    client_errors = {s: n for s, n in result.statuses.items() if isinstance(s, int) and 400 <= s < 500}
    print(f"clients ran {result.seconds:.1f}s; events sent {result.sent}, acknowledged {loss.acknowledged}")
    print(f"throughput   {throughput:,.0f} acknowledged events/s")
    print(f"latency      p50 {result.percentile(0.5) * 1000:.1f} ms   p99 {result.percentile(0.99) * 1000:.1f} ms")
    print(f"statuses     {dict(sorted(result.statuses.items(), key=str))}")
    print(f"stored       {loss.stored} events in lineage_events")
    print(f"LOSS         {len(loss.lost)} acknowledged events missing, {len(loss.altered)} stored altered")
    if model_equal is not None:
        print(f"model        {'equal to' if model_equal else 'DIFFERENT FROM'} a fresh sequential re-ingest")
    if restart:
        print(
            f"db restart   down at {restart['down_at']:.1f}s for {restart['down_seconds']:.1f}s; clients saw "
            f"503/errors from {restart['first_unavailable']:.1f}s to {restart['last_unavailable']:.1f}s; "
            f"first 2xx {restart['recovered_after']:.2f}s after the database was back"
        )
    ok = not loss.lost and not loss.altered and not server_errors and not client_errors and result.hung == 0
    ok = ok and model_equal is not False
    if server_errors or client_errors:
        print(f"FAIL: unexpected statuses {server_errors | client_errors}")
    if result.hung:
        print(f"FAIL: {result.hung} requests hung past the client timeout")
    return ok


def restart_summary(result: LoadResult, down_at: float, back_at: float, down_seconds: float) -> dict:
    during = [t_ for t_ in result.unavailable_at if t_ >= down_at - 0.5]
    after = [t_ for t_ in result.acked_at if t_ >= back_at]
    return {
        "down_at": down_at,
        "down_seconds": down_seconds,
        "first_unavailable": min(during, default=float("nan")),
        "last_unavailable": max(during, default=float("nan")),
        "recovered_after": (min(after) - back_at) if after else float("inf"),
    }


APPLY_TIME_LIMIT = 600.0  # seconds the appliers may take to apply what was acknowledged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long clients send")
    parser.add_argument("--events", type=int, default=30_000, help="distinct events available to send")
    parser.add_argument("--workers", type=int, default=2, help="server processes (headwater serve --workers)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    parser.add_argument("--restart-db-at", type=float, default=None, help="restart PostgreSQL after T seconds")
    parser.add_argument("--down-seconds", type=float, default=2.0, help="how long PostgreSQL stays down")
    args = parser.parse_args(argv)

    print(f"generating {args.events:,} events…", flush=True)
    events = generate_events(args.events, seed=11)
    with TemporaryPostgres() as pg, tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        restart_times: dict[str, float] = {}

        def restart_database(start: float) -> None:
            time.sleep(args.restart_db_at)
            restart_times["down_at"] = time.monotonic() - start
            pg.restart_server(down_seconds=args.down_seconds)
            restart_times["back_at"] = time.monotonic() - start

        during = restart_database if args.restart_db_at is not None else None
        with LiveServer(pg.url, workers=args.workers, log_path=log) as server:
            print(
                f"{args.clients} clients → headwater serve --workers {args.workers} on PostgreSQL, "
                f"{args.seconds:.0f}s" + (f", database restart at {args.restart_db_at:.0f}s" if during else ""),
                flush=True,
            )
            result = run_load(
                [f"{server.url}/api/v1/lineage"],
                events,
                clients=args.clients,
                seconds=args.seconds,
                timeout=args.timeout,
                during=during,
            )
            alive = httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
            engine = create_db_engine(Settings(database_url=pg.url))
            # The acknowledgements came before the model: the server's appliers catch up, then the lag is zero.
            began = time.monotonic()
            while (lag := apply_lag(engine)).unapplied and time.monotonic() - began < APPLY_TIME_LIMIT:
                time.sleep(0.05)
            caught_up = time.monotonic() - began
            print(
                f"applier      caught up {caught_up:.1f}s after the clients stopped"
                if not lag.unapplied
                else f"FAIL: {lag.unapplied} events still unapplied {APPLY_TIME_LIMIT:.0f}s after the clients stopped",
                flush=True,
            )
            alive = alive and not lag.unapplied
        loss = check_stored(engine, result)
        print("re-ingesting the stored events into a second database…", flush=True)
        pg._run("createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "reingest")
        fresh = create_db_engine(Settings(database_url=pg.url.rsplit("/", 1)[0] + "/reingest"))
        upgrade(fresh)
        reingest(fresh, stored_payloads(engine))
        under_load, sequential = model.snapshot(engine), model.snapshot(fresh)
        model_equal = under_load == sequential
        if not model_equal:
            print(model.describe_difference(sequential, under_load)[:4000])
        engine.dispose()
        fresh.dispose()
        restart = None
        if during is not None:
            restart = restart_summary(result, restart_times["down_at"], restart_times["back_at"], args.down_seconds)
        ok = _report(result, loss, model_equal, restart) and alive
        if not alive:
            print("FAIL: the server did not answer /api/v1/health after the run")
        print("OK: zero loss" if ok else f"FAILED (server log: {log})")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
