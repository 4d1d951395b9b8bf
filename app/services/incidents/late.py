"""Late datasets: a job's cadence is learned from the nominal start times of its recent completed runs; when
it has not completed a run for cadence × (1 + tolerance) since its last one, the datasets it writes are late.

Late is judged in real time. A job whose last completion Headwater learned of as history (received long after
it happened: a migration, a replay) is not late, however old that completion is: replayed history never pages
anyone, and the job's next real-time completion makes it judged again. And the interval runs from when
Headwater heard of the completion too: a backlog of completions posted at once (a client catching up) does not
make the job late between two of them."""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, exists, select

from app.db import tables as t
from app.db.dialect import in_values, newest_per_key, serialize_on
from app.db.engine import read_connection, write_transaction
from app.services.incidents import records
from app.services.incidents.news import is_news
from app.services.ingest import job_lock_key
from app.services.lineage import current_edges
from app.settings import Settings

RECENT_RUNS = 10  # completed runs per job the cadence is learned from


@dataclass
class Overdue:
    job_id: uuid.UUID
    cadence: timedelta
    last_completed: datetime
    last_nominal_end: datetime
    expected_by: datetime


def _human(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:g} {unit}" + ("s" if value != 1 else "")
    return f"{seconds:g} seconds"


def overdue_jobs(engine: Engine, settings: Settings, now: datetime) -> list[Overdue]:
    r = t.runs.c
    completed = select(r.id, r.job_id, r.nominal_start_time, r.nominal_end_time, r.ended_at).where(
        r.state == "COMPLETED", r.nominal_start_time.is_not(None), r.ended_at.is_not(None)
    )
    with read_connection(engine) as conn:
        # Each job's newest completed runs only (an index probe per job on Postgres): this runs every minute
        # in the serving process, so it must not read run history.
        recent = newest_per_key(conn, t.jobs.c.id, completed, r.job_id, r.nominal_start_time.desc(), RECENT_RUNS)
        rows = conn.execute(recent).all()
    runs = defaultdict(list)
    for row in rows:
        runs[row.job_id].append(row)
    found: list[tuple[uuid.UUID, Overdue]] = []
    for job_id, history in runs.items():
        starts = sorted({row.nominal_start_time for row in history})
        if len(starts) < settings.late_min_runs:
            continue
        cadence = statistics.median(b - a for a, b in zip(starts, starts[1:], strict=False))
        if cadence <= timedelta(0):
            continue
        last_run = max(history, key=lambda row: row.ended_at)
        expected_by = last_run.ended_at + cadence * (1 + settings.late_tolerance)
        if now > expected_by:
            latest = max(history, key=lambda row: row.nominal_start_time)
            nominal_end = latest.nominal_end_time or latest.nominal_start_time + cadence
            found.append((last_run.id, Overdue(job_id, cadence, last_run.ended_at, nominal_end, expected_by)))
    if not found:
        return []
    heard = _heard_in_real_time(engine, [run_id for run_id, _ in found], settings)
    late = []
    for run_id, overdue in found:
        if run_id not in heard:
            continue  # its last completion is history
        overdue.expected_by = max(overdue.expected_by, heard[run_id] + overdue.cadence * (1 + settings.late_tolerance))
        if now > overdue.expected_by:
            late.append(overdue)
    return late


def _heard_in_real_time(engine: Engine, run_ids: list[uuid.UUID], settings: Settings) -> dict[uuid.UUID, datetime]:
    """When Headwater received the COMPLETE event of each run among ``run_ids`` that was news when it arrived
    (one index probe per run)."""
    e = t.lineage_events.c
    with read_connection(engine) as conn:
        rows = conn.execute(
            select(e.run_id, e.event_time, e.received_at).where(
                in_values(conn, e.run_id, run_ids), e.event_type == "COMPLETE"
            )
        ).all()
    heard: dict[uuid.UUID, datetime] = {}
    for row in rows:
        if is_news(row.event_time, row.received_at, settings.incident_max_event_age):
            heard[row.run_id] = min(heard.get(row.run_id, row.received_at), row.received_at)
    return heard


def check(engine: Engine, settings: Settings, now: datetime) -> int:
    """Open a `late` incident for each overdue job that writes datasets (none while its failure is open: that
    incident already says it). Returns how many were opened."""
    overdue = overdue_jobs(engine, settings, now)
    if not overdue:
        return 0
    by_job = {o.job_id: o for o in overdue}
    i, j, d, r = t.incidents.c, t.jobs.c, t.datasets.c, t.runs.c
    opened = 0
    with read_connection(engine) as conn:
        keys = [records.open_key(kind, job) for job in by_job for kind in ("late", "run_failed")]
        already = set(conn.execute(select(i.open_key).where(in_values(conn, i.open_key, keys))).scalars())
        wanted = {
            job for job in by_job if not {records.open_key("late", job), records.open_key("run_failed", job)} & already
        }
        outputs = defaultdict(list)
        for job, dataset in current_edges(conn, "OUTPUT", from_jobs=wanted) if wanted else []:
            outputs[job].append(dataset)
        jobs = {row.id: row for row in conn.execute(select(t.jobs).where(in_values(conn, j.id, list(outputs))))}
        names = {
            row.id: (row.namespace_name, row.name)
            for row in conn.execute(
                select(d.id, d.namespace_name, d.name).where(
                    in_values(conn, d.id, {x for xs in outputs.values() for x in xs})
                )
            )
        }
    for job_id, datasets in sorted(outputs.items(), key=lambda kv: str(kv[0])):
        o, job = by_job[job_id], jobs[job_id]
        late = sorted(names[x] for x in datasets)
        first = late[0]
        others = f" (and {len(late) - 1} more)" if len(late) > 1 else ""
        title = (
            f"{first[1]}{others} is late: {job.name} has not completed a run since "
            f"{o.last_completed:%Y-%m-%d %H:%M} UTC (runs every {_human(o.cadence)})"
        )
        start = min(o.last_nominal_end, now - timedelta(seconds=1))
        with write_transaction(engine) as conn:
            # The job's events apply one at a time under this lock: a completion that arrived since the runs
            # were read above is seen here, and one arriving later resolves the incident (resolvable_after).
            serialize_on(conn, job_lock_key(job.namespace_name, job.name))
            if conn.execute(
                select(exists().where(r.job_id == job_id, r.state == "COMPLETED", r.ended_at > o.last_completed))
            ).scalar():
                continue
            incident = records.open_incident(
                conn,
                records.NewIncident(
                    kind="late",
                    subject=job_id,
                    namespace=first[0],
                    title=title,
                    opened_at=now,
                    resolvable_after=o.last_completed,
                    backfill_request={
                        "job": {"namespace": job.namespace_name, "name": job.name},
                        "start": start.isoformat(),
                        "end": now.isoformat(),
                    },
                    details={
                        "cadenceSeconds": o.cadence.total_seconds(),
                        "lastCompletedAt": o.last_completed.isoformat(),
                        "expectedBy": o.expected_by.isoformat(),
                        "lateDatasets": [{"namespace": ns, "name": name} for ns, name in late],
                    },
                    job=(job.namespace_name, job.name),
                    dataset=first,
                ),
                count_repeat=False,  # another server process may have seen it at the same moment
            )
        opened += incident is not None
    return opened
