"""Every SQL statement ingest runs, built once per database dialect and reused for every event.

Building an ``INSERT … ON CONFLICT`` construct and computing its cache key costs more than executing it,
so statements take their per-event values as bind parameters (named ``p_*``, apart from column names)
and are constructed once. ``statements_for(dialect)`` returns the set for a dialect.
"""

from __future__ import annotations

from functools import cache, cached_property

from sqlalchemy import String, Table, Uuid, and_, bindparam, case, delete, exists, func, or_, select, update

from app.db import tables as t
from app.db.dialect import existing_rows_only, in_param, inserted_by_upsert, upsert, uuid_param_value
from app.db.types import UTCDateTime

NOW = bindparam("p_now", type_=UTCDateTime())
KEY = bindparam("p_key", type_=String())
# Event keys of facets sent by a dataset's readers: "!" sorts before every writer's key (an event time).
READER_KEY_PREFIX = "!"


# The value of the statements' ``p_ids`` (``IngestStatements.ids``) and ``p_keep``: one uuid[] on Postgres
# (constant statement text, nothing expanded per call), a list on SQLite.
ids_value = uuid_param_value


def later(new, old):
    """The later of two possibly-NULL values (SQLite has no GREATEST)."""
    return case((old.is_(None), new), (new.is_(None), old), (new > old, new), else_=old)


def earlier(new, old):
    return case((old.is_(None), new), (new.is_(None), old), (new < old, new), else_=old)


@cache
def statements_for(dialect: str) -> IngestStatements:
    return IngestStatements(dialect)


