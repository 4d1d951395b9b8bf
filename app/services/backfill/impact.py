"""What a root cause made bad downstream: the jobs, which of their runs, and the datasets they in turn
made bad, in dependency order.

1. The downstream closure is walked over the current edges only (one query per hop), never run history.
2. Jobs are ordered by the strongly connected components of the job graph, so a job reached by several
   paths is handled once, after everything upstream of it; cycles are found, reported and iterated to a
   fixpoint (badness only grows, so this ends) instead of being looped on.
3. Per job, the runs to redo are those that read a bad dataset version (exact, from the run↔version links)
   and those whose data interval overlaps a bad window of an input (they read stale or bad data, or read
   without a record). The windows a job's outputs go bad for are the intervals of its selected runs, so an
   hourly upstream's bad hours widen to whole days for a daily consumer.
4. With bad columns, column lineage narrows: a job whose output columns derive from none of them is cleared.

Run history is queried only for the jobs already in the closure, one batch per level.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import Connection, Engine, Row, bindparam, func, literal, select

from app.db import tables as t
from app.db.dialect import in_param, in_param_value, in_values, uuid_text
from app.db.engine import BINARY_RESULTS
from app.schemas.backfill import BackfillRequest
from app.services.backfill import hierarchy
from app.services.backfill.roots import (
    Affected,
    ResolvedRoot,
    resolve,
    run_columns,
    runs_reaching,
    window_of,
)
from app.services.backfill.windows import Window, hull, merge, overlaps_any, run_window
from app.services.lineage import current_edges, node_id


class SelectedRun:
    """A run to redo: what a plan shows of it, its data-time window, and why (reasons in order, once each).
    Plain slots: a day-wide plan holds tens of thousands of them. The run is known by its id as text (``id``),
    the form the plan shows and every lookup keys on (a uuid.UUID costs to build and hashes in Python)."""

    __slots__ = (
        "id",
        "job_id",
        "job_key",
        "state",
        "nominal_start_time",
        "nominal_end_time",
        "started_at",
        "ended_at",
        "window",
        "reasons",
        "wrote",
        "time_from",
    )

    def __init__(self, row: Row, window: Window) -> None:
        self.id = str(row.id)
        self.job_id: uuid.UUID = row.job_id
        self.job_key = str(row.job_id)  # the job's id as text, as rows with text ids carry it
        self.state = row.state
        self.nominal_start_time = row.nominal_start_time
        self.nominal_end_time = row.nominal_end_time
        self.started_at = row.started_at
        self.ended_at = row.ended_at
        self.window = window
        self.reasons: list[str] = []
        self.wrote: list[tuple[str, str]] | None = None  # (dataset, version) as text; None: not read yet
        self.time_from: str | None = None  # the ancestor run whose nominal times these are (hierarchy)

    @classmethod
    def of(cls, row: Row, window: Window, job_id: uuid.UUID) -> SelectedRun:
        """From a row starting with run_columns() with ids as text, by position (tens of thousands of rows:
        attribute access by name costs)."""
        self = cls.__new__(cls)
        self.id, self.job_key, self.state, self.job_id, self.window = row[0], row[1], row[2], job_id, window
        self.nominal_start_time, self.nominal_end_time, self.started_at, self.ended_at = row[3], row[4], row[5], row[6]
        self.reasons, self.wrote, self.time_from = [], None, None
        return self

    def inherit(self, logical: hierarchy.Logical | None) -> SelectedRun:
        """Take the data time of the nearest timed ancestor run (a run without nominal times of its own)."""
        if logical is not None:
            self.nominal_start_time, self.nominal_end_time, self.time_from = logical
            self.window = logical.window()
        return self

    def because(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass
class JobImpact:
    job_id: uuid.UUID
    is_root: bool = False
    level: int = 0
    path: list[str] = field(default_factory=list)
    bad_inputs: dict[uuid.UUID, Affected] = field(default_factory=dict)  # a snapshot of what it read
    runs: dict[str, SelectedRun] = field(default_factory=dict)  # by run id as text
    in_cycle: bool = False

    @property
    def windows(self) -> list[Window]:
        if self.runs:
            return merge([s.window for s in self.runs.values()])
        return merge([w for a in self.bad_inputs.values() for w in a.windows])


@dataclass
class ImpactResult:
    root: ResolvedRoot
    jobs: dict[uuid.UUID, JobImpact]
    datasets: dict[uuid.UUID, Affected]
    job_rows: dict[uuid.UUID, Row]
    dataset_rows: dict[uuid.UUID, Row]
    cycles: list[list[uuid.UUID]]
    cleared: list[uuid.UUID]  # reached, but column lineage shows they use no bad column
    upstream: dict[uuid.UUID, set[uuid.UUID]]  # impacted job -> the impacted jobs it waits for


@dataclass
class _Closure:
    reads: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    writes: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    datasets: set[uuid.UUID] = field(default_factory=set)


def _closure(conn: Connection, start: set[uuid.UUID], depth: int) -> _Closure:
    """Breadth-first over the current edges, ``depth`` job hops from the start datasets: the datasets reached,
    the reads of the jobs that read one reached within depth - 1 hops, and those jobs' writes.

    Three statements whatever the depth (one per hop before): the datasets reached with their fewest hops
    (one recursive query), then the reads from those under depth hops, then their readers' writes."""
    c = _Closure(datasets=set(start))
    if depth < 1 or not start:
        return c
    hops = dict(
        conn.execute(
            _reach_query(conn.dialect.name), {"start": in_param_value(conn, t.datasets.c.id, start), "depth": depth}
        ).all()
    )
    c.datasets.update(hops)
    frontier = {dataset for dataset, fewest in hops.items() if fewest < depth}
    if not frontier:
        return c
    for job, dataset in current_edges(conn, "INPUT", from_datasets=frontier):
        c.reads[job].add(dataset)
    if c.reads:
        for job, dataset in current_edges(conn, "OUTPUT", from_jobs=set(c.reads)):
            c.writes[job].add(dataset)
    return c


