"""Jobs as the Marquez API shows them: a page of rows, then IO, facets and latest runs for the whole page
in a fixed number of queries (Marquez's per-job latest-runs query made /jobs slow at a few thousand jobs)."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import Connection, Engine, Row, func, select

from app.db import tables as t
from app.db.dialect import in_values
from app.db.engine import read_connection, write_transaction
from app.schemas.marquez import DatasetId, Job, JobId, JobVersion, JobVersionId, Run
from app.services import identifiers as ids
from app.services import tags
from app.services.errors import JobMoved, NotFound
from app.services.facets import facets_by_entity
from app.services.namespaces import require_namespace
from app.services.runs import hydrate_runs

LATEST_RUNS = 10
RUN_STATES = {"NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}


def _current_io(conn: Connection, job_ids: list[uuid.UUID]) -> dict[tuple[uuid.UUID, str], list[DatasetId]]:
    e, d = t.lineage_edges.c, t.datasets.c
    found: dict[tuple[uuid.UUID, str], list[DatasetId]] = defaultdict(list)
    if job_ids:
        rows = conn.execute(
            select(e.job_id, e.io_type, d.namespace_name, d.name)
            .join(t.datasets, d.id == e.dataset_id)
            .where(in_values(conn, e.job_id, job_ids), e.is_current)
            .order_by(d.namespace_name, d.name)
        )
        for job_id, io_type, ns, name in rows:
            found[(job_id, io_type)].append(DatasetId(namespace=ns, name=name))
    return found


def _latest_run_ids(conn: Connection, job_ids: list[uuid.UUID], per_job: int) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The newest runs of each job, one window query for the whole page."""
    if not job_ids or per_job <= 0:
        return {}
    r = t.runs.c
    rank = func.row_number().over(
        partition_by=r.job_id, order_by=(r.started_at.desc().nulls_last(), r.created_at.desc())
    )
    ranked = select(r.job_id, r.id, rank.label("rank")).where(in_values(conn, r.job_id, job_ids)).subquery()
    rows = conn.execute(
        select(ranked.c.job_id, ranked.c.id).where(ranked.c.rank <= per_job).order_by(ranked.c.job_id, ranked.c.rank)
    )
    found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for job_id, run_id in rows:
        found[job_id].append(run_id)
    return found


def hydrate(conn: Connection, rows: list[Row], *, latest_runs: int = LATEST_RUNS) -> list[Job]:
    job_ids = [r.id for r in rows]
    io = _current_io(conn, job_ids)
    facets = facets_by_entity(conn, job_ids)
    latest = _latest_run_ids(conn, job_ids, latest_runs)
    run_ids = {run_id for ids_ in latest.values() for run_id in ids_} | {
        r.current_run_id for r in rows if r.current_run_id
    }
    runs = hydrate_runs(conn, list(run_ids))
    job_tags = tags.tags_of(conn, t.job_tags, "job_id", job_ids)
    parents = {}
    parent_ids = [r.parent_job_id for r in rows if r.parent_job_id]
    if parent_ids:
        j = t.jobs.c
        parents = {
            job: (name, ns)
            for job, name, ns in conn.execute(
                select(j.id, j.name, j.namespace_name).where(in_values(conn, j.id, parent_ids))
            )
        }
    return [
        Job(
            id=JobId(namespace=r.namespace_name, name=r.name),
            type=r.type,
            name=r.name,
            simpleName=r.simple_name,
            parentJobName=parents[r.parent_job_id][0] if r.parent_job_id in parents else None,
            parentJobUuid=str(r.parent_job_id) if r.parent_job_id else None,
            parentJobNamespace=parents[r.parent_job_id][1] if r.parent_job_id in parents else None,
            createdAt=r.created_at,
            updatedAt=r.updated_at,
            namespace=r.namespace_name,
            inputs=io.get((r.id, "INPUT"), []),
            outputs=io.get((r.id, "OUTPUT"), []),
            location=r.location,
            description=r.description,
            latestRun=runs.get(r.current_run_id),
            latestRuns=[runs[i] for i in latest.get(r.id, []) if i in runs],
            facets=facets.get(r.id, {}),
            currentVersion=str(r.current_version_id) if r.current_version_id else None,
            labels=[],
            tags=job_tags.get(r.id, []),
        )
        for r in rows
    ]


def list_jobs(
    engine: Engine, namespace: str | None, *, limit: int, offset: int, last_run_states: list[str]
) -> tuple[list[Job], int]:
    """Most recently updated first, optionally only jobs whose latest run is in one of ``last_run_states``."""
    j = t.jobs.c
    with read_connection(engine) as conn:
        where = [j.is_hidden.is_(False), j.symlink_target_id.is_(None)]
        if namespace is not None:
            where.append(j.namespace_id == require_namespace(conn, namespace).id)
        query = select(t.jobs)
        if last_run_states:
            latest = t.runs.alias("latest_run")
            query = query.join(latest, latest.c.id == j.current_run_id)
            where.append(latest.c.state.in_(last_run_states))
        query = query.where(*where)
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = list(conn.execute(query.order_by(j.updated_at.desc(), j.name).limit(limit).offset(offset)))
        return hydrate(conn, rows), total


