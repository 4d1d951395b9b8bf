"""Table-level writes of one event, inside the caller's transaction.

Rules that keep concurrent writers (threads, processes) correct and fast:
* rows shared between events (namespaces, sources, datasets, jobs) are inserted with ``ON CONFLICT DO
  NOTHING`` — which takes no row lock when the row exists — and updated only when something changed;
* every multi-row statement is deduplicated on its key and sorted, so two transactions lock rows of a
  table in the same order;
* a value that can arrive out of order is replaced only by a value from an event with a greater event key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, delete, exists, literal, or_, select, tuple_, update
from sqlalchemy.sql.expression import ColumnElement

from app.db import tables as t
from app.db.dialect import upsert
from app.services import identifiers as ids
from app.services.ingest import extract


@dataclass(frozen=True)
class EventContext:
    lineage_event_id: int
    key: str  # sorts like the event time; ties broken by the event hash
    time: datetime


@dataclass
class DatasetRef:
    """A dataset as one event names it, resolved to its primary (namespace, name) through symlinks."""

    namespace: str
    name: str
    id: uuid.UUID
    facets: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> tuple[str, str] | None:
        return extract.source_of(self.facets)

    @property
    def source_name(self) -> str:
        source = self.source
        return source[0] if source else "default"


def _dedupe(rows: Iterable[dict], *key: str) -> list[dict]:
    """Last row wins per key; sorted by key so concurrent transactions lock in the same order."""
    by_key = {tuple(str(row[k]) for k in key): row for row in rows}
    return [by_key[k] for k in sorted(by_key)]


def _sql_value(value, like):
    return value if isinstance(value, ColumnElement) else literal(value, type_=like.type)


def _later(new, old):
    """SQL for "the later of two possibly-NULL values" (no GREATEST on SQLite)."""
    new = _sql_value(new, old)
    return case((old.is_(None), new), (new.is_(None), old), (new > old, new), else_=old)


def _earlier(new, old):
    new = _sql_value(new, old)
    return case((old.is_(None), new), (new.is_(None), old), (new < old, new), else_=old)


class ModelWriter:
    def __init__(self, connection: Connection, ctx: EventContext):
        self.conn = connection
        self.ctx = ctx

    def _insert_ignore(self, table: t.Table, rows: list[dict], returning=None) -> list:
        if not rows:
            return []
        stmt = upsert(self.conn, table).on_conflict_do_nothing()
        if returning is not None:
            return list(self.conn.execute(stmt.returning(*returning), rows))
        self.conn.execute(stmt, rows)
        return []

    def _revive(self, table: t.Table, row_ids: list[uuid.UUID], updated_at) -> None:
        """For rows that already existed: a soft-deleted one comes back when an event names it (as in
        Marquez), and an event older than the row's first one moves created_at back, so the result does not
        depend on arrival order. Matches (and locks) no row in the common case."""
        if not row_ids:
            return
        now, c = self.ctx.time, table.c
        self.conn.execute(
            update(table)
            .where(c.id.in_(row_ids), or_(c.is_hidden, c.created_at > now))
            .values(is_hidden=False, created_at=_earlier(now, c.created_at), updated_at=updated_at)
        )

    # --- namespaces and sources -----------------------------------------------------------------------

    def ensure_namespaces(self, names: Iterable[str]) -> None:
        now = self.ctx.time
        rows = _dedupe(
            ({"id": ids.namespace_id(n), "name": n, "created_at": now, "updated_at": now} for n in names),
            "id",
        )
        self._insert_ignore(t.namespaces, rows)
        # A namespace changes only through the API, so its updated_at stays its creation time.
        c = t.namespaces.c
        self._revive(t.namespaces, [r["id"] for r in rows], updated_at=_earlier(now, c.updated_at))

    def ensure_sources(self, sources: Iterable[tuple[str, str]]) -> None:
        now = self.ctx.time
        rows = _dedupe(
            (
                {
                    "id": ids.source_id(name),
                    "name": name,
                    "type": extract.source_type(uri),
                    "connection_url": uri,
                    "created_at": now,
                    "updated_at": now,
                }
                for name, uri in sources
            ),
            "id",
        )
        self._insert_ignore(t.sources, rows)

    # --- datasets -------------------------------------------------------------------------------------

    def resolve(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str, uuid.UUID]]:
        """(namespace, name) → the primary (namespace, name, id) it stands for, through symlinks."""
        wanted = sorted(set(names))
        resolved = {pair: (pair[0], pair[1], ids.dataset_id(*pair)) for pair in wanted}
        if wanted:
            s, d = t.dataset_symlinks, t.datasets
            rows = self.conn.execute(
                select(s.c.namespace_name, s.c.name, d.c.namespace_name, d.c.name, d.c.id)
                .join(d, d.c.id == s.c.dataset_id)
                .where(tuple_(s.c.namespace_name, s.c.name).in_(wanted))
            )
            for alias_ns, alias_name, ns, name, dataset_id in rows:
                resolved[(alias_ns, alias_name)] = (ns, name, dataset_id)
        return resolved

    def ensure_datasets(self, refs: Iterable[DatasetRef]) -> set[uuid.UUID]:
        """Insert missing datasets; un-hide soft-deleted ones. Returns the ids that were new."""
        now = self.ctx.time
        rows = []
        for ref in refs:
            attrs = _dataset_attributes(ref.facets)
            rows.append(
                {
                    "id": ref.id,
                    "namespace_id": ids.namespace_id(ref.namespace),
                    "namespace_name": ref.namespace,
                    "name": ref.name,
                    "physical_name": ref.name,
                    "type": "DB_TABLE",
                    "source_id": ids.source_id(ref.source_name),
                    "source_name": ref.source_name,
                    **{k: v for k, v in attrs.items() if k not in ("source_id", "source_name")},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        rows = _dedupe(rows, "id")
        inserted = {r.id for r in self._insert_ignore(t.datasets, rows, returning=[t.datasets.c.id])}
        # A dataset's updated_at is the later of its creation and its last published version.
        c = t.datasets.c
        self._revive(
            t.datasets,
            [r["id"] for r in rows if r["id"] not in inserted],
            updated_at=_later(c.last_modified_at, _earlier(now, c.created_at)),
        )
        return inserted

    def add_symlinks(self, ref: DatasetRef) -> None:
        rows = [
            {"namespace_name": ns, "name": name, "dataset_id": ref.id, "type": kind, "created_at": self.ctx.time}
            for ns, name, kind in extract.symlinks(ref.facets)
            if (ns, name) != (ref.namespace, ref.name)
        ]
        self._insert_ignore(t.dataset_symlinks, _dedupe(rows, "namespace_name", "name"))

    def write_fields(self, fields_by_dataset: dict[uuid.UUID, tuple[list[dict], bool]]) -> None:
        """Record each dataset's fields. ``authoritative`` (a writer's schema) also updates type and
        description; a reader's schema only adds fields not yet known."""
        now = self.ctx.time
        authoritative_rows, reader_rows = [], []
        for dataset_id, (fields, authoritative) in fields_by_dataset.items():
            for f in extract.flatten_fields(fields):
                row = {
                    "id": ids.dataset_field_id(dataset_id, f.name),
                    "dataset_id": dataset_id,
                    "name": f.name,
                    "type": f.type,
                    "description": f.description,
                    "event_key": self.ctx.key if authoritative else "",
                    "created_at": now,
                    "updated_at": now,
                }
                (authoritative_rows if authoritative else reader_rows).append(row)
        self._insert_ignore(t.dataset_fields, _dedupe(reader_rows, "id"))
        if authoritative_rows:
            stmt = upsert(self.conn, t.dataset_fields)
            ex, col = stmt.excluded, t.dataset_fields.c
            stmt = stmt.on_conflict_do_update(
                index_elements=[col.id],
                set_={
                    "type": ex.type,
                    "description": ex.description,
                    "event_key": ex.event_key,
                    "updated_at": ex.updated_at,
                },
                where=ex.event_key > col.event_key,
            )
            self.conn.execute(stmt, _dedupe(authoritative_rows, "id"))

    def current_versions(self, dataset_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID | None, str]]:
        """dataset id → (current version id, key of the event that made it current).

        Takes a share lock on the datasets (Postgres): a concurrent COMPLETE publishing one of them waits for
        this read to commit, then re-points it if needed; or this read waits and sees the new version."""
        wanted = sorted(set(dataset_ids), key=str)
        if not wanted:
            return {}
        d = t.datasets.c
        rows = self.conn.execute(
            select(d.id, d.current_version_id, d.current_version_key)
            .where(d.id.in_(wanted))
            .order_by(d.id)
            .with_for_update(read=True)
        )
        return {dataset_id: (version, key) for dataset_id, version, key in rows}

    def version_as_of(self, dataset_id: uuid.UUID, key: str) -> tuple[uuid.UUID, str] | None:
        """The version of a dataset that was published last before ``key`` (what a read at that time saw)."""
        v = t.dataset_versions.c
        row = self.conn.execute(
            select(v.id, v.published_key)
            .where(v.dataset_id == dataset_id, v.published_key != "", v.published_key < key)
            .order_by(v.published_key.desc())
            .limit(1)
        ).first()
        return (row.id, row.published_key) if row else None

    def version_by_external(self, dataset_id: uuid.UUID, external: str) -> uuid.UUID | None:
        v = t.dataset_versions.c
        return self.conn.execute(
            select(v.id)
            .where(v.dataset_id == dataset_id, v.external_version == external)
            .order_by(v.created_at.desc())
            .limit(1)
        ).scalar()

    def insert_versions(self, rows: list[dict]) -> None:
        """Insert versions; a version seen again from an earlier event gets that earlier creation time."""
        if not rows:
            return
        stmt = upsert(self.conn, t.dataset_versions)
        ex, col = stmt.excluded, t.dataset_versions.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[col.id], set_={"created_at": ex.created_at}, where=ex.created_at < col.created_at
        )
        self.conn.execute(stmt, _dedupe(rows, "id"))

    def adopt_first_version(self, dataset_id: uuid.UUID, version_id: uuid.UUID) -> None:
        """A dataset first seen as an input gets the version it was read at as its current one."""
        d = t.datasets.c
        self.conn.execute(
            update(t.datasets)
            .where(d.id == dataset_id, d.current_version_id.is_(None))
            .values(current_version_id=version_id)
        )

    def backdate_version(self, version_id: uuid.UUID) -> None:
        """An earlier event saw this version: move its creation time back (locks nothing otherwise)."""
        v = t.dataset_versions.c
        self.conn.execute(
            update(t.dataset_versions)
            .where(v.id == version_id, v.created_at > self.ctx.time)
            .values(created_at=self.ctx.time)
        )

    def publish_versions(self, versions: dict[uuid.UUID, uuid.UUID]) -> None:
        """A COMPLETE (or a DatasetEvent) publishes what it wrote: dataset id → version id.

        * the version records the publishing event's key;
        * reads of the dataset made after this event that point at an older version (they arrived before
          it) now point at this one;
        * the version becomes the dataset's current one unless a later event already moved it;
        * placeholder versions (data read before any writer was seen) that nothing reads any more go.
        """
        d, v, io = t.datasets.c, t.dataset_versions.c, t.run_io.c
        key = self.ctx.key
        if not versions:
            return
        # Exclusive lock first (see current_versions): no read of these datasets is in flight unseen.
        self.conn.execute(
            select(d.id).where(d.id.in_(list(versions))).order_by(d.id).with_for_update()
        ).all()
        for dataset_id, version_id in sorted(versions.items(), key=lambda kv: str(kv[0])):
            self.conn.execute(
                update(t.dataset_versions)
                .where(v.id == version_id, v.published_key < key)
                .values(published_key=key)
            )
            repointed = self.conn.execute(
                update(t.run_io)
                .where(io.dataset_id == dataset_id, io.io_type == "INPUT", io.event_key > key, io.version_key < key)
                .values(dataset_version_id=version_id, version_key=key)
            ).rowcount
            self.conn.execute(
                update(t.datasets)
                .where(d.id == dataset_id, d.current_version_key < key)
                .values(
                    current_version_id=version_id,
                    current_version_key=key,
                    last_modified_at=self.ctx.time,
                    updated_at=_later(self.ctx.time, d.updated_at),
                )
            )
            if repointed:
                self.conn.execute(
                    delete(t.dataset_versions).where(
                        v.dataset_id == dataset_id,
                        v.run_id.is_(None),
                        v.published_key == "",
                        ~exists().where(io.dataset_version_id == v.id),
                        ~exists().where(d.current_version_id == v.id),
                    )
                )

    def drop_superseded_version(self, old: uuid.UUID, new: uuid.UUID, run_id: uuid.UUID) -> None:
        """A run replaced the version it wrote earlier (e.g. a START without schema, then a COMPLETE with
        one): delete the old version unless something refers to it, moving over the facets and column
        lineage the new version lacks, so the outcome does not depend on the order events arrived in."""
        v, io, d, f, cl = (
            t.dataset_versions.c,
            t.run_io.c,
            t.datasets.c,
            t.facets.c,
            t.column_lineage.c,
        )
        referenced = or_(
            exists().where(io.dataset_version_id == old),
            exists().where(d.current_version_id == old),
        )
        if not self.conn.execute(delete(t.dataset_versions).where(v.id == old, v.run_id == run_id, ~referenced)).rowcount:
            return
        # Aliases: a subquery on the table being updated must not correlate with it.
        f_new = t.facets.alias("f_new")
        on_new = select(f_new.c.name).where(f_new.c.entity_id == new)
        self.conn.execute(update(t.facets).where(f.entity_id == old, f.name.not_in(on_new)).values(entity_id=new))
        self.conn.execute(delete(t.facets).where(f.entity_id == old))
        cl_new = t.column_lineage.alias("cl_new").c
        new_rows = select(cl_new.output_field, cl_new.input_dataset_id, cl_new.input_field).where(
            cl_new.output_version_id == new
        )
        self.conn.execute(
            update(t.column_lineage)
            .where(
                cl.output_version_id == old,
                tuple_(cl.output_field, cl.input_dataset_id, cl.input_field).not_in(new_rows),
            )
            .values(output_version_id=new)
        )
        self.conn.execute(delete(t.column_lineage).where(cl.output_version_id == old))

    # --- jobs -----------------------------------------------------------------------------------------

    def ensure_job(
        self,
        namespace: str,
        name: str,
        *,
        simple_name: str,
        attrs: extract.JobAttributes | None,
        parent_job_id: uuid.UUID | None = None,
        current_run: uuid.UUID | None = None,
    ) -> tuple[uuid.UUID, bool]:
        """Insert the job if missing. Returns (id, whether it was new)."""
        now = self.ctx.time
        job_id = ids.job_id(namespace, name)
        attrs = attrs or extract.JobAttributes("BATCH", None, None, None, None)
        row = {
            "id": job_id,
            "namespace_id": ids.namespace_id(namespace),
            "namespace_name": namespace,
            "name": name,
            "simple_name": simple_name,
            "parent_job_id": parent_job_id,
            "type": attrs.type,
            "integration": attrs.integration,
            "job_type": attrs.job_type,
            "description": attrs.description,
            "location": attrs.location,
            "current_run_id": current_run,
            "current_run_key": self.ctx.key if current_run else "",
            "created_at": now,
            "updated_at": now,
        }
        inserted = self._insert_ignore(t.jobs, [row], returning=[t.jobs.c.id])
        return job_id, bool(inserted)

    def touch_job(
        self, job_id: uuid.UUID, run_id: uuid.UUID | None, parent_job_id: uuid.UUID | None
    ) -> tuple[str, str | None]:
        """Un-hide the job, link its parent once, make this run its current one if this is its latest
        event. Returns (current_version_key, location)."""
        j = t.jobs.c
        values: dict[str, Any] = {
            "is_hidden": False,
            "updated_at": _later(self.ctx.time, j.updated_at),
            "parent_job_id": case((j.parent_job_id.is_(None), parent_job_id), else_=j.parent_job_id),
            "created_at": _earlier(self.ctx.time, j.created_at),
        }
        if run_id is not None:
            newer = j.current_run_key < self.ctx.key
            values["current_run_id"] = case((newer, run_id), else_=j.current_run_id)
            values["current_run_key"] = case((newer, self.ctx.key), else_=j.current_run_key)
        row = self.conn.execute(
            update(t.jobs).where(j.id == job_id).values(**values).returning(j.current_version_key, j.location)
        ).one()
        return row.current_version_key, row.location

    def set_columns(self, table: t.Table, row_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Set columns that mirror facets, touching (and locking) the row only if a value changes."""
        if values:
            changed = or_(*(table.c[name].is_distinct_from(value) for name, value in values.items()))
            self.conn.execute(update(table).where(table.c.id == row_id, changed).values(**values))

    def record_job_version(
        self,
        job_id: uuid.UUID,
        namespace: str,
        name: str,
        location: str | None,
        io: dict[str, list[tuple[str, str, uuid.UUID]]],
        run_id: uuid.UUID | None,
    ) -> uuid.UUID:
        """Upsert the job version named by this IO and location; link its datasets."""
        version_id = ids.job_version(
            namespace,
            name,
            [(ns, n) for ns, n, _ in io["INPUT"]],
            [(ns, n) for ns, n, _ in io["OUTPUT"]],
            location,
        )
        now = self.ctx.time
        stmt = upsert(self.conn, t.job_versions)
        ex, col = stmt.excluded, t.job_versions.c
        if run_id is None:
            stmt = stmt.on_conflict_do_nothing()
        else:
            newer = ex.latest_run_key > col.latest_run_key
            stmt = stmt.on_conflict_do_update(
                index_elements=[col.id],
                set_={
                    "latest_run_id": case((newer, ex.latest_run_id), else_=col.latest_run_id),
                    "latest_run_key": case((newer, ex.latest_run_key), else_=col.latest_run_key),
                    "updated_at": case((newer, ex.updated_at), else_=col.updated_at),
                    "created_at": _earlier(ex.created_at, col.created_at),
                },
                where=or_(newer, ex.created_at < col.created_at),
            )
        self.conn.execute(
            stmt,
            [
                {
                    "id": version_id,
                    "job_id": job_id,
                    "namespace_name": namespace,
                    "job_name": name,
                    "location": location,
                    "latest_run_id": run_id,
                    "latest_run_key": self.ctx.key if run_id else "",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        links = [
            {"job_version_id": version_id, "dataset_id": dataset_id, "io_type": io_type}
            for io_type, datasets in io.items()
            for _, _, dataset_id in datasets
        ]
        self._insert_ignore(t.job_version_io, _dedupe(links, "dataset_id", "io_type"))
        return version_id

    def make_job_version_current(self, job_id: uuid.UUID, version_id: uuid.UUID) -> bool:
        j = t.jobs.c
        result = self.conn.execute(
            update(t.jobs)
            .where(j.id == job_id, j.current_version_key < self.ctx.key)
            .values(current_version_id=version_id, current_version_key=self.ctx.key)
        )
        return result.rowcount > 0

    # --- lineage edges --------------------------------------------------------------------------------

    def upsert_edges(
        self, job_id: uuid.UUID, io: dict[str, Iterable[uuid.UUID]], *, current: bool, run_id: uuid.UUID | None
    ) -> None:
        now, key = self.ctx.time, self.ctx.key
        rows = _dedupe(
            (
                {
                    "job_id": job_id,
                    "dataset_id": dataset_id,
                    "io_type": io_type,
                    "is_current": current,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "last_seen_key": key,
                    "last_run_id": run_id,
                }
                for io_type, dataset_ids in io.items()
                for dataset_id in dataset_ids
            ),
            "dataset_id",
            "io_type",
        )
        if not rows:
            return
        stmt = upsert(self.conn, t.lineage_edges)
        ex, col = stmt.excluded, t.lineage_edges.c
        newer = ex.last_seen_key > col.last_seen_key
        stmt = stmt.on_conflict_do_update(
            index_elements=[col.job_id, col.dataset_id, col.io_type],
            set_={
                "is_current": or_(col.is_current, ex.is_current),
                "first_seen_at": _earlier(ex.first_seen_at, col.first_seen_at),
                "last_seen_at": _later(ex.last_seen_at, col.last_seen_at),
                "last_seen_key": case((newer, ex.last_seen_key), else_=col.last_seen_key),
                "last_run_id": case((newer, ex.last_run_id), else_=col.last_run_id),
            },
        )
        self.conn.execute(stmt, rows)

    def retire_edges(self, job_id: uuid.UUID, io_type: str, keep: Iterable[uuid.UUID]) -> None:
        """Edges in this direction that the job's new current version no longer has stop being current,
        unless a later event (a run still in progress) has seen them since."""
        e = t.lineage_edges.c
        self.conn.execute(
            update(t.lineage_edges)
            .where(
                e.job_id == job_id,
                e.io_type == io_type,
                e.is_current,
                e.last_seen_key <= self.ctx.key,
                e.dataset_id.not_in(sorted(set(keep), key=str)),
            )
            .values(is_current=False)
        )

    # --- runs -----------------------------------------------------------------------------------------

    def ensure_parent_run(self, run_id: uuid.UUID, external_id: str, job_id: uuid.UUID, namespace: str, name: str):
        now = self.ctx.time
        self._insert_ignore(
            t.runs,
            [
                {
                    "id": run_id,
                    "external_id": external_id,
                    "job_id": job_id,
                    "namespace_name": namespace,
                    "job_name": name,
                    "state": "NEW",
                    "state_rank": 0,
                    "state_key": "",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )

    def upsert_run(
        self,
        run_id: uuid.UUID,
        *,
        external_id: str,
        job_id: uuid.UUID,
        namespace: str,
        job_name: str,
        parent_run_id: uuid.UUID | None,
        state: tuple[str, int] | None,
        nominal: tuple[datetime, datetime | None] | None,
    ) -> None:
        """Insert or merge the run. The state is monotonic (see extract.RUN_STATES); started_at is the
        earliest START/RUNNING, ended_at the time of the winning terminal event."""
        now, key = self.ctx.time, self.ctx.key
        name, rank = state if state else ("NEW", 0)
        row = {
            "id": run_id,
            "external_id": external_id,
            "job_id": job_id,
            "namespace_name": namespace,
            "job_name": job_name,
            "parent_run_id": parent_run_id,
            "state": name,
            "state_rank": rank,
            "state_key": key if state else "",
            "transitioned_at": now if state else None,
            "started_at": now if rank == 1 else None,
            "ended_at": now if rank == 2 else None,
            "nominal_start_time": nominal[0] if nominal else None,
            "nominal_end_time": nominal[1] if nominal else None,
            "nominal_key": key if nominal else "",
            "created_at": now,
            "updated_at": now,
        }
        stmt = upsert(self.conn, t.runs)
        ex, r = stmt.excluded, t.runs.c
        wins = or_(ex.state_rank > r.state_rank, and_(ex.state_rank == r.state_rank, ex.state_key > r.state_key))
        nominal_wins = ex.nominal_key > r.nominal_key
        stmt = stmt.on_conflict_do_update(
            index_elements=[r.id],
            set_={
                "state": case((wins, ex.state), else_=r.state),
                "state_rank": case((wins, ex.state_rank), else_=r.state_rank),
                "state_key": case((wins, ex.state_key), else_=r.state_key),
                "transitioned_at": case((wins, ex.transitioned_at), else_=r.transitioned_at),
                "ended_at": case((and_(wins, ex.state_rank == 2), ex.ended_at), else_=r.ended_at),
                "started_at": _earlier(ex.started_at, r.started_at),
                "nominal_start_time": case((nominal_wins, ex.nominal_start_time), else_=r.nominal_start_time),
                "nominal_end_time": case((nominal_wins, ex.nominal_end_time), else_=r.nominal_end_time),
                "nominal_key": case((nominal_wins, ex.nominal_key), else_=r.nominal_key),
                "parent_run_id": case((r.parent_run_id.is_(None), ex.parent_run_id), else_=r.parent_run_id),
                "created_at": _earlier(ex.created_at, r.created_at),
                "updated_at": _later(ex.updated_at, r.updated_at),
            },
        )
        self.conn.execute(stmt, [row])

    def record_state(self, run_id: uuid.UUID, event_type: str, state: str | None) -> None:
        self.conn.execute(
            t.run_states.insert(),
            [
                {
                    "run_id": run_id,
                    "lineage_event_id": self.ctx.lineage_event_id,
                    "event_type": event_type,
                    "state": state,
                    "transitioned_at": self.ctx.time,
                }
            ],
        )

    def set_run_job_version(self, run_id: uuid.UUID, version_id: uuid.UUID) -> None:
        self.conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(job_version_id=version_id))

    def run_io(self, run_id: uuid.UUID) -> list:
        """What the run read and wrote so far: (dataset_id, io_type, version id, key, namespace, name, fields)."""
        io, d, v = t.run_io.c, t.datasets.c, t.dataset_versions.c
        return list(
            self.conn.execute(
                select(
                    io.dataset_id, io.io_type, io.dataset_version_id, io.event_key, d.namespace_name, d.name, v.fields
                )
                .join(t.datasets, d.id == io.dataset_id)
                .outerjoin(t.dataset_versions, v.id == io.dataset_version_id)
                .where(io.run_id == run_id)
            )
        )

    def upsert_run_io(self, rows: list[dict]) -> None:
        if not rows:
            return
        stmt = upsert(self.conn, t.run_io)
        ex, col = stmt.excluded, t.run_io.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[col.run_id, col.dataset_id, col.io_type],
            set_={"dataset_version_id": ex.dataset_version_id, "event_key": ex.event_key, "version_key": ex.version_key},
            where=ex.event_key > col.event_key,
        )
        self.conn.execute(stmt, _dedupe(rows, "dataset_id", "io_type"))

    # --- facets and column lineage --------------------------------------------------------------------

    def _facet_rows(self, entries: list[tuple[uuid.UUID, str, str, Any]], key: str) -> list[dict]:
        return _dedupe(
            (
                {
                    "entity_id": entity,
                    "name": name,
                    "kind": kind,
                    "facet": None if extract.is_deleted(value) else value,
                    "event_key": key,
                    "lineage_event_id": self.ctx.lineage_event_id,
                }
                for entity, kind, name, value in entries
                if isinstance(value, dict)
            ),
            "entity_id",
            "name",
        )

    def add_reader_facets(self, entries: list[tuple[uuid.UUID, str, str, Any]]) -> None:
        """Dataset facets sent by a *reader* of the dataset: kept only where nothing says otherwise yet
        (event key "", so any writer's facet wins). Readers of a busy table thus never lock its facets."""
        rows = [{**r, "lineage_event_id": None} for r in self._facet_rows(entries, "") if r["facet"] is not None]
        self._insert_ignore(t.facets, rows)

    def upsert_facets(self, entries: list[tuple[uuid.UUID, str, str, Any]]) -> list[tuple[uuid.UUID, str, Any]]:
        """(entity id, kind, facet name, facet) rows, later event wins. ``_deleted`` leaves a tombstone.
        Returns the (entity, name, facet) rows this event won, so derived columns can follow."""
        rows = self._facet_rows(entries, self.ctx.key)
        if not rows:
            return []
        stmt = upsert(self.conn, t.facets)
        ex, col = stmt.excluded, t.facets.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[col.entity_id, col.name],
            set_={
                "facet": ex.facet,
                "kind": ex.kind,
                "event_key": ex.event_key,
                "lineage_event_id": ex.lineage_event_id,
            },
            where=ex.event_key > col.event_key,
        ).returning(col.entity_id, col.name, col.facet)
        return [tuple(r) for r in self.conn.execute(stmt, rows)]

    def upsert_column_lineage(self, rows: list[dict]) -> None:
        if not rows:
            return
        stmt = upsert(self.conn, t.column_lineage)
        ex, col = stmt.excluded, t.column_lineage.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[col.output_version_id, col.output_field, col.input_dataset_id, col.input_field],
            set_={
                name: getattr(ex, name)
                for name in (
                    "transformation_description",
                    "transformation_type",
                    "transformation_subtype",
                    "transformations",
                    "updated_at",
                )
            },
        )
        self.conn.execute(
            stmt, _dedupe(rows, "output_version_id", "output_field", "input_dataset_id", "input_field")
        )


