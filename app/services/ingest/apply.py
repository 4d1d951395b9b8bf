"""How each kind of OpenLineage event changes the model (Marquez's documented semantics, made
order-independent and transactional). Called inside the event's transaction, after its raw row."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from app.db import tables as t
from app.schemas.openlineage import DatasetEvent, InputDataset, JobEvent, OutputDataset, RunEvent
from app.services import identifiers as ids
from app.services.incidents import detect as incident_detection
from app.services.ingest import extract
from app.services.ingest.writer import (
    DatasetRef,
    EventContext,
    ModelWriter,
    dataset_columns_for,
    event_key,
    job_columns_for,
)

IO_TYPES = ("INPUT", "OUTPUT")


def dataset_names(event: RunEvent | DatasetEvent | JobEvent) -> list[tuple[str, str]]:
    """The (namespace, name) of every dataset applying ``event`` resolves."""
    if isinstance(event, DatasetEvent):
        return [(event.dataset.namespace, event.dataset.name)]
    names = [(d.namespace, d.name) for d in [*event.inputs, *event.outputs]]
    if isinstance(event, RunEvent):
        names += [pair for d in event.outputs for pair in extract.column_lineage_inputs(d.facets)]
    return names


def event_resources(
    event: RunEvent | DatasetEvent | JobEvent, names: list[tuple[str, str]], resolved
) -> dict[tuple, bool]:
    """What applying ``event`` touches that another event may touch too → whether it writes it (else it only
    reads it or inserts it if missing, which events may do side by side). Its run and job are written, its
    parents' only ensured; its outputs written, its inputs read (written when they carry quality results,
    which open or resolve the dataset's incident); datasets (``names``: the event's ``dataset_names``) by
    id (``resolved``: name → primary (namespace, name, id)) and by every name the event gives them, symlinks
    written (adding one changes what a name stands for). Events whose resources conflict are applied one
    after the other; the others side by side (app/db/lockstep.py). Namespaces and sources are shared by all:
    the batch memo writes them as often as needed (BatchMemo.deferred)."""
    found: dict[tuple, bool] = {}

    def touch(resource: tuple, writes: bool) -> None:
        found[resource] = found.get(resource, False) or writes

    def dataset(pair: tuple[str, str], writes: bool) -> None:
        touch(("name", *pair), writes)
        touch(("dataset", resolved[pair][2] if pair in resolved else ids.dataset_id(*pair)), writes)

    if isinstance(event, DatasetEvent):
        written, read = [event.dataset], []
    elif isinstance(event, RunEvent):
        quality = (incident_detection.ASSERTIONS, incident_detection.METRICS)
        checked = [any(q in d.facets or q in d.inputFacets for q in quality) for d in event.inputs]
        written = [*event.outputs, *(d for d, c in zip(event.inputs, checked, strict=True) if c)]
        read = [d for d, c in zip(event.inputs, checked, strict=True) if not c]
        for pair in names:
            dataset(pair, False)  # the datasets its column lineage reads from
    else:
        written, read = [*event.inputs, *event.outputs], []
    for d in read:
        dataset((d.namespace, d.name), False)
    for d in written:
        dataset((d.namespace, d.name), True)
    for d in [*written, *read]:
        for ns, name, _ in extract.symlinks(d.facets):
            dataset((ns, name), True)
    if not isinstance(event, DatasetEvent):
        touch(("job", event.job.namespace, event.job.name), True)
    if isinstance(event, RunEvent):
        touch(("run", event.run.uuid), True)
        parent = extract.parent_of(event.run.facets)
        if parent:
            touch(("run", parent.run_id), False)
            touch(("job", parent.namespace, parent.name), False)
    return found


def facets_nothing_reads(
    event: RunEvent | DatasetEvent | JobEvent, resolved, *, datasets: bool
) -> list[tuple[uuid.UUID, str]]:
    """(entity id, facet name) of the facets applying ``event`` writes as a writer (later event wins) and that
    applying other events does not read: run, job and dataset facets and a run's input and output facets, but
    not a dataset version's (its column lineage is derived from them, and they move to the version that
    supersedes it). Of these, only the latest event's row survives a batch, whatever order its events are
    applied in (BatchMemo.latest_facet_writes); the columns that mirror them follow that row.
    ``resolved``: name → primary (namespace, name, id); ``datasets`` False leaves out every facet keyed by a
    dataset (when a symlink in the batch may make a name stand for another dataset halfway through)."""

    def named(facets: dict, entity: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        return [(entity, name) for name, value in facets.items() if isinstance(value, dict)]

    if isinstance(event, DatasetEvent):
        d = event.dataset
        return named(d.facets, resolved[(d.namespace, d.name)][2]) if datasets else []
    found = named(event.job.facets, ids.job_id(event.job.namespace, event.job.name))
    if not isinstance(event, RunEvent):
        return found
    run_id = event.run.uuid
    found += named(event.run.facets, run_id)
    if datasets:
        for io_type, refs in (("INPUT", event.inputs), ("OUTPUT", event.outputs)):
            for d in refs:
                dataset_id = resolved[(d.namespace, d.name)][2]
                link_facets = d.inputFacets if io_type == "INPUT" else d.outputFacets
                if link_facets:
                    found += named(link_facets, ids.run_io_id(run_id, dataset_id, io_type))
                if io_type == "OUTPUT":
                    found += named(d.facets, dataset_id)
    return found


def _refs(datasets: list[InputDataset] | list[OutputDataset], resolved) -> list[DatasetRef]:
    return [DatasetRef(*resolved[(d.namespace, d.name)], facets=d.facets) for d in datasets]


def _prepare_datasets(w: ModelWriter, refs: list[DatasetRef], extra_namespaces: set[str]) -> set[uuid.UUID]:
    """Namespaces, sources, dataset rows and symlinks for the datasets an event names. The namespaces of
    symlinked names exist too, so a dataset can be looked up under any of its names."""
    aliases = {ns for r in refs for ns, _, _ in extract.symlinks(r.facets)}
    w.ensure_namespaces({r.namespace for r in refs} | aliases | extra_namespaces)
    w.ensure_sources(r.source or ("default", "") for r in refs)
    new = w.ensure_datasets(refs)
    for r in refs:
        w.add_symlinks(r)
    return new


def _follow_facet_winners(
    w: ModelWriter,
    winners,
    *,
    job_id: uuid.UUID | None,
    job_is_new: bool,
    new_datasets: set[uuid.UUID],
    dataset_ids: set[uuid.UUID],
) -> None:
    """Keep the columns that mirror facets (description, location, job type, lifecycle, source) equal to
    the facet values that won. New rows were inserted with this event's values already; in a batch, another
    reader of a new dataset may have set them since (readers share a wave), and the batch memo knows the
    columns' values, so only a column that changed costs a statement."""
    job_values: dict[str, Any] = {}
    dataset_values: dict[uuid.UUID, dict[str, Any]] = {}
    in_batch = w.ctx.memo is not None
    for entity, name, value in winners:
        if entity == job_id and not job_is_new:
            job_values.update(job_columns_for(name, value))
        elif entity in dataset_ids and (in_batch or entity not in new_datasets):
            dataset_values.setdefault(entity, {}).update(dataset_columns_for(name, value))
    if job_id is not None:
        w.set_columns(t.jobs, job_id, job_values)
    for dataset_id in sorted(dataset_values, key=str):
        w.set_columns(t.datasets, dataset_id, dataset_values[dataset_id])


