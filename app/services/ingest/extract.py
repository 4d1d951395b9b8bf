"""What the model takes from an event's facets: pure functions, no database.

Facets are free-form JSON from many producers, so every reader here tolerates missing keys and wrong
types by returning "nothing" rather than failing the event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from app.schemas.openlineage import parse_timestamp
from app.services import identifiers

# OpenLineage eventType → (Marquez run state, rank). A state replaces another only with a higher rank, or
# the same rank from a later event, so a late START never overwrites COMPLETED. OTHER changes no state.
RUN_STATES: dict[str, tuple[str, int]] = {
    "START": ("RUNNING", 1),
    "RUNNING": ("RUNNING", 1),
    "COMPLETE": ("COMPLETED", 2),
    "FAIL": ("FAILED", 2),
    "ABORT": ("ABORTED", 2),
}
TERMINAL_STATES = {"COMPLETED", "FAILED", "ABORTED"}


def facet(facets: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = facets.get(name)
    return value if isinstance(value, dict) else None


def is_deleted(value: Any) -> bool:
    """``{"_deleted": true}`` removes the facet of that name (OpenLineage proposal 1837)."""
    return isinstance(value, dict) and value.get("_deleted") is True


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def run_state(event_type: str | None) -> tuple[str, int] | None:
    if not event_type:
        return None
    return RUN_STATES.get(event_type.upper())


# --- datasets -----------------------------------------------------------------------------------------


def schema_fields(facets: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The ``schema`` facet's fields as sent (nested ``fields`` kept), or None when there is no schema."""
    schema = facet(facets, "schema")
    if schema is None or is_deleted(schema):
        return None
    fields = schema.get("fields")
    if not isinstance(fields, list):
        return []
    return [f for f in fields if isinstance(f, dict) and _str(f.get("name"))]


@dataclass(frozen=True)
class FlatField:
    name: str  # nested struct members are named parent.child
    type: str | None
    description: str | None


def flatten_fields(fields: list[dict[str, Any]], prefix: str = "") -> list[FlatField]:
    flat: list[FlatField] = []
    for f in fields:
        name = _str(f.get("name"))
        if name is None:
            continue
        path = f"{prefix}{name}"
        flat.append(FlatField(path, _str(f.get("type")), _str(f.get("description"))))
        children = f.get("fields")
        if isinstance(children, list):
            flat.extend(flatten_fields([c for c in children if isinstance(c, dict)], prefix=f"{path}."))
    return flat


def source_of(facets: dict[str, Any]) -> tuple[str, str] | None:
    """(source name, connection URL) from the ``dataSource`` facet."""
    data_source = facet(facets, "dataSource")
    if data_source is None or is_deleted(data_source):
        return None
    uri = _str(data_source.get("uri")) or ""
    name = _str(data_source.get("name")) or uri or "default"
    return name, uri


_SOURCE_TYPES = {"postgres": "POSTGRESQL", "postgresql": "POSTGRESQL", "gs": "GCS", "hdfs": "HDFS"}


def source_type(uri: str) -> str:
    scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    if not scheme:
        return "DEFAULT"
    return _SOURCE_TYPES.get(scheme, scheme.upper())


def lifecycle_state(facets: dict[str, Any]) -> str | None:
    change = facet(facets, "lifecycleStateChange")
    if change is None or is_deleted(change):
        return None
    return _str(change.get("lifecycleStateChange"))


def external_version(facets: dict[str, Any]) -> str | None:
    version = facet(facets, "version")
    if version is None or is_deleted(version):
        return None
    value = version.get("datasetVersion")
    return str(value) if isinstance(value, (str, int)) and value != "" else None