def _dataset_attributes(facets: dict[str, Any]) -> dict[str, Any]:
    """Dataset columns that follow its facets (documentation, lifecycleStateChange, dataSource)."""
    documentation = extract.facet(facets, "documentation") or {}
    lifecycle = extract.lifecycle_state(facets)
    source = extract.source_of(facets)
    attrs: dict[str, Any] = {
        "description": documentation.get("description") if isinstance(documentation.get("description"), str) else None,
        "last_lifecycle_state": lifecycle,
        "is_deleted": lifecycle == "DROP",
    }
    if source:
        attrs["source_id"] = ids.source_id(source[0])
        attrs["source_name"] = source[0]
    return attrs


def dataset_columns_for(name: str, value: dict | None) -> dict[str, Any]:
    """Columns to set on a dataset when facet ``name`` takes ``value`` (None: the facet was deleted)."""
    value = value or {}
    if name == "documentation":
        return {"description": value.get("description") if isinstance(value.get("description"), str) else None}
    if name == "lifecycleStateChange":
        state = extract.lifecycle_state({name: value}) if value else None
        return {"last_lifecycle_state": state, "is_deleted": state == "DROP"}
    if name == "dataSource" and value:
        source = extract.source_of({name: value})
        if source:
            return {"source_id": ids.source_id(source[0]), "source_name": source[0]}
    return {}


def job_columns_for(name: str, value: dict | None) -> dict[str, Any]:
    """Columns to set on a job when facet ``name`` takes ``value`` (None: the facet was deleted)."""
    attrs = extract.job_attributes({name: value} if value else {})
    if name == "documentation":
        return {"description": attrs.description}
    if name == "sourceCodeLocation":
        return {"location": attrs.location}
    if name == "jobType":
        return {"type": attrs.type, "integration": attrs.integration, "job_type": attrs.job_type}
    return {}