def _new_version_row(
    ref: DatasetRef,
    version_id: uuid.UUID,
    fields: list[dict],
    run_id: uuid.UUID | None,
    ctx: EventContext,
    external: str | None,
) -> dict:
    return {
        "id": version_id,
        "dataset_id": ref.id,
        "namespace_name": ref.namespace,
        "dataset_name": ref.name,
        "run_id": run_id,
        "schema_version_id": ids.dataset_schema_version(ref.namespace, ref.name, fields),
        "fields": fields,
        "lifecycle_state": extract.lifecycle_state(ref.facets),
        "external_version": external,
        "source_name": ref.source_name,
        "created_at": ctx.time,
    }


def _placeholder_version_row(ref: DatasetRef, ctx: EventContext) -> dict:
    """The version standing for data read before any writer of it was seen. Only the dataset's identity
    (and a pinned `version` facet) name it, so every reader names the same one in any order."""
    external = extract.external_version(ref.facets)
    version = ids.dataset_version(ref.namespace, "", ref.name, ref.name, [], None, None)
    if external:
        version = ids.name_uuid_from_bytes(f"{version}:{external}".encode())
    return {
        **_new_version_row(ref, version, [], None, ctx, external),
        "lifecycle_state": None,
        "source_name": None,
    }


def _content_version(ref: DatasetRef, fields: list[dict], run_id: uuid.UUID | None) -> uuid.UUID:
    return ids.dataset_version(
        ref.namespace, ref.source_name, ref.name, ref.name, fields, extract.lifecycle_state(ref.facets), run_id
    )


