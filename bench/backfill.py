"""Backfill plan time on a large closure (`make bench-backfill`).

    python -m bench.backfill [--width 50] [--layers 20] [--days 30] [--repeat 5]

A throwaway PostgreSQL gets one synthetic pipeline of layers × width jobs (default 20 × 50 = 1,000), each
reading two datasets of the layer before, running hourly for 30 days (720 runs a job, 720,000 runs), written in
bulk by the synthetic generator. Plans are then timed for roots that put most of the pipeline in the closure:
a bad run (one hour), a job with a bad day, and a source dataset with a bad day.

Figures: the median and worst of `repeat` plans computed in-process (SQL + planning + the JSON body the API
sends, with the GC frozen after warm-up as `headwater serve` does), the
same through HTTP (`POST /api/v1/backfills/preview` on a live server, with JSON), the number of SQL statements
one plan executes, and a floor measured in the same run: the round trip of a one-row primary-key SELECT, so
"plan time / floor" reads as "the plan costs as much as N point queries".
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import timedelta

import httpx
from sqlalchemy import event, text

from app.schemas.backfill import BackfillRequest
from app.services import synthetic
from app.services.backfill import planner
from app.settings import Settings
from bench.synthetic_postgres import synthetic_postgres
from tests.support.live_server import LiveServer


def _timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shape = synthetic.Shape(
        pipelines=1, layers=args.layers, width=args.width, fan_in=2, outputs=1, runs_per_job=24 * args.days
    )
    with synthetic_postgres(shape) as installation:
        engine, url = installation.engine, installation.url
        with engine.connect() as conn:
            some_job = conn.execute(text("select id from jobs limit 1")).scalar()
            # The source read by the most jobs of the first layer (a random one may have no reader).
            source = conn.execute(
                text(
                    "select d.name from datasets d join lineage_edges e on e.dataset_id = d.id "
                    "where e.io_type = 'INPUT' and d.name like '%.src.%' "
                    "group by d.name order by count(*) desc, d.name "
                    "limit 1"
                )
            ).scalar()
            floor_times = []
            for _ in range(200):
                t0 = time.perf_counter()
                conn.execute(text("select name from jobs where id = :id"), {"id": some_job}).one()
                floor_times.append((time.perf_counter() - t0) * 1000)
        floor = statistics.median(floor_times)
        print(f"floor: one-row primary-key SELECT round trip, median {floor:.3f} ms")

        day = synthetic.EPOCH + timedelta(days=args.days // 2)
        first_job = synthetic.job_name(0, 1, 0)
        root_run = synthetic.run_id(synthetic.ids.job_id(synthetic.JOB_NAMESPACE, first_job), 24 * (args.days // 2))
        cases = {
            "bad run (1 hour)": BackfillRequest(runId=root_run),
            "job, bad day": BackfillRequest(
                job={"namespace": synthetic.JOB_NAMESPACE, "name": first_job}, start=day, end=day + timedelta(days=1)
            ),
            "source dataset, bad day": BackfillRequest(
                dataset={"namespace": synthetic.DATASET_NAMESPACE, "name": source},
                start=day,
                end=day + timedelta(days=1),
            ),
        }
        statements = [0]

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_args):
            statements[0] += 1

        def plan_body(request: BackfillRequest) -> tuple[dict, bytes]:
            document = planner.plan_document(engine, request)
            return document, planner.plan_body(document)  # as POST /backfills/preview answers

        for request in cases.values():
            plan_body(request)  # warm caches once, as a running server has
        # As `headwater serve` does once started (gc_young_threshold, freeze_gc_after_start).
        gc.set_threshold(Settings().gc_young_threshold or gc.get_threshold()[0], *gc.get_threshold()[1:])
        gc.collect()
        gc.freeze()
        results = {}
        for label, request in cases.items():
            statements[0] = 0
            times, (plan, _) = _timed(lambda request=request: plan_body(request), args.repeat)
            results[label] = (times, plan, statements[0] // args.repeat)

        # The plan path alone: the incident worker's periodic late-dataset check (0.77 s a pass at this size, in
        # the serving process) would be measured too, as in bench-lineage.
        quiet = {"HEADWATER_INCIDENT_WORKER": "false"}
        with LiveServer(url, env=quiet) as server, httpx.Client(base_url=server.url, timeout=120) as client:
            http_times = {}
            for label, request in cases.items():
                body = request.model_dump(mode="json", exclude_none=True)
                client.post("/api/v1/backfills/preview", json=body).raise_for_status()
                http_times[label], _ = _timed(
                    lambda body=body: client.post("/api/v1/backfills/preview", json=body).raise_for_status(),
                    args.repeat,
                )

    print()
    header = f"{'root':26} {'jobs':>5} {'runs':>6} {'levels':>6} {'SQL':>5} {'plan p50':>9} {'max':>7}"
    header += f" {'HTTP p50':>9} {'/floor':>8}"
    print(header)
    for label, (times, plan, sql) in results.items():
        t = plan["totals"]
        p50 = statistics.median(times)
        http_p50 = statistics.median(http_times[label])
        print(
            f"{label:26} {t['jobs']:5d} {t['runs']:6d} {t['levels']:6d} {sql:5d} {p50:7.0f}ms {max(times):5.0f}ms "
            f"{http_p50:7.0f}ms {p50 / floor:7.0f}x"
        )
    print("\ntarget: plan time <= 500 ms for a closure of ~1,000 jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
