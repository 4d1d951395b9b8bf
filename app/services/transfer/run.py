"""An import: read a source chunk by chunk, keep what the filters select, store it through ingest, save a
checkpoint after each stored chunk, and at the end compare, per namespace, what the source named with what
Headwater has."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from app.db import tables as t
from app.db.engine import read_connection
from app.schemas.openlineage import LineageEvent
from app.services import identifiers as ids
from app.services.ingest.runtime import IngestRuntime
from app.services.transfer.sources import Source, SourceEvent, event_time_of
from app.services.transfer.store import store_events
from app.settings import Settings

_LOOKUP_SIZE = 500


@dataclass(frozen=True)
class Filters:
    """``since`` inclusive, ``until`` exclusive (Marquez's ``after``/``before``), on eventTime; ``namespaces``: the
    job's namespace (a DatasetEvent's dataset's), exactly as sent."""

    since: datetime | None = None
    until: datetime | None = None
    namespaces: frozenset[str] = frozenset()

    def selects(self, value: Any) -> bool:
        """Whether an event is in the selection; values too broken to tell are kept, for validation to report."""
        moment = event_time_of(value)
        if moment is not None:
            if self.since is not None and moment < self.since:
                return False
            if self.until is not None and moment >= self.until:
                return False
        if self.namespaces and isinstance(value, dict):
            namespace = namespace_of(value)
            if namespace is not None and namespace not in self.namespaces:
                return False
        return True


def namespace_of(value: dict) -> str | None:
    for key in ("job", "dataset"):
        part = value.get(key)
        if isinstance(part, dict) and isinstance(part.get("namespace"), str):
            return part["namespace"]
    return None


@dataclass
class Refusal:
    where: str
    reason: str


@dataclass
class NamespaceCounts:
    """One line of the verification report: what the source's events name, and how much of it Headwater has."""

    jobs: int = 0
    jobs_in_headwater: int = 0
    datasets: int = 0
    datasets_in_headwater: int = 0
    runs: int = 0
    runs_in_headwater: int = 0
    missing: list[str] = field(default_factory=list)  # a few of what Headwater lacks, for the report

    @property
    def complete(self) -> bool:
        return (self.jobs, self.datasets, self.runs) == (
            self.jobs_in_headwater,
            self.datasets_in_headwater,
            self.runs_in_headwater,
        )


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    resumed_from: str | None = None
    read: int = 0  # records read from the source (from the resume point on)
    skipped: int = 0  # outside --since/--until/--namespace
    stored: int = 0  # new events stored (with --dry-run: that would be)
    already_stored: int = 0  # in Headwater before (a re-run, an overlap): skipped by hash
    refused: list[Refusal] = field(default_factory=list)
    namespaces: dict[str, NamespaceCounts] = field(default_factory=dict)
    seconds: float = 0.0  # until the model was built from every event stored
    stored_seconds: float = 0.0  # until the last event was stored in the event log

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def verified(self) -> bool:
        return all(counts.complete for counts in self.namespaces.values())

    def refusals_by_reason(self) -> list[tuple[str, list[str]]]:
        grouped: dict[str, list[str]] = {}
        for refusal in self.refused:
            grouped.setdefault(refusal.reason, []).append(refusal.where)
        return sorted(grouped.items(), key=lambda item: -len(item[1]))


class _Tally:
    """What the selected valid events name, per namespace (a job's runs count under the job's namespace)."""

    def __init__(self) -> None:
        self.jobs: set[tuple[str, str]] = set()
        self.datasets: set[tuple[str, str]] = set()
        self.runs: dict[uuid.UUID, str] = {}

    def add(self, event: LineageEvent) -> None:
        job = getattr(event, "job", None)
        if job is not None:
            self.jobs.add((job.namespace, job.name))
            run = getattr(event, "run", None)
            if run is not None:
                try:
                    self.runs[run.uuid] = job.namespace
                except ValueError:
                    pass
        dataset = getattr(event, "dataset", None)
        if dataset is not None:
            self.datasets.add((dataset.namespace, dataset.name))
        for io in (*getattr(event, "inputs", ()), *getattr(event, "outputs", ())):
            self.datasets.add((io.namespace, io.name))


class Checkpoint:
    """Where an import got to, in a small JSON file written (atomically) after each stored chunk: a run given
    the same file starts there. It belongs to one source; a file of another source is refused."""

    def __init__(self, path: Path, source: str):
        self.path, self.source = path, source

    def load(self) -> str | None:
        if not self.path.exists():
            return None
        saved = json.loads(self.path.read_text())
        if saved.get("source") != self.source:
            raise ValueError(f"checkpoint {self.path} belongs to {saved.get('source')!r}, not {self.source!r}")
        return saved.get("resume_from")

    def save(self, resume_from: str, stored: int) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"source": self.source, "resume_from": resume_from, "stored": stored}))
        os.replace(partial, self.path)


