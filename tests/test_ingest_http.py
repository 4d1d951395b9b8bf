"""POST /api/v1/lineage as clients see it: status codes, bodies, encodings, and what gets stored."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import tables as t
from tests.support.events import T0, dataset, run_event
from tests.support.model import applied

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "marquez"


def count(engine, table, *where) -> int:
    with applied(engine).connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def simple_event(**overrides):
    event = run_event(
        "START",
        job=("ns", "job"),
        run_id=uuid.uuid4(),
        time=T0,
        inputs=[dataset("db", "in_table", columns=[("id", "int")])],
        outputs=[dataset("db", "out_table", columns=[("id", "int")])],
    )
    event.update(overrides)
    return event


@pytest.mark.parametrize(
    "path",
    sorted((FIXTURES / "open_lineage").glob("*.json")) + sorted((FIXTURES / "apples").glob("*.json")),
    ids=lambda p: p.name,
)
def test_marquez_fixture_events_are_accepted(client, engine, path):
    response = client.post("/api/v1/lineage", content=path.read_bytes(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.content == b""
    assert count(engine, t.lineage_events) == 1
    assert count(engine, t.lineage_events, t.lineage_events.c.apply_error.is_not(None)) == 0


def test_success_is_201_with_empty_body_and_raw_event_kept_verbatim(client, engine):
    event = simple_event()
    event["run"]["facets"]["custom_thing"] = {"_producer": "x", "nested": {"big": 123456789012345678901234567890}}
    response = client.post("/api/v1/lineage", json=event)
    assert (response.status_code, response.content) == (201, b"")
    with applied(engine).connect() as conn:
        stored = conn.execute(select(t.lineage_events.c.payload)).scalar_one()
    assert stored == event  # custom facets and huge integers survive unchanged


def test_gzip_body_is_inflated(client, engine):
    body = gzip.compress(json.dumps(simple_event()).encode())
    response = client.post(
        "/api/v1/lineage", content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 201, response.text
    assert count(engine, t.runs) == 1


def test_same_event_twice_changes_nothing(client, engine):
    event = simple_event()
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    with applied(engine).connect() as conn:
        before = {table.name: conn.execute(select(table)).all() for table in [t.lineage_events, *t.MODEL_TABLES]}
    # Same content, different formatting and key order: still the same event.
    reformatted = json.dumps(event, indent=2, sort_keys=True)
    assert (
        client.post("/api/v1/lineage", content=reformatted, headers={"Content-Type": "application/json"}).status_code
        == 201
    )
    with applied(engine).connect() as conn:
        after = {table.name: conn.execute(select(table)).all() for table in [t.lineage_events, *t.MODEL_TABLES]}
    assert after == before


def test_missing_schema_url_and_event_type_are_accepted(client, engine):
    event = simple_event()
    del event["schemaURL"], event["eventType"]
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    with applied(engine).connect() as conn:
        run = conn.execute(select(t.runs)).one()
    assert run.state == "NEW"  # no eventType: the run exists, its state is unknown


@pytest.mark.parametrize(
    "event_time, expected",
    [
        ("2024-11-01T02:00:00.123456789Z", "2024-11-01T02:00:00.123456+00:00"),
        ("2024-11-01T02:00:00.123", "2024-11-01T02:00:00.123000+00:00"),
        ("2024-11-01T04:00:00+02:00", "2024-11-01T02:00:00+00:00"),
        ("2024-11-01 02:00:00", "2024-11-01T02:00:00+00:00"),
    ],
)
def test_timestamps_as_producers_send_them(client, engine, event_time, expected):
    assert client.post("/api/v1/lineage", json=simple_event(eventTime=event_time)).status_code == 201
    with applied(engine).connect() as conn:
        stored = conn.execute(select(t.lineage_events.c.event_time)).scalar_one()
        started = conn.execute(select(t.runs.c.started_at)).scalar_one()
    assert stored.isoformat() == expected
    assert started.isoformat() == expected


def test_uuid_v7_run_ids_are_accepted(client, engine):
    run_id = "01936893-9751-7a91-8a6f-1234567890ab"
    event = simple_event()
    event["run"]["runId"] = run_id
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    with applied(engine).connect() as conn:
        assert str(conn.execute(select(t.runs.c.id)).scalar_one()) == run_id


@pytest.mark.parametrize(
    "mutate, status, field",
    [
        (lambda e: e["run"].update(runId="not-a-uuid"), 422, "run.runId"),
        (lambda e: e["job"].pop("name"), 422, "job.name"),
        (lambda e: e["job"].update(namespace=""), 422, "job.namespace"),
        (lambda e: e.update(eventTime="yesterday"), 422, "eventTime"),
        (lambda e: e.pop("eventTime"), 422, "eventTime"),
        (lambda e: e.update(inputs="table"), 422, "inputs"),
        (lambda e: e["outputs"][0].pop("namespace"), 422, "outputs[0].namespace"),
        (lambda e: e["run"].update(facets=["x"]), 422, "run.facets"),
    ],
)
def test_invalid_events_get_422_naming_the_field(client, engine, mutate, status, field):
    event = simple_event()
    mutate(event)
    response = client.post("/api/v1/lineage", json=event)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert field in body["message"]
    assert any(e["field"] == field for e in body["errors"])
    assert count(engine, t.lineage_events) == 0 and count(engine, t.runs) == 0


def test_unknown_fields_and_facets_are_never_rejected(client, engine):
    event = simple_event()
    event["somethingNew"] = {"x": 1}
    event["job"]["facets"]["acme_deployment"] = {"cluster": "eu-1"}
    event["inputs"][0]["inputFacets"] = {"acme_partition": {"p": "2024-11-01"}}
    event["run"]["facets"]["weird"] = "not even an object"
    assert client.post("/api/v1/lineage", json=event).status_code == 201


@pytest.mark.parametrize(
    "body, headers, status, phrase",
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"[1, 2]", {}, 400, "JSON object"),
        (b"", {}, 400, "empty"),
        (b'{"eventTime": NaN}', {}, 400, "not valid JSON"),
        (b'{"eventTime": "2024-01-01T00:00:00Z"}', {}, 422, "Not an OpenLineage event"),
        (b"plain text, not gzip", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
        (gzip.compress(b'{"a": 1}')[:-12], {"Content-Encoding": "gzip"}, 400, "truncated"),
        (b"{}", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (b'{"x": "\xff\xfe"}', {}, 400, "not valid JSON"),
    ],
)
def test_bad_bodies_get_clear_4xx(client, engine, body, headers, status, phrase):
    response = client.post("/api/v1/lineage", content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.text
    assert phrase in response.json()["message"]
    assert count(engine, t.lineage_events) == 0


def test_nul_characters_are_rejected_with_the_path(client, engine):
    event = simple_event()
    event["job"]["facets"]["sql"] = {"query": "select 1\u0000"}
    response = client.post("/api/v1/lineage", json=event)
    assert response.status_code == 422
    assert "job.facets.sql.query" in response.json()["message"]


def test_body_over_the_limit_gets_413(settings, engine):
    from fastapi.testclient import TestClient

    from app.main import create_app

    small = settings.model_copy(update={"max_body_bytes": 2000})
    with TestClient(create_app(small)) as client:
        big = simple_event()
        big["job"]["facets"]["sql"] = {"query": "x" * 5000}
        assert client.post("/api/v1/lineage", json=big).status_code == 413
        # The limit applies after inflation too: a small gzip body that expands past it is refused.
        bomb = gzip.compress(json.dumps(big).encode())
        assert len(bomb) < 2000
        response = client.post(
            "/api/v1/lineage", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
        assert response.status_code == 413
        assert "limit" in response.json()["message"]
        assert client.post("/api/v1/lineage", json=simple_event()).status_code == 201


def test_unreachable_database_gets_a_retryable_503():
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings
    from tests.support.ports import ReservedPort

    # Nothing listens on this port (held for the test): every connection attempt is refused at once.
    with ReservedPort() as port:
        down = Settings(
            database_url=f"postgresql://nobody@127.0.0.1:{port}/none", migrate_on_start=False, incident_worker=False
        )
        with TestClient(create_app(down)) as client:
            response = client.post("/api/v1/lineage", json=simple_event())
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "2"
            assert "retry" in response.json()["message"]
            assert client.get("/api/v1/health").status_code == 503