def symlinks(facets: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    links = facet(facets, "symlinks")
    if links is None or is_deleted(links) or not isinstance(links.get("identifiers"), list):
        return []
    found = []
    for identifier in links["identifiers"]:
        if isinstance(identifier, dict):
            ns, name = _str(identifier.get("namespace")), _str(identifier.get("name"))
            if ns and name:
                found.append((ns, name, _str(identifier.get("type"))))
    return found


@dataclass(frozen=True)
class ColumnEdge:
    output_field: str
    input_namespace: str
    input_name: str
    input_field: str
    description: str | None
    type: str | None
    subtype: str | None
    transformations: list[Any] | None


def column_lineage(facets: dict[str, Any]) -> list[ColumnEdge]:
    """Edges of the ``columnLineage`` facet, old (field-level description/type) and new (transformations[])."""
    lineage = facet(facets, "columnLineage")
    if lineage is None or is_deleted(lineage) or not isinstance(lineage.get("fields"), dict):
        return []
    edges: dict[tuple[str, str, str, str], ColumnEdge] = {}
    for output_field, spec in lineage["fields"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("inputFields"), list):
            continue
        legacy_description = _str(spec.get("transformationDescription"))
        legacy_type = _str(spec.get("transformationType"))
        for source in spec["inputFields"]:
            if not isinstance(source, dict):
                continue
            ns, name, field_name = (_str(source.get(k)) for k in ("namespace", "name", "field"))
            if not (ns and name and field_name):
                continue
            transformations = source.get("transformations")
            first = transformations[0] if isinstance(transformations, list) and transformations else None
            first = first if isinstance(first, dict) else {}
            edges[(output_field, ns, name, field_name)] = ColumnEdge(
                output_field=output_field,
                input_namespace=ns,
                input_name=name,
                input_field=field_name,
                description=_str(first.get("description")) or legacy_description,
                type=_str(first.get("type")) or legacy_type,
                subtype=_str(first.get("subtype")),
                transformations=transformations if isinstance(transformations, list) else None,
            )
    return list(edges.values())


def column_lineage_inputs(facets: dict[str, Any]) -> list[tuple[str, str]]:
    """The (namespace, name) of the datasets the ``columnLineage`` facet's edges read from, in order: the
    datasets of ``column_lineage(facets)``, without building its edges (every event asks, few need them)."""
    lineage = facet(facets, "columnLineage")
    if lineage is None or is_deleted(lineage) or not isinstance(lineage.get("fields"), dict):
        return []
    found: dict[tuple[str, str], None] = {}
    for spec in lineage["fields"].values():
        if not isinstance(spec, dict) or not isinstance(spec.get("inputFields"), list):
            continue
        for source in spec["inputFields"]:
            # _str inlined, and a dataset found already not checked again: every event of a job with column
            # lineage walks every input field here.
            if isinstance(source, dict):
                ns, name = source.get("namespace"), source.get("name")
                if isinstance(ns, str) and isinstance(name, str) and ns and name and (ns, name) not in found:
                    field_name = source.get("field")
                    if isinstance(field_name, str) and field_name:
                        found[(ns, name)] = None
    return list(found)


# --- jobs and runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobAttributes:
    type: str  # BATCH | STREAM | SERVICE
    integration: str | None
    job_type: str | None
    description: str | None
    location: str | None


def job_attributes(facets: dict[str, Any]) -> JobAttributes:
    job_type = facet(facets, "jobType") or {}
    processing = (_str(job_type.get("processingType")) or "BATCH").upper()
    documentation = facet(facets, "documentation") or {}
    location = facet(facets, "sourceCodeLocation") or {}
    return JobAttributes(
        type={"STREAMING": "STREAM", "SERVICE": "SERVICE"}.get(processing, "BATCH"),
        integration=_str(job_type.get("integration")),
        job_type=_str(job_type.get("jobType")),
        description=_str(documentation.get("description")),
        location=_str(location.get("url")),
    )


def nominal_times(run_facets: dict[str, Any]) -> tuple[datetime, datetime | None] | None:
    nominal = facet(run_facets, "nominalTime")
    if nominal is None:
        return None
    try:
        start = parse_timestamp(nominal.get("nominalStartTime"))
    except ValueError:
        return None
    try:
        end = parse_timestamp(nominal["nominalEndTime"]) if nominal.get("nominalEndTime") else None
    except ValueError:
        end = None
    return start, end


@dataclass(frozen=True)
class ParentRef:
    namespace: str
    name: str
    run_id: uuid.UUID
    raw_run_id: str


def parent_of(run_facets: dict[str, Any]) -> ParentRef | None:
    """The ``parent`` run facet (older producers call it ``parentRun``)."""
    parent = facet(run_facets, "parent") or facet(run_facets, "parentRun")
    if parent is None:
        return None
    job, run = parent.get("job"), parent.get("run")
    if not isinstance(job, dict) or not isinstance(run, dict):
        return None
    ns, name, raw = _str(job.get("namespace")), _str(job.get("name")), _str(run.get("runId"))
    if not (ns and name and raw):
        return None
    return ParentRef(ns, name, identifiers.parent_run_id(raw, ns, name), raw)


def simple_name(job_name: str, parent: ParentRef | None) -> str:
    """A child's own name: Airflow names tasks ``dag.task`` and Spark actions ``app.action``."""
    if parent and job_name.startswith(parent.name + ".") and len(job_name) > len(parent.name) + 1:
        return job_name[len(parent.name) + 1 :]
    return job_name
