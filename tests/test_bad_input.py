"""A corpus of bad and hostile input, sent over real HTTP to a `headwater serve` process.

Rejected input gets a 4xx with a JSON error that says what is wrong, and leaves every table exactly as it
was (nothing half-written). Input that is valid OpenLineage however odd (SQL or path-traversal text in names,
control characters, a facet 120 levels deep, 100k facets, a 10 MB string) is stored faithfully and reads back
as sent. After all of it the same server process still answers /api/v1/health.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from app.db import tables as t
from tests.support.events import T0, dataset, facet, run_event
from tests.support.live_server import LiveServer
from tests.support.model import applied

MAX_BODY = 16 * 1024 * 1024  # the default HEADWATER_MAX_BODY_BYTES


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory) -> Iterator[LiveServer]:
    with LiveServer(database_url, log_path=tmp_path_factory.mktemp("bad-input") / "server.log") as server:
        yield server


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def row_counts(engine) -> dict[str, int]:
    with applied(engine).connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar()
            for table in [t.lineage_events, *t.MODEL_TABLES, t.backfill_plans]
        }


def valid_event(namespace: str = "bad-input", name: str = "job", **run_facets) -> dict:
    return run_event(
        "START",
        job=(namespace, name),
        run_id=uuid.uuid4(),
        time=T0,
        inputs=[dataset("db", "in", columns=[("id", "int")])],
        outputs=[dataset("db", "out", columns=[("id", "int")])],
        run_facets=run_facets,
    )


def nested(depth: int) -> str:
    return '{"a":' * depth + "{}" + "}" * depth


def event_with_raw_facet(raw_facet_json: str, run_id: str | None = None) -> bytes:
    """An event whose run facet `deep` is the given JSON text (too deep to build as a Python object)."""
    event = valid_event()
    event["run"]["runId"] = run_id or event["run"]["runId"]
    event["run"]["facets"]["deep"] = "@@FACET@@"
    return json.dumps(event).replace('"@@FACET@@"', raw_facet_json).encode()


VALID = json.dumps(valid_event()).encode()
# Found by the fuzzing (tests/test_fuzz_openapi.py): a field the spec gives only other kinds, of the wrong type.
DATASET_EVENT_TYPED_AS_LIST = json.dumps(
    {"eventTime": "2024-11-01T00:00:00Z", "eventType": [{}], "dataset": {"namespace": "db", "name": "t"}}
).encode()
JSON = {"content-type": "application/json"}
GZIP = {"content-type": "application/json", "content-encoding": "gzip"}


def _with(**changes) -> bytes:
    event = valid_event()
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return json.dumps(event).encode()


# (case id, body, headers, expected status, words the message must contain)
REJECTED_EVENTS = [
    ("empty body", b"", JSON, 400, "empty"),
    ("malformed JSON", b'{"eventTime": "2024-11-01T00:00:00Z", "run": {', JSON, 400, "not valid JSON"),
    ("truncated JSON", VALID[: len(VALID) // 2], JSON, 400, "not valid JSON"),
    ("trailing garbage", VALID + b"}}", JSON, 400, "not valid JSON"),
    ("JSON array", b"[]", JSON, 400, "must be a JSON object"),
    ("JSON string", b'"event"', JSON, 400, "must be a JSON object"),
    ("JSON null", b"null", JSON, 400, "must be a JSON object"),
    ("NaN", VALID.replace(b'"START"', b"NaN"), JSON, 400, "NaN is not valid JSON"),
    ("truncated gzip", gzip.compress(VALID)[:-12], GZIP, 400, "truncated"),
    ("bogus gzip", b"\x1f\x8b\x08\x00not really gzip at all", GZIP, 400, "not valid gzip"),
    ("plain JSON sent as gzip", VALID, GZIP, 400, "not valid gzip"),
    ("gzip bomb", gzip.compress(b" " * (MAX_BODY + 1024)), GZIP, 413, "larger than the limit"),
    ("oversized body", b'{"pad": "' + b"x" * (MAX_BODY + 1) + b'"}', JSON, 413, "larger than the limit"),
    ("unknown encoding", VALID, {**JSON, "content-encoding": "br"}, 415, "Content-Encoding"),
    ("invalid UTF-8", VALID.replace(b'"bad-input"', b'"bad-\xff\xfe-input"'), JSON, 400, "utf-8"),
    ("lone surrogate", VALID.replace(b'"bad-input"', b'"bad-\\ud800"'), JSON, 422, "job.namespace"),
    ("NUL in a name", VALID.replace(b'"bad-input"', b'"bad\\u0000input"'), JSON, 422, "NUL"),
    ("NUL in a facet key", _with(run__facets={"a\x00b": {}}), JSON, 422, "NUL"),
    ("deeply nested facet (300 levels)", event_with_raw_facet(nested(300)), JSON, 400, "nesting is too deep"),
    ("deeply nested facet (5,000 levels)", event_with_raw_facet(nested(5000)), JSON, 400, "nesting is too deep"),
    ("deeply nested facet (100,000 levels)", event_with_raw_facet(nested(100_000)), JSON, 400, "too deep"),
    ("not an event", b'{"hello": "world"}', JSON, 422, "Not an OpenLineage event"),
    ("eventTime a number", _with(eventTime=12), JSON, 422, "eventTime"),
    ("eventTime not a date", _with(eventTime="yesterday"), JSON, 422, "eventTime"),
    ("runId not a UUID", _with(run__runId="'; DROP TABLE runs; --"), JSON, 422, "run.runId"),
    ("run a string", _with(run="run"), JSON, 422, "run"),
    ("inputs an object", _with(inputs={"name": "x"}), JSON, 422, "inputs"),
    ("input without a name", _with(inputs=[{"namespace": "db"}]), JSON, 422, "inputs[0].name"),
    ("facets a list", _with(run__facets=[1, 2]), JSON, 422, "run.facets"),
    ("job name of 5,000 characters", _with(job__name="x" * 5000), JSON, 422, "job.name"),
    ("empty job name", _with(job__name=""), JSON, 422, "job.name"),
    ("eventType a list", _with(eventType=["START"]), JSON, 422, "eventType"),
    ("DatasetEvent with eventType a list", DATASET_EVENT_TYPED_AS_LIST, JSON, 422, "eventType"),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in REJECTED_EVENTS],
)
def test_rejected_event_gets_clear_4xx_and_writes_nothing(http, engine, body, headers, status, words):
    http.post("/api/v1/lineage", json=valid_event("bad-input", "already-there"))  # a model to leave untouched
    before = row_counts(engine)
    response = http.post("/api/v1/lineage", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"] == status
    assert words.lower() in error["message"].lower(), error["message"]
    assert row_counts(engine) == before
    assert http.get("/api/v1/health").status_code == 200


# The same corpus as elements of a batch: what is wrong with one event is reported for that event (by index,
# not retriable) and costs only itself; what is wrong with the body as a whole gets the same 4xx as above.
EVENT_LEVEL = {"JSON array", "JSON string", "JSON null"}
BATCH_CASES = [
    case for case in REJECTED_EVENTS if case[2] is JSON and case[0] not in ("empty body", "unknown encoding")
]


@pytest.mark.parametrize(
    ("case", "body", "status", "words"),
    [pytest.param(case[0], case[1], case[3], case[4], id=case[0]) for case in BATCH_CASES],
)
def test_rejected_events_in_a_batch(http, engine, case, body, status, words):
    http.post("/api/v1/lineage", json=valid_event("bad-input", "already-there"))
    before = row_counts(engine)
    response = http.post("/api/v1/lineage/batch", content=b"[" + body + b"]", headers=JSON)
    if status == 422 or case in EVENT_LEVEL:
        assert response.status_code == 200, response.text
        assert response.json()["summary"]["failed"] == 1
        [failed] = response.json()["failed_events"]
        assert (failed["index"], failed["retriable"]) == (0, False)
        assert words.lower() in failed["reason"].lower(), failed["reason"]
    else:
        assert response.status_code == status, response.text
        assert words.lower() in response.json()["message"].lower(), response.json()["message"]
    assert row_counts(engine) == before


# Valid OpenLineage, however odd: stored and read back exactly as sent.
ODD_NAMES = [
    "'; DROP TABLE jobs; --",
    "x' OR '1'='1",
    "../../../etc/passwd",
    "..\\..\\windows\\system32",
    "%2e%2e%2f%00",
    "bell\x07 escape\x1b[31m tab\t newline\n",
    "<script>alert(1)</script>",
    "名前 with spaces/and:colons",
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=[repr(n)[:30] for n in ODD_NAMES])
def test_odd_names_are_stored_faithfully_and_read_back(http, name):
    event = run_event(
        "COMPLETE",
        job=(name, name),
        run_id=uuid.uuid4(),
        time=T0,
        outputs=[dataset(name, name, columns=[(name, "text")])],
    )
    assert http.post("/api/v1/lineage", json=event).status_code == 201
    path_name = quote(name, safe="")
    job = http.get(f"/api/v1/namespaces/{path_name}/jobs/{path_name}")
    assert job.status_code == 200, job.text
    assert job.json()["name"] == name and job.json()["namespace"] == name
    stored = http.get(f"/api/v1/namespaces/{path_name}/datasets/{path_name}").json()
    assert stored["name"] == name
    assert [f["name"] for f in stored["fields"]] == [name]


# Found by the fuzzing: an event of one kind carrying a field that tells another kind apart (a stray "dataset"
# on a RunEvent, "job" on a DatasetEvent) was a 500, and took a whole batch down with it.
STRAY_KIND_FIELDS = [
    ("RunEvent with a dataset", {**valid_event("stray", "run-job"), "dataset": {"x": [1]}}, "jobs/run-job"),
    ("RunEvent with a text dataset", {**valid_event("stray", "run-job2"), "dataset": "t"}, "jobs/run-job2"),
    (
        "DatasetEvent with a job",
        {"eventTime": "2024-11-01T00:00:00Z", "dataset": {"namespace": "stray", "name": "t"}, "job": {"x": 1}},
        "datasets/t",
    ),
]


@pytest.mark.parametrize(("event", "path"), [pytest.param(*c[1:], id=c[0]) for c in STRAY_KIND_FIELDS])
def test_a_field_of_another_event_kind_is_kept_not_read(http, engine, event, path):
    assert http.post("/api/v1/lineage", json=event).status_code == 201
    assert http.get(f"/api/v1/namespaces/stray/{path}").status_code == 200  # stored as the kind it is
    with engine.connect() as conn:
        stored = conn.execute(select(t.lineage_events.c.payload)).scalars().all()
    assert stored == [event]  # the stray field is kept verbatim, like any unknown field
    batch = http.post("/api/v1/lineage/batch", json=[event, valid_event("stray", "next")]).json()
    assert batch["summary"] == {"received": 2, "successful": 2, "failed": 0, "retriable": 0, "non_retriable": 0}


def test_huge_but_valid_events_are_stored_faithfully(http, engine):
    deep_run = str(uuid.uuid4())
    deep = event_with_raw_facet(nested(120), run_id=deep_run)
    assert http.post("/api/v1/lineage", content=deep, headers=JSON).status_code == 201
    facets = http.get(f"/api/v1/jobs/runs/{deep_run}/facets", params={"type": "run"}).json()["facets"]
    assert json.dumps(facets["deep"], separators=(",", ":")) == nested(120)

    many = valid_event(**{f"facet_{i}": {"_producer": "p", "_schemaURL": "s", "value": i} for i in range(100_000)})
    assert http.post("/api/v1/lineage", json=many).status_code == 201
    facets = http.get(f"/api/v1/jobs/runs/{many['run']['runId']}/facets", params={"type": "run"}).json()["facets"]
    assert len(facets) == 100_000 and facets["facet_99999"]["value"] == 99_999

    text = "λ" * 5_000_000  # 10 MB of UTF-8
    big = valid_event("bad-input", "big")
    big["job"]["facets"]["documentation"] = facet("DocumentationJobFacet", description=text)
    body = gzip.compress(json.dumps(big, ensure_ascii=False).encode())
    assert http.post("/api/v1/lineage", content=body, headers=GZIP).status_code == 201
    assert http.get("/api/v1/namespaces/bad-input/jobs/big").json()["description"] == text


READ_REQUESTS = [
    ("/api/v1/namespaces/..%2F..%2Fetc%2Fpasswd", 404, "not found"),
    ("/api/v1/namespaces/x'%3B%20DROP%20TABLE%20jobs%3B--/jobs", 404, "not found"),
    ("/api/v1/namespaces/a%00b", 400, "NUL"),
    ("/api/v1/jobs/runs/not-a-uuid", 400, "run_id"),
    ("/api/v1/jobs/runs/00000000-0000-0000-0000-000000000000", 404, "not found"),
    ("/api/v1/namespaces?limit=-1", 400, "limit"),
    ("/api/v1/namespaces?limit=99999999999999999999", 400, "limit"),
    ("/api/v1/namespaces?offset=abc", 400, "offset"),
    ("/api/v1/lineage?nodeId=garbage", 400, "nodeId"),
    ("/api/v1/lineage?nodeId=job:ns:name&depth=-5", 400, "depth"),
    ("/api/v1/events/lineage?before=notadate", 400, "before"),
    ("/api/v1/events/lineage?sortDirection=sideways", 400, "sortDirection"),
    ("/api/v1/search?q=" + "a" * 1024, 200, None),
    ("/api/v1/search?q=" + "a" * 60_000, 400, "q: String should have at most 1024 characters"),
    ("/api/v1/search?q=%27%20OR%201%3D1%20--", 200, None),
    ("/api/v1/stats/nothing", 404, "no statistics"),
]


@pytest.mark.parametrize(("path", "status", "words"), READ_REQUESTS, ids=[r[0][:60] for r in READ_REQUESTS])
def test_bad_read_requests_get_clear_errors(http, engine, path, status, words):
    assert http.post("/api/v1/lineage", json=valid_event()).status_code == 201
    before = row_counts(engine)
    response = http.get(path)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["code"] == status
        if words:
            assert words.lower() in response.json()["message"].lower(), response.json()
    else:
        assert response.json()["totalCount"] == 0  # the injection finds nothing; nothing leaks
    assert row_counts(engine) == before
    assert http.get("/api/v1/health").status_code == 200


def test_server_survives_the_whole_corpus(server, http):
    """The same process served every case above (module-scoped), and answers still."""
    assert server.process.poll() is None
    assert http.get("/api/v1/health").json()["status"] == "ok"
    assert http.get("/api/v1/namespaces").status_code == 200
