"""History is not news: events Headwater receives long after their eventTime (a migration, a replay through
/lineage/batch, `headwater import`) build the model but open no incident of any kind and send no webhook, and a
job whose last completion was learned as history is not late. The server here runs with the default
HEADWATER_INCIDENT_MAX_EVENT_AGE, its worker on the real clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import DEFAULT_INCIDENT_MAX_EVENT_AGE
from tests.support.events import column_lineage, dataset, facet, nominal_time, run_event
from tests.support.webhook_receiver import WebhookReceiver
from tests.test_incidents import DB, FAST, NS, Clock, deliveries, incidents, subscribe, wait_until

HOUR = timedelta(hours=1)
WEEK_OF_2022 = datetime(2022, 3, 7, tzinfo=UTC)
COLUMNS = [("id", "int"), ("email", "text"), ("amount", "decimal")]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.set(datetime.now(UTC))  # the real clock, until a test moves it on
    return clock


@pytest.fixture
def client(settings, engine, clock) -> Iterator[TestClient]:
    assert settings.incident_max_event_age == DEFAULT_INCIDENT_MAX_EVENT_AGE
    with TestClient(create_app(settings.model_copy(update=FAST), clock=clock)) as client:  # with its worker
        yield client


def hourly_run(job: str, start: datetime, *, state="COMPLETE", columns=COLUMNS, quality=None) -> list[dict]:
    """One run of an hourly job writing ``orders_<job>``: START and its end, five minutes after its hour."""
    run_id = uuid.uuid4()
    facets = {"nominalTime": nominal_time(start, start + HOUR)}
    output = dataset(DB, f"{job}_out", columns=columns)
    inputs = [dataset(DB, "raw", input_facets=quality)] if quality else [dataset(DB, "raw")]
    return [
        run_event("START", job=(NS, job), run_id=run_id, time=start + HOUR, run_facets=facets, inputs=inputs,
                  outputs=[output]),
        run_event(state, job=(NS, job), run_id=run_id, time=start + HOUR + timedelta(minutes=5), run_facets=facets,
                  inputs=inputs, outputs=[output]),
    ]  # fmt: skip


def downstream_run(start: datetime) -> list[dict]:
    """A daily job deriving mailing_list.address from load_orders_out.email (column lineage)."""
    run_id = uuid.uuid4()
    lineage = column_lineage({"address": [(DB, "load_orders_out", "email")]})
    output = dataset(DB, "mailing_list", columns=[("address", "text")], facets={"columnLineage": lineage})
    facets = {"nominalTime": nominal_time(start, start + 24 * HOUR)}
    return [
        run_event("COMPLETE", job=(NS, "marketing"), run_id=run_id, time=start + 25 * HOUR, run_facets=facets,
                  inputs=[dataset(DB, "load_orders_out")], outputs=[output]),
    ]  # fmt: skip


def week_of_history() -> list[dict]:
    """Seven days of an hourly load, with what raises each kind of incident when it happens live: a failed
    run, a failed quality check, a dropped column used downstream, and (replayed against today's clock) a job
    years past its next expected run."""
    not_null = [{"assertion": "not_null", "success": False}]
    failed_check = {"dataQualityAssertions": facet("DataQualityAssertionsDatasetFacet", assertions=not_null)}
    events = []
    for hour in range(7 * 24):
        start = WEEK_OF_2022 + hour * HOUR
        if hour == 50:
            events += hourly_run("load_orders", start, state="FAIL")
        elif hour == 80:
            events += hourly_run("load_orders", start, quality=failed_check)
        elif hour >= 120:
            events += hourly_run("load_orders", start, columns=[("id", "int"), ("amount", "decimal")])  # no email
        else:
            events += hourly_run("load_orders", start)
        if hour % 24 == 0:
            events += downstream_run(start)
    return sorted(events, key=lambda e: e["eventTime"])


def post_batches(client, events: list[dict], size: int = 100) -> None:
    for i in range(0, len(events), size):
        response = client.post("/api/v1/lineage/batch", json=events[i : i + size])
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "success", response.text


def a_full_worker_pass_after(client, moment: datetime) -> None:
    """Wait until the worker has begun a pass (fan-out, deliveries, late check) after ``moment`` (its clock)."""
    worker = client.app.state.incident_worker
    wait_until(lambda: worker.late_checked_at is not None and worker.late_checked_at > moment)
    seen = worker.late_checked_at
    wait_until(lambda: worker.late_checked_at > seen)


def test_a_week_of_2022_history_replayed_through_the_batch_api_pages_nobody(client, clock, receiver):
    subscription = subscribe(client, receiver.url("/on-call"), namespaces=[NS, DB])
    history = week_of_history()
    post_batches(client, history)
    a_full_worker_pass_after(client, clock())

    assert incidents(client) == []  # no kind, open or resolved
    assert receiver.calls() == []
    assert deliveries(client, subscription)["totalCount"] == 0
    # The history itself is in the model: the failed run, the last completion, the dropped column.
    runs = client.get(f"/api/v1/namespaces/{NS}/jobs/load_orders/runs", params={"limit": 200}).json()["runs"]
    assert len(runs) == 7 * 24 and sum(r["state"] == "FAILED" for r in runs) == 1
    assert runs[0]["state"] == "COMPLETED" and runs[0]["nominalStartTime"].startswith("2022-03-13T23:00")
    fields = client.get(f"/api/v1/namespaces/{DB.replace('/', '%2F')}/datasets/load_orders_out").json()["fields"]
    assert [f["name"] for f in fields] == ["id", "amount"]

    # The same path, the same server, events from the last hours: news, and they page. load_payments ran
    # hourly until about four hours ago; its backlog arrives at once (a client catching up after an outage).
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    recent = [e for hour in (8, 7, 6, 5) for e in hourly_run("load_payments", now - hour * HOUR)]
    recent += hourly_run("load_refunds", now - 2 * HOUR, state="FAIL")
    post_batches(client, recent)
    (failure,) = wait_until(lambda: incidents(client))
    assert (failure["kind"], failure["job"]["name"]) == ("run_failed", "load_refunds")
    (call,) = receiver.wait_for(1, "/on-call")
    assert call.json["incident"]["id"] == failure["id"]
    # Just heard of, its last completion gives load_payments an hour and a half from now (hourly × 1.5):
    # no late incident while the backlog arrives. Two hours on with nothing new, it is late.
    a_full_worker_pass_after(client, clock())
    assert [i["kind"] for i in incidents(client)] == ["run_failed"]
    clock.set(datetime.now(UTC) + 2 * HOUR)
    a_full_worker_pass_after(client, clock())
    late = [i for i in incidents(client) if i["kind"] == "late"]
    assert [(i["job"]["name"], i["status"]) for i in late] == [("load_payments", "open")]
    calls = receiver.wait_for(2, "/on-call")
    assert sorted(c.json["incident"]["job"]["name"] for c in calls) == ["load_payments", "load_refunds"]
    # And still nothing about 2022, whatever the clock says.
    clock.set(datetime.now(UTC) + 30 * 24 * HOUR)
    a_full_worker_pass_after(client, clock())
    assert {i["job"]["name"] for i in incidents(client)} == {"load_payments", "load_refunds"}
    assert len(receiver.calls()) == 2


def test_an_event_is_news_up_to_the_configured_age(settings, engine):
    """The boundary, on a failed run: received within the age, an incident; older, none."""
    age = timedelta(hours=2)
    with TestClient(create_app(settings.model_copy(update={"incident_max_event_age": age}))) as client:
        now = datetime.now(UTC)
        post_batches(client, hourly_run("old_failure", now - age - HOUR - timedelta(minutes=10), state="FAIL"))
        assert incidents(client) == []
        post_batches(client, hourly_run("new_failure", now - age + timedelta(minutes=5), state="FAIL"))
        assert [i["job"]["name"] for i in incidents(client)] == ["new_failure"]
