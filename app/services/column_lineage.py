"""Column-level lineage (Marquez's GET /column-lineage): from dataset fields upstream (and downstream on
request) over the column lineage of each dataset's *current* version, one query per step."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import Connection, Engine, and_, select, tuple_

from app.db import tables as t
from app.db.engine import read_connection
from app.services import datasets as dataset_service
from app.services import jobs as job_service
from app.services.lineage import NodeId

Field = tuple[uuid.UUID, str]  # (dataset id, field name)


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


def _current_fields(conn: Connection, dataset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    cl, d = t.column_lineage.c, t.datasets.c
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    rows = conn.execute(
        select(cl.output_dataset_id, cl.output_field)
        .join(t.datasets, and_(d.id == cl.output_dataset_id, d.current_version_id == cl.output_version_id))
        .where(cl.output_dataset_id.in_(dataset_ids))
        .distinct()
    )
    for dataset_id, field in rows:
        found[dataset_id].append(field)
    return found


def _start_fields(conn: Connection, text: str) -> set[Field]:
    kind = text.split(":", 1)[0]
    if kind == "datasetField":
        namespace, name, field = parse_field_node(text)
        return {(dataset_service.find_dataset(conn, namespace, name).id, field)}
    node = NodeId.parse(text)
    if node.kind == "DATASET":
        dataset_id = dataset_service.find_dataset(conn, node.namespace, node.name).id
        dataset_ids = [dataset_id]
    else:
        job = job_service.find_job(conn, node.namespace, node.name, redirect=False)
        e = t.lineage_edges.c
        dataset_ids = list(
            conn.execute(select(e.dataset_id).where(e.job_id == job.id, e.io_type == "OUTPUT", e.is_current)).scalars()
        )
    return {(ds, f) for ds, fields in _current_fields(conn, dataset_ids).items() for f in fields}


def column_lineage_graph(engine: Engine, node: str, *, depth: int, with_downstream: bool) -> list[dict]:
    cl, od = t.column_lineage.c, t.datasets.c
    current_output = and_(od.id == cl.output_dataset_id, od.current_version_id == cl.output_version_id)
    columns = (
        cl.output_dataset_id,
        cl.output_field,
        cl.input_dataset_id,
        cl.input_field,
        cl.transformation_description,
        cl.transformation_type,
    )
    with read_connection(engine) as conn:
        start = _start_fields(conn, node)
        seen: set[Field] = set(start)
        edges: set[tuple] = set()
        up, down = set(start), set(start) if with_downstream else set()
        for _ in range(depth):
            if not up and not down:
                break
            rows = []
            if up:
                rows += conn.execute(
                    select(*columns)
                    .join(t.datasets, current_output)
                    .where(tuple_(cl.output_dataset_id, cl.output_field).in_(sorted(up, key=str)))
                ).all()
            if down:
                rows += conn.execute(
                    select(*columns)
                    .join(t.datasets, current_output)
                    .where(tuple_(cl.input_dataset_id, cl.input_field).in_(sorted(down, key=str)))
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
        return _nodes(conn, seen, edges)


def _nodes(conn: Connection, fields: set[Field], edges: set[tuple]) -> list[dict]:
    """Marquez's node shape. Its quirk, which its UI relies on, is kept: in both inEdges and outEdges the
    origin is the node itself and the destination is the neighbour."""
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

    def key(field: Field) -> str:
        row = info[field[0]]
        return field_node_id(row.namespace_name, row.name, field[1])

    def version(dataset_id: uuid.UUID) -> str | None:
        current = info[dataset_id].current_version_id
        return str(current) if current else None

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
        types = {f.get("name"): f.get("type") for f in (row.fields or []) if isinstance(f, dict)}
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
