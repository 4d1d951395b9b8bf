"""Detection at ingest, inside the event's transaction, from what the event carries: no walk, no history scan.

* a run event FAIL/ABORT opens a `run_failed` incident for its job; a COMPLETE resolves the job's `run_failed`
  and `late` incidents (one indexed UPDATE);
* `dataQualityAssertions` / `dataQualityMetrics` facets on a dataset open (a failure, a broken rule) or
  resolve (all passing) the dataset's `data_quality` incident;
* a published version that dropped or retyped columns of the current one is recorded as a candidate: whether
  downstream column lineage uses those columns is a walk, left to the worker (schema.py).

None of it for history: an event received long after its time (news.py) opens and resolves nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import Connection, and_, exists, select

from app.db import tables as t
from app.db.dialect import in_values
from app.schemas.openlineage import DatasetEvent, RunEvent
from app.services.incidents import records
from app.services.incidents.news import event_is_news
from app.services.ingest.extract import flatten_fields
from app.services.ingest.writer import DatasetRef, EventContext
from app.settings import QualityRule

log = logging.getLogger(__name__)

ASSERTIONS, METRICS = "dataQualityAssertions", "dataQualityMetrics"
_DATASET_METRICS = ("rowCount", "bytes", "fileCount")


def on_run_event(
    conn: Connection,
    ctx: EventContext,
    event: RunEvent,
    *,
    job_id: uuid.UUID,
    state: str | None,
    inputs: list[DatasetRef],
    outputs: list[DatasetRef],
    versions: dict[tuple[uuid.UUID, str], uuid.UUID],
) -> None:
    if not event_is_news(ctx):
        return
    job = (event.job.namespace, event.job.name)
    run_id = event.run.uuid
    if state in ("FAILED", "ABORTED"):
        _run_failed(conn, ctx, event, job_id, state)
    elif state == "COMPLETED":
        records.resolve(
            conn,
            [records.open_key("run_failed", job_id), records.open_key("late", job_id)],
            at=ctx.time,
            resolution=f"Run {run_id} of {job[1]} completed.",
        )
    described = [(r, "INPUT", {**d.facets, **d.inputFacets}) for r, d in zip(inputs, event.inputs, strict=False)]
    described += [(r, "OUTPUT", {**d.facets, **d.outputFacets}) for r, d in zip(outputs, event.outputs, strict=False)]
    for ref, io, facets in described:
        if ASSERTIONS in facets or METRICS in facets:
            _quality(conn, ctx, ref, facets, versions.get((ref.id, io)), reporter=job, run_id=run_id)


def on_dataset_event(conn: Connection, ctx: EventContext, event: DatasetEvent, ref: DatasetRef, version) -> None:
    if not event_is_news(ctx):
        return
    if ASSERTIONS in event.dataset.facets or METRICS in event.dataset.facets:
        _quality(conn, ctx, ref, event.dataset.facets, version, reporter=None, run_id=None)


def _run_failed(conn: Connection, ctx: EventContext, event: RunEvent, job_id: uuid.UUID, state: str) -> None:
    r = t.runs.c
    # Arriving late: a later run of the job already completed, so this failure is history, not an incident.
    succeeded_since = conn.execute(
        select(exists().where(r.job_id == job_id, r.state == "COMPLETED", r.ended_at > ctx.time))
    ).scalar()
    if succeeded_since:
        return
    # An Airflow DAG run that fails because a task run did: the task's incident already says it, more precisely,
    # and downstream owners hear about the failure once.
    i = t.incidents.c
    task_failed = conn.execute(
        select(
            exists(
                select(i.id)
                .join(t.runs, r.id == i.run_id)
                .where(i.status == "open", i.kind == "run_failed", r.parent_run_id == event.run.uuid)
            )
        )
    ).scalar()
    if task_failed:
        return
    error = event.run.facets.get("errorMessage")
    message = error.get("message") if isinstance(error, dict) and isinstance(error.get("message"), str) else None
    ns, name = event.job.namespace, event.job.name
    verb = "failed" if state == "FAILED" else "was aborted"
    records.open_incident(
        conn,
        records.NewIncident(
            kind="run_failed",
            subject=job_id,
            namespace=ns,
            title=f"Run of job {name} {verb}" + (f": {message.splitlines()[0][:200]}" if message else ""),
            opened_at=ctx.time,
            resolvable_after=ctx.time,
            backfill_request={"runId": str(event.run.uuid)},
            details={"state": state, "errorMessage": message},
            job=(ns, name),
            run_id=event.run.uuid,
        ),
    )


def evaluate_quality(
    facets: dict[str, Any], label: str, rules: Sequence[QualityRule]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(failed assertions, broken rules) of a dataset's quality facets."""
    failed = []
    assertions = facets.get(ASSERTIONS)
    for a in (assertions.get("assertions") if isinstance(assertions, dict) else None) or []:
        if isinstance(a, dict) and a.get("success") is False:
            column = a.get("column") if isinstance(a.get("column"), str) else None
            failed.append(
                {"assertion": str(a.get("assertion") or a.get("name") or "?"), "column": column, "success": False}
            )
    broken = []
    metrics = facets.get(METRICS)
    if isinstance(metrics, dict):
        for rule in rules:
            if not fnmatchcase(label, rule.dataset):
                continue
            if rule.column is None:
                if rule.metric in _DATASET_METRICS:
                    broken += _check(rule, None, metrics.get(rule.metric))
                continue
            columns = metrics.get("columnMetrics")
            for column, values in sorted(columns.items()) if isinstance(columns, dict) else ():
                if fnmatchcase(column, rule.column) and isinstance(values, dict):
                    broken += _check(rule, column, values.get(rule.metric))
    return failed, broken