class IngestStatements:
    def __init__(self, dialect: str):
        self.dialect = dialect
        self._insert_ignore: dict[tuple[str, bool], object] = {}
        self._set_columns: dict[tuple[str, tuple[str, ...]], object] = {}

    def insert_ignore(self, table: Table, returning_id: bool = False):
        """INSERT … ON CONFLICT DO NOTHING (takes no lock on a row that exists); RETURNING id gives the rows
        actually inserted."""
        key = (table.name, returning_id)
        if key not in self._insert_ignore:
            stmt = upsert(self.dialect, table).on_conflict_do_nothing()
            self._insert_ignore[key] = stmt.returning(table.c.id) if returning_id else stmt
        return self._insert_ignore[key]

    def set_columns(self, table: Table, names: tuple[str, ...]):
        """UPDATE of columns that mirror facets, matching (and locking) the row only if a value changes."""
        key = (table.name, names)
        if key not in self._set_columns:
            c = table.c
            params = {n: bindparam(f"p_{n}", type_=c[n].type) for n in names}
            changed = or_(*(c[n].is_distinct_from(params[n]) for n in names))
            self._set_columns[key] = update(table).where(c.id == bindparam("p_id"), changed).values(**params)
        return self._set_columns[key]

    def ids(self, column):
        """``column IN (:p_ids)`` for a uuid column; the parameter's value is ``ids_value(conn, ids)``."""
        return in_param(self.dialect, column, "p_ids")

    # --- namespaces and datasets ----------------------------------------------------------------------

    def _revive(self, table: Table, updated_at):
        c = table.c
        return (
            update(table)
            .where(self.ids(c.id), or_(c.is_hidden, c.created_at > NOW))
            .values(is_hidden=False, created_at=earlier(NOW, c.created_at), updated_at=updated_at)
        )

    @cached_property
    def revive_namespaces(self):
        # A namespace changes only through the API, so its updated_at stays its creation time.
        return self._revive(t.namespaces, earlier(NOW, t.namespaces.c.updated_at))

    @cached_property
    def revive_datasets(self):
        # A dataset's updated_at is the later of its creation and its last published version.
        c = t.datasets.c
        return self._revive(t.datasets, later(c.last_modified_at, earlier(NOW, c.created_at)))

    @cached_property
    def resolve_symlinks(self):
        """Symlinks among the names of a batch, looked up by namespaces and names (two array parameters rather
        than hundreds of expanded pairs); the caller keeps the pairs it asked for."""
        s, d = t.dataset_symlinks, t.datasets
        return (
            select(s.c.namespace_name, s.c.name, d.c.namespace_name, d.c.name, d.c.id)
            .join(d, d.c.id == s.c.dataset_id)
            .where(
                in_param(self.dialect, s.c.namespace_name, "p_namespaces"),
                in_param(self.dialect, s.c.name, "p_names"),
            )
        )

    @cached_property
    def current_versions(self):
        d = t.datasets.c
        return (
            select(d.id, d.current_version_id, d.current_version_key)
            .where(self.ids(d.id))
            .order_by(d.id)
            .with_for_update(read=True)
        )

    @cached_property
    def version_as_of(self):
        v = t.dataset_versions.c
        return (
            select(v.id, v.published_key)
            .where(v.dataset_id == bindparam("p_dataset"), v.published_key != "", v.published_key < KEY)
            .order_by(v.published_key.desc())
            .limit(1)
        )

    @cached_property
    def version_by_external(self):
        v = t.dataset_versions.c
        return (
            select(v.id)
            .where(v.dataset_id == bindparam("p_dataset"), v.external_version == bindparam("p_external"))
            .order_by(v.created_at.desc())
            .limit(1)
        )

    @cached_property
    def insert_versions(self):
        stmt = upsert(self.dialect, t.dataset_versions)
        ex, col = stmt.excluded, t.dataset_versions.c
        return stmt.on_conflict_do_update(
            index_elements=[col.id], set_={"created_at": ex.created_at}, where=ex.created_at < col.created_at
        )

    @cached_property
    def adopt_first_version(self):
        d = t.datasets.c
        return (
            update(t.datasets)
            .where(d.id == bindparam("p_dataset"), d.current_version_id.is_(None))
            .values(current_version_id=bindparam("p_version"))
        )

    @cached_property
    def backdate_version(self):
        v = t.dataset_versions.c
        return (
            update(t.dataset_versions).where(v.id == bindparam("p_version"), v.created_at > NOW).values(created_at=NOW)
        )

    @cached_property
    def lock_datasets(self):
        d = t.datasets.c
        return select(d.id).where(self.ids(d.id)).order_by(d.id).with_for_update()

    @cached_property
    def publish_version(self):
        v = t.dataset_versions.c
        return (
            update(t.dataset_versions)
            .where(v.id == bindparam("p_version"), v.published_key < KEY)
            .values(published_key=KEY)
        )

    @cached_property
    def repoint_reads(self):
        io = t.run_io.c
        return (
            update(t.run_io)
            # <=: reads this event pointed at an earlier version of its output follow it (see make_version_current).
            .where(
                io.dataset_id == bindparam("p_dataset"),
                io.io_type == "INPUT",
                io.event_key > KEY,
                io.version_key <= KEY,
            )
            .values(dataset_version_id=bindparam("p_version"), version_key=KEY)
        )

    @cached_property
    def make_version_current(self):
        d = t.datasets.c
        return (
            update(t.datasets)
            # <=: the same event publishes again when more of its run's output arrives after it (a schema
            # reported by an earlier event delivered late): its new version replaces the one it published first.
            .where(d.id == bindparam("p_dataset"), d.current_version_key <= KEY)
            .values(
                current_version_id=bindparam("p_version"),
                current_version_key=KEY,
                last_modified_at=NOW,
                updated_at=later(NOW, d.updated_at),
            )
        )

    @cached_property
    def delete_unread_placeholders(self):
        v, io, d = t.dataset_versions.c, t.run_io.c, t.datasets.c
        return delete(t.dataset_versions).where(
            v.dataset_id == bindparam("p_dataset"),
            v.run_id.is_(None),
            v.published_key == "",
            ~exists().where(io.dataset_version_id == v.id),
            ~exists().where(d.current_version_id == v.id),
        )

    @cached_property
    def run_outputs(self):
        io = t.run_io.c
        return select(io.run_id, io.dataset_id).where(self.ids(io.run_id), io.io_type == "OUTPUT")

    @cached_property
    def date_placeholders(self):
        """A dataset's placeholder versions date from the earliest first read of the runs that read them now
        (reads that moved to a published version no longer count)."""
        v, io = t.dataset_versions.c, t.run_io.c
        first_read = (
            select(func.min(io.first_read_at))
            .where(io.dataset_version_id == v.id, io.io_type == "INPUT")
            .scalar_subquery()
        )
        return (
            update(t.dataset_versions)
            .where(
                v.dataset_id == bindparam("p_dataset"),
                v.run_id.is_(None),
                v.published_key == "",
                first_read.is_not(None),
                first_read != v.created_at,
            )
            .values(created_at=first_read)
        )

    @cached_property
    def published_versions(self):
        v = t.dataset_versions.c
        return select(v.id, v.dataset_id, v.column_lineage_id).where(self.ids(v.id), v.published_key != "")

    @cached_property
    def column_lineage_facet_hashes(self):
        """The content hash of versions' columnLineage facets (NULL for one stored before facets had hashes)."""
        f = t.facets.c
        return select(f.entity_id, f.facet_hash).where(
            self.ids(f.entity_id), f.name == "columnLineage", f.facet.is_not(None)
        )

    @cached_property
    def column_lineage_facets(self):
        f = t.facets.c
        return select(f.entity_id, f.facet).where(
            self.ids(f.entity_id), f.name == "columnLineage", f.facet.is_not(None)
        )

    @cached_property
    def point_version_at_lineage(self):
        """Set a version's column lineage; returns whether another version has that lineage already (so its
        rows are stored: a set of rows exists exactly while some version points at it)."""
        v = t.dataset_versions.c
        lineage = bindparam("p_lineage", type_=v.column_lineage_id.type)
        other = t.dataset_versions.alias("other")
        shared = exists().where(other.c.column_lineage_id == lineage, other.c.id != v.id)
        return (
            update(t.dataset_versions)
            .where(v.id == bindparam("p_version"))
            .values(column_lineage_id=lineage)
            .returning(shared)
        )

    @cached_property
    def delete_unused_lineage(self):
        v, cl = t.dataset_versions.c, t.column_lineage.c
        lineage = bindparam("p_lineage", type_=cl.lineage_id.type)
        return delete(t.column_lineage).where(cl.lineage_id == lineage, ~exists().where(v.column_lineage_id == lineage))

    # --- jobs -----------------------------------------------------------------------------------------

    @cached_property
    def touch_job(self):
        """A job named again (a JobEvent): un-hidden, its dates widened, its parent linked once."""
        j = t.jobs.c
        values = {
            "is_hidden": False,
            "updated_at": later(NOW, j.updated_at),
            "created_at": earlier(NOW, j.created_at),
            "parent_job_id": case(
                (j.parent_job_id.is_(None), bindparam("p_parent", type_=Uuid())), else_=j.parent_job_id
            ),
        }
        return update(t.jobs).where(j.id == bindparam("p_job")).values(**values)

    @cached_property
    def upsert_job_with_run(self):
        """A run event's job: inserted if missing, else un-hidden, its dates widened, its parent linked once, and
        this run made its current one if this is its latest event. RETURNING (id, current_version_key)."""
        stmt = upsert(self.dialect, t.jobs)
        ex, j = stmt.excluded, t.jobs.c
        newer = j.current_run_key < ex.current_run_key
        return stmt.on_conflict_do_update(
            index_elements=[j.id],
            set_={
                "is_hidden": False,
                "updated_at": later(ex.updated_at, j.updated_at),
                "created_at": earlier(ex.created_at, j.created_at),
                "parent_job_id": case((j.parent_job_id.is_(None), ex.parent_job_id), else_=j.parent_job_id),
                "current_run_id": case((newer, ex.current_run_id), else_=j.current_run_id),
                "current_run_key": case((newer, ex.current_run_key), else_=j.current_run_key),
            },
        ).returning(j.id, j.current_version_key)

    @cached_property
    def upsert_job_version_for_run(self):
        stmt = upsert(self.dialect, t.job_versions)
        ex, col = stmt.excluded, t.job_versions.c
        newer = ex.latest_run_key > col.latest_run_key
        return stmt.on_conflict_do_update(
            index_elements=[col.id],
            set_={
                "latest_run_id": case((newer, ex.latest_run_id), else_=col.latest_run_id),
                "latest_run_key": case((newer, ex.latest_run_key), else_=col.latest_run_key),
                "updated_at": case((newer, ex.updated_at), else_=col.updated_at),
                "created_at": earlier(ex.created_at, col.created_at),
            },
            where=or_(newer, ex.created_at < col.created_at),
        )

    @cached_property
    def make_job_version_current(self):
        j = t.jobs.c
        return (
            update(t.jobs)
            .where(j.id == bindparam("p_job"), j.current_version_key < KEY)
            .values(current_version_id=bindparam("p_version"), current_version_key=KEY)
        )

    @cached_property
    def finished_run(self):
        r = t.runs.c
        return select(r.state, r.state_key, r.ended_at, r.job_version_id).where(r.id == bindparam("p_run"))

    @cached_property
    def replace_current_job_version(self):
        j = t.jobs.c
        return (
            update(t.jobs)
            .where(j.id == bindparam("p_job"), j.current_version_id == bindparam("p_old"), j.current_version_key == KEY)
            .values(current_version_id=bindparam("p_new"))
        )

    @cached_property
    def delete_unused_job_version(self):
        v, r, j = t.job_versions.c, t.runs.c, t.jobs.c
        return delete(t.job_versions).where(
            v.id == bindparam("p_old"),
            ~exists().where(r.job_version_id == v.id),
            ~exists().where(j.current_version_id == v.id),
        )

    @cached_property
    def refresh_job_version_latest_run(self):
        """A version a run no longer has keeps as its latest run the latest of the runs that still have it."""
        v, r = t.job_versions.c, t.runs.c
        latest = (
            select(r.id, r.state_key, r.ended_at).where(r.job_version_id == v.id).order_by(r.state_key.desc()).limit(1)
        )
        return (
            update(t.job_versions)
            # A version no run has (kept as its job's current one) keeps the run that made it.
            .where(v.id == bindparam("p_old"), v.latest_run_id == bindparam("p_run"), exists(latest))
            .values(
                latest_run_id=latest.with_only_columns(r.id).scalar_subquery(),
                latest_run_key=latest.with_only_columns(r.state_key).scalar_subquery(),
                updated_at=latest.with_only_columns(r.ended_at).scalar_subquery(),
            )
        )

    @cached_property
    def refresh_job_version_created_at(self):
        """A version this run made first, which other runs still have, dates from the first of those."""
        v, r = t.job_versions.c, t.runs.c
        first = select(func.min(r.ended_at)).where(r.job_version_id == v.id).scalar_subquery()
        return (
            update(t.job_versions)
            .where(v.id == bindparam("p_old"), v.created_at == bindparam("p_now"), first.is_not(None))
            .values(created_at=first)
        )

    @cached_property
    def retired_by_later_completion(self):
        """Whether a completed run of the job, later than this event, finished with IO in this direction
        that leaves this dataset out: had this event come first, that completion would have retired its edge."""
        r, x = t.runs.c, t.job_version_io.c
        other = t.job_version_io.alias("other")
        return select(
            exists().where(
                r.job_id == bindparam("p_job"),
                r.state == "COMPLETED",
                r.state_key > KEY,
                exists().where(x.job_version_id == r.job_version_id, x.io_type == bindparam("p_io")),
                ~exists().where(
                    other.c.job_version_id == r.job_version_id,
                    other.c.io_type == bindparam("p_io"),
                    other.c.dataset_id == bindparam("p_dataset"),
                ),
            )
        )

    # --- lineage edges --------------------------------------------------------------------------------

    @cached_property
    def upsert_edges(self):
        stmt = upsert(self.dialect, t.lineage_edges)
        ex, col = stmt.excluded, t.lineage_edges.c
        newer = ex.last_seen_key > col.last_seen_key
        return stmt.on_conflict_do_update(
            index_elements=[col.job_id, col.dataset_id, col.io_type],
            set_={
                "is_current": or_(col.is_current, ex.is_current),
                "first_seen_at": earlier(ex.first_seen_at, col.first_seen_at),
                "last_seen_at": later(ex.last_seen_at, col.last_seen_at),
                "last_seen_key": case((newer, ex.last_seen_key), else_=col.last_seen_key),
                "last_run_id": case((newer, ex.last_run_id), else_=col.last_run_id),
            },
        )

    @cached_property
    def retire_edges(self):
        e = t.lineage_edges.c
        return (
            update(t.lineage_edges)
            .where(
                e.job_id == bindparam("p_job"),
                e.io_type == bindparam("p_io"),
                e.is_current,
                e.last_seen_key <= KEY,
                ~in_param(self.dialect, e.dataset_id, "p_keep"),
            )
            .values(is_current=False)
        )

    # --- runs -----------------------------------------------------------------------------------------

    @cached_property
    def upsert_run(self):
        stmt = upsert(self.dialect, t.runs)
        ex, r = stmt.excluded, t.runs.c
        wins = or_(ex.state_rank > r.state_rank, and_(ex.state_rank == r.state_rank, ex.state_key > r.state_key))
        nominal_wins = ex.nominal_key > r.nominal_key
        location_wins = ex.location_key > r.location_key
        return stmt.on_conflict_do_update(
            index_elements=[r.id],
            set_={
                "state": case((wins, ex.state), else_=r.state),
                "state_rank": case((wins, ex.state_rank), else_=r.state_rank),
                "state_key": case((wins, ex.state_key), else_=r.state_key),
                "transitioned_at": case((wins, ex.transitioned_at), else_=r.transitioned_at),
                "ended_at": case((and_(wins, ex.state_rank == 2), ex.ended_at), else_=r.ended_at),
                "started_at": earlier(ex.started_at, r.started_at),
                "nominal_start_time": case((nominal_wins, ex.nominal_start_time), else_=r.nominal_start_time),
                "nominal_end_time": case((nominal_wins, ex.nominal_end_time), else_=r.nominal_end_time),
                "nominal_key": case((nominal_wins, ex.nominal_key), else_=r.nominal_key),
                "location": case((location_wins, ex.location), else_=r.location),
                "location_key": case((location_wins, ex.location_key), else_=r.location_key),
                "parent_run_id": case((r.parent_run_id.is_(None), ex.parent_run_id), else_=r.parent_run_id),
                "created_at": earlier(ex.created_at, r.created_at),
                "updated_at": later(ex.updated_at, r.updated_at),
            },
            # What finished_run would read next (the row as this event left it), after the key it is routed by;
            # the run's location as its events so far give it; and whether this event created the run (then it
            # has no earlier IO to read).
        ).returning(
            r.id,
            r.state,
            r.state_key,
            r.ended_at,
            r.job_version_id,
            r.location,
            r.location_key,
            inserted_by_upsert(self.dialect, t.runs),
        )

    @cached_property
    def insert_run_state(self):
        return t.run_states.insert()

    @cached_property
    def set_run_job_version(self):
        return update(t.runs).where(t.runs.c.id == bindparam("p_run")).values(job_version_id=bindparam("p_version"))

    @cached_property
    def run_io(self):
        io, d, v = t.run_io.c, t.datasets.c, t.dataset_versions.c
        return (
            select(
                io.dataset_id,
                io.io_type,
                io.dataset_version_id,
                io.event_key,
                d.namespace_name,
                d.name,
                # A placeholder (data read before any writer was seen): no run, never published.
                and_(v.run_id.is_(None), v.published_key == "").label("is_placeholder"),
            )
            .join(t.datasets, d.id == io.dataset_id)
            .outerjoin(t.dataset_versions, v.id == io.dataset_version_id)
            .where(io.run_id == bindparam("p_run"))
        )

    @cached_property
    def upsert_run_io(self):
        stmt = upsert(self.dialect, t.run_io)
        ex, col = stmt.excluded, t.run_io.c
        # >=: a version with a schema replacing a later schema-less one comes with that later key.
        newer = ex.event_key >= col.event_key
        return stmt.on_conflict_do_update(
            index_elements=[col.run_id, col.dataset_id, col.io_type],
            set_={
                "dataset_version_id": case((newer, ex.dataset_version_id), else_=col.dataset_version_id),
                "event_key": case((newer, ex.event_key), else_=col.event_key),
                "version_key": case((newer, ex.version_key), else_=col.version_key),
                "first_read_at": earlier(ex.first_read_at, col.first_read_at),
            },
            # An earlier read arriving late moves only first_read_at.
            where=or_(
                newer,
                and_(
                    ex.first_read_at.is_not(None),
                    or_(col.first_read_at.is_(None), ex.first_read_at < col.first_read_at),
                ),
            ),
        )

    # --- facets and column lineage --------------------------------------------------------------------

    @cached_property
    def upsert_facets(self):
        stmt = upsert(self.dialect, t.facets)
        ex, col = stmt.excluded, t.facets.c
        # RETURNING names the rows this event won; their values are the ones it sent (no JSON comes back).
        return stmt.on_conflict_do_update(
            index_elements=[col.entity_id, col.name],
            set_={
                # The same content again keeps the stored value, so Postgres writes no new copy of a large
                # (TOASTed) document.
                "facet": case((col.facet_hash == ex.facet_hash, col.facet), else_=ex.facet),
                "facet_hash": ex.facet_hash,
                "kind": ex.kind,
                "event_key": ex.event_key,
                "lineage_event_id": ex.lineage_event_id,
            },
            where=ex.event_key > col.event_key,
        ).returning(col.entity_id, col.name)

    @cached_property
    def refresh_unchanged_facets(self):
        """The facets stored with the content an event sends again (a job's facets on every run, a version's
        from START to COMPLETE) take the later event's key; their rows carry no document (``existing_rows_only``).
        RETURNING names the rows this event won."""
        stmt = upsert(self.dialect, t.facets)
        ex, col = stmt.excluded, t.facets.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[col.entity_id, col.name],
            set_={"kind": ex.kind, "event_key": ex.event_key, "lineage_event_id": ex.lineage_event_id},
            where=ex.event_key > col.event_key,
        ).returning(col.entity_id, col.name)
        return existing_rows_only(stmt, "facet_hash")

    @cached_property
    def upsert_reader_facets(self):
        """A reader's facet is inserted where there is none, and replaces another reader's only if its event
        is earlier (reader keys start with "!", below every writer's key). RETURNING names the rows it won."""
        stmt = upsert(self.dialect, t.facets)
        ex, col = stmt.excluded, t.facets.c
        return stmt.on_conflict_do_update(
            index_elements=[col.entity_id, col.name],
            set_={"facet": ex.facet, "facet_hash": ex.facet_hash, "event_key": ex.event_key},
            where=and_(col.event_key > ex.event_key, col.event_key.startswith(READER_KEY_PREFIX)),
        ).returning(col.entity_id, col.name)

    @cached_property
    def store_raw_event(self):
        stmt = upsert(self.dialect, t.lineage_events).on_conflict_do_nothing(index_elements=["event_hash"])
        return stmt.returning(t.lineage_events.c.id)
