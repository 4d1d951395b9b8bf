"""Column-level lineage (Marquez's GET /column-lineage): from dataset fields upstream (and downstream on
request) over the column lineage of each dataset's *current* version, one query per step.

A node id may name a version (``#<uuid>``): a dataset version for ``dataset:``/``datasetField:`` nodes, a job
version for ``job:`` nodes. The walk then starts from that version's column lineage instead of the current
one; see ``_start_fields``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import Connection, Engine, Row, Select, and_, or_, select, tuple_

from app.db import tables as t
from app.db.engine import read_connection
from app.services import datasets as dataset_service
from app.services import jobs as job_service
from app.services.errors import NotFound
from app.services.lineage import NodeId

Field = tuple[uuid.UUID, str]  # (dataset id, field name)
Pins = dict[uuid.UUID, uuid.UUID]  # dataset id → the version of it the walk follows instead of the current one


def field_node_id(namespace: str, dataset: str, field: str) -> str:
    return f"datasetField:{namespace}:{dataset}:{field}"


def parse_field_node(text: str) -> tuple[str, str, str]:
    """``datasetField:<namespace>:<dataset>:<field>``: the field is after the last colon."""
    rest = text.split(":", 1)[1].split("#", 1)[0]
    dataset_part, _, field = rest.rpartition(":")
    if not field or not dataset_part:
        raise ValueError("must look like datasetField:<namespace>:<dataset>:<field>")
    node = NodeId.parse("dataset:" + dataset_part)
    return node.namespace, node.name, field


def parse_version(text: str) -> uuid.UUID | None:
    """The ``#<version>`` suffix of a node id, if it has one."""
    _, hash_, version = text.partition("#")
    if not hash_:
        return None
    try:
        return uuid.UUID(version)
    except ValueError:
        raise ValueError(f"the version after '#' must be a UUID, not {version!r}") from None


def _following(stmt: Select, pins: Pins) -> Select:
    """``stmt`` over ``column_lineage`` restricted to the rows a walk follows: the lineage of the pinned version
    of a pinned dataset, of the current version of every other."""
    cl, od, fv = t.column_lineage.c, t.datasets.c, t.dataset_versions.c
    followed = fv.id == od.current_version_id
    if pins:
        followed = or_(fv.id.in_(list(pins.values())), and_(od.id.not_in(list(pins)), followed))
    return stmt.join(t.datasets, od.id == cl.output_dataset_id).join(
        t.dataset_versions, and_(fv.column_lineage_id == cl.lineage_id, followed)
    )


def _fields_with_lineage(conn: Connection, dataset_ids: list[uuid.UUID], pins: Pins) -> dict[uuid.UUID, list[str]]:
    """The fields of each dataset that have column lineage in the version the walk follows."""
    cl = t.column_lineage.c
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    if not dataset_ids:
        return found
    rows = conn.execute(
        _following(select(cl.output_dataset_id, cl.output_field), pins)
        .where(cl.output_dataset_id.in_(dataset_ids))
        .distinct()
    )
    for dataset_id, field in rows:
        found[dataset_id].append(field)
    return found


def _dataset_version(conn: Connection, dataset: Row, version: uuid.UUID) -> Pins:
    v = t.dataset_versions.c
    if conn.execute(select(v.id).where(v.id == version, v.dataset_id == dataset.id)).first() is None:
        raise NotFound(f"Version '{version}' of dataset '{dataset.name}' not found.")
    return {dataset.id: version}


def _job_version_outputs(conn: Connection, job: Row, version: uuid.UUID) -> tuple[list[uuid.UUID], Pins]:
    """The outputs of a job version, each pinned to the newest version of it that a run of this job version
    published (an output no such run published has no column lineage as of this job version)."""
    jv, io, r, v = t.job_versions.c, t.job_version_io.c, t.runs.c, t.dataset_versions.c
    if conn.execute(select(jv.id).where(jv.id == version, jv.job_id == job.id)).first() is None:
        raise NotFound(f"Version '{version}' of job '{job.name}' not found.")
    outputs = list(
        conn.execute(select(io.dataset_id).where(io.job_version_id == version, io.io_type == "OUTPUT")).scalars()
    )
    pins: Pins = {}
    if outputs:
        rows = conn.execute(
            select(v.dataset_id, v.id)
            .join(t.runs, r.id == v.run_id)
            # job_id first: the job's runs by index, then the ones of this version.
            .where(r.job_id == job.id, r.job_version_id == version, v.dataset_id.in_(outputs), v.published_key != "")
            .order_by(v.published_key)
        )
        pins = {dataset_id: version_id for dataset_id, version_id in rows}  # the newest published wins
    return [ds for ds in outputs if ds in pins], pins