# A read pinned by the `version` facet (Iceberg snapshot, Delta version…) is never re-pointed.
_PINNED = "~"


def _version_read(
    w: ModelWriter, ref: DatasetRef, current: tuple[uuid.UUID | None, str] | None, ctx: EventContext
) -> tuple[uuid.UUID | None, str]:
    """Which version of an input this event read: the one its `version` facet names, else the one
    published last before the event (usually the current one; an older one when events arrive late)."""
    external = extract.external_version(ref.facets)
    if external:
        return w.version_by_external(ref.id, external), _PINNED
    if current is None or current[0] is None:
        return None, ""
    version, key = current
    if key == "":
        # A placeholder adopted by an earlier read (no writer seen yet); it dates from the earliest read.
        w.backdate_version(version)
        return current
    if key < ctx.key:
        return current
    found = w.version_as_of(ref.id, ctx.key)
    return found if found else (None, "")


def _outputs_in_order(
    w: ModelWriter, run_id: uuid.UUID, dataset_ids: set[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, datetime, DatasetRef, list[dict]]]:
    """The run's version of each of these outputs as its events so far give it in key order: dataset id →
    (version, creation time, the reference and fields of the event that created it). In order, an event with
    a schema makes the version of its content, which dates from the event that first reported that content
    since the content last changed (schema A, then B, then A again: from the second A); an event without
    schema keeps the version (the first one makes the schema-less version). Reads the run's stored events:
    only an event arriving after a later one of its run pays for it."""
    events: list[tuple[str, RunEvent]] = []
    for digest, payload in w.run_events_so_far(run_id):
        try:
            events.append((digest, RunEvent.model_validate(payload)))
        except ValidationError:
            continue
    resolved = w.resolve({(d.namespace, d.name) for _, event in events for d in event.outputs})
    reports: list[tuple[str, datetime, DatasetRef, list[dict] | None]] = []
    for digest, event in events:
        key = event_key(event.eventTime, digest)
        reports += [
            (key, event.eventTime, ref, extract.schema_fields(ref.facets))
            for ref in _refs(event.outputs, resolved)
            if ref.id in dataset_ids
        ]
    result: dict[uuid.UUID, tuple[uuid.UUID, datetime, DatasetRef, list[dict]]] = {}
    for _, time, ref, fields in sorted(reports, key=lambda report: report[0]):
        if fields is None and ref.id in result:
            continue
        version = _content_version(ref, fields or [], run_id)
        if ref.id not in result or result[ref.id][0] != version:
            result[ref.id] = (version, time, ref, fields or [])
    return result


def _io_before_next_terminal(w: ModelWriter, run_id: uuid.UUID, key: str, run_io: dict) -> dict:
    """The IO a terminal event older than its run's winning one finishes with: in key order, what the run's
    events named before its next terminal event (events in between finish it again with their IO; events after
    the next one count for that one). Reads the run's stored events: only such a late terminal event pays."""
    events = []
    for digest, payload in w.run_events_so_far(run_id):
        try:
            event = RunEvent.model_validate(payload)
        except ValidationError:
            continue
        events.append((event_key(event.eventTime, digest), event))
    later_terminals = [
        k
        for k, event in events
        if k > key and (state := extract.run_state(event.eventType)) and state[0] in extract.TERMINAL_STATES
    ]
    bound = min(later_terminals, default=None)
    named = [
        ((ref.namespace, ref.name), io_type)
        for k, event in events
        if bound is None or k < bound
        for io_type, refs in (("INPUT", event.inputs), ("OUTPUT", event.outputs))
        for ref in refs
    ]
    resolved = w.resolve({name for name, _ in named})
    named_ids = {(resolved[name][2], io_type) for name, io_type in named}
    return {io: value for io, value in run_io.items() if io in named_ids}