@cache
def _reach_query(dialect: str):
    """(dataset, fewest job hops) of the datasets reached from the ``start`` datasets (hops 0) within ``depth``
    job hops over current edges, skipping hidden jobs and datasets as current_edges does. Built once per kind
    of database."""
    d = t.datasets.c
    seed = select(d.id.label("dataset_id"), literal(0).label("hops")).where(in_param(dialect, d.id, "start"))
    reach = seed.cte("reach", recursive=True)
    read, wrote = t.lineage_edges.alias("read"), t.lineage_edges.alias("wrote")
    source, reader, output = t.datasets.alias("source"), t.jobs.alias("reader"), t.datasets.alias("output")
    reach = reach.union(
        select(wrote.c.dataset_id, reach.c.hops + 1)
        .select_from(reach)
        .join(read, read.c.dataset_id == reach.c.dataset_id)
        .join(source, source.c.id == read.c.dataset_id)
        .join(reader, reader.c.id == read.c.job_id)
        .join(wrote, wrote.c.job_id == read.c.job_id)
        .join(output, output.c.id == wrote.c.dataset_id)
        .where(
            reach.c.hops < bindparam("depth"),
            read.c.io_type == "INPUT",
            read.c.is_current,
            source.c.is_hidden.is_(False),
            reader.c.is_hidden.is_(False),
            wrote.c.io_type == "OUTPUT",
            wrote.c.is_current,
            output.c.is_hidden.is_(False),
        )
    )
    return select(reach.c.dataset_id, func.min(reach.c.hops)).group_by(reach.c.dataset_id)


def _components(nodes: list[uuid.UUID], successors: dict[uuid.UUID, set[uuid.UUID]]) -> list[list[uuid.UUID]]:
    """Tarjan's strongly connected components, iteratively (deep chains must not hit the recursion limit)."""
    text: dict[uuid.UUID, str] = {}  # nodes are visited in the order of their ids as text: str() each once

    def by_text(node: uuid.UUID) -> str:
        found = text.get(node)
        if found is None:
            found = text[node] = str(node)
        return found

    index: dict[uuid.UUID, int] = {}
    low: dict[uuid.UUID, int] = {}
    on_stack: set[uuid.UUID] = set()
    stack: list[uuid.UUID] = []
    components: list[list[uuid.UUID]] = []
    counter = 0
    for origin in nodes:
        if origin in index:
            continue
        work = [(origin, iter(sorted(successors.get(origin, ()), key=by_text)))]
        index[origin] = low[origin] = counter
        counter += 1
        stack.append(origin)
        on_stack.add(origin)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(successors.get(child, ()), key=by_text))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component, key=by_text))
    return components


