"""Incidents end to end: detected from the events, carrying their downstream impact, delivered to the right
webhooks (a real HTTP receiver on loopback), retried, durable across a restart, resolved by good news."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert, select

from app.db import tables as t
from app.db.engine import write_transaction
from app.main import create_app
from app.services.incidents import late
from app.settings import Settings
from tests.support import model
from tests.support.events import (
    POSTGRES_NS,
    airflow_dag_run,
    airflow_dag_run_id,
    airflow_task_run,
    column_lineage,
    dataset,
    facet,
    nominal_time,
    run_event,
)
from tests.support.history import AS_NEWS, AS_NEWS_ENV
from tests.support.live_server import LiveServer
from tests.support.webhook_receiver import WebhookReceiver
from tests.test_backfill_plans import DAY, NOV, bookings_day, daily, post

FAST = {
    "incident_worker": True,
    "worker_poll_seconds": 0.02,
    "webhook_backoff_seconds": 0.05,
    "webhook_timeout_seconds": 5,
    "late_check_seconds": 0.01,
}
NS, DB = "pipelines", "postgres://db:5432"
HOUR = timedelta(hours=1)
REPORTS = "bookings.public.top_room_bookings"


class Clock:
    """The worker's "now": real time, shifted to wherever the test sets it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def server_clock() -> Clock:
    clock = Clock()
    clock.set(NOV)  # when the events of these tests happen: nothing is late until a test moves the clock
    return clock


@pytest.fixture
def app_with_worker(settings, engine, server_clock) -> Iterator[Callable[..., TestClient]]:
    """A Headwater app whose incident worker runs, fast, on the test's clock."""
    clients = []

    def start(**overrides) -> TestClient:
        # The tests' histories are dated November 2024: the server takes them as news (support/history.py).
        update = {**FAST, **AS_NEWS, **overrides}
        client = TestClient(create_app(settings.model_copy(update=update), clock=server_clock))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(news_client) -> TestClient:
    """Without the worker; the November 2024 history taken as news."""
    return news_client


@pytest.fixture
def worker_client(app_with_worker) -> TestClient:
    return app_with_worker()