FacetEntry = tuple[uuid.UUID, str, str, Any]  # (entity id, kind, facet name, facet)


def _run_event_facets(
    event: RunEvent,
    run_id: uuid.UUID,
    job_id: uuid.UUID,
    inputs: list[DatasetRef],
    outputs: list[DatasetRef],
    event_io: dict[tuple[uuid.UUID, str], uuid.UUID],
) -> tuple[list[FacetEntry], list[FacetEntry]]:
    """The facets a run event sets (later event wins), and the dataset facets its *readers* send (kept
    only where no writer has said otherwise)."""
    entries: list[FacetEntry] = []
    entries += [(run_id, "RUN", name, value) for name, value in event.run.facets.items()]
    entries += [(job_id, "JOB", name, value) for name, value in event.job.facets.items()]
    reader_entries: list[FacetEntry] = []
    for r, d in zip(inputs, event.inputs, strict=False):
        reader_entries += [(r.id, "DATASET", name, value) for name, value in d.facets.items()]
        link = ids.run_io_id(run_id, r.id, "INPUT")
        entries += [(link, "INPUT", name, value) for name, value in d.inputFacets.items()]
    for r, d in zip(outputs, event.outputs, strict=False):
        version = event_io[(r.id, "OUTPUT")]
        entries += [(r.id, "DATASET", name, value) for name, value in d.facets.items()]
        entries += [(version, "DATASET_VERSION", name, value) for name, value in d.facets.items()]
        link = ids.run_io_id(run_id, r.id, "OUTPUT")
        entries += [(link, "OUTPUT", name, value) for name, value in d.outputFacets.items()]
    return entries, reader_entries


