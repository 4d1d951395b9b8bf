"""Lineage, column lineage and search latency on a large installation, before and after run history grows
100-fold (`make bench-lineage`).

    python -m bench.lineage [--pipelines 200] [--history 99] [--samples 300]

A throwaway PostgreSQL gets a synthetic installation (default 200 pipelines × 20 layers × 5 jobs = 20,000 jobs,
42,000 datasets, one run per job = 20,000 runs) written in bulk by the synthetic generator. A live server
(uvicorn, real HTTP) is then asked, from random nodes:

* `GET /api/v1/lineage?nodeId=…&depth=20` (both directions, Marquez's default),
* `GET /api/v1/column-lineage?nodeId=datasetField:…&depth=5`,
* `GET /api/v1/search?q=…`.

Then `--history` older runs are added to every job (default 99: 2,000,000 runs, 8,000,000 run↔version links,
4,000,000 dataset versions) and the same requests are measured again. Traversal walks only the current edges,
so the second figures should match the first.

Floor, measured in the same run: `GET /api/v1/namespaces` on the same server (the cost of one request through
the stack with one small query). Latencies are reported as p50/p95 and as the ratio of p95 to that floor.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import httpx

from app.services import synthetic
from bench.synthetic_postgres import synthetic_postgres
from tests.support.live_server import LiveServer


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _requests(shape: synthetic.Shape, samples: int, seed: int = 11) -> dict[str, list[tuple[str, dict]]]:
    rng = random.Random(seed)
    ds_ns, job_ns = synthetic.DATASET_NAMESPACE, synthetic.JOB_NAMESPACE
    lineage, columns, search = [], [], []
    for _ in range(samples):
        p, layer, slot = rng.randrange(shape.pipelines), rng.randrange(1, shape.layers + 1), rng.randrange(shape.width)
        if rng.random() < 0.5:
            node = f"job:{job_ns}:{synthetic.job_name(p, layer, slot)}"
        else:
            node = f"dataset:{ds_ns}:{synthetic.dataset_name(p, layer, slot, rng.randrange(shape.outputs))}"
        lineage.append(("/api/v1/lineage", {"nodeId": node, "depth": 20}))
        field = rng.choice(synthetic.COLUMNS)
        name = synthetic.dataset_name(p, layer, slot, 0)
        columns.append(("/api/v1/column-lineage", {"nodeId": f"datasetField:{ds_ns}:{name}:{field}", "depth": 5}))
        q = rng.choice([f"p{p:04d}.l{layer:02d}", f"l{layer:02d}.job{slot:02d}", f"t{slot:02d}_1", f"p{p:04d}"])
        search.append(("/api/v1/search", {"q": q, "limit": 10}))
    return {"lineage (depth 20)": lineage, "column lineage (depth 5)": columns, "search": search}


def _measure(client: httpx.Client, requests: list[tuple[str, dict]]) -> tuple[list[float], list[int]]:
    times, sizes = [], []
    for path, params in requests:
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
        sizes.append(len(body.get("graph", body.get("results", []))))
    return times, sizes


def _phase(client: httpx.Client, requests: dict[str, list[tuple[str, dict]]]) -> dict[str, tuple]:
    floor_times, _ = _measure(client, [("/api/v1/namespaces", {})] * 200)
    floor = statistics.median(floor_times)
    results = {"floor": ([floor], [0])}
    for label, batch in requests.items():
        # Warm-up: the whole batch once, so the measured pass reads a warm working set. This VM's kernel
        # reclaims page cache eagerly, so after writing gigabytes of history the tables being read start cold.
        _measure(client, batch)
        results[label] = _measure(client, batch)
    return results


def _report(title: str, results: dict[str, tuple]) -> None:
    floor = results["floor"][0][0]
    print(f"\n{title}   (floor: GET /api/v1/namespaces median {floor:.2f} ms)")
    print(f"  {'request':26} {'p50':>8} {'p95':>8} {'p95/floor':>10} {'nodes p50':>10} {'max':>6}")
    for label, (times, sizes) in results.items():
        if label == "floor":
            continue
        p95 = _pct(times, 0.95)
        print(
            f"  {label:26} {statistics.median(times):6.1f}ms {p95:6.1f}ms {p95 / floor:9.1f}x "
            f"{statistics.median(sizes):10.0f} {max(sizes):6d}"
        )
    times, sizes = results["lineage (depth 20)"]
    small = [t for t, s in zip(times, sizes, strict=True) if s <= 1000]
    if small:
        print(f"  lineage answers <= 1,000 nodes: {len(small)} of {len(times)}, p95 {_pct(small, 0.95):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--history", type=int, default=99, help="older runs added per job for the second phase")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    shape = synthetic.Shape(pipelines=args.pipelines, layers=20, width=5, fan_in=2, outputs=2, runs_per_job=1)
    requests = _requests(shape, args.samples)
    with synthetic_postgres(shape) as installation:
        engine, counts = installation.engine, installation.counts
        # The read path alone: the incident worker's periodic late-dataset check scans recent runs of every job
        # (seconds per pass at 2M runs, see docs/benchmarks.md) in the serving process and would be measured too.
        quiet = {"HEADWATER_INCIDENT_WORKER": "false"}
        with (
            LiveServer(installation.url, env=quiet) as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):
            first = _phase(client, requests)
            _report(f"{counts['runs']:,} runs", first)
            started = time.perf_counter()
            more = synthetic.add_history(engine, shape, periods=range(-args.history, 0))
            synthetic.analyze(engine)
            total_runs = counts["runs"] + more["runs"]
            print(
                f"\nadded {more['runs']:,} runs, {more['run_io']:,} run<->version links, "
                f"{more['dataset_versions']:,} versions in {time.perf_counter() - started:.0f}s"
            )
            second = _phase(client, requests)
            _report(f"{total_runs:,} runs", second)
    print("\np95 at large history / p95 at small history (target <= 1.3):")
    for label in requests:
        ratio = _pct(second[label][0], 0.95) / _pct(first[label][0], 0.95)
        print(f"  {label:26} {ratio:.2f}")
    print("targets: lineage p95 <= 100 ms for answers up to 1,000 nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
