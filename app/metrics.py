"""Prometheus metrics: request latency by route, events ingested by kind/type/producer, ingest rejections by
reason, database pool use, webhook attempts by outcome. One registry per app (made by the factory), so tests and
apps never share counts.

With several worker processes each process counts its own requests; scrape each worker or run one worker per
container (documented limit: no multiprocess aggregation yet)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
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


class _PoolCollector(Collector):
    def __init__(self, engine: Callable[[], Engine | None]):
        self._engine = engine

    def collect(self):
        engine = self._engine()
        pool = getattr(engine, "pool", None)
        in_use = GaugeMetricFamily("headwater_db_pool_connections_in_use", "Database connections checked out")
        size = GaugeMetricFamily("headwater_db_pool_size", "Database connections the pool keeps open")
        if pool is not None and hasattr(pool, "checkedout"):
            in_use.add_metric([], pool.checkedout())
            size.add_metric([], pool.size() if hasattr(pool, "size") else 0)
        yield in_use
        yield size


class Metrics:
    def __init__(self, engine: Callable[[], Engine | None]):
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
        self.registry.register(_PoolCollector(engine))

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
