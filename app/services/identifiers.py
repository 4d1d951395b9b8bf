"""Deterministic ids.

Two families:
* **Marquez-compatible versions** — name-based MD5 (v3) UUIDs over the same parts, in the same order, as
  Marquez computes them, so a version id can be cross-checked against a Marquez server fed the same events.
* **Row ids** for things named by their content (a namespace by its name, a dataset by namespace + name…):
  UUIDv5 under Headwater's own namespace. Ingest computes them without asking the database, and concurrent
  writers of the same row agree on its id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import orjson

from app.db import json as json_codec

HEADWATER_UUID_NAMESPACE = uuid.UUID("5b0e1c52-6f0d-4c1e-9d55-2a0d3f1f6e11")


# Ingest asks for the same few thousand ids (namespaces, datasets, jobs, fields) event after event.
@lru_cache(maxsize=100_000)
def _row_id(kind: str, *parts: str) -> uuid.UUID:
    return uuid.uuid5(HEADWATER_UUID_NAMESPACE, "\x1f".join((kind, *parts)))


def namespace_id(name: str) -> uuid.UUID:
    return _row_id("namespace", name)


def source_id(name: str) -> uuid.UUID:
    return _row_id("source", name)


def dataset_id(namespace: str, name: str) -> uuid.UUID:
    return _row_id("dataset", namespace, name)


def dataset_field_id(dataset: uuid.UUID, field_name: str) -> uuid.UUID:
    return _row_id("dataset_field", str(dataset), field_name)


def job_id(namespace: str, name: str) -> uuid.UUID:
    return _row_id("job", namespace, name)


def tag_id(name: str) -> uuid.UUID:
    return _row_id("tag", name)


def run_io_id(run: uuid.UUID, dataset: uuid.UUID, io_type: str) -> uuid.UUID:
    return _row_id("run_io", str(run), str(dataset), io_type)


def json_content(document: Any) -> tuple[bytes, str]:
    """A JSON document as JSON with sorted keys, and its content as 32 hex digits (MD5 of that JSON: key order is
    not content, as in a Postgres ``jsonb``). A caller that writes the document too need not encode it twice."""
    content = json_codec.dumps_bytes(document, sort_keys=True)
    return content, hashlib.md5(content).hexdigest()


def column_lineage_id(dataset: uuid.UUID, rows: Iterable[Sequence[Any]]) -> uuid.UUID:
    """The id of a dataset's column lineage, from its rows' content (output field, input dataset id, input
    field, transformation description, type, subtype, transformations): versions publishing the same lineage
    share one set of rows."""
    # Sorted by (output field, input dataset, input field), which is unique in a set of rows.
    content = sorted(
        ([str(part) if isinstance(part, uuid.UUID) else part for part in row] for row in rows), key=_first3
    )
    digest = hashlib.md5(str(dataset).encode() + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()
    return uuid.UUID(bytes=digest, version=3)


def _first3(row: list) -> list:
    return row[:3]


# --- Marquez-compatible version ids -------------------------------------------------------------------


def name_uuid_from_bytes(data: bytes) -> uuid.UUID:
    """Java's ``UUID.nameUUIDFromBytes``: MD5 with the version set to 3 (no namespace prefix)."""
    return uuid.UUID(bytes=hashlib.md5(data).digest(), version=3)


def _join(parts: Iterable[str | None]) -> str:
    # Guava's Joiner.on(':').skipNulls(): None parts vanish, empty strings stay as empty segments.
    return ":".join(p for p in parts if p is not None)


def job_version(
    namespace: str,
    job_name: str,
    inputs: Iterable[tuple[str, str]],
    outputs: Iterable[tuple[str, str]],
    location: str | None,
) -> uuid.UUID:
    def flat(ids: Iterable[tuple[str, str]]) -> str:
        return _join(part for ns, name in sorted(set(ids)) for part in (ns, name))

    return name_uuid_from_bytes(_join([namespace, job_name, flat(inputs), flat(outputs), location]).encode("utf-8"))


def _sort_key(triple: Sequence[str | None]) -> tuple:
    # Commons-lang Triple.compareTo with nulls first.
    return tuple((part is not None, part or "") for part in triple)


def _sorted_nulls_first(tuples: Iterable[tuple]) -> list[tuple]:
    """Sorted as ``_sort_key`` has it. Compared as they are where no None meets a string (the same order, in C,
    several times faster for a schema's fields): equal parts compare equal, None or not, and the first unequal
    pair decides; a None against a string raises, and then ``_sort_key`` sorts them."""
    tuples = list(tuples)
    try:
        return sorted(tuples)
    except TypeError:
        return sorted(tuples, key=_sort_key)


def dataset_version(
    namespace: str,
    source_name: str,
    dataset_name: str,
    physical_name: str,
    fields: Sequence[dict],
    lifecycle_state: str | None,
    run_id: uuid.UUID | None,
    schema_location: str | None = None,
) -> uuid.UUID:
    triples = {
        (
            f.get("name"),
            f["type"].upper() if isinstance(f.get("type"), str) else None,
            f.get("description") if isinstance(f.get("description"), str) else None,
        )
        for f in fields
        if isinstance(f, dict) and isinstance(f.get("name"), str)
    }
    rendered = _join(_join(t) for t in _sorted_nulls_first(triples))
    parts = [
        namespace,
        source_name,
        dataset_name,
        physical_name,
        schema_location,
        rendered,
        lifecycle_state or "",
        str(run_id) if run_id else None,
    ]
    return name_uuid_from_bytes(_join(parts).encode("utf-8"))


def dataset_schema_version(namespace: str, dataset_name: str, fields: Sequence[dict]) -> uuid.UUID:
    pairs = {
        (f.get("name"), f.get("type") if isinstance(f.get("type"), str) else None)
        for f in fields
        if isinstance(f, dict) and isinstance(f.get("name"), str)
    }
    rendered = _join(_join(p) for p in _sorted_nulls_first(pairs))
    return name_uuid_from_bytes(_join([namespace, dataset_name, rendered]).encode("utf-8"))


def parent_run_id(raw_run_id: str, parent_namespace: str, parent_job_name: str) -> uuid.UUID:
    """The run id of a ``parent`` facet: the runId itself when it is a UUID, else Marquez's derived id."""
    try:
        return uuid.UUID(raw_run_id)
    except ValueError:
        dag = parent_job_name.rsplit(".", 1)[0] if "." in parent_job_name else parent_job_name
        return uuid.uuid3(uuid.NAMESPACE_URL, f"{parent_namespace}.{dag}.{raw_run_id}")
