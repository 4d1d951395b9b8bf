"""Table-level writes of one event, inside the caller's transaction.

Rules that keep concurrent writers (threads, processes) correct and fast:
* rows shared between events (namespaces, sources, datasets, jobs) are inserted with ``ON CONFLICT DO
  NOTHING`` — which takes no row lock when the row exists — and updated only when something changed;
* every multi-row statement is deduplicated on its key and sorted, so two transactions lock rows of a
  table in the same order;
* a value that can arrive out of order is replaced only by a value from an event with a greater event key.
"""

from __future__ import annotations

import operator
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, exists, or_, select, update

from app.db import tables as t
from app.db.dialect import execute_rows, in_param_value, in_values
from app.services import identifiers as ids
from app.services.ingest import extract
from app.services.ingest.statements import READER_KEY_PREFIX, ids_value, statements_for
from app.settings import DEFAULT_INCIDENT_MAX_EVENT_AGE, QualityRule


@dataclass(frozen=True)
class EventContext:
    lineage_event_id: int
    key: str  # sorts like the event time; ties broken by the event hash
    time: datetime
    # Bounds on dataQualityMetrics (settings): a value outside one raises a data-quality incident.
    quality_rules: tuple[QualityRule, ...] = ()
    # False when rebuilding the model from stored events (`headwater reindex`): incidents are not part of the
    # model, and replaying history must not raise or notify them again.
    detect_incidents: bool = True
    # When Headwater received the event: with `time`, whether it is news or history (app/services/incidents/news.py).
    received_at: datetime | None = None
    incident_max_event_age: timedelta = DEFAULT_INCIDENT_MAX_EVENT_AGE
    # What the earlier events of this transaction established (the applier's batch); None: nothing known.
    memo: BatchMemo | None = None
    # The event's dataset names (apply.dataset_names) when the caller listed them already; None: list them.
    dataset_names: list[tuple[str, str]] | None = None


# A reader-facet bound (BatchMemo.reader_bounds) below every reader's key ("!…"): no reader can win.
WRITER_FACET = ""

LineageInputs = tuple[tuple[str, str], ...]  # the (namespace, name) a columnLineage facet reads from, sorted


class ColumnLineageIds:
    """The column lineage a ``columnLineage`` facet gave a dataset's version, by (dataset id, facet hash), with the
    datasets its inputs resolved to then: a version publishing the same facet again (every run of a job) is
    pointed at that lineage without the facet being read back and parsed. Valid only while its inputs resolve
    to the same datasets (a symlink added since changes that; checked on use). One per applier; bounded, the
    oldest forgotten."""

    def __init__(self, capacity: int = 20_000):
        self.capacity = capacity
        self._known: OrderedDict[tuple[uuid.UUID, str], tuple[LineageInputs, tuple, uuid.UUID | None]] = OrderedDict()

    def get(self, dataset_id: uuid.UUID, facet_hash: str) -> tuple[LineageInputs, tuple, uuid.UUID | None] | None:
        return self._known.get((dataset_id, facet_hash))

    def put(
        self,
        dataset_id: uuid.UUID,
        facet_hash: str,
        inputs: LineageInputs,
        resolution: tuple,
        lineage_id: uuid.UUID | None,
    ) -> None:
        self._known[(dataset_id, facet_hash)] = (inputs, resolution, lineage_id)
        self._known.move_to_end((dataset_id, facet_hash))
        if len(self._known) > self.capacity:
            self._known.popitem(last=False)


