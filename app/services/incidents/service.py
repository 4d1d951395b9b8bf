"""Reading incidents, and what each carries: its impact (the backfill module's computation, summarised) and a
prefilled backfill plan."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, Engine, Row, func, select

from app.db import tables as t
from app.db.engine import read_connection, write_transaction
from app.schemas.backfill import BackfillRequest, Impact, NodeRef
from app.schemas.incidents import (
    BackfillLink,
    BackfillPreviewRequest,
    DagRef,
    ImpactedDatasetSummary,
    ImpactedJobSummary,
    ImpactTotals,
    Incident,
    IncidentDetails,
    IncidentImpact,
    IncidentList,
)
from app.services.backfill import planner
from app.services.errors import InvalidRequest, NotFound
from app.services.incidents import records

log = logging.getLogger(__name__)


def summarize(impact: Impact) -> IncidentImpact:
    """Downstream of the root: its jobs (the root job itself left out), datasets, Airflow DAGs and owners."""
    root = impact.root.nodeId
    steps = [s for s in impact.jobs if not s.isRoot]
    jobs = [ImpactedJobSummary(nodeId=s.nodeId, job=s.job, owners=s.owners, airflow=s.airflow) for s in steps]
    datasets = [
        ImpactedDatasetSummary(nodeId=d.nodeId, dataset=d.dataset, owners=d.owners, columns=d.columns)
        for d in impact.datasets
        if d.nodeId != root
    ]
    # A job run inside an Airflow task (dbt, Spark) belongs to its task's DAG, in the task's namespace.
    dags = sorted({((s.rerunThrough or s.job).namespace, s.airflow.dagId) for s in steps if s.airflow})
    owners = sorted({o for j in jobs for o in j.owners} | {o for d in datasets for o in d.owners})
    return IncidentImpact(
        jobs=jobs,
        datasets=datasets,
        dags=[DagRef(namespace=ns, dagId=dag) for ns, dag in dags],
        owners=owners,
        subjectOwners=sorted({o for s in impact.jobs if s.isRoot for o in s.owners}),
        totals=ImpactTotals(jobs=len(jobs), datasets=len(datasets), dags=len(dags), owners=len(owners)),
    )


def compute_impact(engine: Engine, backfill_request: dict[str, Any]) -> IncidentImpact:
    try:
        return summarize(planner.impact(engine, BackfillRequest.model_validate(backfill_request)))
    except Exception as exc:  # a root that is gone (deleted run…) must not stop notifications
        log.warning("impact of %s could not be computed: %s", backfill_request, exc)
        return IncidentImpact(
            jobs=[], datasets=[], dags=[], owners=[], subjectOwners=[],
            totals=ImpactTotals(jobs=0, datasets=0, dags=0, owners=0), error=str(exc)[:500],
        )  # fmt: skip


def backfill_link(request: dict[str, Any], public_url: str = "") -> BackfillLink:
    """The preview request, and the backfill page's URL with the same root in its query."""
    params: list[tuple[str, str]] = []
    for name in ("runId", "version", "start", "end"):
        if request.get(name):
            params.append((name, str(request[name])))
    for name in ("dataset", "job"):
        if request.get(name):
            params += [("namespace", request[name]["namespace"]), (name, request[name]["name"])]
    params += [("column", c) for c in request.get("columns") or []]
    if request.get("schemaChange"):
        params.append(("schemaChange", "true"))
    url = f"{public_url.rstrip('/')}/backfills/new?{urlencode(params)}"
    return BackfillLink(preview=BackfillPreviewRequest(body=request), url=url)


def to_wire(row: Row, public_url: str = "", impact: IncidentImpact | None = None) -> Incident:
    if impact is None and row.impact is not None:
        impact = IncidentImpact.model_validate(row.impact)
    return Incident(
        id=str(row.id),
        kind=row.kind,
        status=row.status,
        title=row.title,
        namespace=row.namespace,
        job=NodeRef(namespace=row.job_namespace, name=row.job_name) if row.job_name else None,
        dataset=NodeRef(namespace=row.dataset_namespace, name=row.dataset_name) if row.dataset_name else None,
        runId=str(row.run_id) if row.run_id else None,
        datasetVersion=str(row.dataset_version_id) if row.dataset_version_id else None,
        details=IncidentDetails.model_validate(row.details),
        impact=impact,
        backfill=backfill_link(row.backfill_request, public_url),
        occurrences=row.occurrences,
        openedAt=row.opened_at,
        updatedAt=row.updated_at,
        resolvedAt=row.resolved_at,
        resolution=row.resolution,
    )


def load(conn: Connection, incident_id: uuid.UUID) -> Row:
    row = conn.execute(select(t.incidents).where(t.incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"Incident '{incident_id}' not found.")
    return row


def get(engine: Engine, incident_id: uuid.UUID, *, public_url: str = "") -> Incident:
    with read_connection(engine) as conn:
        row = load(conn, incident_id)
    # Not yet computed by the worker (or the worker is off): compute it for this answer.
    impact = compute_impact(engine, row.backfill_request) if row.impact is None else None
    return to_wire(row, public_url, impact)


def resolve_by_hand(engine: Engine, incident_id: uuid.UUID, reason: str | None, *, public_url: str = "") -> Incident:
    """Resolve an open incident (e.g. a job retired on purpose, so its data will never come); subscribers who were
    told it opened hear it is over."""
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        row = load(conn, incident_id)
        if row.status != "open":
            raise InvalidRequest(f"Incident '{incident_id}' is already resolved.")
        records.resolve(conn, [row.open_key], at=now, resolution=reason or "Resolved by hand.", force=True)
    return get(engine, incident_id, public_url=public_url)


def list_incidents(
    engine: Engine,
    *,
    status: str | None,
    namespace: str | None,
    kind: str | None,
    limit: int,
    offset: int,
    public_url: str = "",
) -> IncidentList:
    i = t.incidents.c
    where = []
    if status:
        where.append(i.status == status)
    if namespace:
        where.append(i.namespace == namespace)
    if kind:
        where.append(i.kind == kind)
    with read_connection(engine) as conn:
        total = conn.execute(select(func.count()).select_from(t.incidents).where(*where)).scalar_one()
        rows = conn.execute(
            select(t.incidents).where(*where).order_by(i.opened_at.desc(), i.id).limit(limit).offset(offset)
        ).all()
    return IncidentList(incidents=[to_wire(r, public_url) for r in rows], totalCount=total)
