"""The lineage graph around a job or dataset (Marquez's GET /lineage), walked over the current edges only.

Unlike Marquez, the walk is directed: downstream follows data from writers to readers, upstream from readers
to writers, and "both" is the union of the two walks, so jobs that merely read the same table as something
in the graph (siblings) are not pulled in. Each step of the walk is one query for the whole frontier, and the
nodes' details are loaded at the end in a fixed number of queries; the cost follows the size of the answer,
not of run history. Depth counts job hops from the start, as in Marquez.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Literal

from sqlalchemy import Connection, Engine, Row, Select, bindparam, func, literal, select

from app.db import tables as t
from app.db.dialect import in_param, in_param_value, in_values
from app.db.engine import read_connection
from app.services import datasets as dataset_service
from app.services import jobs as job_service
from app.services import tags
from app.services.runs import run_documents

Direction = Literal["upstream", "downstream", "both"]

# A namespace's colons are those followed by "//" (a URI scheme) or digits (a port).
_SEPARATOR = re.compile(r":(?!//)(?!\d)")


@dataclass(frozen=True)
class NodeId:
    kind: Literal["DATASET", "JOB"]
    namespace: str
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> NodeId:
        """``dataset:<namespace>:<name>`` or ``job:<namespace>:<name>``, optionally ``#<version>``."""
        kind, _, rest = text.partition(":")
        if kind.lower() not in ("dataset", "job") or not rest:
            raise ValueError("must look like dataset:<namespace>:<name> or job:<namespace>:<name>")
        rest, _, version = rest.partition("#")
        namespace, name = split_qualified_name(rest)
        return cls("DATASET" if kind.lower() == "dataset" else "JOB", namespace, name, version or None)


def split_qualified_name(text: str) -> tuple[str, str]:
    """``<namespace>:<name>``, where the namespace may itself hold colons (``postgres://db:5432:orders``)."""
    split = _SEPARATOR.search(text)
    if split is None:
        raise ValueError("has no ':' between namespace and name")
    namespace, name = text[: split.start()], text[split.end() :]
    if not namespace or not name:
        raise ValueError("needs both a namespace and a name")
    return namespace, name


def node_id(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()}:{namespace}:{name}"


@dataclass
class Walk:
    jobs: set[uuid.UUID]
    datasets: set[uuid.UUID]
    truncated: bool = False

    @property
    def size(self) -> int:
        return len(self.jobs) + len(self.datasets)