def _levels(
    jobs: list[uuid.UUID], successors: dict[uuid.UUID, set[uuid.UUID]]
) -> tuple[dict[uuid.UUID, int], list[list[uuid.UUID]], list[list[uuid.UUID]]]:
    """Longest-path level of each job over the component graph (1 for the first downstream jobs), the
    components in processing order, and the cycles."""
    components = _components(jobs, successors)
    component_of = {job: i for i, comp in enumerate(components) for job in comp}
    cycles = [c for c in components if len(c) > 1 or c[0] in successors.get(c[0], ())]
    level_of_component = dict.fromkeys(range(len(components)), 1)
    # Tarjan emits components in reverse topological order.
    for i in reversed(range(len(components))):
        for job in components[i]:
            for nxt in successors.get(job, ()):
                j = component_of[nxt]
                if j != i:
                    level_of_component[j] = max(level_of_component[j], level_of_component[i] + 1)
    order = [components[i] for i in reversed(range(len(components)))]
    order.sort(key=lambda comp: level_of_component[component_of[comp[0]]])
    return {job: level_of_component[component_of[job]] for job in jobs}, order, cycles


def _column_lineage(
    conn: Connection, jobs: list[uuid.UUID], closure: _Closure, narrowed_inputs: set[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], dict[uuid.UUID, set[tuple[str, str]]]]:
    """(job, input dataset) -> output dataset -> {(output field, input field)} over the outputs' current
    versions."""
    outputs = {d for j in jobs for d in closure.writes.get(j, ())}
    found: dict[tuple[uuid.UUID, uuid.UUID], dict[uuid.UUID, set[tuple[str, str]]]] = {}
    if not outputs or not narrowed_inputs:
        return found
    cl, d, v = t.column_lineage.c, t.datasets.c, t.dataset_versions.c
    rows = conn.execute(
        select(cl.output_dataset_id, cl.input_dataset_id, cl.output_field, cl.input_field)
        .join(t.datasets, d.id == cl.output_dataset_id)
        .join(t.dataset_versions, (v.id == d.current_version_id) & (v.column_lineage_id == cl.lineage_id))
        .where(in_values(conn, cl.output_dataset_id, outputs), in_values(conn, cl.input_dataset_id, narrowed_inputs))
    )
    writers: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for j in jobs:
        for o in closure.writes.get(j, ()):
            writers[o].append(j)
    for output, source, out_field, in_field in rows:
        for j in writers[output]:
            found.setdefault((j, source), {}).setdefault(output, set()).add((out_field, in_field))
    return found


