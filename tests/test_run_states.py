"""Run states under real delivery: out of order, repeated, OTHER events; and order-independence of the
whole model."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import timedelta

import pytest

from app.db import tables as t
from tests.support import model
from tests.support.events import T0, dataset, facet, iso, run_event

JOB = ("ns", "job")


@pytest.fixture
def post(client):
    def post(*events):
        for event in events:
            assert client.post("/api/v1/lineage", json=event).status_code == 201

    return post


def lifecycle(run_id, *types_and_minutes):
    return [run_event(kind, job=JOB, run_id=run_id, time=T0 + timedelta(minutes=m)) for kind, m in types_and_minutes]


def test_complete_before_start_ends_completed_with_both_times(post, engine):
    run_id = uuid.uuid4()
    start, complete = lifecycle(run_id, ("START", 0), ("COMPLETE", 5))
    post(complete, start)
    run = model.run(engine, run_id)
    assert run.state == "COMPLETED"
    assert (run.started_at, run.ended_at) == (T0, T0 + timedelta(minutes=5))
    assert len(model.all_rows(engine, t.run_states, t.run_states.c.run_id == run_id)) == 2


def test_late_running_event_never_reopens_a_finished_run(post, engine):
    run_id = uuid.uuid4()
    start, running, fail = lifecycle(run_id, ("START", 0), ("RUNNING", 1), ("FAIL", 2))
    post(start, fail, running)
    assert model.run(engine, run_id).state == "FAILED"


def test_other_changes_no_state(post, engine):
    run_id = uuid.uuid4()
    (other,) = lifecycle(run_id, ("OTHER", 0))
    post(other)
    assert model.run(engine, run_id).state == "NEW"
    start, other_later = lifecycle(run_id, ("START", 1), ("OTHER", 2))
    post(start, other_later)
    run = model.run(engine, run_id)
    assert run.state == "RUNNING"
    states = model.all_rows(engine, t.run_states, t.run_states.c.run_id == run_id)
    assert sorted((s.event_type, s.state) for s in states) == [("OTHER", None), ("OTHER", None), ("START", "RUNNING")]


def test_event_types_are_case_insensitive(post, engine):
    run_id = uuid.uuid4()
    post(*lifecycle(run_id, ("start", 0), ("complete", 1)))
    assert model.run(engine, run_id).state == "COMPLETED"


def test_later_terminal_event_wins(post, engine):
    run_id = uuid.uuid4()
    fail, complete = lifecycle(run_id, ("FAIL", 1), ("COMPLETE", 2))
    post(complete, fail)
    run = model.run(engine, run_id)
    assert run.state == "COMPLETED" and run.ended_at == T0 + timedelta(minutes=2)


def _pipeline_events() -> list[dict]:
    """Two runs of a writer (one START without schema), a reader, a static dataset event, a deleted facet."""
    runs = [uuid.uuid4() for _ in range(3)]
    out_v1 = dataset("db", "orders", columns=[("id", "int")])
    out_v2 = dataset(
        "db",
        "orders",
        columns=[("id", "bigint"), ("amount", "numeric")],
        facets={"documentation": facet("DocumentationDatasetFacet", description="all orders")},
    )
    doc = facet("DocumentationJobFacet", description="loads orders")
    return [
        run_event(
            "START",
            job=("ns", "load"),
            run_id=runs[0],
            time=T0,
            inputs=[dataset("api", "orders_feed")],
            outputs=[dataset("db", "orders")],
            job_facets={"documentation": doc},
        ),
        run_event(
            "COMPLETE",
            job=("ns", "load"),
            run_id=runs[0],
            time=T0 + timedelta(minutes=1),
            inputs=[dataset("api", "orders_feed")],
            outputs=[out_v1],
            run_facets={"nominalTime": facet("NominalTimeRunFacet", nominalStartTime=iso(T0))},
        ),
        run_event(
            "START",
            job=("ns", "load"),
            run_id=runs[1],
            time=T0 + timedelta(hours=1),
            inputs=[dataset("api", "orders_feed")],
            outputs=[out_v2],
            job_facets={"documentation": {"_deleted": True}},
        ),
        run_event(
            "COMPLETE",
            job=("ns", "load"),
            run_id=runs[1],
            time=T0 + timedelta(hours=1, minutes=2),
            inputs=[dataset("api", "orders_feed"), dataset("api", "refunds")],
            outputs=[out_v2],
        ),
        run_event(
            "RUNNING",
            job=("ns", "report"),
            run_id=runs[2],
            time=T0 + timedelta(hours=2),
            inputs=[dataset("db", "orders")],
        ),
        run_event(
            "COMPLETE",
            job=("ns", "report"),
            run_id=runs[2],
            time=T0 + timedelta(hours=2, minutes=1),
            inputs=[dataset("db", "orders")],
            outputs=[dataset("s3://reports", "daily.csv")],
        ),
        {
            "eventTime": iso(T0 + timedelta(hours=3)),
            "producer": "https://example.com/catalog",
            "dataset": dataset("s3://reports", "daily.csv", columns=[("day", "date"), ("total", "numeric")]),
        },
    ]


def _ingest_in_order(client, events):
    for event in events:
        assert client.post("/api/v1/lineage", json=event).status_code == 201


def test_any_arrival_order_and_repetition_gives_the_same_model(client, engine):
    events = _pipeline_events()
    _ingest_in_order(client, events)
    expected = model.snapshot(engine)
    assert expected["runs"] and expected["lineage_edges"] and expected["column_lineage"] == []

    rng = random.Random(20241101)
    orders = [list(reversed(events))] + [rng.sample(events, len(events)) for _ in range(5)]
    for order in orders:
        for table in [*t.MODEL_TABLES, t.lineage_events]:
            with model.applied(engine).begin() as conn:
                conn.execute(table.delete())
        _ingest_in_order(client, order + rng.sample(events, 3))  # some delivered twice, as retries do
        got = model.snapshot(engine)
        assert got == expected, model.describe_difference(expected, got)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_order_of_one_runs_events(client, engine, order):
    run_id = uuid.uuid4()
    events = [
        run_event("START", job=JOB, run_id=run_id, time=T0, outputs=[dataset("db", "t")]),
        run_event(
            "RUNNING",
            job=JOB,
            run_id=run_id,
            time=T0 + timedelta(minutes=1),
            outputs=[dataset("db", "t", columns=[("a", "int")])],
        ),
        run_event(
            "COMPLETE",
            job=JOB,
            run_id=run_id,
            time=T0 + timedelta(minutes=2),
            outputs=[dataset("db", "t", columns=[("a", "int")])],
        ),
    ]
    _ingest_in_order(client, [events[i] for i in order])
    run = model.run(engine, run_id)
    assert (run.state, run.started_at, run.ended_at) == ("COMPLETED", T0, T0 + timedelta(minutes=2))
    (version,) = model.all_rows(engine, t.dataset_versions)
    assert model.dataset(engine, "db", "t").current_version_id == version.id
