"""Datasets as the Marquez API shows them: a page of rows, then their details in a fixed number of
queries (current versions, facets, column lineage), never one query per dataset."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Row, func, select

from app.db import tables as t
from app.db.dialect import in_values, upsert
from app.db.engine import read_connection, write_transaction
from app.schemas.marquez import (
    ColumnLineage,
    ColumnLineageInputField,
    Dataset,
    DatasetId,
    DatasetVersion,
    DatasetVersionId,
)
from app.services import identifiers as ids
from app.services import tags
from app.services.errors import NotFound
from app.services.facets import facets_by_entity
from app.services.namespaces import require_namespace
from app.services.runs import hydrate_runs


def fields_of(
    version_fields: list[dict] | None, schema_facet: dict | None, field_tags: dict[str, list[str]]
) -> list[dict]:
    """The current version's schema as Marquez's fields; for a dataset only ever read (no published version
    has a schema), the schema its readers describe."""
    fields = version_fields or (schema_facet or {}).get("fields") or []
    return [
        {
            "name": f["name"],
            "type": f.get("type") if isinstance(f.get("type"), str) else None,
            "tags": field_tags.get(f["name"], []),
            "description": f.get("description") if isinstance(f.get("description"), str) else None,
        }
        for f in fields
        if isinstance(f, dict) and isinstance(f.get("name"), str)
    ]


def _column_lineage(conn: Connection, version_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ColumnLineage]]:
    """One level of column lineage per output version, grouped by output field."""
    found: dict[uuid.UUID, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    if version_ids:
        cl, d, v = t.column_lineage.c, t.datasets.c, t.dataset_versions.c
        rows = conn.execute(
            select(
                v.id,
                cl.output_field,
                d.namespace_name,
                d.name,
                cl.input_field,
                cl.transformation_description,
                cl.transformation_type,
            )
            .select_from(t.dataset_versions)
            .join(t.column_lineage, cl.lineage_id == v.column_lineage_id)
            .join(t.datasets, d.id == cl.input_dataset_id)
            .where(in_values(conn, v.id, version_ids))
            .order_by(cl.output_field, d.namespace_name, d.name, cl.input_field)
        )
        for version_id, output_field, ns, name, input_field, description, kind in rows:
            found[version_id][output_field].append(
                ColumnLineageInputField(
                    namespace=ns,
                    dataset=name,
                    field=input_field,
                    transformationDescription=description,
                    transformationType=kind,
                )
            )
    result = {}
    for version_id, by_field in found.items():
        result[version_id] = [
            ColumnLineage(
                name=field,
                inputFields=inputs,
                transformationDescription=inputs[0].transformationDescription if inputs else None,
                transformationType=inputs[0].transformationType if inputs else None,
            )
            for field, inputs in by_field.items()
        ]
    return result


def field_tags(conn: Connection, dataset_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, list[str]]]:
    """dataset id → field name → tag names."""
    found: dict[uuid.UUID, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    if dataset_ids:
        f, ft, tg = t.dataset_fields.c, t.dataset_field_tags.c, t.tags.c
        rows = conn.execute(
            select(f.dataset_id, f.name, tg.name)
            .join(t.dataset_field_tags, ft.dataset_field_id == f.id)
            .join(t.tags, tg.id == ft.tag_id)
            .where(in_values(conn, f.dataset_id, dataset_ids))
            .order_by(tg.name)
        ).all()
        for dataset_id, field_name, tag_name in rows:
            found[dataset_id][field_name].append(tag_name)
    return found


def hydrate(conn: Connection, rows: list[Row]) -> list[Dataset]:
    version_ids = [r.current_version_id for r in rows if r.current_version_id]
    versions = {}
    if version_ids:
        v = t.dataset_versions.c
        versions = {
            row.id: row for row in conn.execute(select(v.id, v.fields).where(in_values(conn, v.id, version_ids)))
        }
    facets = facets_by_entity(conn, [r.id for r in rows])
    lineage = _column_lineage(conn, version_ids)
    dataset_tags = tags.tags_of(conn, t.dataset_tags, "dataset_id", [r.id for r in rows])
    tags_by_field = field_tags(conn, [r.id for r in rows])
    datasets = []
    for r in rows:
        version = versions.get(r.current_version_id)
        dataset_facets = facets.get(r.id, {})
        datasets.append(
            Dataset(
                id=DatasetId(namespace=r.namespace_name, name=r.name),
                type=r.type,
                name=r.name,
                physicalName=r.physical_name,
                createdAt=r.created_at,
                updatedAt=r.updated_at,
                namespace=r.namespace_name,
                sourceName=r.source_name,
                fields=fields_of(
                    version.fields if version else None, dataset_facets.get("schema"), tags_by_field[r.id]
                ),
                tags=dataset_tags.get(r.id, []),
                lastModifiedAt=r.last_modified_at,
                lastLifecycleState=r.last_lifecycle_state,
                description=r.description,
                currentVersion=str(r.current_version_id) if r.current_version_id else None,
                columnLineage=lineage.get(r.current_version_id) or None,
                facets=dataset_facets,
                deleted=r.is_deleted,
            )
        )
    return datasets


def list_datasets(engine: Engine, namespace: str, *, limit: int, offset: int) -> tuple[list[Dataset], int]:
    with read_connection(engine) as conn:
        ns = require_namespace(conn, namespace)
        d = t.datasets.c
        visible = (d.namespace_id == ns.id, d.is_hidden.is_(False))
        total = conn.execute(select(func.count()).select_from(t.datasets).where(*visible)).scalar_one()
        rows = list(conn.execute(select(t.datasets).where(*visible).order_by(d.name).limit(limit).offset(offset)))
        return hydrate(conn, rows), total


def find_dataset(conn: Connection, namespace: str, name: str) -> Row:
    """A visible dataset by (namespace, name), or by one of its symlinked names."""
    ns = require_namespace(conn, namespace)
    d, s = t.datasets.c, t.dataset_symlinks.c
    row = conn.execute(select(t.datasets).where(d.id == ids.dataset_id(ns.name, name))).first()
    if row is None:
        row = conn.execute(
            select(t.datasets)
            .join(t.dataset_symlinks, s.dataset_id == d.id)
            .where(s.namespace_name == ns.name, s.name == name)
        ).first()
    if row is None or row.is_hidden:
        raise NotFound(f"Dataset '{name}' not found.")
    return row


def get_dataset(engine: Engine, namespace: str, name: str) -> Dataset:
    with read_connection(engine) as conn:
        return hydrate(conn, [find_dataset(conn, namespace, name)])[0]


def _hydrate_versions(conn: Connection, dataset: Row, rows: list[Row]) -> list[DatasetVersion]:
    facets = facets_by_entity(conn, [v.id for v in rows])
    runs = hydrate_runs(conn, [v.run_id for v in rows if v.run_id])
    dataset_tags = tags.tags_of(conn, t.dataset_tags, "dataset_id", [dataset.id]).get(dataset.id, [])
    tags_by_field = field_tags(conn, [dataset.id])[dataset.id]
    return [
        DatasetVersion(
            id=DatasetVersionId(namespace=dataset.namespace_name, name=dataset.name, version=str(v.id)),
            type=dataset.type,
            name=dataset.name,
            physicalName=dataset.physical_name,
            createdAt=v.created_at,
            version=str(v.id),
            namespace=dataset.namespace_name,
            sourceName=v.source_name or dataset.source_name,
            fields=fields_of(v.fields, None, tags_by_field),
            tags=dataset_tags,
            lifecycleState=v.lifecycle_state,
            description=(facets.get(v.id, {}).get("documentation") or {}).get("description") or dataset.description,
            currentSchemaVersion=str(v.schema_version_id) if v.schema_version_id else None,
            createdByRun=runs.get(v.run_id) if v.run_id else None,
            facets=facets.get(v.id, {}),
        )
        for v in rows
    ]


def list_versions(
    engine: Engine, namespace: str, name: str, *, limit: int, offset: int
) -> tuple[list[DatasetVersion], int]:
    """Newest first."""
    with read_connection(engine) as conn:
        dataset = find_dataset(conn, namespace, name)
        v = t.dataset_versions.c
        total = conn.execute(select(func.count()).where(v.dataset_id == dataset.id)).scalar_one()
        rows = list(
            conn.execute(
                select(t.dataset_versions)
                .where(v.dataset_id == dataset.id)
                .order_by(v.created_at.desc(), v.id)
                .limit(limit)
                .offset(offset)
            )
        )
        return _hydrate_versions(conn, dataset, rows), total


def get_version(engine: Engine, namespace: str, name: str, version: uuid.UUID) -> DatasetVersion:
    with read_connection(engine) as conn:
        dataset = find_dataset(conn, namespace, name)
        v = t.dataset_versions.c
        row = conn.execute(select(t.dataset_versions).where(v.id == version, v.dataset_id == dataset.id)).first()
        if row is None:
            raise NotFound(f"Dataset version '{version}' not found.")
        return _hydrate_versions(conn, dataset, [row])[0]


def delete_dataset(engine: Engine, namespace: str, name: str) -> Dataset:
    """Soft delete, as Marquez: hidden until an event names the dataset again."""
    with write_transaction(engine) as conn:
        row = find_dataset(conn, namespace, name)
        conn.execute(t.datasets.update().where(t.datasets.c.id == row.id).values(is_hidden=True))
        return hydrate(conn, [conn.execute(select(t.datasets).where(t.datasets.c.id == row.id)).one()])[0]


def _reload(conn: Connection, dataset_id: uuid.UUID) -> Dataset:
    return hydrate(conn, [conn.execute(select(t.datasets).where(t.datasets.c.id == dataset_id)).one()])[0]


def set_dataset_tag(engine: Engine, namespace: str, name: str, tag: str, *, present: bool) -> Dataset:
    with write_transaction(engine) as conn:
        row = find_dataset(conn, namespace, name)
        (tags.tag if present else tags.untag)(conn, t.dataset_tags, "dataset_id", row.id, tag)
        return _reload(conn, row.id)


def set_field_tag(engine: Engine, namespace: str, name: str, field: str, tag: str, *, present: bool) -> Dataset:
    """Tag a field the dataset shows (its current schema); a field known only from readers' schemas gets
    its field row here."""
    with write_transaction(engine) as conn:
        row = find_dataset(conn, namespace, name)
        shown = {f.name: f for f in hydrate(conn, [row])[0].fields}
        if field not in shown:
            raise NotFound(f"Field '{field}' not found.")
        field_id = ids.dataset_field_id(row.id, field)
        now = datetime.now(UTC)
        conn.execute(
            upsert(conn, t.dataset_fields)
            .values(
                id=field_id,
                dataset_id=row.id,
                name=field,
                type=shown[field].type,
                description=shown[field].description,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        (tags.tag if present else tags.untag)(conn, t.dataset_field_tags, "dataset_field_id", field_id, tag)
        return _reload(conn, row.id)