def compute_impact(conn: Connection, request: BackfillRequest) -> ImpactResult:
    root = resolve(conn, request)
    affected: dict[uuid.UUID, Affected] = dict(root.datasets)
    closure = _closure(conn, set(affected), request.depth)
    successors: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    readers_of: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for job, datasets in closure.reads.items():
        for dataset in datasets:
            readers_of[dataset].add(job)
    for job, datasets in closure.writes.items():
        for dataset in datasets:
            successors[job] |= readers_of.get(dataset, set())
    # Names of everything the closure reached, once, for paths and reasons.
    job_rows = {
        r.id: r
        for r in conn.execute(
            select(t.jobs).where(in_values(conn, t.jobs.c.id, set(closure.reads) | set(root.root_runs)))
        )
    }
    dataset_rows = {
        r.id: r for r in conn.execute(select(t.datasets).where(in_values(conn, t.datasets.c.id, closure.datasets)))
    }
    names = _Names(job_rows, dataset_rows)
    for dataset, a in affected.items():
        a.path = [*a.path, names.dataset_node(dataset)] if a.path[-1] != names.dataset_node(dataset) else a.path

    downstream = sorted(closure.reads, key=str)
    levels, order, cycles = _levels(downstream, successors)
    in_cycle = {job for c in cycles for job in c}

    jobs: dict[uuid.UUID, JobImpact] = {}
    for job_id, runs in root.root_runs.items():
        path = [root.node] if root.node == names.job_node(job_id) else [root.node, names.job_node(job_id)]
        impact = jobs[job_id] = JobImpact(job_id, is_root=True, level=0, path=path)
        for run in runs:
            reason = "the root cause" if root.cause.kind == "run" else "ran in the bad window"
            selected = SelectedRun(run, window_of(run)).inherit(root.logical.get(str(run.id)))
            impact.runs.setdefault(selected.id, selected).because(reason)

    cleared: set[uuid.UUID] = set()
    # Components at one level never feed each other: select their runs in one batch per level.
    by_level: dict[int, list[uuid.UUID]] = defaultdict(list)
    for comp in order:
        by_level[levels[comp[0]]].extend(comp)
    # One thread for the whole plan fetches each level's bad reads on a second connection (_candidate_runs).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-reads") as background:
        for level in sorted(by_level):
            batch = by_level[level]
            rounds = len(batch) + 1 if any(job in in_cycle for job in batch) else 1
            for _ in range(rounds):
                if not _select(conn, background, batch, closure, affected, jobs, cleared, names):
                    break

    for job in in_cycle & set(jobs):
        jobs[job].in_cycle = True
    # Levels over what is really impacted: column lineage may have cleared whole branches.
    impacted = sorted((j for j in jobs if not jobs[j].is_root), key=str)
    impacted_successors = {j: {k for k in successors.get(j, ()) if k in jobs and not jobs[k].is_root} for j in impacted}
    for job, level in _levels(impacted, impacted_successors)[0].items():
        jobs[job].level = level

    upstream: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    root_readers = {r for d in root.datasets for r in readers_of.get(d, ())}
    for job, impact in jobs.items():
        for nxt in root_readers if impact.is_root else successors.get(job, ()):
            if nxt in jobs and nxt != job and not jobs[nxt].is_root:
                upstream[nxt].add(job)
    return ImpactResult(
        root=root,
        upstream=upstream,
        jobs=jobs,
        datasets=affected,
        job_rows=job_rows,
        dataset_rows={d: dataset_rows[d] for d in affected if d in dataset_rows},
        cycles=[c for c in cycles if any(j in jobs for j in c)],
        cleared=sorted(cleared - set(jobs), key=str),
    )


@dataclass
class _Names:
    jobs: dict[uuid.UUID, Row]
    datasets: dict[uuid.UUID, Row]
    labels: dict[uuid.UUID, str] = field(default_factory=dict)

    def job_node(self, job_id: uuid.UUID) -> str:
        row = self.jobs[job_id]
        return node_id("JOB", row.namespace_name, row.name)

    def dataset_node(self, dataset_id: uuid.UUID) -> str:
        row = self.datasets[dataset_id]
        return node_id("DATASET", row.namespace_name, row.name)

    def dataset(self, dataset_id: uuid.UUID) -> str:
        name = self.labels.get(dataset_id)
        if name is None:
            row = self.datasets[dataset_id]
            name = self.labels[dataset_id] = f"{row.namespace_name}:{row.name}"
        return name