Progress = Callable[[int, "ImportReport"], None]  # (records read so far, the report so far)


def run_import(
    engine: Engine,
    source: Source,
    *,
    filters: Filters = Filters(),
    chunk_size: int = 500,
    dry_run: bool = False,
    checkpoint: Checkpoint | None = None,
    progress: Progress = lambda read, report: None,
    settings: Settings | None = None,
) -> ImportReport:
    """Store the source's events in Headwater's event log, chunk by chunk, and wait until the model is built
    from them (by this process's applier, and by a running server's if there is one), then verify."""
    started = time.monotonic()
    runtime = None if dry_run else IngestRuntime(engine, settings or Settings()).start()
    try:
        report, tally = _import(engine, runtime, source, filters, chunk_size, dry_run, checkpoint, progress)
        report.stored_seconds = report.seconds
        if runtime is not None:
            runtime.wait_applied()
        report.seconds = time.monotonic() - started  # until the model is built from everything stored
    finally:
        if runtime is not None:
            runtime.stop()
    report.namespaces = verify(engine, tally)
    return report


def _import(engine, runtime, source, filters, chunk_size, dry_run, checkpoint, progress) -> tuple[ImportReport, _Tally]:
    started = time.monotonic()
    report = ImportReport(source=source.identity, dry_run=dry_run)
    report.resumed_from = checkpoint.load() if checkpoint is not None else None
    tally = _Tally()
    for chunk in source.chunks(chunk_size, report.resumed_from):
        shown = [report.read]  # records read before this chunk, then how far into it the ingest got
        report.read += len(chunk.events)

        def stored_one(shown: list[int] = shown) -> None:
            shown[0] += 1
            report.seconds = time.monotonic() - started
            progress(shown[0], report)

        selected: list[SourceEvent] = []
        for record in chunk.events:
            if record.unreadable is not None:
                report.refused.append(Refusal(record.where, record.unreadable))
            elif filters.selects(record.value):
                selected.append(record)
            else:
                report.skipped += 1
        result = store_events(
            engine,
            runtime.submit if runtime is not None else None,
            [record.value for record in selected],
            dry_run=dry_run,
            on_stored=stored_one,
        )
        report.stored += result.stored
        report.already_stored += result.already_stored
        report.refused.extend(Refusal(selected[index].where, reason) for index, reason in result.refused)
        for event in result.events:
            tally.add(event)
        if checkpoint is not None and not dry_run and chunk.resume_from is not None:
            checkpoint.save(chunk.resume_from, report.stored)
        report.seconds = time.monotonic() - started
        progress(report.read, report)
    report.seconds = time.monotonic() - started
    return report, tally


def verify(engine: Engine, tally: _Tally) -> dict[str, NamespaceCounts]:
    """Per namespace: the jobs, datasets and runs the events name, and how many of them Headwater has."""
    counts: dict[str, NamespaceCounts] = {}

    def line(namespace: str) -> NamespaceCounts:
        return counts.setdefault(namespace, NamespaceCounts())

    present_jobs = _present(engine, t.jobs, {ids.job_id(*job): job for job in tally.jobs})
    for job in tally.jobs:
        line(job[0]).jobs += 1
        if job in present_jobs:
            line(job[0]).jobs_in_headwater += 1
        else:
            _note(line(job[0]), f"job {job[1]}")
    present_datasets = _present(engine, t.datasets, {ids.dataset_id(*ds): ds for ds in tally.datasets})
    for dataset in tally.datasets:
        line(dataset[0]).datasets += 1
        if dataset in present_datasets:
            line(dataset[0]).datasets_in_headwater += 1
        else:
            _note(line(dataset[0]), f"dataset {dataset[1]}")
    present_runs = _present(engine, t.runs, {run: run for run in tally.runs})
    for run, namespace in tally.runs.items():
        line(namespace).runs += 1
        if run in present_runs:
            line(namespace).runs_in_headwater += 1
        else:
            _note(line(namespace), f"run {run}")
    return dict(sorted(counts.items()))


def _note(counts: NamespaceCounts, what: str) -> None:
    if len(counts.missing) < 5:
        counts.missing.append(what)


def _present(engine: Engine, table, keys_by_id: dict[uuid.UUID, Any]) -> set[Any]:
    """The keys whose row (by id) exists in ``table``."""
    found: set[Any] = set()
    wanted = list(keys_by_id)
    with read_connection(engine) as connection:
        for start in range(0, len(wanted), _LOOKUP_SIZE):
            part = wanted[start : start + _LOOKUP_SIZE]
            for row_id in connection.execute(select(table.c.id).where(table.c.id.in_(part))).scalars():
                found.add(keys_by_id[row_id])
    return found