def apply_run_event(conn: Connection, ctx: EventContext, event: RunEvent) -> None:
    w = ModelWriter(conn, ctx)
    run_id = event.run.uuid
    job_ns, job_name = event.job.namespace, event.job.name
    parent = extract.parent_of(event.run.facets)
    attrs = extract.job_attributes(event.job.facets)
    state = extract.run_state(event.eventType)
    streaming = attrs.type == "STREAM" and bool(event.inputs or event.outputs)
    completes = state is not None and state[0] == "COMPLETED"
    terminal_or_streaming = streaming or (state is not None and state[0] in extract.TERMINAL_STATES)

    # Datasets: the event's inputs and outputs, plus datasets its column lineage reads from.
    names = ctx.dataset_names if ctx.dataset_names is not None else dataset_names(event)
    column_sources = names[len(event.inputs) + len(event.outputs) :]
    resolved = w.resolve(names)
    inputs, outputs = _refs(event.inputs, resolved), _refs(event.outputs, resolved)
    column_inputs = {pair: DatasetRef(*resolved[pair]) for pair in column_sources}
    new_datasets = _prepare_datasets(
        w,
        [*inputs, *outputs, *column_inputs.values()],
        {job_ns} | ({parent.namespace} if parent else set()),
    )
    # Dataset row locks come first, before any other row this event writes: exclusive on what this event
    # will publish, shared on what it reads (see ModelWriter.current_versions). Taking them later would let
    # a reader wait on a publisher's facet rows while the publisher waits on the reader's share lock.
    if completes or streaming:
        w.lock_datasets(r.id for r in outputs)
    current = w.current_versions(r.id for r in inputs)

    # The job (and its parent, e.g. the Airflow DAG of a task).
    parent_job_id = None
    if parent:
        parent_job_id, _ = w.ensure_job(parent.namespace, parent.name, simple_name=parent.name, attrs=None)
    # Whether it was new is not known here: its mirrored columns are set as for any job (a no-op if equal).
    job_id, current_version_key = w.upsert_job(
        job_ns,
        job_name,
        simple_name=extract.simple_name(job_name, parent),
        attrs=attrs,
        parent_job_id=parent_job_id,
        current_run=run_id,
    )

    # The run and its state history.
    if parent:
        w.ensure_parent_run(parent.run_id, parent.raw_run_id, parent_job_id, parent.namespace, parent.name)
    sends_location = extract.facet(event.job.facets, "sourceCodeLocation") is not None
    run_row = w.upsert_run(
        run_id,
        external_id=event.run.runId,
        job_id=job_id,
        namespace=job_ns,
        job_name=job_name,
        parent_run_id=parent.run_id if parent else None,
        state=state,
        nominal=extract.nominal_times(event.run.facets),
        location=(attrs.location,) if sends_location else None,
    )
    # The job's location as the run's own events give it names the run's job version; this event moved it if
    # it is the latest of them to send one.
    location, moves_location = run_row.location, sends_location and run_row.location_key == ctx.key
    if event.eventType:
        w.record_state(run_id, event.eventType.upper()[:32], state[0] if state else None)

    # Dataset versions read and written by this run.
    earlier_io = {} if w.created_run(run_id) else {(row.dataset_id, row.io_type): row for row in w.run_io(run_id)}
    version_rows: list[dict] = []
    adopt: list[tuple[uuid.UUID, uuid.UUID]] = []
    superseded: list[tuple[uuid.UUID, uuid.UUID]] = []
    event_io: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    read_keys: dict[uuid.UUID, str] = {}
    kept_keys: dict[tuple[uuid.UUID, str], str] = {}
    for r in inputs:
        version, version_key = _version_read(w, r, current.get(r.id), ctx)
        if version is None:
            # Nothing published before this read: a placeholder version, re-pointed if a writer's COMPLETE
            # from before this read arrives later. It carries no schema, so every reader names the same
            # placeholder whatever schema facet it sent (the dataset's schema facet still has it).
            row = _placeholder_version_row(r, ctx)
            version = row["id"]
            version_rows.append(row)
            adopt.append((r.id, version))
        event_io[(r.id, "INPUT")] = version
        read_keys[r.id] = version_key
    late = {
        r.id for r in outputs if (r.id, "OUTPUT") in earlier_io and earlier_io[(r.id, "OUTPUT")].event_key > ctx.key
    }
    # An event arriving after a later one of its run that reported the same output: the run's version of it
    # is what its events so far give in key order (schemas may change back and forth between events).
    in_order = _outputs_in_order(w, run_id, late) if late else {}
    dated: list[tuple[uuid.UUID, datetime]] = []
    for r in outputs:
        earlier = earlier_io.get((r.id, "OUTPUT"))
        fields = extract.schema_fields(r.facets)
        if r.id in late:
            version, created_at, creator, creator_fields = in_order[r.id]
            if version != earlier.dataset_version_id:
                row = _new_version_row(
                    creator, version, creator_fields, run_id, ctx, extract.external_version(creator.facets)
                )
                version_rows.append({**row, "created_at": created_at})
                superseded.append((earlier.dataset_version_id, version))
                # The link keeps the later event's key (it is still the run's latest event on this output).
                kept_keys[(r.id, "OUTPUT")] = earlier.event_key
            dated.append((version, created_at))
        elif earlier is not None and fields is None:
            # This event adds no schema to the version.
            version = earlier.dataset_version_id
        else:
            version = _content_version(r, fields or [], run_id)
            version_rows.append(
                _new_version_row(r, version, fields or [], run_id, ctx, extract.external_version(r.facets))
            )
            if earlier is not None and earlier.dataset_version_id != version:
                superseded.append((earlier.dataset_version_id, version))
        event_io[(r.id, "OUTPUT")] = version
    w.insert_versions(version_rows)
    for version, created_at in dated:
        w.set_version_created_at(version, created_at)
    for dataset_id, version in adopt:
        w.adopt_first_version(dataset_id, version)
    w.upsert_run_io(
        [
            {
                "run_id": run_id,
                "dataset_id": dataset_id,
                "io_type": io_type,
                "id": ids.run_io_id(run_id, dataset_id, io_type),
                "dataset_version_id": version,
                "event_key": kept_keys.get((dataset_id, io_type), ctx.key),
                "version_key": read_keys.get(dataset_id, "") if io_type == "INPUT" else "",
                "first_read_at": ctx.time if io_type == "INPUT" else None,
            }
            for (dataset_id, io_type), version in event_io.items()
        ]
    )

    # Placeholders nothing reads: the one this event made for a read that a later event of the run already
    # moved to a published version, or one a read this event moved (as when a publish re-points reads).
    w.drop_unread_placeholders(
        [
            dataset_id
            for dataset_id, placeholder in adopt
            if (dataset_id, "INPUT") in earlier_io
            and earlier_io[(dataset_id, "INPUT")].event_key > ctx.key
            and earlier_io[(dataset_id, "INPUT")].dataset_version_id != placeholder
        ]
        + [
            dataset_id
            for (dataset_id, io_type), row in earlier_io.items()
            if io_type == "INPUT"
            and row.is_placeholder
            and (dataset_id, io_type) in event_io
            and row.event_key < ctx.key
            and row.dataset_version_id != event_io[(dataset_id, io_type)]
        ]
    )

    # Facets: run, job, dataset, dataset version, and the run's input/output facets.
    entries, reader_entries = _run_event_facets(event, run_id, job_id, inputs, outputs, event_io)
    winners = w.upsert_facets(entries)
    # A reader's facet that is new describes the dataset until a writer says otherwise, whichever came
    # first: its mirrored columns (description...) follow it as they follow a writer's.
    winners += w.add_reader_facets(reader_entries)
    _follow_facet_winners(
        w,
        winners,
        job_id=job_id,
        job_is_new=False,
        new_datasets=new_datasets,
        dataset_ids={r.id for r in [*inputs, *outputs]},
    )

    # Column lineage is derived from the version's merged facets when the version is published; a late
    # event that changes the facet of an already published version derives it again.
    republish = [
        event_io[(r.id, "OUTPUT")]
        for r in outputs
        if (r.id, "OUTPUT") in earlier_io
        and earlier_io[(r.id, "OUTPUT")].dataset_version_id == event_io[(r.id, "OUTPUT")]
        and any(entity == event_io[(r.id, "OUTPUT")] and name == "columnLineage" for entity, name, _ in winners)
    ]
    if republish and not (completes or streaming):
        w.derive_from_published(republish)

    # Incidents from what this event says (failed run, quality checks); see app/services/incidents/detect.py.
    if ctx.detect_incidents:
        incident_detection.on_run_event(
            conn,
            ctx,
            event,
            job_id=job_id,
            state=state[0] if state else None,
            inputs=inputs,
            outputs=outputs,
            versions=event_io,
        )

    # Lineage edges, job version, current dataset versions.
    run_io = {key: (row.dataset_version_id, row.namespace_name, row.name) for key, row in earlier_io.items()}
    for r in [*inputs, *outputs]:
        for io_type in IO_TYPES:
            if (r.id, io_type) in event_io and (
                (r.id, io_type) not in earlier_io
                or earlier_io[(r.id, io_type)].event_key < ctx.key
                or (r.id, io_type) in kept_keys
            ):
                run_io[(r.id, io_type)] = (event_io[(r.id, io_type)], r.namespace, r.name)
    event_edges = {io: [ds for (ds, kind) in event_io if kind == io] for io in IO_TYPES}
    finishing = {
        "job_id": job_id,
        "job": (job_ns, job_name, location),
        "run_id": run_id,
        "current_version_key": current_version_key,
    }
    if not terminal_or_streaming:
        _upsert_event_edges(w, job_id, event_edges, run_id, current_version_key)
        finished = w.finished_run(run_id) if event_io or moves_location else None
        if finished is not None:
            # The run's terminal event arrived before this one and did not know this IO or location (e.g. a
            # COMPLETE without datasets before the START that listed them): finish the run again as that
            # terminal event, now with the whole IO, so the result is the one of the events in order.
            _finish_again_as(conn, ctx, finished, **finishing, run_io=run_io)
    else:
        # The run's winning terminal event (read before this one sets the run's job version).
        winner = w.finished_run(run_id) if state is not None and (event_io or earlier_io) else None
        superseded_terminal = winner is not None and winner.state_key > ctx.key
        version = _finish_run(
            w,
            **finishing,
            # A terminal event older than the run's winning one finishes with the IO it has in key order (a
            # COMPLETE without datasets, then a retry's COMPLETE with them: edges dated from the retry),
            # whatever arrived first.
            run_io=_io_before_next_terminal(w, run_id, ctx.key, run_io) if superseded_terminal else run_io,
            publishes=completes or streaming,
            replaces_version=None,
            event_edges=event_edges,
        )
        if superseded_terminal:
            # A later terminal event of this run (a retry's COMPLETE, a FAIL after it) arrived first without
            # this IO: finish the run again as that event, with the whole IO, as the events in order would.
            final_version = _finish_again_as(conn, ctx, winner, **finishing, run_io=run_io)
            earlier_version = version  # what this older terminal event made
        else:
            final_version = version
            earlier_version = winner.job_version_id if winner is not None else None  # the run's earlier end
        # A run has one job version, from all its IO: what an earlier terminal event made goes unless another
        # run has it or it is the job's current version.
        if earlier_version is not None and earlier_version != final_version:
            w.release_job_version(run_id, earlier_version)
    # Last, once a finished run has published the version that replaces it (see publish_versions).
    for old, new in superseded:
        w.drop_superseded_version(old, new, run_id)