def _select(
    conn: Connection,
    background: Executor,
    batch: list[uuid.UUID],
    closure: _Closure,
    affected: dict[uuid.UUID, Affected],
    jobs: dict[uuid.UUID, JobImpact],
    cleared: set[uuid.UUID],
    names: _Names,
) -> bool:
    """Select the runs to redo of a batch of jobs from their inputs' badness, and spread the badness to their
    outputs. True when any output got worse."""
    bad_inputs = {j: {d: affected[d] for d in closure.reads.get(j, ()) if d in affected} for j in batch}
    narrowed = {d for inputs in bad_inputs.values() for d, a in inputs.items() if a.columns is not None}
    lineage = _column_lineage(conn, batch, closure, narrowed)

    # Output columns each job's bad inputs reach: None means every column.
    reach: dict[uuid.UUID, dict[uuid.UUID, set[str] | None]] = {}
    for job in batch:
        outputs: dict[uuid.UUID, set[str] | None] = {}
        for dataset, bad in list(bad_inputs[job].items()):
            mapping = lineage.get((job, dataset)) if bad.columns is not None else None
            if mapping is None:
                for o in closure.writes.get(job, ()):
                    outputs[o] = None
                continue
            hit = {
                o: {out for out, src in pairs if src in bad.columns}  # type: ignore[operator]
                for o, pairs in mapping.items()
            }
            hit = {o: cols for o, cols in hit.items() if cols}
            if not hit:
                del bad_inputs[job][dataset]  # column lineage: this job uses none of the bad columns
                continue
            for o, cols in hit.items():
                if o not in outputs:
                    outputs[o] = set(cols)
                elif outputs[o] is not None:
                    outputs[o] |= cols  # type: ignore[operator]
        if not bad_inputs[job]:
            cleared.add(job)
            continue
        reach[job] = outputs
    active = list(reach)
    if not active:
        return False

    runs = _candidate_runs(conn, background, active, bad_inputs, names)
    for job in active:
        impact = jobs.get(job)
        if impact is None:
            first = min(bad_inputs[job], key=lambda d: (len(affected[d].path), str(d)))
            impact = jobs[job] = JobImpact(job, path=[*affected[first].path, names.job_node(job)])
        impact.bad_inputs.update({d: _snapshot(a) for d, a in bad_inputs[job].items()})
        mine, found_now = impact.runs, runs.get(job, {})
        if not mine:  # the first round of a job: nothing to merge with
            impact.runs = found_now
            continue
        for run_id, found in found_now.items():
            selected = mine.get(run_id)
            if selected is None:
                mine[run_id] = found
            else:  # a cycle's later round: keep the first, add new reasons
                for reason in found.reasons:
                    selected.because(reason)
    # What the selected runs wrote: the runs in the window came with it, the others are read now.
    unread = [s for job in active for s in jobs[job].runs.values() if s.wrote is None]
    if unread:
        written = _written(conn, [s.id for s in unread])
        for s in unread:
            s.wrote = written.get(s.id, [])
    changed = False
    for job in active:
        impact = jobs[job]
        windows = impact.windows
        outputs = reach[job]
        versions_of: dict[str, set[str]] = {str(output): set() for output in outputs}
        for selected in impact.runs.values():
            for dataset, version in selected.wrote:  # type: ignore[union-attr]
                into = versions_of.get(dataset)
                if into is not None:
                    into.add(version)
        for output, columns in outputs.items():
            versions = versions_of[str(output)]
            target = affected.get(output)
            if target is None:
                target = affected[output] = Affected(
                    columns=set() if columns is not None else None,
                    path=[*impact.path, names.dataset_node(output)],
                )
            changed |= target.absorb(versions, windows, columns)
    return changed