def _check(rule: QualityRule, column: str | None, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    if (rule.max is not None and value > rule.max) or (rule.min is not None and value < rule.min):
        return [{"metric": rule.metric, "column": column, "value": value, "min": rule.min, "max": rule.max}]
    return []


def _describe(failed: list[dict[str, Any]], broken: list[dict[str, Any]]) -> str:
    parts = [f"{a['assertion']}({a['column']})" if a["column"] else a["assertion"] for a in failed]
    for b in broken:
        bound = f"> {b['max']:g}" if b["max"] is not None and b["value"] > b["max"] else f"< {b['min']:g}"
        parts.append(f"{b['metric']}{'(' + b['column'] + ')' if b['column'] else ''} = {b['value']:g} {bound}")
    return ", ".join(parts[:5]) + (f" and {len(parts) - 5} more" if len(parts) > 5 else "")


def _quality(
    conn: Connection,
    ctx: EventContext,
    ref: DatasetRef,
    facets: dict[str, Any],
    version: uuid.UUID | None,
    *,
    reporter: tuple[str, str] | None,
    run_id: uuid.UUID | None,
) -> None:
    try:
        failed, broken = evaluate_quality(facets, f"{ref.namespace}:{ref.name}", ctx.quality_rules)
    except Exception:  # a facet shaped like nothing we know must not keep the event from the model
        log.exception("quality facets of %s:%s could not be read", ref.namespace, ref.name)
        return
    key = records.open_key("data_quality", ref.id)
    if not failed and not broken:
        records.resolve(conn, [key], at=ctx.time, resolution="Its quality checks pass again.")
        return
    backfill: dict[str, Any] = {"dataset": {"namespace": ref.namespace, "name": ref.name}}
    if version is not None:
        backfill["version"] = str(version)
    records.open_incident(
        conn,
        records.NewIncident(
            kind="data_quality",
            subject=ref.id,
            namespace=ref.namespace,
            title=f"Data quality check failed on {ref.name}: {_describe(failed, broken)}",
            opened_at=ctx.time,
            resolvable_after=ctx.time,
            backfill_request=backfill,
            details={
                "failedAssertions": failed,
                "brokenRules": broken,
                "reportedBy": {"namespace": reporter[0], "name": reporter[1]} if reporter else None,
            },
            dataset=(ref.namespace, ref.name),
            run_id=run_id,
            version_id=version,
        ),
    )


def changed_columns(before: Iterable[dict], after: Iterable[dict]) -> list[dict[str, Any]]:
    """Columns of ``before`` that ``after`` dropped or gave another type (the rule of the backfill module's
    `schemaChange`)."""
    now = {f.name: f.type for f in flatten_fields(list(after))}
    found = []
    for f in flatten_fields(list(before)):
        if f.name not in now:
            found.append({"name": f.name, "before": f.type, "after": None})
        elif f.type and now[f.name] and f.type != now[f.name]:
            found.append({"name": f.name, "before": f.type, "after": now[f.name]})
    return found


def on_publish(conn: Connection, ctx: EventContext, versions: dict[uuid.UUID, uuid.UUID]) -> None:
    """Before ``versions`` (dataset id -> version id) are published: compare each with the dataset's current
    version. Called only by events that publish; one statement."""
    if not versions or not event_is_news(ctx):
        return
    new, old, d = t.dataset_versions.alias("new"), t.dataset_versions.alias("old"), t.datasets.c
    rows = conn.execute(
        select(new.c.dataset_id, new.c.id, new.c.fields, old.c.id.label("old_id"), old.c.fields.label("old_fields"))
        .join(t.datasets, d.id == new.c.dataset_id)
        .join(old, and_(old.c.id == d.current_version_id, old.c.id != new.c.id))
        .where(in_values(conn, new.c.id, list(versions.values())), d.current_version_key < ctx.key)
    ).all()
    for row in rows:
        if versions.get(row.dataset_id) != row.id or not row.fields or not row.old_fields:
            continue  # a version without a schema says nothing about columns
        changed = changed_columns(row.old_fields, row.fields)
        if changed:
            conn.execute(
                t.incident_candidates.insert().values(
                    kind="schema_change",
                    dataset_id=row.dataset_id,
                    dataset_version_id=row.id,
                    details={"changedColumns": changed, "previousVersion": str(row.old_id)},
                    detected_at=ctx.time,
                )
            )
        if _schema(row.fields) == _schema(row.old_fields):
            continue
        restored = _restores(conn, row.dataset_id, row.fields)
        if restored:
            records.resolve(conn, [restored], at=ctx.time, resolution=f"Version {row.id} has the columns again.")


def _schema(fields: list[dict]) -> dict[str, str | None]:
    return {f.name: f.type for f in flatten_fields(fields)}


def _restores(conn: Connection, dataset_id: uuid.UUID, fields: list[dict]) -> str | None:
    """The open schema incident of the dataset, if this schema has every column it reported changed, as before."""
    key = records.open_key("schema_change", dataset_id)
    details = conn.execute(select(t.incidents.c.details).where(t.incidents.c.open_key == key)).scalar()
    if details is None:
        return None
    now = {f.name: f.type for f in flatten_fields(fields)}
    changed = details.get("changedColumns") or []
    if all(
        c["name"] in now and (not c["before"] or not now[c["name"]] or now[c["name"]] == c["before"]) for c in changed
    ):
        return key
    return None
