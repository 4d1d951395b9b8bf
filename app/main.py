"""The application factory."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from app import __version__, ui
from app.api import (
    admin,
    airflow_connections,
    backfills,
    datasets,
    events,
    failures,
    health,
    incidents,
    jobs,
    lineage,
    lineage_graph,
    namespaces,
    runs,
    search,
    sources,
    stats,
    subscriptions,
    tags,
)
from app.api.auth import require_read_key
from app.api.errors import install_error_handlers
from app.api.openapi_errors import document_errors
from app.api.openapi_links import document_links
from app.api.paths import EncodedSlashMiddleware
from app.api.read_barrier import ReadBarrierMiddleware
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.logs import RequestIdMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.services.backfill.executor import BackfillExecutor
from app.services.incidents.worker import Clock, IncidentWorker, system_clock
from app.services.ingest.runtime import IngestRuntime
from app.settings import Settings

log = logging.getLogger("headwater")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    airflow_transport: httpx.BaseTransport | None = None,
) -> FastAPI:
    """``clock`` is what the incident worker takes for "now" (the late-dataset check): tests control time.
    ``airflow_transport`` carries the calls to Airflow (tests put a fake Airflow there)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = create_db_engine(settings)
        if settings.migrate_on_start:
            upgrade(engine)
        app.state.engine = engine
        app.state.metrics.watch_pool(engine)
        log.info("Headwater %s using %s", __version__, engine.url.render_as_string(hide_password=True))
        worker = None
        if settings.incident_worker:
            attempts = app.state.metrics.webhook_attempts
            worker = IncidentWorker(engine, settings, clock, lambda outcome: attempts.labels(outcome).inc())
        metrics = app.state.metrics
        ingest = IngestRuntime(
            engine,
            settings,
            on_stored=metrics.log_batch.observe,
            on_batch=lambda outcome: metrics.batch_applied(outcome.applied, outcome.failed),
        )
        app.state.ingest = ingest.start()
        app.state.incident_worker = worker
        if worker is not None:
            worker.start()
        executor = None
        if settings.backfill_executor:
            executor = BackfillExecutor(engine, settings, transport=airflow_transport)
            executor.start()
        app.state.backfill_executor = executor
        if settings.gc_young_threshold:
            gc.set_threshold(settings.gc_young_threshold, *gc.get_threshold()[1:])
        if settings.freeze_gc_after_start:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if executor is not None:
                executor.stop()
            if worker is not None:
                worker.stop()
            ingest.stop()
            engine.dispose()
            app.state.metrics.process_exiting()

    app = FastAPI(
        title="Headwater",
        version=__version__,
        description="OpenLineage metadata service, compatible with the Marquez REST API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.airflow_transport = airflow_transport
    app.state.metrics = Metrics()
    install_error_handlers(app)
    # Inside the slash middleware, which may hand on a new scope: the router marks the matched route on it.
    app.add_middleware(ReadBarrierMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(EncodedSlashMiddleware)
    app.add_middleware(RequestIdMiddleware)
    routers = (
        lineage,
        lineage_graph,
        search,
        events,
        stats,
        namespaces,
        sources,
        datasets,
        jobs,
        runs,
        failures,
        tags,
        backfills,
        airflow_connections,
        incidents,
        subscriptions,
        health,
        admin,
    )
    # Every API route may need a read key (HEADWATER_PROTECT_READS); the operator endpoints never do, and the
    # ingest endpoints check their write key themselves (app/api/lineage.py).
    open_routers = (health, admin, lineage)
    for module in routers:
        dependencies = [] if module in open_routers else [Depends(require_read_key)]
        app.include_router(module.router, dependencies=dependencies)
    _document_errors_and_links_in_openapi(app)
    ui.install(app)  # after the API, whose routes never overlap the UI's page paths
    return app


def _document_errors_and_links_in_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_links(document_errors(generate()))
        return app.openapi_schema

    app.openapi = openapi


ADMIN_PATHS = frozenset({"/ping", "/healthcheck", "/metrics"})


def admin_only(app: FastAPI):
    """The app as the admin port shows it: the operator endpoints, 404 for everything else."""
    from starlette.responses import JSONResponse

    async def admin_app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in ADMIN_PATHS:
            response = JSONResponse({"code": 404, "message": "Only /ping, /healthcheck and /metrics here."}, 404)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return admin_app