def _written(conn: Connection, run_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """run -> [(dataset, version)] it wrote, all as text."""
    io = t.run_io.c
    found: dict[str, list[tuple[str, str]]] = {}
    if run_ids:
        for run, dataset, version in conn.execute(
            select(uuid_text(conn, io.run_id), uuid_text(conn, io.dataset_id), uuid_text(conn, io.dataset_version_id))
            .where(in_values(conn, io.run_id, run_ids), io.io_type == "OUTPUT")
            .execution_options(**{BINARY_RESULTS: True})
        ).all():
            already = found.get(run)
            if already is None:
                found[run] = [(dataset, version)]
            else:
                already.append((dataset, version))
    return found


def _snapshot(a: Affected) -> Affected:
    return Affected(set(a.versions), list(a.windows), None if a.columns is None else set(a.columns), list(a.path))


def _candidate_runs(
    conn: Connection,
    background: Executor,
    jobs: list[uuid.UUID],
    bad_inputs: dict[uuid.UUID, dict[uuid.UUID, Affected]],
    names: _Names,
) -> dict[uuid.UUID, dict[str, SelectedRun]]:
    """job -> run -> the run with its reasons: runs that read a bad version, and runs whose interval overlaps
    a bad window of an input.

    Each run is read once: the runs in the window, plus the few that read a bad version from outside it. The
    bad reads come as bare ids, any reader's, and are matched to the runs in one pass. Reasons: the bad
    versions read, by dataset name, then the overlaps."""
    # Hot lookups are keyed on ids as text, as the database writes them (uuid_text): no uuid.UUID is built for
    # the tens of thousands of rows of a day-wide plan.
    job_of = {str(job): job for job in jobs}
    # Per job, its inputs' bad windows merged: one check tells whether a run overlaps any of them.
    job_windows = {
        str(job): merge([w for a in inputs.values() for w in a.windows]) for job, inputs in bad_inputs.items()
    }
    span = hull([w for ws in job_windows.values() for w in ws])
    found: dict[str, SelectedRun] = {}
    overlapping: list[SelectedRun] = []
    # Jobs running inside other jobs' runs (dbt under Airflow…) whose runs may have no nominal times: those
    # runs are judged by their ancestors' data time, never by when they ran (hierarchy).
    children = hierarchy.untimed_children(conn, {job: names.jobs[job] for job in jobs})
    child_keys = {str(job) for job in children}
    untimed: dict[str, list[Row]] = {}
    versions = {v for inputs in bad_inputs.values() for a in inputs.values() for v in a.versions}
    # The reads of the bad versions are fetched on a second connection while this one reads the runs in the
    # window: together they are most of a level's database time, each waiting on its own index probes. (A plan
    # only reads, and each statement has its own snapshot under READ COMMITTED anyway.)
    pending_reads = background.submit(_bad_reads, conn.engine, versions) if versions else None
    if span is not None:
        # One row per run and dataset it wrote (what it wrote is needed once selected). A run overlapping one
        # of its job's windows overlaps their hull.
        for row in runs_reaching(conn, jobs, span, ids_as_text=True, outputs=True):
            key = row[0]
            selected = found.get(key)
            if selected is None:
                if row[3] is None and child_keys and row[1] in child_keys:
                    untimed.setdefault(key, []).append(row)  # its data time is its ancestors': below
                    continue
                own = run_window(row[3], row[4], row[5], row[6], row[7])
                if not overlaps_any(own, job_windows[row[1]]):
                    continue
                selected = found[key] = SelectedRun.of(row, own, job_of[row[1]])
                selected.wrote = []
                overlapping.append(selected)
            if row[8] is not None:
                selected.wrote.append((row[8], row[9]))
        if children:
            _child_runs(conn, children, untimed, span, job_windows, job_of, found, overlapping, names)
    reads = pending_reads.result() if pending_reads is not None else []

    # run -> [(dataset label, version)] of the bad versions it read
    exact: dict[str, list[tuple[str, str]]] = {}
    if versions:
        # Any reader's: whose run is one of these jobs' is known from the runs in the window, the others are
        # looked up by id and job. That spares joining every read to its run.
        # job -> input dataset -> (its bad versions, its label): one lookup per read.
        inputs_of = {
            str(job): {str(d): (a.versions, names.dataset(d)) for d, a in inputs.items()}
            for job, inputs in bad_inputs.items()
        }

        def bad_read(run: str, job: str, dataset: str, version: str) -> None:
            bad = inputs_of[job].get(dataset)
            if bad is not None and version in bad[0]:
                exact.setdefault(run, []).append((bad[1], version))

        # The reads of runs in the window (nearly all) in one pass, bad_read inlined (tens of thousands of
        # reads); the others' runs are looked up after.
        others = []
        for read in reads:
            run, dataset, version = read
            selected = found.get(run)
            if selected is None:
                others.append(read)
                continue
            bad = inputs_of[selected.job_key].get(dataset)
            if bad is not None and version in bad[0]:
                exact.setdefault(run, []).append((bad[1], version))
        if others:  # read a bad version, but ran for data time outside every bad window (or another job's)
            r = t.runs.c
            outside = {
                row[0]: row
                for row in conn.execute(
                    select(*run_columns(conn)).where(
                        in_values(conn, r.id, {run for run, _, _ in others}), in_values(conn, r.job_id, jobs)
                    )
                ).all()
            }
            logical = hierarchy.inherited(
                conn, [run for run, row in outside.items() if row[3] is None and row[1] in child_keys]
            )
            for run, dataset, version in others:
                row = outside.get(run)
                if row is None:
                    continue  # a run of a job outside this batch
                bad_read(run, row[1], dataset, version)
                if run in exact and run not in found:
                    found[run] = SelectedRun.of(row, run_window(*row[3:8]), job_of[row[1]]).inherit(logical.get(run))
        for run, bad_reads in exact.items():
            if len(bad_reads) > 1:
                bad_reads.sort()  # by dataset label (a run reads one version of a dataset)
            found[run].reasons.extend([f"read bad version {version} of {label}" for label, version in bad_reads])

    if overlapping:
        ordered_inputs = {
            str(job): sorted(inputs.items(), key=lambda kv: names.dataset(kv[0])) for job, inputs in bad_inputs.items()
        }
        # What the other overlapping runs read: a stale version, or nothing recorded.
        pending: list[tuple[SelectedRun, uuid.UUID, Affected]] = []
        for selected in overlapping:
            inputs = ordered_inputs[selected.job_key]
            explained = exact.get(selected.id, ())
            if len(explained) == len(inputs):
                continue  # read a bad version of every bad input
            explained_labels = {label for label, _ in explained}
            for dataset, bad in inputs:
                if names.dataset(dataset) not in explained_labels and overlaps_any(selected.window, bad.windows):
                    pending.append((selected, dataset, bad))
        if pending:
            read = _reads(conn, list({s.id for s, _, _ in pending}))
            for selected, dataset, bad in pending:
                version = read.get((selected.id, str(dataset)))
                what = f"its data interval overlaps the bad window of {names.dataset(dataset)}"
                if version is None:
                    selected.reasons.append(what)
                elif version not in bad.versions:
                    selected.reasons.append(f"{what}, but it read stale version {version}")

    selected_by_job: dict[uuid.UUID, dict[str, SelectedRun]] = defaultdict(dict)
    for selected in found.values():
        selected_by_job[selected.job_id][selected.id] = selected
    return selected_by_job


def _child_runs(
    conn: Connection,
    children: set[uuid.UUID],
    untimed: dict[str, list[Row]],
    span: Window,
    job_windows: dict[str, list[Window]],
    job_of: dict[str, uuid.UUID],
    found: dict[str, SelectedRun],
    overlapping: list[SelectedRun],
    names: _Names,
) -> None:
    """Select the runs without nominal times of jobs that run inside others by their ancestors' data time:
    those found by wall clock (``untimed``, rows of runs_reaching with outputs) that really overlap a bad
    window, and those that ran outside the window for data time inside it (found from the ancestors' runs)."""
    chains = hierarchy.ancestry(conn, {job: names.jobs[job] for job in children})
    ancestors = {a.id for chain in chains.values() for a in chain}
    seeds = runs_reaching(conn, sorted(ancestors, key=str), span, ids_as_text=True) if ancestors else []
    under = hierarchy.runs_under(conn, seeds, ancestors, children, span)
    logical = {**hierarchy.inherited(conn, [run for run in untimed if run not in under]), **under}

    def select_run(row: Row) -> SelectedRun | None:
        times = logical.get(row[0])
        own = times.window() if times is not None else run_window(*row[3:8])
        if not overlaps_any(own, job_windows[row[1]]):
            return None  # ran in the window, for data time outside it
        selected = found[row[0]] = SelectedRun.of(row, own, job_of[row[1]])
        selected.inherit(times)
        overlapping.append(selected)
        return selected

    for rows in untimed.values():
        selected = select_run(rows[0])
        if selected is not None:
            selected.wrote = [(row[8], row[9]) for row in rows if row[8] is not None]
    late = [run for run in under if run not in found and run not in untimed]
    if late:
        r = t.runs.c
        for row in conn.execute(
            select(*run_columns(conn)).where(in_values(conn, r.id, late), in_values(conn, r.job_id, children))
        ).all():
            select_run(row)  # what it wrote is read with the other runs selected later (wrote is None)


def _bad_reads(engine: Engine, versions: set[str]) -> list[Row]:
    """(run, dataset, version) as text of every read of these versions, on a connection of its own."""
    with engine.connect() as conn:
        return conn.execute(
            _bad_reads_query(conn.dialect.name),
            {"versions": in_param_value(conn, t.run_io.c.dataset_version_id, versions)},
        ).all()  # fetchall: far cheaper than row-by-row for thousands of rows


@cache
def _bad_reads_query(dialect: str):
    """(run, dataset, version) as text of the reads of the versions given as the parameter ``versions``: built
    once per kind of database, run once per level."""
    io = t.run_io.c
    return (
        select(
            uuid_text(dialect, io.run_id), uuid_text(dialect, io.dataset_id), uuid_text(dialect, io.dataset_version_id)
        )
        .where(io.io_type == "INPUT", in_param(dialect, io.dataset_version_id, "versions"))
        .execution_options(**{BINARY_RESULTS: True})
    )


def _reads(conn: Connection, run_ids: list[str]) -> dict[tuple[str, str], str]:
    """(run, dataset) -> the version it read, all as text."""
    io = t.run_io.c
    if not run_ids:
        return {}
    rows = conn.execute(
        select(
            uuid_text(conn, io.run_id), uuid_text(conn, io.dataset_id), uuid_text(conn, io.dataset_version_id)
        ).where(in_values(conn, io.run_id, run_ids), io.io_type == "INPUT")
    ).all()
    return {(run, dataset): version for run, dataset, version in rows}
