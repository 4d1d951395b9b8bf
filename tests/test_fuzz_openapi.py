"""Fuzzing every operation of Headwater's own OpenAPI document (openapi/openapi.json) with schemathesis, against a
real `headwater serve` holding a realistic installation (tests/support/installation.py: Airflow DAGs with a
failure and its incident, a dbt model with column lineage, tags, a subscription, a saved backfill plan).

Two phases, both bounded and deterministic (derandomized hypothesis):

- Each operation on its own: requests generated from its declared parameters and bodies, where identifiers
  (path parameters, `nodeId`/`runId` queries, a backfill's root cause) are either generated or taken from
  what the installation really holds, so the fuzzing reaches the logic behind a name, not only its 404.
  Destructive operations (DELETE) get the installation's scratch namespace and subscription.
- Stateful: sequences of calls following the OpenAPI links the document declares (app/api/openapi_links.py):
  list namespaces → a namespace's jobs → a job → its runs → a run's facets, save a plan → read it, and so on.

The checks, and why these:

- not_a_server_error: no input may produce a 5xx; bad input is a 4xx with a JSON error;
- status_code_conformance: every status the app answers is one the document declares for the operation,
  so clients (and generated SDKs) know every outcome;
- content_type_conformance: the body's media type is the declared one (JSON errors, JSON documents);
- response_schema_conformance: the body matches the declared response schema.

Left out: positive_data_acceptance / negative_data_rejection. The document describes shapes, not every rule
(a name that does not exist is schema-valid and still a 404; Marquez-compatible endpoints accept more than
the document spells out), so those would report the document's looseness, not the app's faults.

Last, every operation must have answered something other than 404 to some generated request: proof that the
fuzzing went past "not found" everywhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.case import Case

from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.openapi_doc import DOCUMENT
from tests.conftest import empty_tables
from tests.support.events import POSTGRES_NS
from tests.support.history import AS_NEWS_ENV
from tests.support.installation import full_installation, ok
from tests.support.live_server import LiveServer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 10
STATEFUL_SCENARIOS, STATEFUL_STEPS = 20, 6
SETTINGS = {"derandomize": True, "deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}

schema = schemathesis.openapi.from_path(str(DOCUMENT))

# Filled by the `installation` fixture before any case is generated; read by the hooks below.
REAL: dict[str, Any] = {}
# Operation label → how many times each status was answered, over both phases.
ANSWERED: dict[str, Counter] = defaultdict(Counter)

_IDENTIFIERS = {"namespace", "dataset", "field", "version", "job", "run_id", "planId", "incidentId", "subscriptionId"}
_IDENTIFIERS |= {"source", "connection"}
_ROOT_KEYS = {"runId", "dataset", "version", "job", "start", "end"}
SCRATCH_NAMESPACES = {"scratch", "scratch.doomed"}


def _get(http: httpx.Client, path: str, key: str) -> list[dict]:
    return ok(http.get(path, params={"limit": 100}))[key]


def collect_identifiers(http: httpx.Client) -> dict[str, Any]:
    """What a client can list: every name and id in the installation, as rows of path parameters."""
    rows: list[dict[str, str]] = []
    nodes, runs, roots = [], [], []
    for ns in (n["name"] for n in _get(http, "/api/v1/namespaces", "namespaces")):
        rows.append({"namespace": ns})
        enc = quote(ns, safe="")
        for job in _get(http, f"/api/v1/namespaces/{enc}/jobs", "jobs"):
            ids = {"namespace": ns, "job": job["name"]}
            rows.append(ids)
            nodes.append(f"job:{ns}:{job['name']}")
            path = f"/api/v1/namespaces/{enc}/jobs/{quote(job['name'], safe='')}"
            rows += [{**ids, "version": v["version"]} for v in _get(http, f"{path}/versions", "versions")]
            for run in _get(http, f"{path}/runs", "runs"):
                runs.append(run["id"])
                rows.append({"run_id": run["id"]})
                roots.append({"runId": run["id"]})
            if job["latestRun"] and job["latestRun"].get("nominalStartTime"):
                start = job["latestRun"]["nominalStartTime"]
                roots.append({"job": {"namespace": ns, "name": job["name"]}, "start": start})
        for dataset in _get(http, f"/api/v1/namespaces/{enc}/datasets", "datasets"):
            ids = {"namespace": ns, "dataset": dataset["name"]}
            rows.append(ids)
            nodes.append(f"dataset:{ns}:{dataset['name']}")
            nodes += [f"datasetField:{ns}:{dataset['name']}:{f['name']}" for f in dataset["fields"]]
            rows += [{**ids, "field": f["name"]} for f in dataset["fields"]]
            path = f"/api/v1/namespaces/{enc}/datasets/{quote(dataset['name'], safe='')}"
            for version in _get(http, f"{path}/versions", "versions"):
                rows.append({**ids, "version": version["version"]})
                roots.append({"dataset": {"namespace": ns, "name": dataset["name"]}, "version": version["version"]})
    rows += [{"source": s["name"]} for s in _get(http, "/api/v1/sources", "sources")]
    for plan in _get(http, "/api/v1/backfills", "plans"):
        # A plan named `fuzz:<operation>` is in the state that operation applies to: only it gets that plan.
        only = plan["name"].removeprefix("fuzz:") if (plan["name"] or "").startswith("fuzz:") else None
        rows.append({"planId": plan["id"], **({"only": f"/{only}"} if only else {})})
    rows += [{"incidentId": i["id"]} for i in _get(http, "/api/v1/incidents", "incidents")]
    for subscription in _get(http, "/api/v1/subscriptions", "subscriptions"):
        scratch = subscription["description"] == "scratch"
        rows.append({"subscriptionId": subscription["id"], "scratch": scratch, "doomed": scratch})
    for row in rows:
        row.setdefault("scratch", row.get("namespace") in SCRATCH_NAMESPACES)
        row.setdefault("doomed", "doomed" in f"{row.get('namespace')} {row.get('dataset')} {row.get('job')}")
    for connection in ok(http.get("/api/v1/airflow-connections"))["connections"]:
        scratch = connection["name"] == "scratch"
        rows.append({"connection": connection["name"], "scratch": scratch, "doomed": scratch})
    tags = [t["name"] for t in _get(http, "/api/v1/tags", "tags")]
    return {"rows": rows, "nodes": nodes, "runs": runs, "roots": roots, "tags": tags}


@pytest.fixture(scope="module")
def installation(database_url, settings, tmp_path_factory) -> Iterator[LiveServer]:
    """A server holding the installation for the whole module. It deliberately does not use the `engine`
    fixture, whose per-test emptying would undo the installation between operations."""
    engine = create_db_engine(settings)
    upgrade(engine)
    empty_tables(engine)
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    try:
        # The installation's history is dated 2024 and must still raise its incident (tests/support/history.py).
        # Calls to the installation's Airflow (nothing listens) and to whatever Airflow a fuzzed connection names
        # give up quickly.
        server = LiveServer(database_url, log_path=log, env={**AS_NEWS_ENV, "HEADWATER_AIRFLOW_TIMEOUT_SECONDS": "1"})
        with server, httpx.Client(base_url=server.url, timeout=60) as http:
            full_installation(http)
            REAL.update(collect_identifiers(http))
            assert any("incidentId" in row for row in REAL["rows"]), "the failed run opened no incident"
            REAL["url"] = server.url
            yield server
    finally:
        REAL.clear()
        empty_tables(engine)
        engine.dispose()


# --- real identifiers among the generated ones -------------------------------------------------------------


def _path_candidates(method: str, path: str, generated: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = set(generated) & _IDENTIFIERS
    scratch = method.upper() == "DELETE"
    found = []
    for row in REAL["rows"]:
        if "only" in row and not path.endswith(row["only"]):
            continue
        ids = {k: v for k, v in row.items() if k not in ("scratch", "doomed", "only")}
        # What a DELETE removes outright is a scratch thing kept for that (`doomed`), so the deletes of tags
        # still find theirs in the scratch namespace.
        if scratch and row["doomed"] != ("tag" not in generated):
            continue
        if set(ids) == wanted and row["scratch"] == scratch:
            candidate = {**generated, **ids}
            if "tag" in generated and REAL["tags"]:
                candidate["tag"] = REAL["tags"][0]
            found.append(candidate)
    return found


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not REAL or not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    candidates = _path_candidates(context.operation.method, context.operation.path, path_parameters)
    if not candidates:
        return st.just(path_parameters)
    return _mixed(path_parameters, candidates)


@schema.hook
def flatmap_query(context, query):
    if not REAL or not isinstance(query, dict):
        return st.just(query)
    path = context.operation.path
    if path == "/api/v1/impact":
        kept = {k: v for k, v in query.items() if k not in _ROOT_KEYS}
        candidates = [{**kept, **_as_query(root)} for root in REAL["roots"]]
    elif path == "/api/v1/column-lineage":
        candidates = [{**query, "nodeId": n} for n in REAL["nodes"] if not n.startswith("job:")]
    elif "nodeId" in query:
        candidates = [{**query, "nodeId": n} for n in REAL["nodes"]]
    elif "runId" in query:
        candidates = [{**query, "runId": r} for r in REAL["runs"]]
    else:
        return st.just(query)
    return _mixed(query, candidates)


def _as_query(root: dict[str, Any]) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in root.items():
        if isinstance(value, dict):  # {"namespace", "name"} of a job or dataset
            flat["namespace"], flat[key] = value["namespace"], value["name"]
        else:
            flat[key] = value
    return flat


@schema.hook
def flatmap_body(context, body):
    """Bodies naming real things: the real ones alone (valid, so the logic runs to the end) and merged into the
    generated body (the generated rest still tried against them)."""
    if not REAL or not isinstance(body, dict):
        return st.just(body)
    path, method = context.operation.path, context.operation.method.upper()
    if (path, method) in {
        ("/api/v1/backfills", "POST"),
        ("/api/v1/backfills/preview", "POST"),
        ("/api/v1/impact", "POST"),
    }:
        kept = {k: v for k, v in body.items() if k not in _ROOT_KEYS}
        real = REAL["roots"]
        return _mixed(body, real + [{**kept, **root} for root in real])
    if path == "/api/v1/namespaces/{namespace}/datasets/{dataset}" and method == "PUT":
        real = {"type": "DB_TABLE", "physicalName": "public.t", "sourceName": "warehouse"}
        return _mixed(body, [real, {**body, "sourceName": "warehouse"}])
    if path.startswith("/api/v1/subscriptions") and method in ("POST", "PUT"):
        real = {"url": "http://127.0.0.1:9/hook", "namespaces": ["airflow-prod"]}
        return _mixed(body, [real, {**body, **real}])
    if path == "/api/v1/airflow-connections/{connection}" and method == "PUT":
        real = {"baseUrl": "http://127.0.0.1:9", "namespaces": ["airflow-prod"], "username": "hw", "password": "pw"}
        return _mixed(body, [real, {**body, **real}])
    if path == "/api/v1/backfills/{planId}/run":
        return _mixed(body, [{}, {"startedBy": "fuzz"}])
    if path == "/api/v1/lineage" and method == "POST":
        # The document leaves the event free-form (OpenLineage's own schema defines it): make some valid.
        return _mixed(body, VALID_EVENTS + [{**body, **event} for event in VALID_EVENTS])
    return st.just(body)


def _mixed(generated, real: list) -> st.SearchStrategy:
    """Real values first: hypothesis draws the first branch of `one_of` more readily, and an operation gets few
    examples, so with the generated value first a session could give an operation no real name at all (which
    operation depended on what ran before in the session: seen in full runs, never with the file alone)."""
    return st.one_of(st.sampled_from(real), st.just(generated))


VALID_EVENTS = [
    {
        "eventType": "COMPLETE",
        "eventTime": "2024-11-04T02:00:00Z",
        "run": {"runId": "0193f3a0-0000-7000-8000-000000000001"},
        "job": {"namespace": "airflow-prod", "name": "bookings_reports.top_rooms"},
        "inputs": [{"namespace": POSTGRES_NS, "name": "bookings.public.room_bookings"}],
    },
    {"eventTime": "2024-11-04T02:00:00Z", "dataset": {"namespace": POSTGRES_NS, "name": "bookings.public.bookings"}},
    {"eventTime": "2024-11-04T02:00:00Z", "job": {"namespace": "airflow-prod", "name": "bookings_etl"}},
]


# --- phase 1: each operation ------------------------------------------------------------------------------


def call(case: Case) -> Any:
    response = case.call(base_url=REAL["url"])
    ANSWERED[case.operation.label][response.status_code] += 1
    return response


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, **SETTINGS)
def test_every_operation_conforms_and_never_fails(case: Case, installation):
    case.validate_response(call(case), checks=CHECKS)


# --- phase 2: stateful, along the document's links --------------------------------------------------------


class LinkedCalls(schema.as_state_machine()):
    """Failures are collected, not raised: the server's state moves on with every call, so hypothesis could not
    replay (shrink) a failing sequence anyway; each failure is reported with the request that caused it."""

    failures: ClassVar[list[str]] = []
    linked: ClassVar[dict[str, Counter]] = defaultdict(Counter)

    def call(self, case: Case, **kwargs: Any):
        response = call(case)
        self.linked[case.operation.label][response.status_code] += 1
        return response

    def validate_response(self, response, case: Case, additional_checks=None, **kwargs: Any) -> None:
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as failure:  # noqa: BLE001 - every check failure is reported below, with its request
            self.failures.append(f"{case.as_curl_command()}\n{failure}")


def test_linked_calls_conform_and_never_fail(installation):
    LinkedCalls.run(settings=settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, **SETTINGS))
    assert not LinkedCalls.failures, "\n\n".join(LinkedCalls.failures[:5])
    # Sequences went past "not found": calls naming something (a path parameter) found it, for several kinds.
    found = sorted(
        label for label, got in LinkedCalls.linked.items() if "{" in label and any(200 <= s < 300 for s in got)
    )
    print("linked calls answered 2xx:", found)
    assert len(found) >= 5, dict(LinkedCalls.linked)


# --- every operation went past its 404 --------------------------------------------------------------------


def test_every_operation_was_answered_beyond_not_found(installation):
    if not ANSWERED:
        pytest.skip("runs after the fuzzing tests of this module (run the whole file)")
    operations = [result.ok().label for result in schema.get_all_operations()]
    for label in operations:
        print(label, dict(sorted(ANSWERED[label].items())))
    # 405 answers a method the operation does not have (schemathesis tries some): it says nothing of the logic.
    never_succeeded = {
        label: dict(ANSWERED[label]) for label in operations if not any(200 <= s < 300 for s in ANSWERED[label])
    }
    assert not never_succeeded, f"operations that never answered a 2xx, only errors or 404: {never_succeeded}"
    server_errors = {label: dict(c) for label, c in ANSWERED.items() if any(s >= 500 for s in c)}
    assert not server_errors, server_errors
