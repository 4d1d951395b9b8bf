"""Retention: delete run history, versions and raw events older than a cutoff, in batches, keeping what the
model stands on (as Marquez's `db-retention` does).

Age is event time: a run's last event (``runs.updated_at``), a version's first sighting (``created_at``), a
job version's last use (``updated_at``), a raw event's ``event_time``. Kept whatever their age:

* every dataset's and job's **current version**, the **current run** of every job, the run that wrote a
  dataset's current version, and the latest run of a job's current version;
* the parent run of any run that stays (an Airflow DAG run outlives its purged tasks only while a task is left);
* dataset versions a remaining run read or wrote, job versions a remaining run ran as;
* raw events a remaining row still names (the state history of a kept run, the event that set a facet still
  shown), so `headwater reindex` can rebuild what is kept.

Jobs, datasets, namespaces, sources, fields, tags and lineage edges are never deleted. References to a purged
run from rows that stay (a version's producing run, a job version's latest run, an edge's last run) become NULL.

Each batch is one transaction. A dry run does the same work in one transaction that it rolls back, so it
reports exactly what a purge would delete and changes nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, exists, func, select, update
from sqlalchemy.exc import DBAPIError

from app.db import tables as t
from app.db.dialect import in_values, serialize_on_all
from app.db.engine import write_transaction
from app.services.ingest import job_lock_key

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Tables in the order a purge reports them.
TABLES = (
    "runs",
    "run_states",
    "run_io",
    "job_versions",
    "job_version_io",
    "dataset_versions",
    "column_lineage",
    "facets",
    "lineage_events",
)

# progress(step, rows looked at, rows the step will look at in all)
Progress = Callable[[str, int, int], None]


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` → a timedelta. Raises ValueError with a readable message."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"not a duration: {text!r} (use a number and a unit: 30d, 12h, 2w, 90m, 45s)")
    amount = float(match.group(1))
    if amount <= 0:
        raise ValueError(f"the duration must be positive, not {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: amount})


@dataclass
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def add(self, table: str, count: int) -> None:
        self.deleted[table] += max(count, 0)


def _no_progress(step: str, done: int, total: int) -> None:
    pass


class _Batches:
    """Where each batch's statements run: its own committed transaction, or (dry run) one shared
    transaction rolled back at the end."""

    def __init__(self, engine: Engine, dry_run: bool):
        self.engine = engine
        self.dry_run = dry_run
        self._shared: Connection | None = None

    @contextmanager
    def run(self) -> Iterator[None]:
        if not self.dry_run:
            yield
            return
        with self.engine.connect().execution_options(write=True) as connection:
            transaction = connection.begin()
            self._shared = connection
            try:
                yield
            finally:
                self._shared = None
                transaction.rollback()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        if self._shared is not None:
            yield self._shared
            return
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def batch(self) -> Iterator[Connection]:
        if self._shared is not None:
            yield self._shared
            return
        with write_transaction(self.engine) as connection:
            yield connection


def purge(
    engine: Engine,
    older_than: datetime,
    *,
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Progress = _no_progress,
) -> PurgeReport:
    """Delete what is older than ``older_than`` (see the module docstring); returns the counts per table."""
    report = PurgeReport(older_than, dry_run)
    batches = _Batches(engine, dry_run)
    with batches.run():
        # Runs first (their links and states go with them), then what no remaining run refers to.
        # A parent run can go once its children have gone: another pass finds it.
        passes = 1
        while _purge_runs(batches, older_than, batch_size, report, progress, "runs" + f" ({passes})" * (passes > 1)):
            passes += 1
        _purge_job_versions(batches, older_than, batch_size, report, progress)
        _purge_dataset_versions(batches, older_than, batch_size, report, progress)
        _purge_raw_events(batches, older_than, batch_size, report, progress)
    return report


def _count(batches: _Batches, table, *where) -> int:
    with batches.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0


def _candidates(conn: Connection, id_column, *where, after, limit: int) -> list:
    """The next ``limit`` ids (in id order, after ``after``) of rows old enough to purge."""
    stmt = select(id_column).where(*where)
    if after is not None:
        stmt = stmt.where(id_column > after)
    return list(conn.execute(stmt.order_by(id_column).limit(limit)).scalars())


def _purge_runs(
    batches: _Batches, cutoff: datetime, size: int, report: PurgeReport, progress: Progress, step: str
) -> int:
    """One pass over the old runs; returns how many were deleted."""
    r, j, jv, d, v = t.runs.c, t.jobs.c, t.job_versions.c, t.datasets.c, t.dataset_versions.c
    child = t.runs.alias("child")
    old = r.updated_at < cutoff
    total = _count(batches, t.runs, old)
    deleted_in_pass, after, seen = 0, None, 0
    while True:
        with batches.batch() as conn:
            ids = _candidates(conn, r.id, old, after=after, limit=size)
            if not ids:
                break
            after, seen = ids[-1], seen + len(ids)
            _hold_jobs(conn, select(r.job_id).where(in_values(conn, r.id, ids)))
            doomed = list(
                conn.execute(
                    select(r.id).where(
                        in_values(conn, r.id, ids),
                        ~exists().where(j.id == r.job_id, j.current_run_id == r.id),
                        ~exists().where(jv.id == j.current_version_id, j.id == r.job_id, jv.latest_run_id == r.id),
                        ~exists().where(v.run_id == r.id, d.id == v.dataset_id, d.current_version_id == v.id),
                        ~exists().where(child.c.parent_run_id == r.id),
                    )
                ).scalars()
            )
            if doomed:
                deleted_in_pass += _delete_runs(conn, doomed, report)
        progress(step, seen, total)
    return deleted_in_pass


def _hold_jobs(conn: Connection, job_ids) -> None:
    """Take the locks ingest applies each job's events under (``job_lock_key``) for the jobs whose rows this
    batch is about to check, in the one order the applier takes them in too. The check that follows
    then sees every event of those jobs committed so far, and any other waits for the batch to commit and
    recreates what it needs. Without them an event could point a run at a job version between the check and
    the delete, and the run would name a version that no longer exists."""
    j = t.jobs.c
    jobs = conn.execute(select(j.namespace_name, j.name).where(j.id.in_(job_ids.scalar_subquery())))
    serialize_on_all(conn, (job_lock_key(namespace, name) for namespace, name in jobs))


def _delete_runs(conn: Connection, run_ids: list, report: PurgeReport) -> int:
    r, io, f = t.runs.c, t.run_io.c, t.facets.c
    links = list(conn.execute(select(io.id).where(in_values(conn, io.run_id, run_ids))).scalars())
    report.add("facets", conn.execute(delete(t.facets).where(in_values(conn, f.entity_id, run_ids))).rowcount)
    if links:
        report.add("facets", conn.execute(delete(t.facets).where(in_values(conn, f.entity_id, links))).rowcount)
    report.add("run_io", conn.execute(delete(t.run_io).where(in_values(conn, io.run_id, run_ids))).rowcount)
    states = delete(t.run_states).where(in_values(conn, t.run_states.c.run_id, run_ids))
    report.add("run_states", conn.execute(states).rowcount)
    # Rows that stay lose their pointer to a purged run rather than point at nothing.
    for column in (t.dataset_versions.c.run_id, t.job_versions.c.latest_run_id, t.lineage_edges.c.last_run_id):
        conn.execute(update(column.table).where(in_values(conn, column, run_ids)).values({column.name: None}))
    count = conn.execute(delete(t.runs).where(in_values(conn, r.id, run_ids))).rowcount
    report.add("runs", count)
    return count


def _old_batches(
    batches: _Batches, id_column, old, size: int, progress: Progress, step: str
) -> Iterator[tuple[Connection, list]]:
    """The ids of rows matching ``old``, a batch at a time, each with the connection of the batch's own
    transaction (committed when the caller is done with it), reporting progress after each."""
    total, after, seen = _count(batches, id_column.table, old), None, 0
    while True:
        with batches.batch() as conn:
            ids = _candidates(conn, id_column, old, after=after, limit=size)
            if not ids:
                return
            after, seen = ids[-1], seen + len(ids)
            yield conn, ids
        progress(step, seen, total)


def _purge_job_versions(batches: _Batches, cutoff: datetime, size: int, report: PurgeReport, progress: Progress):
    jv, j, r = t.job_versions.c, t.jobs.c, t.runs.c
    for conn, ids in _old_batches(batches, jv.id, jv.updated_at < cutoff, size, progress, "job versions"):
        _hold_jobs(conn, select(jv.job_id).where(in_values(conn, jv.id, ids)))
        doomed = (
            conn.execute(
                select(jv.id).where(
                    in_values(conn, jv.id, ids),
                    ~exists().where(j.id == jv.job_id, j.current_version_id == jv.id),
                    ~exists().where(r.job_version_id == jv.id),
                )
            )
            .scalars()
            .all()
        )
        if doomed:
            io = t.job_version_io.c
            count = conn.execute(delete(t.job_version_io).where(in_values(conn, io.job_version_id, doomed)))
            report.add("job_version_io", count.rowcount)
            count = conn.execute(delete(t.job_versions).where(in_values(conn, jv.id, doomed)))
            report.add("job_versions", count.rowcount)


def _purge_dataset_versions(batches: _Batches, cutoff: datetime, size: int, report: PurgeReport, progress: Progress):
    v, d, io, cl = t.dataset_versions.c, t.datasets.c, t.run_io.c, t.column_lineage.c
    for conn, ids in _old_batches(batches, v.id, v.created_at < cutoff, size, progress, "dataset versions"):
        # Their datasets locked as a publish locks them: a publish that finds a version with the same column
        # lineage (and so writes no rows of its own) cannot interleave with deleting that version's lineage.
        of_versions = select(v.dataset_id).where(in_values(conn, v.id, ids))
        conn.execute(select(d.id).where(d.id.in_(of_versions)).order_by(d.id).with_for_update()).all()
        doomed = (
            conn.execute(
                select(v.id).where(
                    in_values(conn, v.id, ids),
                    ~exists().where(d.id == v.dataset_id, d.current_version_id == v.id),
                    ~exists().where(io.dataset_version_id == v.id),
                )
            )
            .scalars()
            .all()
        )
        if doomed:
            f = t.facets.c
            count = conn.execute(delete(t.facets).where(in_values(conn, f.entity_id, doomed))).rowcount
            report.add("facets", count)
            lineage_ids = select(v.column_lineage_id).where(
                in_values(conn, v.id, doomed), v.column_lineage_id.is_not(None)
            )
            lineage_ids = conn.execute(lineage_ids.distinct()).scalars().all()
            count = conn.execute(delete(t.dataset_versions).where(in_values(conn, v.id, doomed))).rowcount
            report.add("dataset_versions", count)
            # Column lineage is shared by the versions with the same content: it goes with the last of them.
            unused = and_(
                in_values(conn, cl.lineage_id, lineage_ids), ~exists().where(v.column_lineage_id == cl.lineage_id)
            )
            report.add("column_lineage", conn.execute(delete(t.column_lineage).where(unused)).rowcount)


def _purge_raw_events(batches: _Batches, cutoff: datetime, size: int, report: PurgeReport, progress: Progress):
    e, rs, f = t.lineage_events.c, t.run_states.c, t.facets.c
    # An event not applied yet is kept however old it says it is: the model is still to be built from it.
    old = and_(e.event_time < cutoff, e.applied_at.is_not(None))
    for conn, ids in _old_batches(batches, e.id, old, size, progress, "raw events"):
        named = and_(
            in_values(conn, e.id, ids),
            ~exists().where(rs.lineage_event_id == e.id),
            ~exists().where(f.lineage_event_id == e.id),
        )
        report.add("lineage_events", conn.execute(delete(t.lineage_events).where(named)).rowcount)


class RetentionSchedule:
    """Runs `purge` every ``interval`` seconds, deleting what is older than ``keep`` (HEADWATER_RETENTION_DAYS),
    on a daemon thread of the server process. ``clock`` and ``wait`` are injectable for tests."""

    def __init__(
        self,
        engine: Engine,
        keep: timedelta,
        interval: float,
        *,
        batch_size: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.engine = engine
        self.keep = keep
        self.interval = interval
        self.batch_size = batch_size
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # completed purges, for the curious (and the tests)

    def run_once(self) -> PurgeReport | None:
        try:
            report = purge(self.engine, self.clock() - self.keep, batch_size=self.batch_size)
        except DBAPIError as exc:  # a busy or unreachable database: try again next time
            log.warning("retention: purge failed, retrying in %gs: %s", self.interval, exc.orig)
            return None
        self.runs += 1
        if report.total:
            counts = ", ".join(f"{table} {n}" for table, n in report.deleted.items() if n)
            log.info("retention: deleted what is older than %s: %s", report.cutoff.isoformat(), counts)
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def start(self) -> RetentionSchedule:
        self._thread = threading.Thread(target=self._loop, name="headwater-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
