"""Runs as the Marquez API shows them, hydrated for many runs in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import Connection, Engine, select

from app.db import tables as t
from app.db.dialect import in_values
from app.db.engine import read_connection
from app.schemas.failures import FailedRun
from app.schemas.marquez import JobId, Run, RunFacetsResponse
from app.services.errors import NotFound
from app.services.facets import facets_by_entity

# Where a run created through the legacy API keeps its args (a custom run facet).
ARGS_FACET = "marquez_runArgs"


def run_documents(conn: Connection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Runs in Marquez's shape as plain JSON-ready dicts, for many runs in three queries. Plain dicts because
    pages and lineage graphs hold thousands of runs and links, where building and dumping models costs more
    than the queries."""
    if not run_ids:
        return {}
    r, jv = t.runs.c, t.job_versions.c
    rows = conn.execute(
        select(t.runs, jv.namespace_name.label("jv_namespace"), jv.job_name.label("jv_name"))
        .outerjoin(t.job_versions, jv.id == r.job_version_id)
        .where(in_values(conn, r.id, run_ids))
    ).all()
    io, d = t.run_io.c, t.datasets.c
    links = conn.execute(
        select(io.run_id, io.id, io.io_type, io.dataset_version_id, d.namespace_name, d.name)
        .join(t.datasets, d.id == io.dataset_id)
        .where(in_values(conn, io.run_id, run_ids))
        .order_by(d.namespace_name, d.name)
    ).all()
    facets = facets_by_entity(conn, run_ids, also_of=select(io.id).where(in_values(conn, io.run_id, run_ids)))
    versions: dict[tuple[uuid.UUID, str], list[dict]] = defaultdict(list)
    for link in links:
        versions[(link.run_id, link.io_type)].append(
            {
                "datasetVersionId": {
                    "namespace": link.namespace_name,
                    "name": link.name,
                    "version": str(link.dataset_version_id),
                },
                "facets": facets.get(link.id, {}),
            }
        )
    runs = {}
    for row in rows:
        duration = None
        if row.started_at and row.ended_at:
            duration = int((row.ended_at - row.started_at).total_seconds() * 1000)
        run_facets = facets.get(row.id, {})
        runs[row.id] = {
            "id": str(row.id),
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
            "nominalStartTime": row.nominal_start_time,
            "nominalEndTime": row.nominal_end_time,
            "state": row.state,
            "startedAt": row.started_at,
            "endedAt": row.ended_at,
            "durationMs": duration,
            "args": (run_facets.get(ARGS_FACET) or {}).get("args", {}),
            # Only a version that exists: a run must still read if its version row has gone (never a 500).
            "jobVersion": {"namespace": row.jv_namespace, "name": row.jv_name, "version": str(row.job_version_id)}
            if row.jv_name is not None
            else None,
            "inputDatasetVersions": versions.get((row.id, "INPUT"), []),
            "outputDatasetVersions": versions.get((row.id, "OUTPUT"), []),
            "facets": run_facets,
        }
    return runs


def hydrate_runs(conn: Connection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, Run]:
    return {run_id: Run.model_validate(document) for run_id, document in run_documents(conn, run_ids).items()}


def get_run(engine: Engine, run_id: uuid.UUID) -> Run:
    with read_connection(engine) as conn:
        found = hydrate_runs(conn, [run_id])
    if run_id not in found:
        raise NotFound(f"Run '{run_id}' not found.")
    return found[run_id]


def get_run_facets(engine: Engine, run_id: uuid.UUID, kind: str) -> RunFacetsResponse:
    """Facets of a run (``run``) or of its job (``job``), as Marquez's run facets endpoint."""
    with read_connection(engine) as conn:
        job_id = conn.execute(select(t.runs.c.job_id).where(t.runs.c.id == run_id)).scalar()
        if job_id is None:
            raise NotFound(f"Run '{run_id}' not found.")
        entity = run_id if kind == "run" else job_id
        return RunFacetsResponse(runId=str(run_id), facets=facets_by_entity(conn, [entity]).get(entity, {}))


def recent_failures(engine: Engine, *, limit: int) -> list[FailedRun]:
    """The latest failed runs of visible jobs, newest end first (index ix_runs_state_ended)."""
    r, j = t.runs.c, t.jobs.c
    with read_connection(engine) as conn:
        rows = list(
            conn.execute(
                select(r.id, r.namespace_name, r.job_name)
                .join(t.jobs, j.id == r.job_id)
                .where(r.state == "FAILED", r.ended_at.is_not(None), j.is_hidden.is_(False))
                .order_by(r.ended_at.desc(), r.id)
                .limit(limit)
            )
        )
        hydrated = hydrate_runs(conn, [row.id for row in rows])
    return [
        FailedRun.model_construct(
            job=JobId.model_construct(namespace=row.namespace_name, name=row.job_name), run=hydrated[row.id]
        )
        for row in rows
    ]
