"""Per subscription and incident, webhooks arrive in order: `incident.resolved` never before, nor while,
`incident.opened` is being delivered; an opening still waiting for its retry when the incident resolves is
superseded, never sent after the resolution. Each "server process" here is its own engine (connection pool) on
the test database, running the worker's steps at chosen moments: what keeps them in order is in the database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.db import tables as t
from app.db.engine import create_db_engine
from app.main import create_app
from app.services.incidents import worker
from app.settings import Settings
from tests.support import model
from tests.support.events import dataset, run_event
from tests.support.history import AS_NEWS
from tests.support.webhook_receiver import WebhookReceiver
from tests.test_backfill_plans import DAY, NOV, post
from tests.test_incidents import DB, NS, deliveries, failing_run, incidents, subscribe

SECOND = timedelta(seconds=1)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def ordered_settings(settings) -> Settings:
    # No worker thread: the test runs the worker's steps itself. A failed attempt is retried a minute later.
    return settings.model_copy(update={**AS_NEWS, "webhook_backoff_seconds": 60, "webhook_timeout_seconds": 10})


@pytest.fixture
def client(ordered_settings, engine) -> Iterator[TestClient]:
    with TestClient(create_app(ordered_settings)) as client:
        yield client


@pytest.fixture
def processes(ordered_settings, engine) -> Iterator[tuple[Engine, Engine]]:
    """Two server processes' database access: nothing shared but the database."""
    first, second = create_db_engine(ordered_settings), create_db_engine(ordered_settings)
    yield first, second
    first.dispose()
    second.dispose()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def completes(client, name="load_orders", *, time=NOV + 2 * DAY) -> None:
    """The job's next run completes: its run_failed incident resolves (once the applier has applied it, which the
    worker steps below, reading the database directly, do not wait for by themselves)."""
    run_id = uuid.uuid4()
    post(client, run_event("COMPLETE", job=(NS, name), run_id=run_id, time=time, outputs=[dataset(DB, "orders")]))
    model.applied(client.app.state.engine)


def fails(client) -> None:
    """A run of the job fails: its run_failed incident opens, with its outbox row (once applied)."""
    failing_run(client)
    model.applied(client.app.state.engine)


def heard(receiver: WebhookReceiver, path: str) -> list[tuple[str, str]]:
    return [(c.json["event"], c.json["incident"]["status"]) for c in receiver.calls(path)]


def test_an_opening_being_retried_is_superseded_by_the_resolution_not_sent_after_it(
    client, ordered_settings, processes, http, receiver
):
    first, second = processes
    receiver.answer("/pager", 500)  # the first attempt fails: the opening waits a minute for its retry
    subscription = subscribe(client, receiver.url("/pager"), namespaces=[NS])
    fails(client)
    t0 = datetime.now(UTC)
    assert worker.fan_out(first, ordered_settings, t0) == 1
    assert worker.deliver_due(first, ordered_settings, http, t0) == 0
    assert heard(receiver, "/pager") == [("incident.opened", "open")]

    completes(client)  # meanwhile, the incident resolves
    assert worker.fan_out(second, ordered_settings, t0 + SECOND) == 1
    assert worker.deliver_due(second, ordered_settings, http, t0 + 2 * SECOND) == 1
    # The opening's retry is long due, in either process: the receiver already knows the incident is over.
    assert worker.deliver_due(first, ordered_settings, http, t0 + timedelta(hours=1)) == 0
    assert worker.deliver_due(second, ordered_settings, http, t0 + timedelta(hours=2)) == 0

    assert heard(receiver, "/pager") == [("incident.opened", "open"), ("incident.resolved", "resolved")]
    log = {d["event"]: d for d in deliveries(client, subscription)["deliveries"]}
    assert (log["incident.opened"]["status"], log["incident.opened"]["attempts"]) == ("superseded", 1)
    assert log["incident.opened"]["nextAttemptAt"] is None
    assert (log["incident.resolved"]["status"], log["incident.resolved"]["attempts"]) == ("delivered", 1)
    (incident,) = incidents(client)
    assert incident["status"] == "resolved"


def test_a_resolution_waits_while_another_process_is_sending_the_opening(
    client, ordered_settings, processes, http, receiver
):
    first, second = processes
    held = receiver.hold("/pager")  # the receiver takes its time answering the opening
    subscription = subscribe(client, receiver.url("/pager"), namespaces=[NS])
    fails(client)
    t0 = datetime.now(UTC)
    assert worker.fan_out(first, ordered_settings, t0) == 1
    sending = threading.Thread(target=worker.deliver_due, args=(first, ordered_settings, http, t0))
    sending.start()
    receiver.wait_for(1, "/pager")

    completes(client)
    assert worker.fan_out(second, ordered_settings, t0 + SECOND) == 1
    # The other process must not send the resolution while the opening is in flight (nor supersede it).
    assert worker.deliver_due(second, ordered_settings, http, t0 + 2 * SECOND) == 0
    assert heard(receiver, "/pager") == [("incident.opened", "open")]

    held.set()
    sending.join(timeout=15)
    assert not sending.is_alive()
    assert worker.deliver_due(second, ordered_settings, http, t0 + 3 * SECOND) == 1
    assert heard(receiver, "/pager") == [("incident.opened", "open"), ("incident.resolved", "resolved")]
    assert {d["event"]: d["status"] for d in deliveries(client, subscription)["deliveries"]} == {
        "incident.opened": "delivered",
        "incident.resolved": "delivered",
    }


def test_a_resolution_is_not_fanned_out_before_its_opening(client, ordered_settings, processes, http, receiver):
    """The resolution goes to those told of the opening: another process must not fan it out (to nobody) while
    the opening's fan-out is still under way."""
    first, second = processes
    subscribe(client, receiver.url("/chat"), namespaces=[NS])
    fails(client)
    completes(client)  # opened and resolved before any fan-out
    o = t.incident_outbox.c
    with first.connect() as conn:
        opened_row, resolved_row = conn.execute(select(o.id).order_by(o.id)).scalars().all()
    t0 = datetime.now(UTC)
    # The first process has claimed the opening's fan-out (it is computing the impact)…
    assert worker._claim(first, t.incident_outbox, opened_row, t0, o.fanned_out_at.is_(None))
    # …so the second process leaves the resolution alone.
    assert worker.fan_out(second, ordered_settings, t0 + SECOND) == 0
    with second.connect() as conn:
        assert conn.execute(select(o.fanned_out_at).where(o.id == resolved_row)).scalar() is None

    # The first process died; its lease runs out and the work is done in order.
    later = t0 + worker.LEASE + SECOND
    assert worker.fan_out(second, ordered_settings, later) == 2
    while worker.deliver_due(second, ordered_settings, http, later):
        pass
    # Both notifications were due at once: the opening is superseded, the channel hears it is over.
    assert heard(receiver, "/chat") == [("incident.resolved", "resolved")]
