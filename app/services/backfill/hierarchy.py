"""Jobs that run inside other jobs' runs: dbt models under a dbt invocation under an Airflow task run, Spark
applications submitted by an Airflow task. Their runs carry a `parent` run facet (and `root`) and no
nominal times of their own; the data time they processed is their nearest timed ancestor run's.

Resolved when a plan is made, not at ingest: the parent chain is read from the run links ingest already
keeps (runs.parent_run_id, jobs.parent_job_id, the `parent` facet for `root`), so a child whose parent's
events arrive after its own needs no fix-up, and only the few runs a plan looks at pay for it (a plan whose
jobs have no untimed child runs pays one indexed probe per level).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, exists, select

from app.db import tables as t
from app.db.dialect import in_values, uuid_text
from app.services.backfill.windows import Window, run_window

# Parent links followed at most (Airflow DAG → task → dbt invocation → model is three).
MAX_DEPTH = 8


class Logical(NamedTuple):
    """Nominal times a run takes from an ancestor run, and which run (id as text) they are from."""

    start: datetime
    end: datetime | None
    source: str

    def window(self) -> Window:
        return run_window(self.start, self.end, None, None, self.start)


def ancestry(conn: Connection, jobs: dict[uuid.UUID, Row]) -> dict[uuid.UUID, list[Row]]:
    """job -> its ancestor jobs' rows, nearest first, over jobs.parent_job_id: one query per generation."""
    loaded: dict[uuid.UUID, Row] = dict(jobs)
    frontier = {r.parent_job_id for r in jobs.values() if r.parent_job_id} - loaded.keys()
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        found = {r.id: r for r in conn.execute(select(t.jobs).where(in_values(conn, t.jobs.c.id, frontier)))}
        loaded.update(found)
        frontier = {r.parent_job_id for r in found.values() if r.parent_job_id} - loaded.keys()
    chains: dict[uuid.UUID, list[Row]] = {}
    for job in jobs:
        chain, seen, at = [], {job}, jobs[job].parent_job_id
        while at is not None and at not in seen and at in loaded and len(chain) < MAX_DEPTH:
            chain.append(loaded[at])
            seen.add(at)
            at = loaded[at].parent_job_id
        chains[job] = chain
    return chains


def untimed_children(conn: Connection, jobs: dict[uuid.UUID, Row]) -> set[uuid.UUID]:
    """The jobs that have a parent job and some run without nominal times: only their runs can inherit. One
    probe of ix_runs_job_nominal per job with a parent."""
    with_parent = [j for j, row in jobs.items() if row.parent_job_id is not None]
    if not with_parent:
        return set()
    r, j = t.runs.c, t.jobs.c
    untimed = exists().where(r.job_id == j.id, r.nominal_start_time.is_(None))
    return set(conn.execute(select(j.id).where(in_values(conn, j.id, with_parent), untimed)).scalars())


def inherited(conn: Connection, run_ids: Iterable[str]) -> dict[str, Logical]:
    """run (id as text) -> the nominal times of its nearest ancestor run that has them: up the parent links,
    else the `root` run its `parent` facet names. Runs with none to inherit are left out."""
    origins = list(dict.fromkeys(run_ids))
    if not origins:
        return {}
    r = t.runs.c
    found: dict[str, Logical] = {}
    at = {
        run: parent
        for run, parent in conn.execute(
            select(uuid_text(conn, r.id), uuid_text(conn, r.parent_run_id)).where(
                in_values(conn, r.id, origins), r.parent_run_id.is_not(None)
            )
        )
    }
    for _ in range(MAX_DEPTH):
        if not at:
            break
        rows = {
            run: (parent, start, end)
            for run, parent, start, end in conn.execute(
                select(
                    uuid_text(conn, r.id), uuid_text(conn, r.parent_run_id), r.nominal_start_time, r.nominal_end_time
                ).where(in_values(conn, r.id, set(at.values())))
            )
        }
        upward = {}
        for origin, run in at.items():
            row = rows.get(run)
            if row is None:
                continue
            parent, start, end = row
            if start is not None:
                found[origin] = Logical(start, end, run)
            elif parent is not None and parent != origin:
                upward[origin] = parent
        at = upward
    missing = [run for run in origins if run not in found]
    if missing:
        found.update(_from_roots(conn, missing))
    return found


def _from_roots(conn: Connection, run_ids: list[str]) -> dict[str, Logical]:
    """The `root` run of each run's `parent` facet, when that run has nominal times (a parent never received,
    or one that has none, with the Airflow DAG run above it)."""
    f, r = t.facets.c, t.runs.c
    roots: dict[str, str] = {}
    for run, facet in conn.execute(
        select(uuid_text(conn, f.entity_id), f.facet).where(
            in_values(conn, f.entity_id, run_ids), f.kind == "RUN", f.name.in_(("parent", "parentRun"))
        )
    ):
        root_id = _root_run_id(facet)
        if root_id is not None and root_id != run:
            roots[run] = root_id
    if not roots:
        return {}
    timed = {
        run: (start, end)
        for run, start, end in conn.execute(
            select(uuid_text(conn, r.id), r.nominal_start_time, r.nominal_end_time).where(
                in_values(conn, r.id, set(roots.values())), r.nominal_start_time.is_not(None)
            )
        )
    }
    return {run: Logical(*timed[root], root) for run, root in roots.items() if root in timed}


def _root_run_id(facet: Any) -> str | None:
    root = facet.get("root") if isinstance(facet, dict) else None
    run = root.get("run") if isinstance(root, dict) else None
    raw = run.get("runId") if isinstance(run, dict) else None
    try:
        return str(uuid.UUID(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None


def runs_under(
    conn: Connection, seeds: Iterable[Row], ancestors: set[uuid.UUID], children: set[uuid.UUID], span: Window
) -> dict[str, Logical]:
    """Runs (ids as text) of the ``children`` jobs without nominal times of their own, whose nearest timed
    ancestor run overlaps ``span``: from the ``ancestors`` jobs' runs that can reach the span (``seeds``, rows
    of run_columns with ids as text), down the parent links. This finds the child runs that ran (wall clock)
    outside the span for data time inside it."""
    frontier: dict[str, Logical] = {}
    for row in seeds:
        if row[3] is not None and run_window(*row[3:8]).overlaps(span):
            frontier[row[0]] = Logical(row[3], row[4], row[0])
    along = {str(j) for j in ancestors | children}
    wanted = {str(j) for j in children}
    r = t.runs.c
    found: dict[str, Logical] = {}
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        below: dict[str, Logical] = {}
        for run, job, parent, start, end in conn.execute(
            select(
                uuid_text(conn, r.id),
                uuid_text(conn, r.job_id),
                uuid_text(conn, r.parent_run_id),
                r.nominal_start_time,
                r.nominal_end_time,
            ).where(in_values(conn, r.parent_run_id, list(frontier)))
        ):
            if job not in along or run in frontier:
                continue
            logical = frontier[parent] if start is None else Logical(start, end, run)
            if start is None and job in wanted:
                found[run] = logical
            below[run] = logical
        frontier = below
    return found