def _upsert_event_edges(
    w: ModelWriter,
    job_id: uuid.UUID,
    event_edges: dict[str, list[uuid.UUID]],
    run_id: uuid.UUID,
    current_version_key: str,
) -> None:
    """The edges one event saw. They are current when the event is later than the job's current version;
    an older event's edge is current unless a later completion would have retired it, had the events come
    in order (a completion retires its direction's other edges, unless it reported nothing there)."""
    if w.ctx.key > current_version_key:
        w.upsert_edges(job_id, event_edges, current=True, run_id=run_id)
        return
    for io in IO_TYPES:
        for dataset_id in event_edges[io]:
            current = not w.retired_by_later_completion(job_id, io, dataset_id)
            w.upsert_edges(job_id, {io: [dataset_id]}, current=current, run_id=run_id)


def _finish_again_as(conn: Connection, ctx: EventContext, terminal, **run) -> uuid.UUID:
    """Finish the run again as its stored terminal event ``terminal`` (its key, time and state), now with the
    run's whole IO, as the events in order would have. Returns the run's job version."""
    return _finish_run(
        ModelWriter(conn, replace(ctx, key=terminal.state_key, time=terminal.ended_at)),
        publishes=terminal.state == "COMPLETED",
        replaces_version=terminal.job_version_id,
        event_edges={io: [] for io in IO_TYPES},
        **run,
    )


