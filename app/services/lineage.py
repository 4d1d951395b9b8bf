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
from typing import Literal

from sqlalchemy import Connection, Engine, select

from app.db import tables as t
from app.db.dialect import in_values
from app.db.engine import read_connection
from app.services import datasets as dataset_service
from app.services import jobs as job_service

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
    e, j, d = t.lineage_edges.c, t.jobs.c, t.datasets.c
    query = (
        select(e.job_id, e.dataset_id)
        .join(t.jobs, j.id == e.job_id)
        .join(t.datasets, d.id == e.dataset_id)
        .where(e.io_type == io_type, e.is_current, j.is_hidden.is_(False), d.is_hidden.is_(False))
    )
    if from_datasets is not None:
        query = query.where(in_values(conn, e.dataset_id, from_datasets))
    if from_jobs is not None:
        query = query.where(in_values(conn, e.job_id, from_jobs))
    return [(job, dataset) for job, dataset in conn.execute(query)]


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
    """Breadth-first, one query per step. Downstream: dataset -INPUT-> job -OUTPUT-> dataset; upstream the
    reverse. Visited nodes are not expanded again, so cycles end."""
    into_job, out_of_job = ("INPUT", "OUTPUT") if downstream else ("OUTPUT", "INPUT")
    jobs_frontier = {start_job} if start_job else set()
    datasets_frontier = {start_dataset} if start_dataset else set()
    hops = 0
    while True:
        if jobs_frontier:
            walk.jobs |= jobs_frontier
            reached = {ds for _, ds in current_edges(conn, out_of_job, from_jobs=jobs_frontier)} - walk.datasets
            walk.datasets |= reached
            datasets_frontier, jobs_frontier = reached, set()
        if walk.size > max_nodes:
            walk.truncated = True
            return
        if not datasets_frontier or hops >= depth:
            return
        hops += 1
        jobs_frontier = {job for job, _ in current_edges(conn, into_job, from_datasets=datasets_frontier)} - walk.jobs
        datasets_frontier = set()
        if not jobs_frontier:
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
    """Nodes sorted by id, each with its edges to other nodes of the graph (Marquez's shape)."""
    e = t.lineage_edges.c
    job_rows = list(conn.execute(select(t.jobs).where(in_values(conn, t.jobs.c.id, walk.jobs))))
    dataset_rows = list(conn.execute(select(t.datasets).where(in_values(conn, t.datasets.c.id, walk.datasets))))
    key = {r.id: node_id("JOB", r.namespace_name, r.name) for r in job_rows}
    key.update({r.id: node_id("DATASET", r.namespace_name, r.name) for r in dataset_rows})
    edges: list[tuple[str, str]] = []
    for job, dataset, io_type in conn.execute(
        select(e.job_id, e.dataset_id, e.io_type).where(
            e.is_current, in_values(conn, e.job_id, walk.jobs), in_values(conn, e.dataset_id, walk.datasets)
        )
    ):
        edges.append((key[dataset], key[job]) if io_type == "INPUT" else (key[job], key[dataset]))
    edges.sort()
    nodes = []
    for row, job in zip(job_rows, job_service.hydrate(conn, job_rows, latest_runs=0), strict=True):
        data = job.model_dump(mode="json")
        data["currentRunUuid"] = str(row.current_run_id) if row.current_run_id else None
        nodes.append((key[row.id], "JOB", data))
    for row, dataset in zip(dataset_rows, dataset_service.hydrate(conn, dataset_rows), strict=True):
        nodes.append((key[row.id], "DATASET", dataset.model_dump(mode="json")))
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
