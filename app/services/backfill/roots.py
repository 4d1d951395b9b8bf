"""Resolving a root cause (a run, a dataset version or window, a job and a window) into what it made bad:
the datasets, their bad versions, the data-time windows and, when known, the bad columns."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import Connection, Row, and_, bindparam, case, func, select, union_all

from app.db import tables as t
from app.db.dialect import in_param, in_param_value, in_values, utc_timestamp, uuid_text
from app.db.engine import BINARY_RESULTS
from app.schemas.backfill import BackfillRequest, FailedAssertion, NodeRef, RootCause, TimeWindow
from app.services import datasets as dataset_service
from app.services import jobs as job_service
from app.services.backfill import hierarchy
from app.services.backfill.windows import INSTANT, Window, merge, run_window
from app.services.errors import InvalidRequest, NotFound
from app.services.ingest.extract import flatten_fields
from app.services.lineage import current_edges, node_id


@dataclass
class Affected:
    """What is wrong with one dataset: bad versions, bad data-time windows, bad columns (None: all).

    Versions are kept as their text (str of the uuid): they are only compared, sent back as parameters and
    shown, and a day-wide plan handles tens of thousands of them."""

    versions: set[str] = field(default_factory=set)
    windows: list[Window] = field(default_factory=list)
    columns: set[str] | None = None
    path: list[str] = field(default_factory=list)

    def absorb(self, versions: set[str], windows: list[Window], columns: set[str] | None) -> bool:
        """Add more badness; True when anything grew (cycles iterate until nothing does)."""
        before = (len(self.versions), self.windows, self.columns)
        self.versions |= versions
        self.windows = merge([*self.windows, *windows])
        if self.columns is not None:
            self.columns = None if columns is None else self.columns | columns
        return before != (len(self.versions), self.windows, self.columns)


@dataclass
class ResolvedRoot:
    cause: RootCause
    node: str
    root_runs: dict[uuid.UUID, list[Row]]  # job id -> its root runs (re-run them when includeRoot)
    datasets: dict[uuid.UUID, Affected]
    # run id (text) -> the data time a root run without nominal times takes from its ancestors
    logical: dict[str, hierarchy.Logical] = field(default_factory=dict)


def run_node(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


def window_of(run: Row) -> Window:
    return run_window(run.nominal_start_time, run.nominal_end_time, run.started_at, run.ended_at, run.created_at)


def run_columns(ids_as_text_on: Connection | str | None = None):
    """What planning needs of a run (not every column: plans read thousands of runs). With a connection, the
    run's and its job's ids come as text (uuid_text): the form plans key, send back and show them in (a
    dialect name will do: see uuid_text).

    By position, row[3:8] are run_window()'s arguments."""
    r = t.runs.c
    # created_at only counts for a run with neither nominal time nor start (window_of): NULL, free to read, for
    # every other run.
    created_at = case((and_(r.nominal_start_time.is_(None), r.started_at.is_(None)), r.created_at))
    times = (r.nominal_start_time, r.nominal_end_time, r.started_at, r.ended_at)
    if ids_as_text_on is None:
        return (r.id, r.job_id, r.state, *times, created_at.label("created_at"))
    conn = ids_as_text_on  # the bulk form: ids as text, timestamps as the driver returns them (the same values)
    return (
        uuid_text(conn, r.id).label("id"),
        uuid_text(conn, r.job_id).label("job_id"),
        r.state,
        *(utc_timestamp(conn, c).label(c.name) for c in times),
        utc_timestamp(conn, created_at).label("created_at"),
    )


