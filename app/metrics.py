"""Prometheus metrics: request latency by route, events ingested by kind/type/producer, ingest rejections by
reason, the event log and its applier (events per log commit and per applied batch, apply errors, unapplied
events and apply lag), database pool use, webhook attempts by outcome. One registry per app (made by the
factory), so tests and apps never share counts.

Several worker processes (`headwater serve --workers N`) count together: `serve` points PROMETHEUS_MULTIPROC_DIR
at a fresh directory before the workers start, prometheus_client then keeps every value in a per-process file
there, and /metrics adds up the files of all workers (prometheus_client's multiprocess mode), whichever worker
answers. Pool gauges are sums over the live workers; a worker that stops removes its gauges."""

from __future__ import annotations

import os
import re
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

INGEST_PATH = "/api/v1/lineage"
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")  # "{namespace:name}" is labelled "{namespace}"

# Why POST /api/v1/lineage turned an event away, by status.
REJECTION_REASONS = {
    400: "malformed_body",
    401: "unauthorized",
    413: "too_large",
    415: "unsupported_encoding",
    422: "invalid_event",
    503: "database_unavailable",
}


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self):
        # Read by prometheus_client when it is first imported, so set before the worker process starts.
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "headwater_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events = Counter(
            "headwater_events_ingested",
            "OpenLineage events accepted, by kind, event type and producer",
            ["kind", "event_type", "producer"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "headwater_ingest_rejections",
            "Events turned away by POST /api/v1/lineage, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "headwater_webhook_attempts",
            "Webhook calls made by the incident worker, by outcome (delivered, retry, failed: given up)",
            ["outcome"],
            registry=self.registry,
        )
        self.log_batch = Histogram(
            "headwater_event_log_batch_events",
            "Events stored per event-log commit (group commit: grows with load)",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        self.apply_batch = Histogram(
            "headwater_apply_batch_events",
            "Events applied to the model per applier transaction",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        self.apply_errors = Counter(
            "headwater_apply_errors",
            "Stored events the model could not be built from (kept with apply_error; `headwater reindex` retries)",
            registry=self.registry,
        )
        # Read from the database when scraped (the log is shared by every process and replica), so the answering
        # worker's reading is the one that counts.
        self.unapplied = Gauge(
            "headwater_events_unapplied",
            "Events stored in the log and not yet applied to the model",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.apply_lag = Gauge(
            "headwater_apply_lag_seconds",
            "Age of the oldest event not yet applied to the model (0 when there is none)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        # Kept up to date by pool events rather than read at scrape time, so that in multiprocess mode the
        # answering worker reports every worker's connections.
        self.pool_in_use = Gauge(
            "headwater_db_pool_connections_in_use",
            "Database connections checked out",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "headwater_db_pool_size",
            "Database connections the pool keeps open",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def watch_pool(self, engine: Engine) -> None:
        pool = engine.pool
        self.pool_size.set(pool.size() if hasattr(pool, "size") else 0)
        event.listen(pool, "checkout", lambda *_: self.pool_in_use.inc())
        event.listen(pool, "checkin", lambda *_: self.pool_in_use.dec())

    def exposition(self, *, unapplied: int | None = None, apply_lag_seconds: float = 0.0) -> bytes:
        """The Prometheus text of this app, or of all worker processes together in multiprocess mode."""
        if unapplied is not None:
            self.unapplied.set(unapplied)
            self.apply_lag.set(apply_lag_seconds)
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def process_exiting(self) -> None:
        """A worker stops: its live gauges stop counting (its counters and histograms still add up)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())

    def batch_applied(self, applied: int, failed: int) -> None:
        self.apply_batch.observe(applied)
        if failed:
            self.apply_errors.inc(failed)

    def ingested(self, kind: str, event_type: str | None, producer: str | None) -> None:
        self.events.labels(kind, event_type or "", (producer or "")[:200]).inc()


class MetricsMiddleware:
    """Times every HTTP request; labels it with the matched route's template (not the raw path, whose names
    would explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = getattr(scope.get("route"), "path", None)
            route = _CONVERTOR.sub(r"{\1}", path) if path else "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status[0])).observe(time.perf_counter() - started)
            if route == INGEST_PATH and scope["method"] == "POST" and status[0] >= 400:
                self.metrics.rejections.labels(REJECTION_REASONS.get(status[0], f"http_{status[0]}")).inc()