def find_job(conn: Connection, namespace: str, name: str, *, redirect: bool = True) -> Row:
    """A visible job by name. Asked for by an alias, it is ``JobMoved`` (a 301 for paths naming the job) or,
    with ``redirect=False``, the canonical job."""
    ns = require_namespace(conn, namespace)
    j = t.jobs.c
    row = conn.execute(select(t.jobs).where(j.id == ids.job_id(ns.name, name))).first()
    target = None
    if row is not None and row.symlink_target_id is not None:
        target = conn.execute(select(t.jobs).where(j.id == row.symlink_target_id)).first()
    elif row is None and "." in name:
        # Marquez names a child job `parent.child`; a job sent as `child` with that parent is the same job.
        parent_name, _, child = name.partition(".")
        while child and target is None:
            candidate = conn.execute(select(t.jobs).where(j.id == ids.job_id(ns.name, child))).first()
            if candidate is not None and candidate.parent_job_id is not None:
                parent = conn.execute(select(j.name).where(j.id == candidate.parent_job_id)).scalar()
                if parent == parent_name:
                    target = candidate
            head, _, child = child.partition(".")
            parent_name = f"{parent_name}.{head}"
    if target is not None and not target.is_hidden:
        if redirect:
            raise JobMoved(ns.name, target.name)
        return target
    if row is None or row.is_hidden:
        raise NotFound(f"Job '{name}' not found.")
    return row


def get_job(engine: Engine, namespace: str, name: str) -> Job:
    with read_connection(engine) as conn:
        return hydrate(conn, [find_job(conn, namespace, name)])[0]


def list_children(engine: Engine, namespace: str, name: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
    """The jobs whose parent job this is (an Airflow DAG's tasks, the dbt or Spark jobs an Airflow task
    starts), in any namespace, by namespace and name. Marquez has no such list (only each child's
    ``parentJobUuid``)."""
    j = t.jobs.c
    with read_connection(engine) as conn:
        job = find_job(conn, namespace, name)
        where = (j.parent_job_id == job.id, j.is_hidden.is_(False), j.symlink_target_id.is_(None))
        total = conn.execute(select(func.count()).where(*where)).scalar_one()
        rows = list(
            conn.execute(select(t.jobs).where(*where).order_by(j.namespace_name, j.name).limit(limit).offset(offset))
        )
        return hydrate(conn, rows, latest_runs=1), total


def list_job_runs(engine: Engine, namespace: str, name: str, *, limit: int, offset: int) -> tuple[list[Run], int]:
    """Newest first by start time; runs not started yet last."""
    r = t.runs.c
    with read_connection(engine) as conn:
        job = find_job(conn, namespace, name)
        total = conn.execute(select(func.count()).where(r.job_id == job.id)).scalar_one()
        run_ids = (
            conn.execute(
                select(r.id)
                .where(r.job_id == job.id)
                .order_by(r.started_at.desc().nulls_last(), r.created_at.desc())
                .limit(limit)
                .offset(offset)
            )
            .scalars()
            .all()
        )
        runs = hydrate_runs(conn, list(run_ids))
        return [runs[i] for i in run_ids], total


def _hydrate_versions(conn: Connection, job: Row, rows: list[Row]) -> list[JobVersion]:
    io, d = t.job_version_io.c, t.datasets.c
    links: dict[tuple[uuid.UUID, str], list[DatasetId]] = defaultdict(list)
    for version_id, io_type, ns, name in conn.execute(
        select(io.job_version_id, io.io_type, d.namespace_name, d.name)
        .join(t.datasets, d.id == io.dataset_id)
        .where(in_values(conn, io.job_version_id, [v.id for v in rows]))
        .order_by(d.namespace_name, d.name)
    ):
        links[(version_id, io_type)].append(DatasetId(namespace=ns, name=name))
    runs = hydrate_runs(conn, [v.latest_run_id for v in rows if v.latest_run_id])
    return [
        JobVersion(
            id=JobVersionId(namespace=job.namespace_name, name=job.name, version=str(v.id)),
            name=job.name,
            createdAt=v.created_at,
            version=str(v.id),
            namespace=job.namespace_name,
            location=v.location,
            inputs=links.get((v.id, "INPUT"), []),
            outputs=links.get((v.id, "OUTPUT"), []),
            latestRun=runs.get(v.latest_run_id),
        )
        for v in rows
    ]


def list_job_versions(engine: Engine, namespace: str, name: str, *, limit: int, offset: int) -> list[JobVersion]:
    v = t.job_versions.c
    with read_connection(engine) as conn:
        job = find_job(conn, namespace, name)
        rows = list(
            conn.execute(
                select(t.job_versions)
                .where(v.job_id == job.id)
                .order_by(v.created_at.desc(), v.id)
                .limit(limit)
                .offset(offset)
            )
        )
        return _hydrate_versions(conn, job, rows)


def get_job_version(engine: Engine, namespace: str, name: str, version: uuid.UUID) -> JobVersion:
    v = t.job_versions.c
    with read_connection(engine) as conn:
        job = find_job(conn, namespace, name)
        row = conn.execute(select(t.job_versions).where(v.id == version, v.job_id == job.id)).first()
        if row is None:
            raise NotFound(f"Job version '{version}' not found.")
        return _hydrate_versions(conn, job, [row])[0]


def delete_job(engine: Engine, namespace: str, name: str) -> Job:
    """Soft delete, as Marquez: hidden until an event names the job again."""
    with write_transaction(engine) as conn:
        row = find_job(conn, namespace, name)
        conn.execute(t.jobs.update().where(t.jobs.c.id == row.id).values(is_hidden=True))
        return hydrate(conn, [conn.execute(select(t.jobs).where(t.jobs.c.id == row.id)).one()])[0]


def set_job_tag(engine: Engine, namespace: str, name: str, tag: str, *, present: bool) -> Job:
    with write_transaction(engine) as conn:
        row = find_job(conn, namespace, name)
        (tags.tag if present else tags.untag)(conn, t.job_tags, "job_id", row.id, tag)
        return hydrate(conn, [conn.execute(select(t.jobs).where(t.jobs.c.id == row.id)).one()])[0]
