"""Run-level lineage: which runs produced the exact dataset versions a run read, and so on upstream
(Marquez's GET /runlineage/upstream). One query per level over the run↔version links."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import Engine, select

from app.db import tables as t
from app.db.dialect import in_values
from app.db.engine import read_connection
from app.schemas.marquez import UpstreamRun, UpstreamRunInfo, UpstreamRunInput, UpstreamRunJob
from app.services.errors import NotFound


def upstream_runs(engine: Engine, run_id: uuid.UUID, *, depth: int) -> list[UpstreamRun]:
    io, d, v, r = t.run_io.c, t.datasets.c, t.dataset_versions.c, t.runs.c
    with read_connection(engine) as conn:
        if conn.execute(select(r.id).where(r.id == run_id)).first() is None:
            raise NotFound(f"Run '{run_id}' not found.")
        order: list[uuid.UUID] = [run_id]  # breadth-first: the run, then its producers, level by level
        inputs: dict[uuid.UUID, list[UpstreamRunInput]] = defaultdict(list)
        frontier = [run_id]
        for level in range(depth + 1):
            if not frontier:
                break
            producers: set[uuid.UUID] = set()
            rows = conn.execute(
                select(io.run_id, d.namespace_name, d.name, io.dataset_version_id, v.run_id.label("producer"))
                .join(t.datasets, d.id == io.dataset_id)
                .outerjoin(t.dataset_versions, v.id == io.dataset_version_id)
                .where(in_values(conn, io.run_id, frontier), io.io_type == "INPUT")
                .order_by(d.namespace_name, d.name)
            )
            for reader, ns, name, version, producer in rows:
                produced_by = str(producer) if producer else None
                inputs[reader].append(
                    UpstreamRunInput(namespace=ns, name=name, version=str(version), producedByRunId=produced_by)
                )
                if producer and producer not in order and level < depth:
                    producers.add(producer)
            frontier = sorted(producers, key=str)
            order.extend(frontier)
        runs = {
            row.id: row
            for row in conn.execute(
                select(r.id, r.namespace_name, r.job_name, r.job_version_id, r.started_at, r.ended_at, r.state).where(
                    in_values(conn, r.id, order)
                )
            )
        }
    return [
        UpstreamRun(
            job=UpstreamRunJob(
                namespace=runs[i].namespace_name,
                name=runs[i].job_name,
                version=str(runs[i].job_version_id) if runs[i].job_version_id else None,
            ),
            run=UpstreamRunInfo(id=str(i), start=runs[i].started_at, end=runs[i].ended_at, status=runs[i].state),
            inputs=inputs.get(i, []),
        )
        for i in order
        if i in runs
    ]
