"""Rebuild the model from the raw events (`headwater reindex`), e.g. after an upgrade that changes how events map
to the model, or to apply events whose apply failed (``lineage_events.apply_error``) once the cause is fixed.

Every table built from events is emptied and every stored event is applied again, in id order, by the ingest
code itself (``apply_stored_event``), so the result is what a fresh ingest of the same events builds. What only
the API sets survives: the tag catalogue and what is tagged (with the fields that carry tags), namespaces
(owner, description) and sources as PUT, and soft deletes (a dataset, job or namespace hidden now is hidden
again afterwards).

It all happens in one transaction: readers see the old model until it commits, and a failure leaves the old
model as it was. An event that fails to apply is rolled back alone (a savepoint), marked with its error in
``apply_error``, and the rebuild goes on; one that applies now has its old mark cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from app.db import tables as t
from app.db.dialect import in_values, is_retryable, is_unavailable
from app.db.engine import write_transaction
from app.services.ingest import apply_stored_event

log = logging.getLogger(__name__)

# Built from events, children first. Namespaces, sources and tags are catalogue rows the API edits too: kept,
# and the replayed events find them there.
REBUILT_TABLES = [
    t.column_lineage,
    t.facets,
    t.run_io,
    t.run_states,
    t.runs,
    t.lineage_edges,
    t.job_version_io,
    t.job_versions,
    t.jobs,
    t.dataset_versions,
    t.dataset_fields,
    t.dataset_symlinks,
    t.datasets,
]
_TAG_LINKS = [(t.dataset_tags, "dataset_id", t.datasets), (t.job_tags, "job_id", t.jobs)]

Progress = Callable[[int, int], None]  # (events applied so far, events in all)


@dataclass
class ReindexReport:
    events: int = 0
    failed: int = 0  # events that could not be applied (apply_error set)
    recovered: int = 0  # events marked with apply_error before that applied now
    errors: dict[int, str] = field(default_factory=dict)  # event id → error, for the failed ones


@dataclass
class _ApiState:
    """What the API set on rows the rebuild deletes (ids are content-derived, so they match afterwards)."""

    tag_links: dict[str, list[dict]]
    fields: list[dict]  # dataset_fields: the fields the API tagged
    field_tags: list[dict]
    hidden: dict[str, list]


def _save_api_state(conn: Connection) -> _ApiState:
    tag_links = {link.name: [dict(r._mapping) for r in conn.execute(select(link))] for link, _, _ in _TAG_LINKS}
    fields = [dict(r._mapping) for r in conn.execute(select(t.dataset_fields))]
    field_tags = [dict(r._mapping) for r in conn.execute(select(t.dataset_field_tags))]
    hidden = {
        table.name: list(conn.execute(select(table.c.id).where(table.c.is_hidden)).scalars())
        for table in (t.namespaces, t.datasets, t.jobs)
    }
    return _ApiState(tag_links, fields, field_tags, hidden)


def _restore_api_state(conn: Connection, state: _ApiState) -> None:
    for link, key, target in _TAG_LINKS:
        rows = state.tag_links[link.name]
        existing = _existing(conn, target, [r[key] for r in rows])
        rows = [r for r in rows if r[key] in existing]
        if rows:
            conn.execute(link.insert(), rows)
    existing = _existing(conn, t.datasets, [r["dataset_id"] for r in state.fields])
    fields = [r for r in state.fields if r["dataset_id"] in existing]
    if fields:
        conn.execute(t.dataset_fields.insert(), fields)
    existing = {r["id"] for r in fields}
    rows = [r for r in state.field_tags if r["dataset_field_id"] in existing]
    if rows:
        conn.execute(t.dataset_field_tags.insert(), rows)
    for table in (t.namespaces, t.datasets, t.jobs):
        ids = state.hidden[table.name]
        if ids:
            conn.execute(update(table).where(in_values(conn, table.c.id, ids)).values(is_hidden=True))


def _existing(conn: Connection, table, ids: list) -> set:
    if not ids:
        return set()
    return set(conn.execute(select(table.c.id).where(in_values(conn, table.c.id, list(set(ids))))).scalars())


def reindex(engine: Engine, *, chunk_size: int = 500, progress: Progress = lambda done, total: None) -> ReindexReport:
    """Empty the model tables and apply every stored event again; see the module docstring."""
    report = ReindexReport()
    e = t.lineage_events.c
    with write_transaction(engine) as conn:
        last_id = conn.execute(select(func.max(e.id))).scalar() or 0
        total = conn.execute(select(func.count()).where(e.id <= last_id)).scalar() or 0
        state = _save_api_state(conn)
        for link, _, _ in _TAG_LINKS:
            conn.execute(delete(link))
        conn.execute(delete(t.dataset_field_tags))
        for table in REBUILT_TABLES:
            conn.execute(delete(table))
        after = 0
        progress(0, total)
        while True:
            rows = conn.execute(
                select(e.id, e.event_hash, e.payload, e.apply_error)
                .where(e.id > after, e.id <= last_id)
                .order_by(e.id)
                .limit(chunk_size)
            ).all()
            if not rows:
                break
            for row in rows:
                _apply_one(conn, row, report)
            after = rows[-1].id
            report.events += len(rows)
            progress(report.events, total)
        # Events still waiting for the applier were applied above: the applier must not apply them again.
        conn.execute(
            update(t.lineage_events).where(e.id <= last_id, e.applied_at.is_(None)).values(applied_at=datetime.now(UTC))
        )
        _restore_api_state(conn, state)
    return report


def _apply_one(conn: Connection, row, report: ReindexReport) -> None:
    e = t.lineage_events.c
    savepoint = conn.begin_nested()
    try:
        apply_stored_event(conn, row.id, row.event_hash, row.payload)
    except Exception as exc:  # a mapping bug: keep going, mark the event as ingest does
        savepoint.rollback()
        if isinstance(exc, DBAPIError) and (is_retryable(exc) or is_unavailable(exc)):
            raise  # not the event's fault: give up and leave the old model as it was
        error = f"{type(exc).__name__}: {exc}"[:4000]
        log.warning("reindex: event %s could not be applied: %s", row.id, error)
        conn.execute(update(t.lineage_events).where(e.id == row.id).values(apply_error=error))
        report.failed += 1
        report.errors[row.id] = error
        return
    savepoint.commit()
    if row.apply_error is not None:
        conn.execute(update(t.lineage_events).where(e.id == row.id).values(apply_error=None))
        report.recovered += 1