@dataclass
class BatchMemo:
    """What the events applied so far in one transaction (an applier batch) have written, so the next ones
    need not write or read it again: each shortcut skips a statement whose outcome is already known. Valid
    for that transaction only (the applier lock makes it the only one applying events)."""

    # (namespace, name) → the primary (namespace, name, id), through symlinks; cleared when a symlink is added.
    resolved: dict[tuple[str, str], tuple[str, str, uuid.UUID]] = field(default_factory=dict)
    # Namespace name / dataset id → the earliest event time it was ensured (inserted or revived) for.
    namespaces: dict[str, datetime] = field(default_factory=dict)
    datasets: dict[uuid.UUID, datetime] = field(default_factory=dict)
    # A run's dataset version id → the earliest creation time it was inserted with (a run's later events name
    # the version its earlier ones made); forgotten when its row is deleted or its creation time set.
    run_versions: dict[uuid.UUID, datetime] = field(default_factory=dict)
    sources: dict[str, datetime] = field(default_factory=dict)  # source name → _ALWAYS
    jobs: set[uuid.UUID] = field(default_factory=set)
    # (table name, row id) → values of the columns that mirror facets, as this transaction last wrote them.
    columns: dict[tuple[str, uuid.UUID], dict[str, Any]] = field(default_factory=dict)
    # Datasets this transaction holds an exclusive row lock on.
    locked_datasets: set[uuid.UUID] = field(default_factory=set)
    # Run state history rows, written at the end of the batch in one statement (nothing reads them meanwhile).
    run_states: list[dict[str, Any]] = field(default_factory=list)
    # While events run side by side (app/db/lockstep.py), a row one of them ensures is known to the others only
    # once the step that wrote it is over (``settle``): until then each writes it too, merged one after the other.
    deferred: bool = False
    _pending: list[tuple[dict, Any, datetime]] = field(default_factory=list)
    # Datasets whose unread placeholder versions go at the end of the wave (ModelWriter.drop_unread_placeholders).
    unread_placeholders: set[uuid.UUID] = field(default_factory=set)
    # (dataset id, facet name) a reader's facet won while events ran side by side: the columns mirroring them
    # follow the stored facet at the end of the wave (ModelWriter.add_reader_facets).
    reader_wins: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    # The applier's, across its batches (unlike everything above); None: every facet is read and parsed.
    lineage_ids: ColumnLineageIds | None = None
    # (dataset id, facet name) → a key at or above which no reader's facet can replace the stored one: a
    # writer's facet is stored (``WRITER_FACET``: a reader's never replaces a writer's), or a reader's with this
    # key or an earlier one (between readers the earliest wins). A reader of a table that an earlier event of
    # the batch wrote or read need not encode and send facets that cannot win (``reader_cannot_win``).
    reader_bounds: dict[tuple[uuid.UUID, str], str] = field(default_factory=dict)
    # (entity id, facet name) → the latest key among the batch's events that write that facet as writers
    # (apply.facets_nothing_reads): an earlier event's row for it would be replaced before anything reads it,
    # so it is not written at all (``upsert_facets``).
    latest_facet_writes: dict[tuple[uuid.UUID, str], str] = field(default_factory=dict)

    def reader_cannot_win(self, dataset_id: uuid.UUID, name: str, reader_key: str) -> bool:
        bound = self.reader_bounds.get((dataset_id, name))
        return bound is not None and reader_key >= bound

    def learn_reader_bound(self, dataset_id: uuid.UUID, name: str, bound: str) -> None:
        known = self.reader_bounds.get((dataset_id, name))
        self.reader_bounds[(dataset_id, name)] = bound if known is None else min(known, bound)

    def resolve_ahead(self, connection: Connection, names: Iterable[tuple[str, str]]) -> None:
        """Resolve every dataset name the batch's events will ask for in one statement, before the first."""
        self.resolved.update(_resolve(connection, set(names) - self.resolved.keys()))

    def flush(self, connection: Connection) -> None:
        if self.run_states:
            execute_rows(connection, statements_for(connection.dialect.name).insert_run_state, self.run_states)
            self.run_states = []

    def ensured(self, known: dict, key: Any, time: datetime) -> bool:
        """Whether ``key`` was ensured for an event no later than ``time`` (so inserting or reviving it for
        this event would change nothing); records that it now is."""
        earliest = known.get(key)
        if earliest is not None and earliest <= time:
            return True
        if self.deferred:
            self._pending.append((known, key, time))
        else:
            known[key] = time
        return False

    def end_wave(self, connection: Connection) -> None:
        """Events ran side by side (``deferred``) and are done: what they left for the end happens now."""
        self.settle()
        self.deferred = False
        dropped, self.unread_placeholders = self.unread_placeholders, set()
        described, self.reader_wins = self.reader_wins, set()
        if dropped or described:
            # Only the batch's memo, locks and statements are used: no event's key or time.
            writer = ModelWriter(connection, EventContext(0, "", datetime.now(UTC), memo=self))
            writer.drop_unread_placeholders(dropped)
            writer.follow_reader_facets(described)

    def settle(self) -> None:
        """The rows ensured during a step of events run side by side are now written: the next steps know."""
        for known, key, time in self._pending:
            if key not in known or time < known[key]:
                known[key] = time
        self._pending.clear()


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


def event_key(event_time: datetime, digest: str) -> str:
    """Sorts like the event time (UTC, µs, fixed width); the hash breaks ties the same way everywhere."""
    return f"{event_time.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}|{digest}"


def _resolve(connection: Connection, names: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str, uuid.UUID]]:
    wanted = sorted(names)
    resolved = {pair: (pair[0], pair[1], ids.dataset_id(*pair)) for pair in wanted}
    if wanted:
        sql = statements_for(connection.dialect.name).resolve_symlinks
        alias = t.dataset_symlinks.c
        params = {
            "p_namespaces": in_param_value(connection, alias.namespace_name, sorted({ns for ns, _ in wanted})),
            "p_names": in_param_value(connection, alias.name, sorted({name for _, name in wanted})),
        }
        for alias_ns, alias_name, ns, name, dataset_id in connection.execute(sql, params):
            if (alias_ns, alias_name) in resolved:
                resolved[(alias_ns, alias_name)] = (ns, name, dataset_id)
    return resolved


_lineage_content = operator.itemgetter(
    "output_field",
    "input_dataset_id",
    "input_field",
    "transformation_description",
    "transformation_type",
    "transformation_subtype",
    "transformations",
)


def _dedupe(rows: Iterable[dict], *key: str) -> list[dict]:
    """Last row wins per key; sorted by key so concurrent transactions lock in the same order. The key columns
    are ids and names, never null; a UUID sorts as its text does (both by its number)."""
    key_of = operator.itemgetter(*key)
    by_key = {key_of(row): row for row in rows}
    return [by_key[k] for k in sorted(by_key)]