def _finish_run(
    w: ModelWriter,
    *,
    job_id: uuid.UUID,
    job: tuple[str, str, str | None],
    run_id: uuid.UUID,
    run_io: dict,
    publishes: bool,
    replaces_version: uuid.UUID | None,
    current_version_key: str,
    event_edges: dict[str, list[uuid.UUID]],
) -> uuid.UUID:
    """What a run's terminal (or streaming) event does with everything the run read and wrote: the job
    version, the current lineage edges, and (when it completed) publishing its outputs. ``replaces_version``
    is the job version this run was finished with before more of its IO arrived."""
    io_lists = {
        io: sorted(((ns, name, ds) for (ds, kind), (_, ns, name) in run_io.items() if kind == io)) for io in IO_TYPES
    }
    job_version = w.record_job_version(job_id, *job, io_lists, run_id)
    w.set_run_job_version(run_id, job_version)
    if replaces_version is not None and replaces_version != job_version:
        w.replace_job_version(job_id, run_id, replaces_version, job_version)
    run_edges = {io: [ds for _, _, ds in io_lists[io]] for io in IO_TYPES}
    made_current = publishes and w.make_job_version_current(job_id, job_version)
    if publishes and not made_current and replaces_version is not None:
        made_current = w.is_current_job_version(job_id, job_version)  # replaced in place just above
    if publishes:
        # A completion retires the edges of its directions that it left out and no later event has seen
        # (retire_edges compares keys), also when a later completion is already current: in key order it came
        # first and retired them then (what retired_by_later_completion assumes of an older event's edges).
        for io in IO_TYPES:
            if run_edges[io]:  # a run that reported nothing in one direction does not wipe those edges
                w.retire_edges(job_id, io, run_edges[io])
    if made_current:
        w.upsert_edges(job_id, run_edges, current=True, run_id=run_id)
    else:
        # A completion older than the job's current version still saw the run's edges when it happened.
        _upsert_event_edges(w, job_id, run_edges if publishes else event_edges, run_id, current_version_key)
    if publishes:
        published = {ds: v for (ds, io), (v, _, _) in run_io.items() if io == "OUTPUT"}
        if w.ctx.detect_incidents:
            incident_detection.on_publish(w.conn, w.ctx, published)
        w.publish_versions(published)
    return job_version