def subscribe(client, url: str, secret: str | None = None, **selectors) -> str:
    body = {"url": url, **selectors}
    if secret:
        body["secret"] = secret
    response = client.post("/api/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def deliveries(client, subscription_id: str) -> dict:
    response = client.get(f"/api/v1/subscriptions/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()


def incidents(client, **filters) -> list[dict]:
    response = client.get("/api/v1/incidents", params=filters)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalCount"] == len(body["incidents"])
    return body["incidents"]


def wait_until(condition: Callable[[], object], timeout: float = 15) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_failed_upstream_run_notifies_exactly_the_subscribers_of_impacted_assets(
    worker_client, receiver, server_clock
):
    client = worker_client
    bookings_day(client, NOV)
    subscribe(
        client, receiver.url("/reports"), "reports-secret", datasets=[{"namespace": POSTGRES_NS, "name": REPORTS}]
    )
    subscribe(client, receiver.url("/owner"), "owner-secret", owners=["team-analytics"])
    # Reached by three paths (two downstream datasets and their owner): hears about the incident once.
    everything = subscribe(
        client,
        receiver.url("/everything"),
        "everything-secret",
        datasets=[
            {"namespace": POSTGRES_NS, "name": REPORTS},
            {"namespace": POSTGRES_NS, "name": "bookings.public.room_dashboard"},
        ],
        owners=["team-analytics"],
    )
    unrelated = subscribe(
        client, receiver.url("/unrelated"), "x-secret-1", namespaces=["finance"], owners=["team-finance"]
    )
    # Upstream of the failure: its data is fine.
    upstream = subscribe(
        client,
        receiver.url("/upstream"),
        "x-secret-3",
        datasets=[{"namespace": POSTGRES_NS, "name": "bookings.public.bookings"}],
    )
    kinds = subscribe(client, receiver.url("/late-only"), "x-secret-2", owners=["team-analytics"], kinds=["late"])

    failed = bookings_day(client, NOV + DAY, state="FAIL")
    calls = receiver.wait_for(3)
    assert sorted(c.path for c in calls) == ["/everything", "/owner", "/reports"]
    for call, secret in zip(
        sorted(calls, key=lambda c: c.path), ["everything-secret", "owner-secret", "reports-secret"], strict=True
    ):
        assert call.signed_with(secret), call.path
        assert not call.signed_with("another-secret")
        assert call.headers["content-type"] == "application/json"
        assert call.headers["x-headwater-event"] == "incident.opened"
        assert abs(int(call.headers["x-headwater-timestamp"]) - server_clock().timestamp()) < 60

    body = receiver.calls("/reports")[0].json
    incident = body["incident"]
    assert body["event"] == "incident.opened"
    assert incident["kind"] == "run_failed" and incident["status"] == "open"
    assert incident["job"] == {"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"}
    assert incident["runId"] == failed
    assert incident["details"]["state"] == "FAILED"
    assert incident["details"]["errorMessage"] == "relation does not exist"
    impact = incident["impact"]
    assert [j["job"]["name"] for j in impact["jobs"]] == [
        "bookings_reports.top_rooms",
        "bookings_reports.publish_dashboard",
    ]
    assert impact["dags"] == [{"namespace": "airflow-prod", "dagId": "bookings_reports"}]
    assert impact["owners"] == ["team-analytics"]
    assert impact["subjectOwners"] == ["team-bookings"]
    assert {d["dataset"]["name"] for d in impact["datasets"]} == {
        "bookings.public.room_bookings",
        REPORTS,
        "bookings.public.room_dashboard",
    }
    assert incident["backfill"] == {
        "preview": {"method": "POST", "path": "/api/v1/backfills/preview", "body": {"runId": failed}},
        "url": f"/backfills/new?runId={failed}",
    }
    assert "Run of job bookings_etl.load_room_bookings failed" in body["text"]
    assert "Owners: team-analytics" in body["text"] and "bookings_reports" in body["text"]
    # The prefilled plan is a plan.
    plan = client.post("/api/v1/backfills/preview", json=incident["backfill"]["preview"]["body"])
    assert plan.status_code == 200 and plan.json()["root"]["runs"] == [failed]

    assert deliveries(client, unrelated) == {"deliveries": [], "totalCount": 0}
    assert deliveries(client, kinds)["totalCount"] == 0
    assert deliveries(client, upstream)["totalCount"] == 0
    log = deliveries(client, everything)
    assert log["totalCount"] == 1
    (entry,) = log["deliveries"]
    assert (entry["status"], entry["attempts"], entry["lastStatusCode"]) == ("delivered", 1, 200)

    listed = incidents(client, status="open")
    assert [i["id"] for i in listed] == [incident["id"]]
    assert incidents(client, status="open", kind="late") == []
    assert incidents(client, namespace="airflow-prod")[0]["id"] == incident["id"]
    assert incidents(client, status="resolved") == []
    got = client.get(f"/api/v1/incidents/{incident['id']}").json()
    assert got["impact"] == impact and got["title"] == incident["title"]

    # The next day's run completes: the incident resolves, and those told it opened hear it is over.
    bookings_day(client, NOV + 2 * DAY)
    resolved = receiver.wait_for(6)
    assert sorted(c.path for c in resolved[3:]) == ["/everything", "/owner", "/reports"]
    assert all(c.json["event"] == "incident.resolved" for c in resolved[3:])
    assert resolved[-1].json["text"].startswith(":white_check_mark: Resolved: Run of job bookings_etl")
    (done,) = incidents(client, status="resolved")
    assert done["id"] == incident["id"] and done["resolvedAt"] is not None
    assert "completed" in done["resolution"]
    assert deliveries(client, unrelated)["totalCount"] == 0


def failing_run(client, name="load_orders", *, time=NOV + DAY, output="orders"):
    run_id = uuid.uuid4()
    post(
        client,
        run_event("START", job=(NS, name), run_id=run_id, time=time, outputs=[dataset(DB, output)]),
        run_event("FAIL", job=(NS, name), run_id=run_id, time=time + timedelta(minutes=1),
                  outputs=[dataset(DB, output)]),
    )  # fmt: skip
    return str(run_id)


def test_a_dag_run_failing_because_its_task_did_is_one_incident(client):
    dag_run = airflow_dag_run_id(NOV)
    dag = {"namespace": "airflow-prod", "dag_id": "orders_etl", "logical_date": NOV, "dag_run_id": dag_run}
    task = airflow_task_run(**dag, task_id="load", task_run_id=uuid.uuid4(), inputs=[dataset(DB, "raw")],
                            outputs=[dataset(DB, "orders")], state="FAIL")  # fmt: skip
    post(
        client,
        airflow_dag_run(**dag, event_type="START", time=NOV + DAY),
        *task,
        airflow_dag_run(**dag, event_type="FAIL", time=NOV + DAY + HOUR),
    )
    (incident,) = incidents(client)
    assert incident["job"]["name"] == "orders_etl.load" and incident["runId"] == task[0]["run"]["runId"]
    # A DAG run failing on its own is an incident of the DAG.
    other = airflow_dag_run_id(NOV + DAY)
    dag_only = {**dag, "logical_date": NOV + DAY, "dag_run_id": other}
    post(client, airflow_dag_run(**dag_only, event_type="FAIL", time=NOV + 2 * DAY + HOUR))
    assert [i["job"]["name"] for i in incidents(client)] == ["orders_etl", "orders_etl.load"]


def test_the_incident_list_and_its_total_count_agree_while_incidents_open(client, engine):
    failing_run(client, "load_orders", output="orders")
    (first,) = incidents(client)

    # Another incident commits between the list's two statements (its count, then its page): the answer is
    # still one moment's list — what the worker opening incidents while a page is read must not break.
    def open_another(conn, cursor, statement, parameters, context, executemany):
        if "FROM incidents" in statement and "count(" not in statement and not opened:
            opened.append(True)
            with write_transaction(engine) as writer:
                row = writer.execute(select(t.incidents)).mappings().one()
                writer.execute(insert(t.incidents).values({**row, "id": uuid.uuid4(), "open_key": "another"}))

    opened: list[bool] = []
    event.listen(Engine, "before_cursor_execute", open_another)
    try:
        response = client.get("/api/v1/incidents")
    finally:
        event.remove(Engine, "before_cursor_execute", open_another)
    assert opened, "the page's statement was not seen"
    body = response.json()
    assert body["totalCount"] == len(body["incidents"]), body
    assert [i["id"] for i in body["incidents"]] == [first["id"]]
    assert len(incidents(client)) == 2


def test_a_receiver_answering_500_then_200_gets_the_delivery_on_retry(worker_client, receiver):
    receiver.answer("/flaky", 500)
    subscription = subscribe(worker_client, receiver.url("/flaky"), "flaky-secret", namespaces=[NS])
    failing_run(worker_client)
    first, second = receiver.wait_for(2, "/flaky")
    assert first.body == second.body and second.signed_with("flaky-secret")
    log = wait_until(lambda: deliveries(worker_client, subscription)["deliveries"][0]["status"] == "delivered" and
                     deliveries(worker_client, subscription))  # fmt: skip
    (entry,) = log["deliveries"]
    assert entry["attempts"] == 2 and entry["lastStatusCode"] == 200 and entry["lastError"] is None
    assert [a["statusCode"] for a in entry["history"]] == [500, 200]
    assert entry["history"][0]["error"].startswith("HTTP 500")
    assert len(receiver.calls()) == 2
    metrics = worker_client.get("/metrics").text
    assert 'headwater_webhook_attempts_total{outcome="retry"} 1.0' in metrics
    assert 'headwater_webhook_attempts_total{outcome="delivered"} 1.0' in metrics


def test_a_receiver_that_never_answers_well_is_given_up_on(app_with_worker, receiver):
    client = app_with_worker(webhook_max_attempts=3)
    receiver.answer("/down", 503, 503, 503, 503)
    subscription = subscribe(client, receiver.url("/down"), namespaces=[NS])
    failing_run(client)
    receiver.wait_for(3, "/down")
    entry = wait_until(lambda: (d := deliveries(client, subscription)["deliveries"][0])["status"] == "failed" and d)
    assert entry["attempts"] == 3 and entry["lastStatusCode"] == 503 and entry["nextAttemptAt"] is None
    assert "x-headwater-signature" not in receiver.calls("/down")[0].headers  # no secret, no signature
    time.sleep(0.2)
    assert len(receiver.calls("/down")) == 3


def test_a_restart_between_incident_and_delivery_still_delivers(settings, engine, database_url, receiver, tmp_path):
    """The incident and its outbox row are written at ingest; the first server has no worker running. A new
    server process, started later, delivers from the outbox."""
    with TestClient(create_app(settings.model_copy(update=AS_NEWS))) as first:  # no incident worker
        subscription = subscribe(
            first, receiver.url("/ops"), "ops-secret", jobs=[{"namespace": NS, "name": "load_orders"}]
        )
        run_id = failing_run(first)
        (incident,) = incidents(first, status="open")
        assert incident["runId"] == run_id
        assert deliveries(first, subscription)["totalCount"] == 0
    assert receiver.calls() == []

    env = {"HEADWATER_WORKER_POLL_SECONDS": "0.05", **AS_NEWS_ENV}
    with LiveServer(database_url, log_path=tmp_path / "server.log", env=env) as server:
        (call,) = receiver.wait_for(1, "/ops")
        assert call.signed_with("ops-secret")
        assert call.json["incident"]["id"] == incident["id"]
        assert call.json["incident"]["runId"] == run_id

        def delivered():
            log = httpx.get(f"{server.url}/api/v1/subscriptions/{subscription}/deliveries").json()
            return log["deliveries"][0]["status"] == "delivered" and log

        assert wait_until(delivered)["deliveries"][0]["attempts"] == 1


def scheduled_run(client, name, day, *, output, inputs=(), columns=None, lineage=None, minutes=1, base=NOV):
    """A daily run for day ``day`` (nominal [base + day, base + day + 1)), completed ``minutes`` after its end."""
    start = base + day * DAY
    facets = {"nominalTime": nominal_time(start, start + DAY)}
    outs = [dataset(DB, output, columns=columns, facets={"columnLineage": lineage} if lineage else None)]
    run_id = uuid.uuid4()
    at = start + DAY + timedelta(minutes=minutes)
    post(client, run_event("COMPLETE", job=(NS, name), run_id=run_id, time=at, run_facets=facets, outputs=outs,
                           inputs=[dataset(DB, i) for i in inputs]))  # fmt: skip
    return at


def days_ending_now(days: int) -> datetime:
    """The first day of ``days`` daily runs whose last completes just after now: late is judged in real time,
    from when Headwater heard of a job's last completion (received now, so it must be that recent)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + HOUR - days * DAY


def test_a_late_dataset_raises_an_incident_after_its_cadence_and_resolves_when_the_run_arrives(
    app_with_worker, server_clock, receiver
):
    client = app_with_worker()
    base = days_ending_now(4)
    for day in range(4):
        last = scheduled_run(client, "load_orders", day, output="orders", base=base)
        scheduled_run(client, "revenue", day, output="revenue_t", inputs=["orders"], minutes=30, base=base)
    subscription = subscribe(client, receiver.url("/revenue"), datasets=[{"namespace": DB, "name": "revenue_t"}])
    worker = client.app.state.incident_worker

    def checked_at(moment: datetime) -> list[dict]:
        server_clock.set(moment)
        wait_until(lambda: worker.late_checked_at is not None and moment <= worker.late_checked_at < moment + HOUR)
        return incidents(client, kind="late")

    # Daily runs, tolerance 50%: load_orders is expected to complete by 36 hours after its last completion.
    assert checked_at(last + timedelta(hours=35)) == []
    found = checked_at(last + timedelta(hours=36, minutes=1))
    late = [i for i in found if i["job"]["name"] == "load_orders"]
    assert len(late) == 1
    (incident,) = late
    assert incident["status"] == "open" and incident["dataset"] == {"namespace": DB, "name": "orders"}
    assert incident["title"].startswith("orders is late: load_orders has not completed a run since")
    assert "runs every 1 day" in incident["title"]
    details = incident["details"]
    assert details["cadenceSeconds"] == 86400
    assert details["lateDatasets"] == [{"namespace": DB, "name": "orders"}]
    assert details["expectedBy"] == (last + timedelta(hours=36)).isoformat().replace("+00:00", "Z")
    assert incident["backfill"]["preview"]["body"]["job"] == {"namespace": NS, "name": "load_orders"}
    # The consumer of the late data is told (its dataset is downstream of the late one).
    (call,) = receiver.wait_for(1, "/revenue")
    assert call.json["incident"]["id"] == incident["id"]
    assert [j["job"]["name"] for j in call.json["incident"]["impact"]["jobs"]] == ["revenue"]
    # Checked again later: still one incident for it.
    checked_at(last + timedelta(hours=36, minutes=10))
    assert len([i for i in incidents(client, kind="late") if i["job"]["name"] == "load_orders"]) == 1

    scheduled_run(client, "load_orders", 4, output="orders", minutes=15 * 60, base=base)
    (resolved,) = [i for i in incidents(client, kind="late", status="resolved") if i["id"] == incident["id"]]
    assert "completed" in resolved["resolution"]
    receiver.wait_for(2, "/revenue")
    assert deliveries(client, subscription)["totalCount"] == 2


def dq_run(client, name, table, *, assertions=None, metrics=None, time):
    facets = {}
    if assertions is not None:
        facets["dataQualityAssertions"] = facet("DataQualityAssertionsDatasetFacet", assertions=assertions)
    if metrics is not None:
        facets["dataQualityMetrics"] = facet("DataQualityMetricsInputDatasetFacet", **metrics)
    run_id = uuid.uuid4()
    post(client, run_event("COMPLETE", job=("dbt", name), run_id=run_id, time=time,
                           inputs=[dataset(DB, table, input_facets=facets)]))  # fmt: skip
    return str(run_id)


def test_a_failed_assertion_raises_a_data_quality_incident(client):
    daily(client, "load_orders", [], ["orders"], 0, columns=[("id", "int"), ("amount", "decimal")])
    daily(client, "revenue", ["orders"], ["revenue_t"], 0, hour=2)
    version = client.get(f"/api/v1/namespaces/{DB.replace('/', '%2F')}/datasets/orders").json()["currentVersion"]
    test_run = dq_run(
        client,
        "orders.test",
        "orders",
        assertions=[
            {"assertion": "not_null", "column": "id", "success": False},
            {"assertion": "unique", "column": "id", "success": True},
        ],
        time=NOV + DAY + timedelta(hours=1),
    )
    (incident,) = incidents(client, status="open", kind="data_quality")
    assert incident["title"] == "Data quality check failed on orders: not_null(id)"
    assert incident["dataset"] == {"namespace": DB, "name": "orders"} and incident["namespace"] == DB
    assert incident["datasetVersion"] == version and incident["runId"] == test_run
    assert incident["details"]["failedAssertions"] == [{"assertion": "not_null", "column": "id", "success": False}]
    assert incident["details"]["reportedBy"] == {"namespace": "dbt", "name": "orders.test"}
    assert incident["backfill"]["preview"]["body"] == {
        "dataset": {"namespace": DB, "name": "orders"},
        "version": version,
    }
    # The worker is off here: reading the incident computes its impact (the check itself reads the data too:
    # it is re-run after the repair, as the backfill plan says).
    assert incident["impact"] is None
    got = client.get(f"/api/v1/incidents/{incident['id']}").json()
    assert [j["job"]["name"] for j in got["impact"]["jobs"]] == ["orders.test", "revenue"]

    # The same check failing again is the same incident; passing, it resolves it.
    dq_run(client, "orders.test", "orders", assertions=[{"assertion": "not_null", "column": "id", "success": False}],
           time=NOV + DAY + timedelta(hours=2))  # fmt: skip
    (again,) = incidents(client, kind="data_quality")
    assert again["occurrences"] == 2 and again["status"] == "open"
    # An older passing check arriving late changes nothing.
    dq_run(client, "orders.test", "orders", assertions=[{"assertion": "not_null", "column": "id", "success": True}],
           time=NOV + DAY)  # fmt: skip
    assert incidents(client, kind="data_quality")[0]["status"] == "open"
    dq_run(client, "orders.test", "orders", assertions=[{"assertion": "not_null", "column": "id", "success": True}],
           time=NOV + DAY + timedelta(hours=3))  # fmt: skip
    (resolved,) = incidents(client, kind="data_quality")
    assert resolved["status"] == "resolved" and resolved["resolution"] == "Its quality checks pass again."


def test_metrics_breaking_a_configured_rule_raise_a_data_quality_incident(settings, engine, monkeypatch):
    rules = [{"dataset": f"{DB}:orders*", "column": "customer_id", "metric": "nullCount", "max": 0}]
    monkeypatch.setenv("HEADWATER_QUALITY_RULES", json.dumps(rules))
    configured = Settings(database_url=settings.database_url, migrate_on_start=False, incident_worker=False, **AS_NEWS)
    assert configured.quality_rules[0].max == 0
    with TestClient(create_app(configured)) as client:
        metrics = {"rowCount": 100, "columnMetrics": {"customer_id": {"nullCount": 0}, "note": {"nullCount": 40}}}
        dq_run(client, "orders.metrics", "orders", metrics=metrics, time=NOV + DAY)
        dq_run(client, "other.metrics", "customers", metrics={"columnMetrics": {"customer_id": {"nullCount": 9}}},
               time=NOV + DAY)  # fmt: skip
        assert incidents(client) == []  # within bounds, or no rule for that dataset
        metrics["columnMetrics"]["customer_id"]["nullCount"] = 3
        dq_run(client, "orders.metrics", "orders", metrics=metrics, time=NOV + DAY + timedelta(hours=1))
        (incident,) = incidents(client, kind="data_quality")
        assert incident["details"]["brokenRules"] == [
            {"metric": "nullCount", "column": "customer_id", "value": 3.0, "min": None, "max": 0.0}
        ]
        assert incident["title"] == "Data quality check failed on orders: nullCount(customer_id) = 3 > 0"


def test_a_dropped_column_used_downstream_raises_a_schema_incident(worker_client, receiver):
    client = worker_client
    email, country = [(DB, "customers", "email")], [(DB, "customers", "country")]
    subscription = subscribe(client, receiver.url("/mailer"), jobs=[{"namespace": NS, "name": "marketing"}])

    def day(n, customers_columns):
        scheduled_run(client, "load_customers", n, output="customers", columns=customers_columns)
        scheduled_run(client, "marketing", n, output="mailing_list", inputs=["customers"], minutes=60,
                      columns=[("address", "text")], lineage=column_lineage({"address": email}))  # fmt: skip
        scheduled_run(client, "geo", n, output="by_country", inputs=["customers"], minutes=60,
                      columns=[("country", "text")], lineage=column_lineage({"country": country}))  # fmt: skip

    full = [("id", "int"), ("email", "text"), ("country", "text"), ("legacy_flag", "boolean")]
    day(0, full)
    # Dropping a column nothing downstream derives from raises nothing.
    day(1, full[:3])
    # Dropping email, which marketing's mailing_list.address derives from, does.
    day(2, [("id", "int"), ("country", "text")])
    (incident,) = wait_until(lambda: incidents(client, kind="schema_change"))
    assert incident["status"] == "open" and incident["dataset"] == {"namespace": DB, "name": "customers"}
    assert incident["details"]["changedColumns"] == [{"name": "email", "before": "text", "after": None}]
    assert incident["details"]["downstreamColumns"] == [
        {
            "nodeId": f"dataset:{DB}:mailing_list",
            "dataset": {"namespace": DB, "name": "mailing_list"},
            "columns": ["address"],
        }
    ]
    assert incident["title"] == "Schema change on customers: email (dropped) — used downstream by mailing_list.address"
    assert [j["job"]["name"] for j in incident["impact"]["jobs"]] == ["marketing"]
    assert incident["backfill"]["preview"]["body"]["columns"] == ["email"]
    (call,) = receiver.wait_for(1, "/mailer")
    assert "mailing_list (address)" in call.json["text"]
    # A new version with email again (as text) resolves it.
    day(3, [("id", "int"), ("email", "text"), ("country", "text")])
    (resolved,) = incidents(client, kind="schema_change")
    assert resolved["status"] == "resolved"
    receiver.wait_for(2, "/mailer")
    assert deliveries(client, subscription)["totalCount"] == 2


def test_quality_facets_of_odd_shapes_raise_nothing_and_keep_the_event(settings, engine, monkeypatch):
    monkeypatch.setenv(
        "HEADWATER_QUALITY_RULES",
        '[{"metric": "rowCount", "min": 1}, {"column": "*", "metric": "nullCount", "max": 0}]',
    )
    configured = Settings(database_url=settings.database_url, migrate_on_start=False, incident_worker=False, **AS_NEWS)
    odd = [
        {"dataQualityAssertions": {"assertions": "none"}},
        {"dataQualityAssertions": {"assertions": [1, None, {"success": "no"}]}},
        {"dataQualityMetrics": {"rowCount": "many", "columnMetrics": [1, 2]}},
        {"dataQualityMetrics": {"rowCount": True, "columnMetrics": {"a": None, "b": {"nullCount": "x"}}}},
    ]
    with TestClient(create_app(configured)) as client:
        for n, facets in enumerate(odd):
            run_id = uuid.uuid4()
            event = run_event("COMPLETE", job=("dbt", f"check{n}"), run_id=run_id, time=NOV + n * HOUR,
                              inputs=[dataset(DB, "orders", input_facets=facets)])  # fmt: skip
            post(client, event)
            assert client.get(f"/api/v1/jobs/runs/{run_id}").json()["state"] == "COMPLETED"
        assert incidents(client) == []
        # An assertion without a name still counts when it failed.
        dq_run(client, "check", "orders", assertions=[{"success": False}], time=NOV + DAY)
        assert incidents(client)[0]["details"]["failedAssertions"] == [
            {"assertion": "?", "column": None, "success": False}
        ]


def test_a_jobs_cadence_is_learned_from_its_newest_runs_only(client, engine, settings):
    """Twelve daily runs, then ten runs every three days: the job now runs every three days, whatever its
    longer history says (the median over all 22 runs would be one day)."""
    days = [*range(12), *range(14, 42, 3)]
    base = days_ending_now(42)
    for day in days:
        last = scheduled_run(client, "load_orders", day, output="orders", base=base)
    (overdue,) = late.overdue_jobs(model.applied(engine), settings, last + 5 * DAY)
    assert overdue.cadence == 3 * DAY
    assert overdue.last_completed == last
    assert late.overdue_jobs(engine, settings, last + 4 * DAY) == []  # 3 days × 1.5 tolerance = 4.5 days


def test_a_slow_receiver_does_not_hold_up_the_other_subscribers(app_with_worker, receiver):
    """Two receivers that take their time answering: both are called at once, neither waits for the other's
    timeout; each is recorded as delivered when it answers."""
    client = app_with_worker(webhook_timeout_seconds=30)
    bookings_day(client, NOV)
    slow = {path: receiver.hold(path) for path in ("/slow-1", "/slow-2")}
    ids = [subscribe(client, receiver.url(path), owners=["team-analytics"]) for path in slow]
    bookings_day(client, NOV + DAY, state="FAIL")
    assert sorted(c.path for c in receiver.wait_for(2, timeout=10)) == ["/slow-1", "/slow-2"]
    assert [deliveries(client, i)["deliveries"][0]["status"] for i in ids] == ["pending", "pending"]
    for held in slow.values():
        held.set()
    wait_until(lambda: all(deliveries(client, i)["deliveries"][0]["status"] == "delivered" for i in ids))
