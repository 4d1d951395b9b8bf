"""Order dependences found by the property of tests/test_ingest_properties.py, each as the smallest history
that showed it (ties at one eventTime made plain times where the tie did not matter), delivered in every
order: what the user sees must not depend on it."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from app.db import tables as t
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.main import create_app
from app.settings import Settings
from tests.conftest import TEST_DB
from tests.support import model
from tests.support.events import T0, column_lineage, dataset, facet, run_event

JOB = ("pipeline", "transform")


def _empty(engine) -> None:
    # After the applier is done: a batch still being applied would write its rows after these deletes.
    with model.applied(engine).begin() as conn:
        for table in [*t.MODEL_TABLES, t.lineage_events]:
            conn.execute(table.delete())


def _deliver(client, events) -> None:
    for event in events:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text


def _job_io(client) -> tuple[list[str], list[str]]:
    job = client.get(f"/api/v1/namespaces/{JOB[0]}/jobs/{JOB[1]}").json()
    return [d["name"] for d in job["inputs"]], [d["name"] for d in job["outputs"]]


def test_completion_delivered_after_a_later_one_still_retires_the_inputs_it_left_out(client, engine):
    # A run reads `old`; then run B completes reading `new`; then run C completes reporting no datasets. In
    # order B retires `old` (its inputs are just `new`) and C changes no edge. Delivered after C, B was not
    # made current and retired nothing: the job kept showing `old` as an input.
    read_old = run_event("START", job=JOB, run_id=uuid.uuid4(), time=T0, inputs=[dataset("warehouse", "old")])
    b = run_event(
        "COMPLETE", job=JOB, run_id=uuid.uuid4(), time=T0 + timedelta(minutes=1), inputs=[dataset("warehouse", "new")]
    )
    c = run_event("COMPLETE", job=JOB, run_id=uuid.uuid4(), time=T0 + timedelta(minutes=2))
    for order in itertools.permutations([read_old, b, c]):
        _empty(engine)
        _deliver(client, order)
        assert _job_io(client) == (["new"], []), [(e["eventType"], e["eventTime"]) for e in order]


def test_a_read_moved_to_a_published_version_leaves_no_placeholder(client, engine):
    # Run R reads raw before any writer is seen (a placeholder version stands for what it read), the
    # writer's COMPLETE follows, then R reads raw again and now sees the published version. Delivered in
    # that order the placeholder stayed, read by nothing; delivered with the COMPLETE last, the COMPLETE
    # re-pointed the read and dropped it. The user saw two versions of raw or one, depending on order.
    r = uuid.uuid4()
    events = [
        run_event("START", job=JOB, run_id=r, time=T0, inputs=[dataset("warehouse", "raw")]),
        run_event(
            "COMPLETE",
            job=("pipeline", "load"),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(seconds=30),
            outputs=[dataset("warehouse", "raw", columns=[("id", "int")])],
        ),
        run_event("RUNNING", job=JOB, run_id=r, time=T0 + timedelta(minutes=1), inputs=[dataset("warehouse", "raw")]),
    ]
    for order in itertools.permutations(events):
        _empty(engine)
        _deliver(client, order)
        versions = client.get("/api/v1/namespaces/warehouse/datasets/raw/versions").json()["versions"]
        assert [v["fields"] for v in versions] == [[{"name": "id", "type": "int", "tags": [], "description": None}]], [
            (e["eventType"], e["eventTime"]) for e in order
        ]


def test_a_placeholder_dates_from_the_earliest_read_of_the_runs_still_reading_it(client, engine):
    # Run A reads raw at 02:00 and again at 02:08, run B at 02:04, and a writer publishes raw at 02:06: A's
    # latest read is of the published version, B's of the placeholder. Applied one event at a time in time
    # order the placeholder kept A's 02:00 (a read the model no longer holds); with A's events first and B's
    # last, the publish dropped the placeholder (unread) and B made it again at 02:04. It is B's read's time.
    a = uuid.uuid4()
    raw = [dataset("warehouse", "raw")]
    events = [
        run_event("START", job=JOB, run_id=a, time=T0, inputs=raw),
        run_event("START", job=("pipeline", "report"), run_id=uuid.uuid4(), time=T0 + timedelta(minutes=4), inputs=raw),
        run_event(
            "COMPLETE",
            job=("pipeline", "load"),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(minutes=6),
            outputs=[dataset("warehouse", "raw", columns=[("id", "int")])],
        ),
        run_event("COMPLETE", job=JOB, run_id=a, time=T0 + timedelta(minutes=8), inputs=raw),
    ]
    for order in (events, [events[3], events[0], events[2], events[1]]):
        _empty(engine)
        for event in order:  # one event per transaction: each applied before the next is sent
            _deliver(client, [event])
            model.applied(engine)
        placeholders = [v for v in _versions(client, "raw") if not v["fields"]]
        assert [v["createdAt"] for v in placeholders] == ["2024-11-01T02:04:00Z"], [e["eventTime"] for e in order]


def _versions(client, name: str) -> list[dict]:
    return client.get(f"/api/v1/namespaces/warehouse/datasets/{name}/versions").json()["versions"]


def test_a_schema_reported_before_a_completion_without_one_is_the_version_it_publishes(client, engine):
    # START reports the output's schema, COMPLETE lists the output without one. Delivered COMPLETE first, the
    # schema-less version was published and stayed current next to the one with the schema.
    r = uuid.uuid4()
    start = run_event(
        "START", job=JOB, run_id=r, time=T0, outputs=[dataset("warehouse", "out", columns=[("id", "int")])]
    )
    complete = run_event(
        "COMPLETE", job=JOB, run_id=r, time=T0 + timedelta(minutes=1), outputs=[dataset("warehouse", "out")]
    )
    for order in itertools.permutations([start, complete]):
        _empty(engine)
        _deliver(client, order)
        current = client.get("/api/v1/namespaces/warehouse/datasets/out").json()
        assert [f["name"] for f in current["fields"]] == ["id"]
        versions = _versions(client, "out")
        assert [[f["name"] for f in v["fields"]] for v in versions] == [["id"]], [e["eventType"] for e in order]
        assert current["currentVersion"] == versions[0]["version"]


def test_the_later_events_facet_wins_on_a_version_that_gained_its_schema_late(client, engine):
    # START reports the schema and documentation "x"; RUNNING, later, no schema and documentation "y". Delivered
    # RUNNING first, its schema-less version gave way to START's, which kept the earlier documentation.
    r = uuid.uuid4()

    def doc(text):
        return {"documentation": facet("DocumentationDatasetFacet", description=text)}

    start = run_event(
        "START",
        job=JOB,
        run_id=r,
        time=T0,
        outputs=[dataset("warehouse", "out", columns=[("id", "int")], facets=doc("x"))],
    )
    running = run_event(
        "RUNNING",
        job=JOB,
        run_id=r,
        time=T0 + timedelta(minutes=1),
        outputs=[dataset("warehouse", "out", facets=doc("y"))],
    )
    for order in itertools.permutations([start, running]):
        _empty(engine)
        _deliver(client, order)
        (version,) = _versions(client, "out")
        assert version["facets"]["documentation"]["description"] == "y", [e["eventType"] for e in order]
        assert client.get("/api/v1/namespaces/warehouse/datasets/out").json()["description"] == "y"


def test_a_schema_reported_after_the_completion_replaces_the_published_one_and_its_fields(client, engine):
    # COMPLETE reports (id bigint, room text); an event of the run after it reports (id int). In order, the
    # published version gave way to the later one, but the dataset's field rows (which field tags hang on) kept
    # the dropped version's fields and types; with the later event delivered first, only its fields.
    r = uuid.uuid4()
    complete = run_event(
        "COMPLETE",
        job=JOB,
        run_id=r,
        time=T0,
        outputs=[dataset("warehouse", "out", columns=[("id", "bigint"), ("room", "text")])],
    )
    after = run_event(
        "START",
        job=JOB,
        run_id=r,
        time=T0 + timedelta(minutes=1),
        outputs=[dataset("warehouse", "out", columns=[("id", "int")])],
    )
    for order in itertools.permutations([complete, after]):
        _empty(engine)
        _deliver(client, order)
        assert [[f["name"] for f in v["fields"]] for v in _versions(client, "out")] == [["id"]]
        shown = client.get("/api/v1/namespaces/warehouse/datasets/out").json()["fields"]
        assert [(f["name"], f["type"]) for f in shown] == [("id", "int")], [e["eventType"] for e in order]


def test_a_run_finished_twice_is_finished_by_its_later_terminal_event_with_all_its_io(client, engine):
    # A run sends COMPLETE with its output, then (a retry of the task) COMPLETE without datasets. Delivered
    # the later one first, the job showed a current version without outputs next to the one with them.
    r = uuid.uuid4()
    with_output = run_event(
        "COMPLETE", job=JOB, run_id=r, time=T0, outputs=[dataset("warehouse", "out", columns=[("id", "int")])]
    )
    later_bare = run_event("COMPLETE", job=JOB, run_id=r, time=T0 + timedelta(minutes=1))
    for order in itertools.permutations([with_output, later_bare]):
        _empty(engine)
        _deliver(client, order)
        versions = client.get(f"/api/v1/namespaces/{JOB[0]}/jobs/{JOB[1]}/versions").json()["versions"]
        assert [[d["name"] for d in v["outputs"]] for v in versions] == [["out"]], [e["eventTime"] for e in order]
        job = client.get(f"/api/v1/namespaces/{JOB[0]}/jobs/{JOB[1]}").json()
        assert job["currentVersion"] == versions[0]["version"]
        assert job["latestRun"]["endedAt"] == "2024-11-01T02:01:00Z"


def test_a_schema_reported_again_after_another_dates_its_version_from_its_return(client, engine):
    # A run reports (id int) on START, (id bigint, room text) on RUNNING, (id int) again on COMPLETE. In order
    # the first version gave way to the second and came back with the COMPLETE: the version the user sees
    # was created at the COMPLETE's time. Delivered with the COMPLETE before the START, the START moved its
    # creation time back to its own, as if the schema had never changed in between.
    r = uuid.uuid4()
    a, b = [("id", "int")], [("id", "bigint"), ("room", "text")]
    events = [
        run_event(
            kind, job=JOB, run_id=r, time=T0 + timedelta(minutes=i), outputs=[dataset("warehouse", "out", columns=c)]
        )
        for i, (kind, c) in enumerate([("START", a), ("RUNNING", b), ("COMPLETE", a)])
    ]
    for order in itertools.permutations(events):
        _empty(engine)
        _deliver(client, order)
        versions = _versions(client, "out")
        assert [([f["name"] for f in v["fields"]], v["createdAt"]) for v in versions] == [
            (["id"], "2024-11-01T02:02:00Z")
        ], [e["eventType"] for e in order]


def test_the_latest_schema_is_the_version_though_a_later_event_without_one_came_first(client, engine):
    # START reports (id int), COMPLETE (id bigint, room text), an event after it no schema. In order the
    # COMPLETE's schema is the version. Delivered with the schema-less event first, then the START, the
    # COMPLETE found a version with a schema and a later key on the run's link and kept it: (id int).
    r = uuid.uuid4()
    events = [
        run_event(
            kind, job=JOB, run_id=r, time=T0 + timedelta(minutes=i), outputs=[dataset("warehouse", "out", columns=c)]
        )
        for i, (kind, c) in enumerate(
            [("START", [("id", "int")]), ("COMPLETE", [("id", "bigint"), ("room", "text")]), ("RUNNING", None)]
        )
    ]
    for order in itertools.permutations(events):
        _empty(engine)
        _deliver(client, order)
        versions = _versions(client, "out")
        assert [([f["name"] for f in v["fields"]], v["createdAt"]) for v in versions] == [
            (["id", "room"], "2024-11-01T02:01:00Z")
        ], [e["eventType"] for e in order]
        current = client.get("/api/v1/namespaces/warehouse/datasets/out").json()
        assert [(f["name"], f["type"]) for f in current["fields"]] == [("id", "bigint"), ("room", "text")]


def test_column_lineage_sent_with_a_schema_the_completion_replaced_still_counts(client, engine):
    # START reports (id int) with column lineage, COMPLETE (id bigint, room text) without. The COMPLETE's
    # schema is the run's version, and the START's facets move to it. In order the version's column lineage
    # was derived when the COMPLETE published it, before the START's version was dropped and its facets
    # moved: none; delivered the other way round, the START's lineage counted.
    r = uuid.uuid4()
    lineage = {"columnLineage": column_lineage({"id": [("warehouse", "src", "id")]})}
    start = run_event(
        "START",
        job=JOB,
        run_id=r,
        time=T0,
        outputs=[dataset("warehouse", "out", columns=[("id", "int")], facets=lineage)],
    )
    complete = run_event(
        "COMPLETE",
        job=JOB,
        run_id=r,
        time=T0 + timedelta(minutes=1),
        outputs=[dataset("warehouse", "out", columns=[("id", "bigint"), ("room", "text")])],
    )
    for order in itertools.permutations([start, complete]):
        _empty(engine)
        _deliver(client, order)
        graph = client.get("/api/v1/column-lineage", params={"nodeId": "dataset:warehouse:out"}).json()["graph"]
        edges = {(e["origin"], e["destination"]) for node in graph for e in node["inEdges"]}
        assert edges == {("datasetField:warehouse:out:id", "datasetField:warehouse:src:id")}, [
            e["eventType"] for e in order
        ]


def _edges_first_seen(engine) -> dict[tuple[str, str], str]:
    """{(io type, dataset name): first seen} of the lineage edges."""
    names = {row.id: row.name for row in model.all_rows(engine, t.datasets)}
    return {
        (row.io_type, names[row.dataset_id]): row.first_seen_at.strftime("%H:%M")
        for row in model.all_rows(engine, t.lineage_edges)
    }


def test_a_run_ended_twice_has_one_job_version_from_all_its_io_whatever_arrives_first(client, engine):
    # The spec has a run end once; a retried task that ends twice under one run id is accepted and its later
    # terminal event wins. The run has one job version, from everything it read and wrote; what its earlier
    # terminal event made goes unless another run has it. Edges date from the event that first named them.
    r = uuid.uuid4()
    out = [dataset("warehouse", "out", columns=[("id", "int")])]
    raw = [dataset("warehouse", "raw")]
    minute = [T0 + timedelta(minutes=m) for m in range(3)]
    histories = {
        "bare COMPLETE, then a retry's COMPLETE with the output": (
            [
                run_event("COMPLETE", job=JOB, run_id=r, time=minute[0]),
                run_event("COMPLETE", job=JOB, run_id=r, time=minute[1], outputs=out),
            ],
            {("OUTPUT", "out"): "02:01"},
        ),
        "FAIL after reading, then a retry's COMPLETE that also wrote": (
            [
                run_event("START", job=JOB, run_id=r, time=minute[0], inputs=raw),
                run_event("FAIL", job=JOB, run_id=r, time=minute[1], inputs=raw),
                run_event("COMPLETE", job=JOB, run_id=r, time=minute[2], inputs=raw, outputs=out),
            ],
            {("INPUT", "raw"): "02:00", ("OUTPUT", "out"): "02:02"},
        ),
    }
    for name, (events, first_seen) in histories.items():
        snapshots = []
        for order in itertools.permutations(events):
            _empty(engine)
            _deliver(client, order)
            versions = client.get(f"/api/v1/namespaces/{JOB[0]}/jobs/{JOB[1]}/versions").json()["versions"]
            assert [[d["name"] for d in v["outputs"]] for v in versions] == [["out"]], (name, order)
            assert versions[0]["createdAt"] == events[-1]["eventTime"], (name, order)
            job = client.get(f"/api/v1/namespaces/{JOB[0]}/jobs/{JOB[1]}").json()
            assert job["currentVersion"] == versions[0]["version"], (name, order)
            assert job["latestRun"]["state"] == "COMPLETED", (name, order)
            assert _edges_first_seen(engine) == first_seen, (name, order)
            snapshots.append(model.snapshot(engine))
        assert all(s == snapshots[0] for s in snapshots), name


@pytest.mark.skipif(TEST_DB != "postgres", reason="a database collation is Postgres'; SQLite compares bytes")
def test_a_writers_description_wins_on_a_database_whose_collation_ignores_punctuation(database_url, settings):
    # Event keys are compared in SQL: a reader's key starts with "!" so that it sorts below every writer's.
    # Under a collation that ignores punctuation (glibc's en_US.UTF-8, the official postgres image's default;
    # here ICU's "shifted" variant, which every Postgres built with ICU has), "!2024-11-02…" sorted *after*
    # "2024-11-01…", so a reader's facet delivered first kept a dataset's description against its writer's.
    name = f"collation_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f"CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'und-u-ka-shifted' LOCALE 'C.UTF-8' "
                "TEMPLATE template0"
            )
        )
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(Settings(database_url=url))
    try:
        upgrade(engine)
        writer = run_event(
            "COMPLETE",
            job=("pipeline", "load"),
            run_id=uuid.uuid4(),
            time=T0,
            outputs=[dataset("warehouse", "orders", facets={"documentation": facet("Doc", description="writer")})],
        )
        reader = run_event(
            "COMPLETE",
            job=("pipeline", "report"),
            run_id=uuid.uuid4(),
            time=T0 + timedelta(days=1),
            inputs=[dataset("warehouse", "orders", facets={"documentation": facet("Doc", description="reader")})],
        )
        with TestClient(create_app(settings.model_copy(update={"database_url": url}))) as client:
            _deliver(client, [reader, writer])
            shown = client.get("/api/v1/namespaces/warehouse/datasets/orders").json()
        assert shown["description"] == "writer"
        assert shown["facets"]["documentation"]["description"] == "writer"
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