def _start_fields(conn: Connection, text: str) -> tuple[set[Field], Pins]:
    """The fields the walk starts from, and the versions it pins.

    Without ``#<version>`` nothing is pinned: every dataset's current version is followed. With one, the start
    datasets are pinned to that version (or, for a job version, to the versions its runs published), wherever the
    walk meets them; upstream hops beyond them follow the current version of each dataset, not the version
    that was current at the time (Marquez walks everything as of the version's creation time).
    """
    version = parse_version(text)
    kind = text.split(":", 1)[0]
    if kind == "datasetField":
        namespace, name, field = parse_field_node(text)
        dataset = dataset_service.find_dataset(conn, namespace, name)
        return {(dataset.id, field)}, _dataset_version(conn, dataset, version) if version else {}
    node = NodeId.parse(text)
    if node.kind == "DATASET":
        dataset = dataset_service.find_dataset(conn, node.namespace, node.name)
        dataset_ids = [dataset.id]
        pins = _dataset_version(conn, dataset, version) if version else {}
    else:
        job = job_service.find_job(conn, node.namespace, node.name, redirect=False)
        if version:
            dataset_ids, pins = _job_version_outputs(conn, job, version)
        else:
            e = t.lineage_edges.c
            current = select(e.dataset_id).where(e.job_id == job.id, e.io_type == "OUTPUT", e.is_current)
            dataset_ids, pins = list(conn.execute(current).scalars()), {}
    fields = _fields_with_lineage(conn, dataset_ids, pins)
    return {(ds, f) for ds, names in fields.items() for f in names}, pins


def column_lineage_graph(engine: Engine, node: str, *, depth: int, with_downstream: bool) -> list[dict]:
    cl = t.column_lineage.c
    columns = (
        cl.output_dataset_id,
        cl.output_field,
        cl.input_dataset_id,
        cl.input_field,
        cl.transformation_description,
        cl.transformation_type,
    )
    with read_connection(engine) as conn:
        start, pins = _start_fields(conn, node)
        seen: set[Field] = set(start)
        edges: set[tuple] = set()
        up, down = set(start), set(start) if with_downstream else set()
        for _ in range(depth):
            if not up and not down:
                break
            rows = []
            if up:
                rows += conn.execute(
                    _following(select(*columns), pins).where(
                        tuple_(cl.output_dataset_id, cl.output_field).in_(sorted(up, key=str))
                    )
                ).all()
            if down:
                rows += conn.execute(
                    _following(select(*columns), pins).where(
                        tuple_(cl.input_dataset_id, cl.input_field).in_(sorted(down, key=str))
                    )
                ).all()
            next_up, next_down = set(), set()
            for row in rows:
                edges.add(tuple(row))
                source, target = (row[2], row[3]), (row[0], row[1])
                if source not in seen and target in up:
                    next_up.add(source)
                if target not in seen and source in down:
                    next_down.add(target)
                seen |= {source, target}
            up, down = next_up, next_down
        return _nodes(conn, seen, edges, pins)


def _nodes(conn: Connection, fields: set[Field], edges: set[tuple], pins: Pins) -> list[dict]:
    """Marquez's node shape. Its quirk, which its UI relies on, is kept: in both inEdges and outEdges the
    origin is the node itself and the destination is the neighbour. A pinned dataset shows its pinned version
    (datasetVersion, field types)."""
    d, v = t.datasets.c, t.dataset_versions.c
    dataset_ids = sorted({ds for ds, _ in fields}, key=str)
    info = {
        row.id: row
        for row in conn.execute(
            select(d.id, d.namespace_name, d.name, d.current_version_id, v.fields)
            .outerjoin(t.dataset_versions, v.id == d.current_version_id)
            .where(d.id.in_(dataset_ids))
        )
    }
    pinned_fields = {}
    if pins:
        pinned_fields = dict(conn.execute(select(v.id, v.fields).where(v.id.in_(list(pins.values())))).all())

    def key(field: Field) -> str:
        row = info[field[0]]
        return field_node_id(row.namespace_name, row.name, field[1])

    def version(dataset_id: uuid.UUID) -> str | None:
        shown = pins.get(dataset_id, info[dataset_id].current_version_id)
        return str(shown) if shown else None

    inputs: dict[Field, list[tuple]] = defaultdict(list)
    readers: dict[Field, list[Field]] = defaultdict(list)
    for edge in sorted(edges, key=str):
        inputs[(edge[0], edge[1])].append(edge)
        readers[(edge[2], edge[3])].append((edge[0], edge[1]))
    nodes = []
    for field in fields:
        if field[0] not in info:
            continue
        row = info[field[0]]
        schema_fields = pinned_fields.get(pins[field[0]]) if field[0] in pins else row.fields
        types = {f.get("name"): f.get("type") for f in (schema_fields or []) if isinstance(f, dict)}
        own = inputs.get(field, [])
        input_fields = [
            {
                "namespace": info[e[2]].namespace_name,
                "dataset": info[e[2]].name,
                "datasetVersion": version(e[2]),
                "field": e[3],
                "transformationDescription": e[4],
                "transformationType": e[5],
            }
            for e in own
            if e[2] in info
        ]
        nodes.append(
            {
                "id": key(field),
                "type": "DATASET_FIELD",
                "data": {
                    "namespace": row.namespace_name,
                    "dataset": row.name,
                    "datasetVersion": version(field[0]),
                    "field": field[1],
                    "fieldType": types.get(field[1]),
                    "transformationDescription": own[0][4] if own else None,
                    "transformationType": own[0][5] if own else None,
                    "inputFields": input_fields,
                },
                "inEdges": [{"origin": key(field), "destination": key((e[2], e[3]))} for e in own if e[2] in info],
                "outEdges": sorted(
                    ({"origin": key(field), "destination": key(r)} for r in readers.get(field, []) if r[0] in info),
                    key=lambda edge: edge["destination"],
                ),
            }
        )
    return sorted(nodes, key=lambda n: n["id"])