def runs_overlapping(
    conn: Connection, job_ids: list[uuid.UUID], window: Window, logical: dict[str, hierarchy.Logical] | None = None
) -> list[tuple[Row, Window]]:
    """Runs of the jobs whose data time overlaps the window, each with its own window: by nominal interval,
    or for runs without one, by when they ran — except runs of jobs that run inside others (dbt, Spark under an
    Airflow task), which take their nearest timed ancestor's (``logical`` receives those, by run id as text).
    Rows of run_columns()."""
    rows = list(runs_reaching(conn, job_ids, window))
    times: dict[str, hierarchy.Logical] = {}
    jobs = {r.id: r for r in conn.execute(select(t.jobs).where(in_values(conn, t.jobs.c.id, job_ids)))}
    children = hierarchy.untimed_children(conn, jobs)
    if children:
        chains = hierarchy.ancestry(conn, {job: jobs[job] for job in children})
        ancestors = {a.id for chain in chains.values() for a in chain}
        seeds = runs_reaching(conn, sorted(ancestors, key=str), window, ids_as_text=True) if ancestors else []
        times = hierarchy.runs_under(conn, seeds, ancestors, children, window)
        untimed = [
            str(row.id)
            for row in rows
            if row.nominal_start_time is None and row.job_id in children and str(row.id) not in times
        ]
        times.update(hierarchy.inherited(conn, untimed))
        seen = {str(row.id) for row in rows}
        late = [run for run in times if run not in seen]  # ran outside the window, for data time inside it
        if late:
            r = t.runs.c
            rows += conn.execute(
                select(*run_columns()).where(in_values(conn, r.id, late), in_values(conn, r.job_id, children))
            ).all()
    found = []
    for row in rows:
        inherited = times.get(str(row.id)) if times else None
        own = inherited.window() if inherited is not None else run_window(*row[3:8])  # by position: many rows
        if own.overlaps(window):
            found.append((row, own))
            if inherited is not None and logical is not None:
                logical[str(row.id)] = inherited
    return found


def runs_reaching(
    conn: Connection, job_ids: list[uuid.UUID], window: Window, *, ids_as_text: bool = False, outputs: bool = False
) -> list[Row]:
    """The runs of the jobs that can overlap the window (rows of run_columns(), ids as text with ids_as_text);
    which do is for the caller to tell, by their own windows (run_window(*row[3:8])).

    With outputs (and ids_as_text), each row also carries a dataset the run wrote and its version (text),
    one row per output, NULLs for a run that wrote nothing: a plan needs what its selected runs wrote, and
    asking here spares sending every run id back in another statement.

    The runs that start inside the window, plus each job's last run that started before it (the only one
    that can reach into it, for periodic runs): per job, one index probe for that last start, then an index
    range from it to the window's end, whatever the length of history. One statement for any number of
    jobs."""
    if not job_ids:
        return []
    query = _runs_reaching_query(conn.dialect.name, ids_as_text, outputs)
    values = {"job_ids": in_param_value(conn, t.jobs.c.id, job_ids), "start": window.start, "end": window.end}
    return conn.execute(query, values).all()


@cache
def _runs_reaching_query(dialect: str, ids_as_text: bool, outputs: bool):
    """runs_reaching's statement, built once per kind of database and shape (a plan runs it for every level,
    and building it each time cost about as much as running it). Parameters: job_ids, start, end."""
    r, jobs = t.runs.c, t.jobs.c
    start = bindparam("start", type_=r.nominal_start_time.type)
    end = bindparam("end", type_=r.nominal_start_time.type)

    def latest(column, unscheduled_only: bool):
        b = t.runs.alias("before")
        where = [b.c.nominal_start_time.is_(None)] if unscheduled_only else []
        last = (
            select(func.max(b.c[column.name]))
            .where(b.c.job_id == jobs.id, b.c[column.name] < start, *where)
            .scalar_subquery()
        )
        return func.coalesce(last, start)

    # Per job: from when to read its runs (its last start before the window, else the window's start).
    since = (
        select(
            jobs.id.label("job_id"),
            latest(r.nominal_start_time, False).label("scheduled"),
            latest(r.started_at, True).label("unscheduled"),
        )
        .where(in_param(dialect, jobs.id, "job_ids"))
        .cte("since")
    )
    columns = run_columns(dialect if ids_as_text else None)
    source = t.runs.join(since, since.c.job_id == r.job_id)
    if outputs:
        o = t.run_io.alias("written")
        columns = (
            *columns,
            uuid_text(dialect, o.c.dataset_id).label("written_dataset"),
            uuid_text(dialect, o.c.dataset_version_id).label("written_version"),
        )
        source = source.outerjoin(o, (o.c.run_id == r.id) & (o.c.io_type == "OUTPUT"))
    scheduled = (
        select(*columns)
        .select_from(source)
        .where(r.nominal_start_time >= since.c.scheduled, r.nominal_start_time < end)
    )
    unscheduled = (
        select(*columns)
        .select_from(source)
        .where(r.nominal_start_time.is_(None), r.started_at >= since.c.unscheduled, r.started_at < end)
    )
    return union_all(scheduled, unscheduled).execution_options(**{BINARY_RESULTS: True})


