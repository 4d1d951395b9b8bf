"""Idempotency and order independence as properties (hypothesis).

For any history of a few jobs over a few datasets (each job writes its own table and reads the others) —
runs sending START/RUNNING/OTHER and at most one COMPLETE/FAIL/ABORT (the spec's runs; a run that ends twice
is in tests/test_ingest_order.py and docs/ingest.md), all at any times (equal times
included, and events after the terminal one), with changing inputs, facets (including facet deletions) and
schemas (a run's output schema reported in some of its events only, or changing between them, back and
forth) — delivering the events in any order,
any number of times, builds the same model as delivering each once in event-time order. The model is
compared whole (tests/support/model.py's snapshot: every model table). The same histories are also applied
straight from the event log by the applier (no server, so nothing but the test decides how events are grouped):
as one batch, and one event per transaction in delivery order.

Deterministic (derandomize) and sized for the suite. To search harder locally, draw random examples by the
thousand: HEADWATER_PROPERTY_SEARCH=1 HEADWATER_PROPERTY_EXAMPLES=3000 (with HEADWATER_TEST_DB=postgres too).
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db import lockstep
from app.db import tables as t
from app.services.ingest.applier import apply_pending
from app.services.ingest.writer import ColumnLineageIds
from tests.support import model
from tests.support.events import T0, column_lineage, dataset, facet, run_event

JOBS = ["load", "transform", "report"]
DATASETS = ["raw.bookings", "clean.bookings", "mart.top_rooms", "mart.daily"]
SCHEMAS = [[("id", "int")], [("id", "bigint"), ("room", "text")], None]  # None: no schema facet

PROPERTY_EXAMPLES = int(os.environ.get("HEADWATER_PROPERTY_EXAMPLES", "250"))
# Random examples instead of the suite's fixed ones (a local search; see the module docstring).
PROPERTY_SEARCH = bool(os.environ.get("HEADWATER_PROPERTY_SEARCH"))


@st.composite
def dataset_refs(
    draw, names_from: list[str], columns: list | None | str = "any", lineage_from: list[str] = ()
) -> list[dict]:
    """Up to two of the datasets, with a schema facet (``columns``, None for none, "any" to draw one) and
    sometimes documentation; and sometimes column lineage from ``lineage_from`` (the same few mappings again
    and again, as a job's runs send them, or a tombstone)."""
    names = draw(st.lists(st.sampled_from(names_from), max_size=2, unique=True))
    refs = []
    for name in names:
        extra = {}
        if draw(st.booleans()):
            extra["documentation"] = facet("DocumentationDatasetFacet", description=draw(st.sampled_from("xyz")))
        if lineage_from and draw(st.booleans()):
            sources = draw(st.lists(st.sampled_from(lineage_from[:2]), min_size=1, max_size=2, unique=True))
            lineage = column_lineage({"id": [("warehouse", source, "id") for source in sources]})
            extra["columnLineage"] = draw(st.sampled_from([lineage, {"_deleted": True}]))
        schema = columns if columns != "any" else draw(st.sampled_from(SCHEMAS))
        refs.append(dataset("warehouse", name, columns=schema, facets=extra))
    return refs


@st.composite
def run_history(draw, run_number: int) -> list[dict]:
    """The events of one run: 1-4 events within half an hour (ties included)."""
    job = draw(st.sampled_from(JOBS))
    # Each job writes its own table and reads the others' (a pipeline: no run reads what it writes).
    own = DATASETS[JOBS.index(job)]
    others = [d for d in DATASETS if d != own]
    run_id = uuid.UUID(int=run_number + 1, version=4)
    # A run ends once: at most one terminal event, as the spec has it (a second one is accepted, and the later
    # wins: tests/test_ingest_order.py). All events at any times: ties (the hash decides which is "later"),
    # events after the terminal one. Delivery order is free (the property's point).
    types = draw(st.lists(st.sampled_from(["START", "RUNNING", "OTHER"]), min_size=0, max_size=3))
    types += draw(st.lists(st.sampled_from(["COMPLETE", "FAIL", "ABORT"]), max_size=1))
    minutes = draw(st.lists(st.integers(0, 30), min_size=len(types), max_size=len(types)))
    events = []
    for event_type, minute in zip(types or ["START"], minutes or [0], strict=True):
        run_facets = {}
        if draw(st.booleans()):
            run_facets["progress"] = facet("Custom", step=draw(st.integers(0, 3)))
        if draw(st.integers(0, 5)) == 0:
            run_facets["progress"] = {"_deleted": True}
        job_facets = {}
        if draw(st.booleans()):
            job_facets["documentation"] = facet("DocumentationJobFacet", description=draw(st.sampled_from("abc")))
        if draw(st.integers(0, 2)) == 0:
            # Names the run's job version, as the run's latest event sending it gives it.
            job_facets["sourceCodeLocation"] = draw(
                st.sampled_from(
                    [facet("SourceCodeLocationJobFacet", type="git", url=url) for url in ("git://a", "git://b")]
                    + [{"_deleted": True}]
                )
            )
        events.append(
            run_event(
                event_type,
                job=("pipeline", job),
                run_id=run_id,
                time=T0 + timedelta(minutes=minute),
                inputs=draw(dataset_refs(others)),
                # What a run writes: any schema in each event, or none (a START without schema, a COMPLETE
                # with one), changing back and forth.
                outputs=draw(dataset_refs([own], lineage_from=others)),
                run_facets=run_facets,
                job_facets=job_facets,
            )
        )
    return events


def property_settings(examples: int) -> settings:
    """Deterministic (unless searching), no example database, no deadline: sized by ``examples``."""
    return settings(
        max_examples=examples,
        derandomize=not PROPERTY_SEARCH,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def histories_and_deliveries(draw) -> tuple[list[dict], list[dict]]:
    runs = draw(st.integers(1, 5))
    events = [event for r in range(runs) for event in draw(run_history(r))]
    # Any order, with any events repeated (client retries, redeliveries).
    repeats = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    deliveries = draw(st.permutations(events + repeats))
    return events, deliveries


def _empty(engine) -> None:
    # After the applier is done: a batch still being applied would write its rows after these deletes.
    with model.applied(engine).begin() as conn:
        for table in [*t.MODEL_TABLES, t.lineage_events]:
            conn.execute(table.delete())


def _ingest(client, events) -> None:
    for event in events:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text


@property_settings(PROPERTY_EXAMPLES)
@given(histories_and_deliveries())
def test_any_order_any_repetition_builds_the_model_of_one_ordered_pass(client, engine, history):
    events, deliveries = history
    _empty(engine)
    _ingest(client, sorted(events, key=lambda e: e["eventTime"]))
    in_order = model.snapshot(engine)

    _empty(engine)
    _ingest(client, deliveries)
    shuffled = model.snapshot(engine)
    assert shuffled == in_order, model.describe_difference(in_order, shuffled)


def _applied_from_the_log(engine, events: list[dict], per_transaction: int, *, remembering: bool = False) -> dict:
    """The model of these events stored in the log in this order, applied ``per_transaction`` at a time by the
    applier itself (no server: nothing else groups them)."""
    _empty(engine)
    model.store_events(engine, events)
    # Remembering column lineage from one transaction to the next, as the applier does (the references,
    # applied in time order, remember nothing).
    lineage_ids = ColumnLineageIds() if remembering else None
    while apply_pending(engine, limit=per_transaction, lineage_ids=lineage_ids).applied:
        pass
    return model.snapshot(engine)


def _in_time_order(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda e: e["eventTime"])


@property_settings(PROPERTY_EXAMPLES // 4)
@given(histories_and_deliveries())
def test_one_batch_in_any_order_builds_the_model_of_one_event_at_a_time(engine, monkeypatch, history):
    """The applier applies a whole batch in one transaction, each event knowing what the earlier ones of the
    batch wrote (app/services/ingest/writer.py, BatchMemo) and independent ones side by side (waves): the model
    is the one of one event per transaction, in time order. The events side by side run in two halves that take
    turns from two events on (on Postgres; app/db/lockstep.py), as they do in a busy server's larger waves."""
    monkeypatch.setattr(lockstep, "MIN_HALF", 1)
    events, deliveries = history
    one_at_a_time = _applied_from_the_log(engine, _in_time_order(events), 1)
    one_batch = _applied_from_the_log(engine, deliveries, len(deliveries), remembering=True)
    assert one_batch == one_at_a_time, model.describe_difference(one_at_a_time, one_batch)


@property_settings(PROPERTY_EXAMPLES // 4)
@given(histories_and_deliveries())
def test_one_event_per_transaction_in_any_order_builds_the_model_of_time_order(engine, history):
    """A quiet server applies each event as it arrives, in its own transaction: any arrival order builds the
    model of time order."""
    events, deliveries = history
    in_order = _applied_from_the_log(engine, _in_time_order(events), 1)
    as_delivered = _applied_from_the_log(engine, deliveries, 1, remembering=True)
    assert as_delivered == in_order, model.describe_difference(in_order, as_delivered)