def current_edges(
    conn: Connection,
    io_type: str,
    *,
    from_datasets: set[uuid.UUID] | None = None,
    from_jobs: set[uuid.UUID] | None = None,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Current (job, dataset) edges of one kind touching the frontier, skipping soft-deleted nodes."""
    e = t.lineage_edges.c
    query = _edges_query(conn.dialect.name, from_datasets is not None, from_jobs is not None)
    values = {"io_type": io_type}
    if from_datasets is not None:
        values["datasets"] = in_param_value(conn, e.dataset_id, from_datasets)
    if from_jobs is not None:
        values["jobs"] = in_param_value(conn, e.job_id, from_jobs)
    return [(job, dataset) for job, dataset in conn.execute(query, values).all()]


@cache
def _edges_query(dialect: str, from_datasets: bool, from_jobs: bool) -> Select:
    """current_edges' statement, built once per kind of database and of frontier (a backfill plan's closure
    runs it twice per hop). Parameters: io_type, datasets, jobs."""
    e, j, d = t.lineage_edges.c, t.jobs.c, t.datasets.c
    query = (
        select(e.job_id, e.dataset_id)
        .join(t.jobs, j.id == e.job_id)
        .join(t.datasets, d.id == e.dataset_id)
        .where(e.io_type == bindparam("io_type"), e.is_current, j.is_hidden.is_(False), d.is_hidden.is_(False))
    )
    if from_datasets:
        query = query.where(in_param(dialect, e.dataset_id, "datasets"))
    if from_jobs:
        query = query.where(in_param(dialect, e.job_id, "jobs"))
    return query


def _reached_jobs(
    conn: Connection, *, start_job: uuid.UUID | None, start_dataset: uuid.UUID | None, depth: int, downstream: bool
) -> list[tuple[uuid.UUID, int, uuid.UUID | None]]:
    """The jobs reached within ``depth`` job hops, each with its fewest hops and the datasets it leads on to
    (its outputs downstream, its inputs upstream): one recursive query over the current edges, skipping
    hidden nodes. Rows are ``(job, hops, dataset or None)``."""
    if start_job is None and depth < 1:
        return []
    query = _reach_query(downstream=downstream, from_job=start_job is not None)
    rows = conn.execute(query, {"start": start_job or start_dataset, "depth": depth}).all()
    return [tuple(row) for row in rows]


@cache
def _reach_query(*, downstream: bool, from_job: bool) -> Select:
    """Built once per direction and kind of start: the statement is the same for every request."""
    into_job, out_of_job = ("INPUT", "OUTPUT") if downstream else ("OUTPUT", "INPUT")
    jobs, depth = t.jobs.c, bindparam("depth")
    if from_job:
        seed = select(jobs.id.label("job_id"), literal(0).label("hops")).where(jobs.id == bindparam("start"))
    else:
        first = t.lineage_edges.c
        seed = (
            select(first.job_id.label("job_id"), literal(1).label("hops"))
            .join(t.jobs, jobs.id == first.job_id)
            .where(
                first.dataset_id == bindparam("start"),
                first.io_type == into_job,
                first.is_current,
                jobs.is_hidden.is_(False),
            )
        )
    reach = seed.cte("reach", recursive=True)
    leave, enter = t.lineage_edges.alias("leave"), t.lineage_edges.alias("enter")
    via, reader = t.datasets.alias("via"), t.jobs.alias("reader")
    reach = reach.union(
        select(enter.c.job_id, reach.c.hops + 1)
        .join(leave, leave.c.job_id == reach.c.job_id)
        .join(via, via.c.id == leave.c.dataset_id)
        .join(enter, enter.c.dataset_id == leave.c.dataset_id)
        .join(reader, reader.c.id == enter.c.job_id)
        .where(
            reach.c.hops < depth,
            leave.c.io_type == out_of_job,
            leave.c.is_current,
            via.c.is_hidden.is_(False),
            enter.c.io_type == into_job,
            enter.c.is_current,
            reader.c.is_hidden.is_(False),
        )
    )
    reached = select(reach.c.job_id, func.min(reach.c.hops).label("hops")).group_by(reach.c.job_id).subquery()
    e, d = t.lineage_edges.c, t.datasets.c
    onward = (
        select(e.job_id, e.dataset_id)
        .join(t.datasets, d.id == e.dataset_id)
        .where(e.io_type == out_of_job, e.is_current, d.is_hidden.is_(False))
        .subquery()
    )
    return select(reached.c.job_id, reached.c.hops, onward.c.dataset_id).outerjoin(
        onward, onward.c.job_id == reached.c.job_id
    )


def _walk(
    conn: Connection,
    walk: Walk,
    *,
    start_job: uuid.UUID | None,
    start_dataset: uuid.UUID | None,
    depth: int,
    downstream: bool,
    max_nodes: int,
) -> None:
    """Downstream: dataset -INPUT-> job -OUTPUT-> dataset; upstream the reverse. Nodes join the walk level by
    level (fewest job hops first), so a walk past ``max_nodes`` stops at a whole level."""
    levels: dict[int, dict[uuid.UUID, list[uuid.UUID]]] = defaultdict(dict)
    for job, hops, dataset in _reached_jobs(
        conn, start_job=start_job, start_dataset=start_dataset, depth=depth, downstream=downstream
    ):
        onward = levels[hops].setdefault(job, [])
        if dataset is not None:
            onward.append(dataset)
    for hops in sorted(levels):
        for job, onward in levels[hops].items():
            walk.jobs.add(job)
            walk.datasets.update(onward)
        if walk.size > max_nodes:
            walk.truncated = True
            return


def lineage_graph(
    engine: Engine, node: NodeId, *, depth: int, direction: Direction, max_nodes: int
) -> tuple[list[dict], bool]:
    with read_connection(engine) as conn:
        if node.kind == "DATASET":
            start = dataset_service.find_dataset(conn, node.namespace, node.name)
            walk, start_job, start_dataset = Walk(set(), {start.id}), None, start.id
        else:
            start = job_service.find_job(conn, node.namespace, node.name, redirect=False)
            walk, start_job, start_dataset = Walk({start.id}, set()), start.id, None
        for downstream in {"downstream": (True,), "upstream": (False,), "both": (True, False)}[direction]:
            _walk(
                conn,
                walk,
                start_job=start_job,
                start_dataset=start_dataset,
                depth=depth,
                downstream=downstream,
                max_nodes=max_nodes,
            )
        return _graph(conn, walk), walk.truncated


def _graph(conn: Connection, walk: Walk) -> list[dict]:
    """Nodes sorted by id, each with its edges to other nodes of the graph (Marquez's shape).

    The nodes' ``data`` are Marquez's lineage shapes (its JobData and DatasetData: no facets, no column
    lineage), built as plain dicts straight from the rows: the answer can hold thousands of nodes, and the
    full Job/Dataset wire models cost several times the queries."""
    e, d = t.lineage_edges.c, t.datasets.c
    job_rows = conn.execute(select(t.jobs).where(in_values(conn, t.jobs.c.id, walk.jobs))).all()
    dataset_rows = conn.execute(select(t.datasets).where(in_values(conn, t.datasets.c.id, walk.datasets))).all()
    key = {r.id: node_id("JOB", r.namespace_name, r.name) for r in job_rows}
    key.update({r.id: node_id("DATASET", r.namespace_name, r.name) for r in dataset_rows})
    # Every current edge of the graph's jobs: their inputs and outputs, and the graph's edges among them.
    io: dict[tuple[uuid.UUID, str], list[dict]] = defaultdict(list)
    edges: list[tuple[str, str]] = []
    for job, io_type, dataset, namespace, name in conn.execute(
        select(e.job_id, e.io_type, e.dataset_id, d.namespace_name, d.name)
        .join(t.datasets, d.id == e.dataset_id)
        .where(e.is_current, in_values(conn, e.job_id, walk.jobs))
        .order_by(d.namespace_name, d.name)
    ).all():
        io[(job, io_type)].append({"namespace": namespace, "name": name})
        if dataset in walk.datasets:
            edges.append((key[dataset], key[job]) if io_type == "INPUT" else (key[job], key[dataset]))
    edges.sort()
    nodes = [(key[r.id], "JOB", data) for r, data in zip(job_rows, _job_data(conn, job_rows, io), strict=True)]
    nodes += [
        (key[r.id], "DATASET", data) for r, data in zip(dataset_rows, _dataset_data(conn, dataset_rows), strict=True)
    ]
    nodes.sort(key=lambda n: n[0])
    incoming: dict[str, list[dict]] = defaultdict(list)
    outgoing: dict[str, list[dict]] = defaultdict(list)
    for origin, destination in edges:
        edge = {"origin": origin, "destination": destination}
        outgoing[origin].append(edge)
        incoming[destination].append(edge)
    return [
        {"id": node, "type": kind, "data": data, "inEdges": incoming[node], "outEdges": outgoing[node]}
        for node, kind, data in nodes
    ]


def _job_data(conn: Connection, rows: list[Row], io: dict[tuple[uuid.UUID, str], list[dict]]) -> list[dict]:
    """Marquez's JobData: the job, its current inputs and outputs, and its latest run."""
    runs = run_documents(conn, [r.current_run_id for r in rows if r.current_run_id])
    parent_ids = [r.parent_job_id for r in rows if r.parent_job_id]
    parents = {}
    if parent_ids:
        j = t.jobs.c
        parents = dict(conn.execute(select(j.id, j.name).where(in_values(conn, j.id, parent_ids))).all())
    data = []
    for r in rows:
        data.append(
            {
                "id": {"namespace": r.namespace_name, "name": r.name},
                "type": r.type,
                "name": r.name,
                "simpleName": r.simple_name,
                "parentJobName": parents.get(r.parent_job_id),
                "parentJobUuid": str(r.parent_job_id) if r.parent_job_id else None,
                "currentRunUuid": str(r.current_run_id) if r.current_run_id else None,
                "createdAt": r.created_at,
                "updatedAt": r.updated_at,
                "namespace": r.namespace_name,
                "inputs": io.get((r.id, "INPUT"), []),
                "outputs": io.get((r.id, "OUTPUT"), []),
                "location": r.location,
                "description": r.description,
                "latestRun": runs.get(r.current_run_id),
            }
        )
    return data


def _dataset_data(conn: Connection, rows: list[Row]) -> list[dict]:
    """Marquez's DatasetData: the dataset with its current schema and tags (plus its current version)."""
    v, f = t.dataset_versions.c, t.facets.c
    version_ids = [r.current_version_id for r in rows if r.current_version_id]
    version_fields = dict(conn.execute(select(v.id, v.fields).where(in_values(conn, v.id, version_ids))).all())
    # Datasets only ever read have no published schema: their readers' `schema` facet stands in.
    unpublished = [r.id for r in rows if not version_fields.get(r.current_version_id)]
    schema_facets = {}
    if unpublished:
        schema_facets = dict(
            conn.execute(
                select(f.entity_id, f.facet).where(in_values(conn, f.entity_id, unpublished), f.name == "schema")
            ).all()
        )
    dataset_ids = [r.id for r in rows]
    dataset_tags = tags.tags_of(conn, t.dataset_tags, "dataset_id", dataset_ids)
    tags_by_field = dataset_service.field_tags(conn, dataset_ids)
    return [
        {
            "id": {"namespace": r.namespace_name, "name": r.name},
            "type": r.type,
            "name": r.name,
            "physicalName": r.physical_name,
            "createdAt": r.created_at,
            "updatedAt": r.updated_at,
            "namespace": r.namespace_name,
            "sourceName": r.source_name,
            "fields": dataset_service.fields_of(
                version_fields.get(r.current_version_id), schema_facets.get(r.id), tags_by_field.get(r.id, {})
            ),
            "tags": dataset_tags.get(r.id, []),
            "lastModifiedAt": r.last_modified_at,
            "description": r.description,
            "lastLifecycleState": r.last_lifecycle_state,
            "currentVersion": str(r.current_version_id) if r.current_version_id else None,
        }
        for r in rows
    ]