def outputs_by_run(conn: Connection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[uuid.UUID, set[uuid.UUID]]]:
    """run -> dataset -> versions it wrote."""
    io = t.run_io.c
    found: dict[uuid.UUID, dict[uuid.UUID, set[uuid.UUID]]] = defaultdict(lambda: defaultdict(set))
    if run_ids:
        for run, dataset, version in conn.execute(
            select(io.run_id, io.dataset_id, io.dataset_version_id).where(
                in_values(conn, io.run_id, run_ids), io.io_type == "OUTPUT"
            )
        ).all():
            found[run][dataset].add(version)
    return found


def _outputs_of_runs(conn: Connection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[uuid.UUID]]:
    """dataset -> versions any of the runs wrote."""
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    for written in outputs_by_run(conn, run_ids).values():
        for dataset, versions in written.items():
            found.setdefault(dataset, set()).update(versions)
    return found


def _current_outputs(conn: Connection, job_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {dataset for _, dataset in current_edges(conn, "OUTPUT", from_jobs=set(job_ids))} if job_ids else set()


def _affected_from_runs(
    conn: Connection, runs: list[Row], windows: list[Window], path: list[str]
) -> dict[uuid.UUID, Affected]:
    """The datasets the runs wrote (their versions), or failing any record, their jobs' current outputs."""
    written = _outputs_of_runs(conn, [r.id for r in runs])
    for dataset_id in _current_outputs(conn, sorted({r.job_id for r in runs})):
        written.setdefault(dataset_id, set())
    return {
        d: Affected(versions={str(x) for x in v}, windows=list(windows), path=list(path)) for d, v in written.items()
    }


def _job_ref(conn: Connection, job_id: uuid.UUID) -> NodeRef:
    row = conn.execute(select(t.jobs.c.namespace_name, t.jobs.c.name).where(t.jobs.c.id == job_id)).one()
    return NodeRef(namespace=row.namespace_name, name=row.name)


def _as_windows(windows: list[Window]) -> list[TimeWindow]:
    return [TimeWindow(start=w.start, end=w.end) for w in windows]


def resolve(conn: Connection, request: BackfillRequest) -> ResolvedRoot:
    if request.runId is not None:
        return _run_root(conn, request.runId)
    if request.job is not None:
        assert request.start is not None and request.end is not None
        return _job_root(conn, request.job, Window(request.start, request.end))
    assert request.dataset is not None
    return _dataset_root(conn, request)


def _run_root(conn: Connection, run_id: uuid.UUID) -> ResolvedRoot:
    r = t.runs.c
    run = conn.execute(select(t.runs).where(r.id == run_id)).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found.")
    # A DAG run's writers are its task runs, and an Airflow task's the runs it started (dbt models under a
    # dbt invocation, Spark jobs): re-run those, not the job that wrote nothing itself.
    children = _descendants(conn, run_id)
    runs = children or [run]
    node = run_node(run_id)
    logical = hierarchy.inherited(conn, [str(x.id) for x in [run, *children] if x.nominal_start_time is None])
    windows = merge([logical[str(x.id)].window() if str(x.id) in logical else window_of(x) for x in [run, *children]])
    root_runs: dict[uuid.UUID, list[Row]] = {}
    for x in runs:
        root_runs.setdefault(x.job_id, []).append(x)
    job = NodeRef(namespace=run.namespace_name, name=run.job_name)
    datasets = _affected_from_runs(conn, runs, windows, [node])
    state = run.state
    cause = RootCause(
        kind="run",
        nodeId=node,
        description=f"Run {run_id} of job {job.name} ({state})"
        + (f" and the {len(children)} runs under it" if children else ""),
        job=job,
        runs=[str(x.id) for x in [run, *children]],
        versions=sorted(v for a in datasets.values() for v in a.versions),
        windows=_as_windows(windows),
    )
    return ResolvedRoot(cause, node, root_runs, datasets, logical)


def _descendants(conn: Connection, run_id: uuid.UUID) -> list[Row]:
    """The runs under a run, every generation (parent links), nearest first."""
    r = t.runs.c
    found: list[Row] = []
    seen, frontier = {run_id}, [run_id]
    for _ in range(hierarchy.MAX_DEPTH):
        if not frontier:
            break
        below = conn.execute(select(t.runs).where(in_values(conn, r.parent_run_id, frontier))).all()
        below = [x for x in below if x.id not in seen]
        seen.update(x.id for x in below)
        found += below
        frontier = [x.id for x in below]
    return found


def _job_root(conn: Connection, ref: NodeRef, window: Window) -> ResolvedRoot:
    job = job_service.find_job(conn, ref.namespace, ref.name, redirect=False)
    node = node_id("JOB", job.namespace_name, job.name)
    logical: dict[str, hierarchy.Logical] = {}
    found = sorted(runs_overlapping(conn, [job.id], window, logical), key=lambda pair: (pair[1], str(pair[0].id)))
    runs = [row for row, _ in found]
    # A daily job's bad hours are its whole days: the runs' intervals widen the window.
    windows = merge([window, *(own for _, own in found)])
    datasets = _affected_from_runs(conn, runs, windows, [node])
    for dataset_id in _current_outputs(conn, [job.id]):
        datasets.setdefault(dataset_id, Affected(windows=list(windows), path=[node]))
    cause = RootCause(
        kind="job",
        nodeId=node,
        description=f"Job {job.name} wrote bad data from {window.start.isoformat()} to {window.end.isoformat()}",
        job=NodeRef(namespace=job.namespace_name, name=job.name),
        runs=[str(x.id) for x in runs],
        versions=sorted(v for a in datasets.values() for v in a.versions),
        windows=_as_windows(windows),
    )
    return ResolvedRoot(cause, node, {job.id: runs}, datasets, logical)


def _dataset_root(conn: Connection, request: BackfillRequest) -> ResolvedRoot:
    assert request.dataset is not None
    dataset = dataset_service.find_dataset(conn, request.dataset.namespace, request.dataset.name)
    node = node_id("DATASET", dataset.namespace_name, dataset.name)
    v, r, io = t.dataset_versions.c, t.runs.c, t.run_io.c
    if request.start is not None and request.end is not None:
        window = Window(request.start, request.end)
        found = runs_overlapping(conn, _writers_of(conn, dataset.id), window)
        writing = _runs_writing(conn, dataset.id, [row.id for row, _ in found])
        writers = [(row, own) for row, own in found if row.id in writing]
        # Data time, not arrival time: the versions written for the window (none for a source no job writes).
        versions = {str(x) for x in _outputs_of_runs(conn, [w.id for w, _ in writers]).get(dataset.id, ())}
        windows = merge([window, *(own for _, own in writers)])
        description = f"Dataset {dataset.name} has bad data from {window.start.isoformat()} to {window.end.isoformat()}"
    else:
        version_id = request.version or dataset.current_version_id
        if version_id is None:
            raise NotFound(f"Dataset '{dataset.name}' has no version.")
        version = conn.execute(select(t.dataset_versions).where(v.id == version_id, v.dataset_id == dataset.id)).first()
        if version is None:
            raise NotFound(f"Dataset version '{version_id}' not found.")
        versions = {str(version.id)}
        producer = conn.execute(select(t.runs).where(r.id == version.run_id)).first() if version.run_id else None
        if producer is not None:
            windows = [window_of(producer)]
        else:
            # Never written by a run we know: bad for as long as it was the version readers got.
            readers = list(
                conn.execute(
                    select(r.started_at, r.created_at)
                    .join(t.run_io, io.run_id == r.id)
                    .where(io.dataset_version_id == version.id, io.io_type == "INPUT")
                )
            )
            moments = [version.created_at, *((x.started_at or x.created_at) for x in readers)]
            windows = [Window(min(moments), max(moments) + INSTANT)]
        description = f"Version {version.id} of dataset {dataset.name} is bad"
    columns: set[str] | None = None
    if request.columns:
        columns = set(request.columns)
    elif request.schemaChange:
        if len(versions) != 1:
            raise InvalidRequest("schemaChange needs one dataset version")
        columns = changed_columns(conn, dataset.id, uuid.UUID(next(iter(versions))))
        if not columns:
            raise InvalidRequest("the dataset version dropped or retyped no column of the version before it")
        description += f": columns {', '.join(sorted(columns))} were dropped or retyped"
    affected = Affected(versions=versions, windows=merge(windows), columns=columns, path=[node])
    cause = RootCause(
        kind="dataset",
        nodeId=node,
        description=description,
        dataset=NodeRef(namespace=dataset.namespace_name, name=dataset.name),
        runs=[],
        versions=sorted(versions),
        windows=_as_windows(affected.windows),
        columns=sorted(columns) if columns is not None else None,
        failedAssertions=failed_assertions(conn, sorted(uuid.UUID(x) for x in versions)),
    )
    return ResolvedRoot(cause, node, {}, {dataset.id: affected})


def _writers_of(conn: Connection, dataset_id: uuid.UUID) -> list[uuid.UUID]:
    e = t.lineage_edges.c
    return list(conn.execute(select(e.job_id).where(e.dataset_id == dataset_id, e.io_type == "OUTPUT")).scalars())


def _runs_writing(conn: Connection, dataset_id: uuid.UUID, run_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    io = t.run_io.c
    return set(
        conn.execute(
            select(io.run_id).where(
                in_values(conn, io.run_id, run_ids), io.dataset_id == dataset_id, io.io_type == "OUTPUT"
            )
        ).scalars()
    )


def changed_columns(conn: Connection, dataset_id: uuid.UUID, version_id: uuid.UUID) -> set[str]:
    """Columns of the previous published version that this version dropped or gave another type."""
    v = t.dataset_versions.c
    version = conn.execute(select(v.fields, v.published_key, v.created_at).where(v.id == version_id)).one()
    order = v.published_key if version.published_key else v.created_at
    bound = version.published_key or version.created_at
    previous = conn.execute(
        select(v.fields)
        .where(v.dataset_id == dataset_id, v.id != version_id, order < bound, v.published_key != "")
        .order_by(order.desc())
        .limit(1)
    ).first()
    if previous is None:
        return set()
    now = {f.name: f.type for f in flatten_fields(version.fields or [])}
    before = {f.name: f.type for f in flatten_fields(previous.fields or [])}
    return {name for name, kind in before.items() if name not in now or (kind and now[name] and kind != now[name])}


def failed_assertions(conn: Connection, version_ids: list[uuid.UUID]) -> list[FailedAssertion]:
    """Failed `dataQualityAssertions` reported by the runs that read (or the run that wrote) these versions."""
    if not version_ids:
        return []
    io, f, r = t.run_io.c, t.facets.c, t.runs.c
    rows = conn.execute(
        select(f.facet, io.run_id, r.namespace_name, r.job_name)
        .join(t.run_io, io.id == f.entity_id)
        .join(t.runs, r.id == io.run_id)
        .where(io.dataset_version_id.in_(version_ids), f.name == "dataQualityAssertions", f.facet.is_not(None))
    )
    found: list[FailedAssertion] = []
    for facet, run_id, ns, job in rows:
        for a in (facet or {}).get("assertions") or []:
            if isinstance(a, dict) and a.get("success") is False:
                found.append(
                    FailedAssertion(
                        assertion=str(a.get("assertion") or a.get("name") or "?"),
                        column=a.get("column") if isinstance(a.get("column"), str) else None,
                        runId=str(run_id),
                        job=NodeRef(namespace=ns, name=job),
                    )
                )
    return sorted(found, key=lambda a: (a.assertion, a.column or "", a.runId or ""))
