"""Marquez's deprecated write API (PUT dataset, PUT job, POST run, run start/complete/fail/abort).

Each call is translated into the OpenLineage event it stands for and goes through the one ingest path, so
the model follows the same rules whoever writes, and the raw event log stays a complete record that
`reindex` can rebuild the model from.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select, update

from app.db import tables as t
from app.db.engine import read_connection, write_transaction
from app.schemas.marquez import CreatedDataset, CreatedJob, CreatedRun, Dataset, Job, Run
from app.schemas.openlineage import DatasetEvent, JobEvent, RunEvent
from app.services import datasets, identifiers, jobs, runs, tags
from app.services.errors import InvalidRequest, NotFound
from app.services.ingest import ingest_event
from app.services.namespaces import require_namespace

PRODUCER = "https://github.com/headwater/headwater/legacy-marquez-api"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/"


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": SPEC + "BaseFacet", **fields}


def _ingest(engine: Engine, event: dict[str, Any], model) -> None:
    try:
        parsed = model.model_validate(event)
    except ValidationError as error:
        # The request's schema is checked first; this catches what only the event's rules refuse, as a 400.
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise InvalidRequest(f"The request cannot be stored as a lineage event: {reasons}") from None
    ingest_event(engine, event, parsed)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def put_dataset(engine: Engine, namespace: str, name: str, body: CreatedDataset) -> Dataset:
    with read_connection(engine) as conn:
        ns = require_namespace(conn, namespace).name
        source = conn.execute(select(t.sources).where(t.sources.c.name == body.sourceName)).first()
    if source is None:
        raise NotFound(f"Source '{body.sourceName}' not found.")
    facets: dict[str, Any] = {
        "schema": _facet(fields=[{"name": f.name, "type": f.type, "description": f.description} for f in body.fields]),
        "dataSource": _facet(name=source.name, uri=source.connection_url),
    }
    if body.description:
        facets["documentation"] = _facet(description=body.description)
    event = {
        "eventTime": _now(),
        "producer": PRODUCER,
        "schemaURL": SPEC + "DatasetEvent",
        "dataset": {"namespace": ns, "name": name, "facets": facets},
    }
    _ingest(engine, event, DatasetEvent)
    dataset_id = identifiers.dataset_id(ns, name)
    with write_transaction(engine) as conn:
        conn.execute(
            update(t.datasets)
            .where(t.datasets.c.id == dataset_id)
            .values(type=body.type, physical_name=body.physicalName)
        )
        for tag in body.tags:
            tags.tag(conn, t.dataset_tags, "dataset_id", dataset_id, tag)
    for field in body.fields:
        for tag in field.tags:
            datasets.set_field_tag(engine, ns, name, field.name, tag, present=True)
    return datasets.get_dataset(engine, ns, name)


def put_job(engine: Engine, namespace: str, name: str, body: CreatedJob) -> Job:
    with read_connection(engine) as conn:
        ns = require_namespace(conn, namespace).name
    facets: dict[str, Any] = {
        "jobType": _facet(processingType={"STREAM": "STREAMING"}.get(body.type, body.type), integration="MARQUEZ_API")
    }
    if body.description:
        facets["documentation"] = _facet(description=body.description)
    if body.location:
        facets["sourceCodeLocation"] = _facet(type="unknown", url=body.location)
    event = {
        "eventTime": _now(),
        "producer": PRODUCER,
        "schemaURL": SPEC + "JobEvent",
        "job": {"namespace": ns, "name": name, "facets": facets},
        "inputs": [{"namespace": d.namespace, "name": d.name} for d in body.inputs],
        "outputs": [{"namespace": d.namespace, "name": d.name} for d in body.outputs],
    }
    _ingest(engine, event, JobEvent)
    return jobs.get_job(engine, ns, name)


def _run_event(
    job_ns: str,
    job_name: str,
    run_id: uuid.UUID,
    event_type: str | None,
    at: datetime | None,
    run_facets: dict[str, Any],
    io: dict[str, list[dict]],
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventTime": (at or datetime.now(UTC)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": SPEC + "RunEvent",
        "run": {"runId": str(run_id), "facets": run_facets},
        "job": {"namespace": job_ns, "name": job_name, "facets": {}},
        "inputs": io.get("INPUT", []),
        "outputs": io.get("OUTPUT", []),
    }
    if event_type:
        event["eventType"] = event_type
    return event


def create_run(engine: Engine, namespace: str, job_name: str, body: CreatedRun) -> Run:
    run_id = body.id or uuid.uuid4()
    with read_connection(engine) as conn:
        job = jobs.find_job(conn, namespace, job_name)
    facets: dict[str, Any] = {}
    if body.nominalStartTime:
        nominal = {"nominalStartTime": body.nominalStartTime.isoformat()}
        if body.nominalEndTime:
            nominal["nominalEndTime"] = body.nominalEndTime.isoformat()
        facets["nominalTime"] = _facet(**nominal)
    if body.args:
        facets[runs.ARGS_FACET] = _facet(args=body.args)
    _ingest(engine, _run_event(job.namespace_name, job.name, run_id, None, None, facets, {}), RunEvent)
    return runs.get_run(engine, run_id)


_ACTIONS = {"start": "START", "complete": "COMPLETE", "fail": "FAIL", "abort": "ABORT"}


def mark_run(engine: Engine, run_id: uuid.UUID, action: str, at: datetime | None) -> Run:
    """The legacy state marks, as events of that type at ``at``. The run reads and writes its job's current
    datasets, so a completed run publishes new versions of the job's outputs, as in Marquez."""
    with read_connection(engine) as conn:
        run = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
        if run is None:
            raise NotFound(f"Run '{run_id}' not found.")
        e, d, v = t.lineage_edges.c, t.datasets.c, t.dataset_versions.c
        rows = conn.execute(
            select(e.io_type, d.namespace_name, d.name, v.fields)
            .join(t.datasets, d.id == e.dataset_id)
            .outerjoin(t.dataset_versions, v.id == d.current_version_id)
            .where(e.job_id == run.job_id, e.is_current)
            .order_by(d.namespace_name, d.name)
        )
        io: dict[str, list[dict]] = {}
        for io_type, ns, name, fields in rows:
            dataset: dict[str, Any] = {"namespace": ns, "name": name}
            if io_type == "OUTPUT" and fields:
                # The run rewrites the table it is defined to write: its new version keeps the schema.
                dataset["facets"] = {"schema": _facet(fields=fields)}
            io.setdefault(io_type, []).append(dataset)
    event = _run_event(run.namespace_name, run.job_name, run_id, _ACTIONS[action], at, {}, io)
    _ingest(engine, event, RunEvent)
    return runs.get_run(engine, run_id)