class ModelWriter:
    def __init__(self, connection: Connection, ctx: EventContext):
        self.conn = connection
        self.ctx = ctx
        self.sql = statements_for(connection.dialect.name)
        # run id → (id, state, state_key, ended_at, job_version_id, inserted)
        self._upserted_runs: dict[uuid.UUID, Any] = {}
        self._locked_datasets: set[uuid.UUID] = set()

    def _insert_ignore(self, table: t.Table, rows: list[dict], returning_id: bool = False) -> list:
        if not rows:
            return []
        stmt = self.sql.insert_ignore(table, returning_id)
        if returning_id:
            return list(execute_rows(self.conn, stmt, rows))
        execute_rows(self.conn, stmt, rows)
        return []

    def _revive(self, stmt, row_ids: list[uuid.UUID]) -> None:
        """For rows that already existed: a soft-deleted one comes back when an event names it (as in
        Marquez), and an event older than the row's first one moves created_at back, so the result does not
        depend on arrival order. Matches (and locks) no row in the common case."""
        if row_ids:
            self.conn.execute(stmt, {"p_ids": ids_value(self.conn, row_ids), "p_now": self.ctx.time})

    # --- namespaces and sources -----------------------------------------------------------------------

    def _not_ensured(self, keys: Iterable[Any], known: dict | None) -> list:
        """The keys an earlier event of this batch did not already ensure for this event's time."""
        keys = set(keys)
        if known is None:
            return list(keys)
        return [k for k in keys if not self.ctx.memo.ensured(known, k, self.ctx.time)]

    def ensure_namespaces(self, names: Iterable[str]) -> None:
        now = self.ctx.time
        names = self._not_ensured(names, self.ctx.memo.namespaces if self.ctx.memo else None)
        rows = _dedupe(
            ({"id": ids.namespace_id(n), "name": n, "created_at": now, "updated_at": now} for n in names),
            "id",
        )
        self._insert_ignore(t.namespaces, rows)
        self._revive(self.sql.revive_namespaces, [r["id"] for r in rows])

    def ensure_sources(self, sources: Iterable[tuple[str, str]]) -> None:
        now = self.ctx.time
        memo = self.ctx.memo
        if memo is not None:
            sources = [(name, uri) for name, uri in sources if not memo.ensured(memo.sources, name, _ALWAYS)]
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
        known = self.ctx.memo.resolved if self.ctx.memo is not None else {}
        names = set(names)
        resolved = _resolve(self.conn, names - known.keys())
        if self.ctx.memo is not None:
            known.update(resolved)
        return {**{pair: known[pair] for pair in names if pair in known}, **resolved}

    def ensure_datasets(self, refs: Iterable[DatasetRef]) -> set[uuid.UUID]:
        """Insert missing datasets; un-hide soft-deleted ones. Returns the ids that were new."""
        now = self.ctx.time
        refs = list(refs)
        memo = self.ctx.memo
        if memo is not None:
            todo = set(self._not_ensured((r.id for r in refs), memo.datasets))
            refs = [r for r in refs if r.id in todo]
        # One event may name a dataset twice (read and written, or only in column lineage): a new row is
        # described by the facets the facet rows will hold, the later (writer's) winning per name.
        merged: dict[uuid.UUID, dict[str, Any]] = {}
        for ref in refs:
            merged.setdefault(ref.id, {}).update(ref.facets)
        rows = []
        for ref in refs:
            attrs = _dataset_attributes(merged[ref.id])
            rows.append(
                {
                    "id": ref.id,
                    "namespace_id": ids.namespace_id(ref.namespace),
                    "namespace_name": ref.namespace,
                    "name": ref.name,
                    "physical_name": ref.name,
                    "type": "DB_TABLE",
                    "source_id": attrs.get("source_id", ids.source_id("default")),
                    "source_name": attrs.get("source_name", "default"),
                    **{k: v for k, v in attrs.items() if k not in ("source_id", "source_name")},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        rows = _dedupe(rows, "id")
        inserted = {r.id for r in self._insert_ignore(t.datasets, rows, returning_id=True)}
        self._revive(self.sql.revive_datasets, [r["id"] for r in rows if r["id"] not in inserted])
        if memo is not None:
            for row in rows:
                if row["id"] in inserted:
                    memo.columns[("datasets", row["id"])] = {k: row[k] for k in _DATASET_MIRRORS}
        return inserted

    def add_symlinks(self, ref: DatasetRef) -> None:
        rows = [
            {"namespace_name": ns, "name": name, "dataset_id": ref.id, "type": kind, "created_at": self.ctx.time}
            for ns, name, kind in extract.symlinks(ref.facets)
            if (ns, name) != (ref.namespace, ref.name)
        ]
        self._insert_ignore(t.dataset_symlinks, _dedupe(rows, "namespace_name", "name"))
        if rows and self.ctx.memo is not None:
            self.ctx.memo.resolved.clear()  # a name may now stand for another dataset

    def current_versions(self, dataset_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID | None, str]]:
        """dataset id → (current version id, key of the event that made it current).

        Takes a share lock on the datasets (Postgres): a concurrent COMPLETE publishing one of them waits for
        this read to commit, then re-points it if needed; or this read waits and sees the new version."""
        wanted = sorted(set(dataset_ids), key=str)
        if not wanted:
            return {}
        rows = self.conn.execute(self.sql.current_versions, {"p_ids": ids_value(self.conn, wanted)})
        return {dataset_id: (version, key) for dataset_id, version, key in rows}

    def version_as_of(self, dataset_id: uuid.UUID, key: str) -> tuple[uuid.UUID, str] | None:
        """The version of a dataset that was published last before ``key`` (what a read at that time saw)."""
        row = self.conn.execute(self.sql.version_as_of, {"p_dataset": dataset_id, "p_key": key}).first()
        return (row.id, row.published_key) if row else None

    def _forget_run_version(self, version_id: uuid.UUID) -> None:
        if self.ctx.memo is not None:
            self.ctx.memo.run_versions.pop(version_id, None)

    def version_by_external(self, dataset_id: uuid.UUID, external: str) -> uuid.UUID | None:
        params = {"p_dataset": dataset_id, "p_external": external}
        return self.conn.execute(self.sql.version_by_external, params).scalar()

    def insert_versions(self, rows: list[dict]) -> None:
        """Insert versions; a version seen again from an earlier event gets that earlier creation time."""
        memo = self.ctx.memo
        if memo is not None:
            rows = [
                r for r in rows if r["run_id"] is None or not memo.ensured(memo.run_versions, r["id"], r["created_at"])
            ]
        if rows:
            execute_rows(self.conn, self.sql.insert_versions, _dedupe(rows, "id"))

    def adopt_first_version(self, dataset_id: uuid.UUID, version_id: uuid.UUID) -> None:
        """A dataset first seen as an input gets the version it was read at as its current one."""
        self.conn.execute(self.sql.adopt_first_version, {"p_dataset": dataset_id, "p_version": version_id})

    def backdate_version(self, version_id: uuid.UUID) -> None:
        """An earlier event saw this version: move its creation time back (locks nothing otherwise)."""
        self.conn.execute(self.sql.backdate_version, {"p_version": version_id, "p_now": self.ctx.time})

    def lock_datasets(self, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Exclusive row locks on datasets this transaction will publish (Postgres; SQLite locks the file). A
        row lock lasts until the transaction ends, so a dataset locked once (by this event or an earlier one of
        the batch) is not locked again."""
        locked = self.ctx.memo.locked_datasets if self.ctx.memo is not None else self._locked_datasets
        wanted = sorted(set(dataset_ids) - locked, key=str)
        if wanted:
            self.conn.execute(self.sql.lock_datasets, {"p_ids": ids_value(self.conn, wanted)}).all()
            locked.update(wanted)

    def publish_versions(self, versions: dict[uuid.UUID, uuid.UUID]) -> None:
        """A COMPLETE (or a DatasetEvent) publishes what it wrote: dataset id → version id.

        * the version records the publishing event's key;
        * reads of the dataset made after this event that point at an older version (they arrived before
          it) now point at this one;
        * the version becomes the dataset's current one unless a later event already moved it;
        * placeholder versions (data read before any writer was seen) that nothing reads any more go.
        """
        if not versions:
            return
        key, now = self.ctx.key, self.ctx.time
        # Exclusive lock first (see current_versions): no read of these datasets is in flight unseen.
        # Usually held already (apply locks an event's outputs early); a run's outputs from its earlier
        # events are locked here.
        self.lock_datasets(versions)
        for dataset_id, version_id in sorted(versions.items(), key=lambda kv: str(kv[0])):
            params = {"p_dataset": dataset_id, "p_version": version_id, "p_key": key, "p_now": now}
            self.conn.execute(self.sql.publish_version, params)
            repointed = self.conn.execute(self.sql.repoint_reads, params).rowcount
            self.conn.execute(self.sql.make_version_current, params)
            if repointed:
                self._settle_placeholders(dataset_id)
        self.derive_from_published(list(versions.values()))

    def drop_unread_placeholders(self, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Placeholder versions of these datasets that no read and no dataset points at any more go, the
        others date from the reads left (_settle_placeholders). Under an exclusive lock on the datasets, as
        when a publish drops them: a concurrent reader of the dataset (share lock) cannot point a read at a
        placeholder this deletes. Rare: only reads moving off a placeholder get here."""
        memo = self.ctx.memo
        if memo is not None and memo.deferred:
            # Events run side by side: another reader of the dataset may be about to point a read at one, so
            # they go once the wave is over (BatchMemo.end_wave), as they would after that reader.
            memo.unread_placeholders.update(dataset_ids)
            return
        wanted = sorted(set(dataset_ids), key=str)
        if not wanted:
            return
        self.lock_datasets(wanted)
        for dataset_id in wanted:
            self._settle_placeholders(dataset_id)

    def _settle_placeholders(self, dataset_id: uuid.UUID) -> None:
        """After reads moved off a dataset's placeholder versions: the unread ones go, the others date from
        the reads left (a placeholder's date does not depend on reads the model no longer holds)."""
        params = {"p_dataset": dataset_id}
        self.conn.execute(self.sql.delete_unread_placeholders, params)
        self.conn.execute(self.sql.date_placeholders, params)

    def derive_from_published(self, version_ids: list[uuid.UUID]) -> None:
        """What a published version tells about its dataset, computed from the version itself so it is the
        same whatever order the run's events came in: its merged `columnLineage` facet becomes the version's
        column lineage. (A dataset's fields are its current version's schema, read from the version itself.)"""
        published = list(self.conn.execute(self.sql.published_versions, {"p_ids": ids_value(self.conn, version_ids)}))
        if not published:
            return
        published.sort(key=operator.attrgetter("id"))
        remembered = self.ctx.memo.lineage_ids if self.ctx.memo is not None else None
        hashes: dict[uuid.UUID, str | None] = {}
        if remembered is not None:
            params = {"p_ids": ids_value(self.conn, [v.id for v in published])}
            hashes = dict(self.conn.execute(self.sql.column_lineage_facet_hashes, params).all())
            published = [v for v in published if not self._point_at_remembered_lineage(v, hashes, remembered)]
            if not published:
                return
        lineage = dict(
            self.conn.execute(
                self.sql.column_lineage_facets, {"p_ids": ids_value(self.conn, [v.id for v in published])}
            ).all()
        )
        edges = {v.id: extract.column_lineage({"columnLineage": lineage[v.id]}) for v in published if v.id in lineage}
        resolved = self.resolve((e.input_namespace, e.input_name) for es in edges.values() for e in es)
        for v in published:
            rows = _dedupe(
                (
                    {
                        "output_field": e.output_field,
                        "input_dataset_id": resolved[(e.input_namespace, e.input_name)][2],
                        "input_field": e.input_field,
                        "output_dataset_id": v.dataset_id,
                        "transformation_description": e.description,
                        "transformation_type": e.type,
                        "transformation_subtype": e.subtype,
                        "transformations": e.transformations,
                    }
                    for e in edges.get(v.id, [])
                ),
                "output_field",
                "input_dataset_id",
                "input_field",
            )
            lineage_id = self.set_column_lineage(v.id, v.column_lineage_id, rows)
            if remembered is not None and hashes.get(v.id) is not None:
                inputs = tuple(sorted({(e.input_namespace, e.input_name) for e in edges.get(v.id, [])}))
                resolution = tuple(resolved[pair][2] for pair in inputs)
                remembered.put(v.dataset_id, hashes[v.id], inputs, resolution, lineage_id)

    def _point_at_remembered_lineage(
        self, version: Any, hashes: dict[uuid.UUID, str | None], remembered: ColumnLineageIds
    ) -> bool:
        """Point a published version at the column lineage its facet gave the dataset before (``ColumnLineageIds``);
        False when that is not known (its facet must be read and parsed): a facet not seen, or stored before
        facets had hashes, or inputs that resolve to other datasets now, or lineage rows no version has any more."""
        if version.id not in hashes:  # no columnLineage facet: no column lineage
            self.set_column_lineage(version.id, version.column_lineage_id, [])
            return True
        facet_hash = hashes[version.id]
        known = remembered.get(version.dataset_id, facet_hash) if facet_hash is not None else None
        if known is None:
            return False
        inputs, resolution, lineage_id = known
        resolved = self.resolve(inputs)
        if tuple(resolved[pair][2] for pair in inputs) != resolution:
            return False
        # Its rows may have gone with the last version that had them: then they are written again from the facet.
        return self._point_at_lineage(version.id, version.column_lineage_id, lineage_id, None)

    def set_column_lineage(self, version_id: uuid.UUID, old: uuid.UUID | None, rows: list[dict]) -> uuid.UUID | None:
        """Point a version at the column lineage ``rows`` describe (returns its id)."""
        new = ids.column_lineage_id(rows[0]["output_dataset_id"], (_lineage_content(r) for r in rows)) if rows else None
        self._point_at_lineage(version_id, old, new, rows)
        return new

    def _point_at_lineage(
        self, version_id: uuid.UUID, old: uuid.UUID | None, new: uuid.UUID | None, rows: list[dict] | None
    ) -> bool:
        """Point a version at the column lineage ``new`` instead of ``old``. Lineage is stored once per distinct
        content (``identifiers.column_lineage_id``): its ``rows`` are written only when no other version has
        them, and a set no version points at any more goes. False when the rows are needed and not given
        (``rows`` None): the version points at ``new`` then, ``old`` still stands, and the caller sets the lineage
        again with its rows."""
        if new == old:
            return True
        shared = self.conn.execute(self.sql.point_version_at_lineage, {"p_version": version_id, "p_lineage": new})
        if new is not None and not shared.scalar():
            if rows is None:
                return False
            self._insert_ignore(t.column_lineage, [{"lineage_id": new, **r} for r in rows])
        if old is not None:
            self.conn.execute(self.sql.delete_unused_lineage, {"p_lineage": old})
        return True

    def drop_superseded_version(self, old: uuid.UUID, new: uuid.UUID, run_id: uuid.UUID) -> None:
        """A run replaced the version it wrote earlier (e.g. a START without schema, then a COMPLETE with
        one): delete the old version unless something refers to it, moving over its facets where the new
        version lacks them or has them from an earlier event, so the outcome does not depend on the order
        events arrived in."""
        v, io, d, f = t.dataset_versions.c, t.run_io.c, t.datasets.c, t.facets.c
        self._forget_run_version(old)
        referenced = or_(
            exists().where(io.dataset_version_id == old),
            exists().where(d.current_version_id == old),
        )
        dropped = self.conn.execute(
            delete(t.dataset_versions)
            .where(v.id == old, v.run_id == run_id, ~referenced)
            .returning(v.column_lineage_id)
        ).first()
        if dropped is None:
            return
        # Aliases: a subquery on the table being updated must not correlate with it.
        f_old = t.facets.alias("f_old")
        later_on_old = exists().where(f_old.c.entity_id == old, f_old.c.name == f.name, f_old.c.event_key > f.event_key)
        # Per facet the later event wins, as if it had been sent for the new version.
        self.conn.execute(delete(t.facets).where(f.entity_id == new, later_on_old))
        f_new = t.facets.alias("f_new")
        on_new = select(f_new.c.name).where(f_new.c.entity_id == new)
        move = update(t.facets).where(f.entity_id == old, f.name.not_in(on_new)).values(entity_id=new)
        moved = set(self.conn.execute(move.returning(f.name)).scalars())
        self.conn.execute(delete(t.facets).where(f.entity_id == old))
        if dropped.column_lineage_id is not None:
            self.conn.execute(self.sql.delete_unused_lineage, {"p_lineage": dropped.column_lineage_id})
        if "columnLineage" in moved:
            # The new version was published (and its lineage derived) before this: its merged facets changed.
            self.derive_from_published([new])

    # --- jobs -----------------------------------------------------------------------------------------

    def _job_row(
        self,
        namespace: str,
        name: str,
        simple_name: str,
        attrs: extract.JobAttributes | None,
        parent_job_id: uuid.UUID | None,
        current_run: uuid.UUID | None,
    ) -> dict[str, Any]:
        now = self.ctx.time
        attrs = attrs or extract.JobAttributes("BATCH", None, None, None, None)
        return {
            "id": ids.job_id(namespace, name),
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

    def upsert_job(
        self,
        namespace: str,
        name: str,
        *,
        simple_name: str,
        attrs: extract.JobAttributes,
        parent_job_id: uuid.UUID | None,
        current_run: uuid.UUID,
    ) -> tuple[uuid.UUID, str]:
        """A run event's job, inserted or touched (``touch_job``) in one statement, merged with the other events'
        when events run side by side. Returns (id, current_version_key)."""
        row = self._job_row(namespace, name, simple_name, attrs, parent_job_id, current_run)
        ((job_id, current_version_key),) = execute_rows(self.conn, self.sql.upsert_job_with_run, [row])
        if self.ctx.memo is not None:
            self.ctx.memo.jobs.add(job_id)
        return job_id, current_version_key

    def ensure_job(
        self,
        namespace: str,
        name: str,
        *,
        simple_name: str,
        attrs: extract.JobAttributes | None,
    ) -> tuple[uuid.UUID, bool]:
        """Insert the job if missing (a parent job, a JobEvent's job). Returns (id, whether it was new)."""
        row = self._job_row(namespace, name, simple_name, attrs, None, None)
        job_id = row["id"]
        memo = self.ctx.memo
        if memo is not None and job_id in memo.jobs:
            return job_id, False
        inserted = self._insert_ignore(t.jobs, [row], returning_id=True)
        if memo is not None:
            memo.jobs.add(job_id)
            if inserted:
                memo.columns[("jobs", job_id)] = {k: row[k] for k in _JOB_MIRRORS}
        return job_id, bool(inserted)

    def touch_job(self, job_id: uuid.UUID, parent_job_id: uuid.UUID | None) -> None:
        """Un-hide the job and link its parent once (a JobEvent; a run event's job is ``upsert_job``)."""
        self.conn.execute(self.sql.touch_job, {"p_job": job_id, "p_now": self.ctx.time, "p_parent": parent_job_id})

    def set_columns(self, table: t.Table, row_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Set columns that mirror facets, touching (and locking) the row only if a value changes."""
        known = self.ctx.memo.columns.setdefault((table.name, row_id), {}) if self.ctx.memo is not None else {}
        values = {n: v for n, v in values.items() if n not in known or known[n] != v}
        if values:
            names = tuple(sorted(values))
            params = {"p_id": row_id, **{f"p_{n}": values[n] for n in names}}
            self.conn.execute(self.sql.set_columns(table, names), params)
            known.update(values)

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
        stmt = self.sql.upsert_job_version_for_run if run_id else self.sql.insert_ignore(t.job_versions)
        execute_rows(
            self.conn,
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

    def finished_run(self, run_id: uuid.UUID):
        """(state, state_key, ended_at, job_version_id) of a run in a terminal state, else None. Read after
        the run's row was upserted (and so locked) by this transaction: a concurrent terminal event is seen."""
        row = self._upserted_runs.get(run_id)
        if row is None:
            row = self.conn.execute(self.sql.finished_run, {"p_run": run_id}).one_or_none()
        return row if row is not None and row.state in extract.TERMINAL_STATES else None

    def replace_job_version(self, job_id: uuid.UUID, run_id: uuid.UUID, old: uuid.UUID, new: uuid.UUID) -> None:
        """A run finished with version ``old`` now finishes with ``new`` (more of its IO arrived): the job
        points at ``new`` where it pointed at ``old`` for this event, and ``old`` goes if no run has it."""
        params = {"p_job": job_id, "p_old": old, "p_new": new, "p_key": self.ctx.key}
        self.conn.execute(self.sql.replace_current_job_version, params)
        self.conn.execute(self.sql.delete_unused_job_version, params)
        self.conn.execute(self.sql.refresh_job_version_latest_run, {**params, "p_run": run_id})
        self.conn.execute(self.sql.refresh_job_version_created_at, {**params, "p_now": self.ctx.time})

    def release_job_version(self, run_id: uuid.UUID, old: uuid.UUID) -> None:
        """The run no longer has version ``old``: it goes if no run has it and it is not its job's current
        version; otherwise its latest run is the latest of the runs that still have it."""
        params = {"p_old": old, "p_run": run_id}
        if self.conn.execute(self.sql.delete_unused_job_version, params).rowcount == 0:
            self.conn.execute(self.sql.refresh_job_version_latest_run, params)

    def is_current_job_version(self, job_id: uuid.UUID, version_id: uuid.UUID) -> bool:
        j = t.jobs.c
        stmt = select(j.id).where(
            j.id == job_id, j.current_version_id == version_id, j.current_version_key == self.ctx.key
        )
        return self.conn.execute(stmt).first() is not None

    def make_job_version_current(self, job_id: uuid.UUID, version_id: uuid.UUID) -> bool:
        params = {"p_job": job_id, "p_version": version_id, "p_key": self.ctx.key}
        return self.conn.execute(self.sql.make_job_version_current, params).rowcount > 0

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
        if rows:
            execute_rows(self.conn, self.sql.upsert_edges, rows)

    def retired_by_later_completion(self, job_id: uuid.UUID, io_type: str, dataset_id: uuid.UUID) -> bool:
        params = {"p_job": job_id, "p_io": io_type, "p_dataset": dataset_id, "p_key": self.ctx.key}
        return bool(self.conn.execute(self.sql.retired_by_later_completion, params).scalar())

    def retire_edges(self, job_id: uuid.UUID, io_type: str, keep: Iterable[uuid.UUID]) -> None:
        """Edges in this direction that the job's new current version no longer has stop being current,
        unless a later event (a run still in progress) has seen them since."""
        params = {"p_job": job_id, "p_io": io_type, "p_key": self.ctx.key, "p_keep": ids_value(self.conn, set(keep))}
        self.conn.execute(self.sql.retire_edges, params)

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
        location: tuple[str | None] | None,
    ) -> Any:
        """Insert or merge the run. The state is monotonic (see extract.RUN_STATES); started_at is the
        earliest START/RUNNING, ended_at the time of the winning terminal event; the location the latest one
        sent (``location``: (url,) when this event sends a sourceCodeLocation facet, its url None for a deleted
        one). Returns the row as this event leaves it (RETURNING of ``IngestStatements.upsert_run``)."""
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
            "location": location[0] if location else None,
            "location_key": key if location else "",
            "created_at": now,
            "updated_at": now,
        }
        # The row as this event leaves it; nothing else this event does changes these columns before it asks.
        (self._upserted_runs[run_id],) = execute_rows(self.conn, self.sql.upsert_run, [row])
        return self._upserted_runs[run_id]

    def record_state(self, run_id: uuid.UUID, event_type: str, state: str | None) -> None:
        row = {
            "run_id": run_id,
            "lineage_event_id": self.ctx.lineage_event_id,
            "event_type": event_type,
            "state": state,
            "transitioned_at": self.ctx.time,
        }
        if self.ctx.memo is not None:
            self.ctx.memo.run_states.append(row)
        else:
            self.conn.execute(self.sql.insert_run_state, [row])

    def set_run_job_version(self, run_id: uuid.UUID, version_id: uuid.UUID) -> None:
        self._upserted_runs.pop(run_id, None)
        self.conn.execute(self.sql.set_run_job_version, {"p_run": run_id, "p_version": version_id})

    def run_io(self, run_id: uuid.UUID) -> list:
        """What the run read and wrote so far: (dataset_id, io_type, version id, key, namespace, name, whether the
        version is a placeholder)."""
        return list(self.conn.execute(self.sql.run_io, {"p_run": run_id}))

    def created_run(self, run_id: uuid.UUID) -> bool:
        """Whether this event's ``upsert_run`` inserted the run (known on Postgres only): no event of it came
        before, so it has no IO yet."""
        upserted = self._upserted_runs.get(run_id)
        return upserted is not None and bool(upserted.inserted)

    def run_events_so_far(self, run_id: uuid.UUID) -> list:
        """(event_hash, payload) of the run's stored events applied so far, this one included (events of a
        job are applied one at a time in id order, live and by `headwater reindex`; this one may still carry
        the error of an earlier attempt while reindex applies it again). Read only when an event arrives
        after a later one of its run."""
        e = t.lineage_events.c
        applied = or_(e.apply_error.is_(None), e.id == self.ctx.lineage_event_id)
        stmt = select(e.event_hash, e.payload).where(e.run_id == run_id, e.id <= self.ctx.lineage_event_id, applied)
        return list(self.conn.execute(stmt.order_by(e.id)))

    def set_version_created_at(self, version_id: uuid.UUID, created_at: datetime) -> None:
        self._forget_run_version(version_id)
        v = t.dataset_versions.c
        stmt = update(t.dataset_versions).where(v.id == version_id, v.created_at != created_at)
        self.conn.execute(stmt.values(created_at=created_at))

    def upsert_run_io(self, rows: list[dict]) -> None:
        if rows:
            execute_rows(self.conn, self.sql.upsert_run_io, _dedupe(rows, "dataset_id", "io_type"))

    # --- facets and column lineage --------------------------------------------------------------------

    def _facet_rows(
        self, entries: list[tuple[uuid.UUID, str, str, Any]], key: str
    ) -> tuple[list[dict], dict[tuple[uuid.UUID, str], Any]]:
        """The rows of these facets, and each one's facet as sent (None: a tombstone) by (entity, name). A row's
        document is the facet's JSON with sorted keys, encoded once for both its hash and the statement."""
        rows, values = [], {}
        for entity, kind, name, value in entries:
            if not isinstance(value, dict):
                continue
            if extract.is_deleted(value):
                document = digest = values[(entity, name)] = None
            else:
                content, digest = ids.json_content(value)
                document, values[(entity, name)] = orjson.Fragment(content), value
            rows.append(
                {
                    "entity_id": entity,
                    "name": name,
                    "kind": kind,
                    "facet": document,
                    "facet_hash": digest,
                    "event_key": key,
                    "lineage_event_id": self.ctx.lineage_event_id,
                }
            )
        return _dedupe(rows, "entity_id", "name"), values

    def add_reader_facets(self, entries: list[tuple[uuid.UUID, str, str, Any]]) -> list[tuple[uuid.UUID, str, Any]]:
        """Dataset facets sent by a *reader* of the dataset: kept only where nothing says otherwise yet
        (a reader's event key sorts below any writer's, so any writer's facet wins; between readers the
        earliest event wins, so readers agree in any arrival order). Returns the (entity, name, facet) rows
        this reader won, so the columns mirroring them can follow."""
        key, memo = READER_KEY_PREFIX + self.ctx.key, self.ctx.memo
        if memo is not None:
            entries = [e for e in entries if not memo.reader_cannot_win(e[0], e[2], key)]
        rows, values = self._facet_rows(entries, key)
        rows = [{**r, "lineage_event_id": None} for r in rows if r["facet"] is not None]
        won = self._won(self.sql.upsert_reader_facets, rows, values)
        if memo is not None:
            for row in rows:  # won or not, what is stored now has this key or an earlier one, or a writer's
                memo.learn_reader_bound(row["entity_id"], row["name"], key)
            if memo.deferred:
                # Readers of a dataset run side by side and their facets may win in turn, each unit setting the
                # mirrored columns at its own step: the columns follow the facet that won last, once the wave is
                # over (BatchMemo.end_wave).
                # Only a facet that mirrors a column needs it (the others need nothing read back).
                memo.reader_wins.update((e, name) for e, name, value in won if dataset_columns_for(name, value))
                return []
        return won

    def follow_reader_facets(self, won: set[tuple[uuid.UUID, str]]) -> None:
        """The mirrored columns of datasets whose readers' facets won side by side (``add_reader_facets``) follow
        the facets stored now."""
        if not won:
            return
        f = t.facets.c
        datasets = sorted({entity for entity, _ in won}, key=str)
        stmt = select(f.entity_id, f.name, f.facet).where(
            in_values(self.conn, f.entity_id, datasets), in_values(self.conn, f.name, sorted({n for _, n in won}))
        )
        values: dict[uuid.UUID, dict[str, Any]] = {}
        for entity, name, facet in self.conn.execute(stmt):
            if (entity, name) in won:
                values.setdefault(entity, {}).update(dataset_columns_for(name, facet))
        for dataset_id in sorted(values, key=str):  # rows locked in id order, as everywhere
            self.set_columns(t.datasets, dataset_id, values[dataset_id])

    def upsert_facets(self, entries: list[tuple[uuid.UUID, str, str, Any]]) -> list[tuple[uuid.UUID, str, Any]]:
        """(entity id, kind, facet name, facet) rows, later event wins. ``_deleted`` leaves a tombstone.
        Returns the (entity, name, facet) rows this event won, so derived columns can follow.

        Facets stored with the same content only take this event's key, in a statement without the documents;
        the others (new, changed, or older than what is stored) are written whole. A facet a later event of the
        batch writes too, and that nothing reads in between (``BatchMemo.latest_facet_writes``), is left to it:
        the later event wins whether or not this one is stored."""
        key, memo = self.ctx.key, self.ctx.memo
        if memo is not None and memo.latest_facet_writes:
            latest, kept = memo.latest_facet_writes, []
            for entry in entries:
                if latest.get((entry[0], entry[2]), key) <= key:
                    kept.append(entry)
                elif entry[1] == "DATASET":  # a writer's facet will be stored: no reader's can stay
                    memo.learn_reader_bound(entry[0], entry[2], WRITER_FACET)
            entries = kept
        rows, values = self._facet_rows(entries, key)
        if not rows:
            return []
        unchanged = [{k: v for k, v in r.items() if k != "facet"} for r in rows if r["facet_hash"] is not None]
        refreshed = self._won(self.sql.refresh_unchanged_facets, unchanged, values)
        done = {(entity, name) for entity, name, _ in refreshed}
        rest = [r for r in rows if (r["entity_id"], r["name"]) not in done]
        won = refreshed + self._won(self.sql.upsert_facets, rest, values)
        if self.ctx.memo is not None:
            for row in rows:  # won or not, a writer's facet is stored now: no reader's can replace it
                if row["kind"] == "DATASET":
                    self.ctx.memo.learn_reader_bound(row["entity_id"], row["name"], WRITER_FACET)
        return won

    def _won(self, stmt, rows: list[dict], values: dict) -> list[tuple[uuid.UUID, str, Any]]:
        """Run ``stmt`` for ``rows``; the (entity, name, facet as sent) of the rows it returned."""
        if not rows:
            return []
        return [(entity, name, values[(entity, name)]) for entity, name in execute_rows(self.conn, stmt, rows)]


# A source row never moves in time: once ensured, it is ensured for every event.
_ALWAYS = datetime.min.replace(tzinfo=UTC)

# The columns that mirror facets (dataset_columns_for, job_columns_for).
_DATASET_MIRRORS = ("description", "last_lifecycle_state", "is_deleted", "source_id", "source_name")
_JOB_MIRRORS = ("description", "location", "type", "integration", "job_type")


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