def apply_dataset_event(conn: Connection, ctx: EventContext, event: DatasetEvent) -> None:
    w = ModelWriter(conn, ctx)
    d = event.dataset
    ref = DatasetRef(*w.resolve([(d.namespace, d.name)])[(d.namespace, d.name)], facets=d.facets)
    new = _prepare_datasets(w, [ref], set())
    fields = extract.schema_fields(ref.facets)
    entries: list[FacetEntry] = [(ref.id, "DATASET", n, v) for n, v in d.facets.items()]
    version = None
    if fields is not None or extract.lifecycle_state(ref.facets):
        # Static metadata with a schema (or a lifecycle change) is a new version of the dataset; facets
        # alone (documentation, ownership…) describe the dataset without versioning it.
        fields = fields or []
        version = _content_version(ref, fields, None)
        w.insert_versions([_new_version_row(ref, version, fields, None, ctx, extract.external_version(ref.facets))])
        entries += [(version, "DATASET_VERSION", n, v) for n, v in d.facets.items()]
    winners = w.upsert_facets(entries)
    _follow_facet_winners(w, winners, job_id=None, job_is_new=False, new_datasets=new, dataset_ids={ref.id})
    if ctx.detect_incidents:
        incident_detection.on_dataset_event(conn, ctx, event, ref, version)
    if version is not None:
        if ctx.detect_incidents:
            incident_detection.on_publish(conn, ctx, {ref.id: version})
        w.publish_versions({ref.id: version})


def apply_job_event(conn: Connection, ctx: EventContext, event: JobEvent) -> None:
    w = ModelWriter(conn, ctx)
    job_ns, job_name = event.job.namespace, event.job.name
    attrs = extract.job_attributes(event.job.facets)
    resolved = w.resolve([(d.namespace, d.name) for d in [*event.inputs, *event.outputs]])
    inputs, outputs = _refs(event.inputs, resolved), _refs(event.outputs, resolved)
    new_datasets = _prepare_datasets(w, [*inputs, *outputs], {job_ns})
    job_id, job_is_new = w.ensure_job(job_ns, job_name, simple_name=job_name, attrs=attrs)
    if not job_is_new:
        w.touch_job(job_id, None)

    winners = w.upsert_facets([(job_id, "JOB", n, v) for n, v in event.job.facets.items()])
    # Declared datasets are described the way readers describe them: only where nothing else has.
    winners += w.add_reader_facets(
        [
            (r.id, "DATASET", n, v)
            for r, d in zip([*inputs, *outputs], [*event.inputs, *event.outputs], strict=False)
            for n, v in d.facets.items()
        ]
    )
    _follow_facet_winners(
        w,
        winners,
        job_id=job_id,
        job_is_new=job_is_new,
        new_datasets=new_datasets,
        dataset_ids={r.id for r in [*inputs, *outputs]},
    )

    # Declared (design-time) lineage is the job's current IO unless a later event says otherwise.
    io_lists = {
        "INPUT": sorted({(r.namespace, r.name, r.id) for r in inputs}),
        "OUTPUT": sorted({(r.namespace, r.name, r.id) for r in outputs}),
    }
    # Its own location, as a run's job version has its run's: what other events of the job said does not count.
    version = w.record_job_version(job_id, job_ns, job_name, attrs.location, io_lists, None)
    edges = {io: [ds for _, _, ds in io_lists[io]] for io in IO_TYPES}
    made_current = w.make_job_version_current(job_id, version)
    if made_current:
        for io in IO_TYPES:
            if edges[io]:
                w.retire_edges(job_id, io, edges[io])
    w.upsert_edges(job_id, edges, current=made_current, run_id=None)
