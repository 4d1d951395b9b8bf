"""Storing events in the log and reading the stored model back in tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Engine, select

from app.db import tables as t
from app.schemas.openlineage import event_class_for
from app.services import identifiers as ids
from app.services.ingest import event_hash, raw_event_row
from app.services.ingest.barrier import apply_lag


def store_events(engine: Engine, events: list[dict]) -> None:
    """Store events in the event log only (no applier runs), in this order, each once, as ingest would."""
    rows = {}
    for event in events:
        digest = event_hash(event)
        if digest not in rows:
            rows[digest] = raw_event_row(event, event_class_for(event).model_validate(event), digest)
    with engine.begin() as conn:
        conn.execute(t.lineage_events.insert(), list(rows.values()))


def applied(engine: Engine, timeout: float = 30) -> Engine:
    """The engine, once every event stored so far is applied to the model: what the API's read barrier does
    before each read, for tests that read the model's tables directly. Fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (lag := apply_lag(engine)).unapplied:
        assert time.monotonic() < deadline, f"{lag.unapplied} events still unapplied after {timeout} s"
        time.sleep(0.01)
    return engine


def one(engine: Engine, table, *where):
    with applied(engine).connect() as conn:
        return conn.execute(select(table).where(*where)).one()


def all_rows(engine: Engine, table, *where, order_by=None) -> list:
    with applied(engine).connect() as conn:
        stmt = select(table).where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        return list(conn.execute(stmt))


def job(engine: Engine, namespace: str, name: str):
    return one(engine, t.jobs, t.jobs.c.id == ids.job_id(namespace, name))


def dataset(engine: Engine, namespace: str, name: str):
    return one(engine, t.datasets, t.datasets.c.id == ids.dataset_id(namespace, name))


def run(engine: Engine, run_id: uuid.UUID | str):
    return one(engine, t.runs, t.runs.c.id == uuid.UUID(str(run_id)))


def facets_of(engine: Engine, entity_id: uuid.UUID) -> dict[str, Any]:
    """Live facets of an entity (tombstones left out)."""
    rows = all_rows(engine, t.facets, t.facets.c.entity_id == entity_id)
    return {r.name: r.facet for r in rows if r.facet is not None}


def edges(engine: Engine, *, current_only: bool = True) -> set[tuple[str, str, str]]:
    """{(job name, io_type, dataset name)} of the lineage edges."""
    e, j, d = t.lineage_edges, t.jobs, t.datasets
    stmt = select(j.c.name, e.c.io_type, d.c.name).join(j, j.c.id == e.c.job_id).join(d, d.c.id == e.c.dataset_id)
    if current_only:
        stmt = stmt.where(e.c.is_current)
    with applied(engine).connect() as conn:
        return {tuple(r) for r in conn.execute(stmt)}


# Columns that record *when Headwater saw something* rather than what the events say.
_BOOKKEEPING = {"received_at", "applied_at"}
_FIRST_SEEN_ROWS = {"sources", "dataset_fields", "dataset_symlinks"}


def snapshot(engine: Engine, *, json_key_order: bool = True) -> dict[str, list[tuple]]:
    """The whole model as comparable data: raw event ids are replaced by event hashes (ids depend on
    arrival order; hashes do not). ``json_key_order=False`` compares JSON objects whatever the order of their keys
    (events that went through a jsonb column, as Marquez keeps them, come back with their keys reordered)."""
    with applied(engine).connect() as conn:
        hashes = dict(conn.execute(select(t.lineage_events.c.id, t.lineage_events.c.event_hash)).all())
        result = {}
        for table in [t.lineage_events, *t.MODEL_TABLES]:
            columns = [
                c
                for c in table.columns
                if c.name not in _BOOKKEEPING
                and not (table.name == "lineage_events" and c.name == "id")
                and not (table.name in _FIRST_SEEN_ROWS and c.name in ("created_at", "updated_at"))
            ]
            rows = []
            for row in conn.execute(select(*columns)):
                values = []
                for column, value in zip(columns, row, strict=False):
                    if column.name == "lineage_event_id":
                        value = hashes.get(value, value)
                    if not json_key_order and isinstance(value, dict | list):
                        value = json.dumps(value, sort_keys=True)
                    values.append(repr(value))
                rows.append(tuple(values))
            result[table.name] = sorted(rows)
    return result


def describe_difference(expected: dict[str, list[tuple]], got: dict[str, list[tuple]]) -> str:
    lines = []
    for table in expected:
        missing, extra = set(expected[table]) - set(got[table]), set(got[table]) - set(expected[table])
        if missing or extra:
            lines.append(f"table {table}:")
            lines += [f"  expected only: {row}" for row in sorted(missing)]
            lines += [f"  got only:      {row}" for row in sorted(extra)]
    return "\n".join(lines)
