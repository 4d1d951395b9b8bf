"""Deliveries are signed as the Standard Webhooks specification says: the official `standardwebhooks` package
(PyPI), as a receiver would use it, verifies a real delivery received over HTTP and refuses a tampered one or
an old one replayed (its signature covers the timestamp). The deprecated X-Headwater-Signature is still sent."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from app.main import create_app
from tests.support.webhook_receiver import WebhookReceiver
from tests.test_incidents import FAST, NS, Clock, deliveries, failing_run, subscribe, wait_until


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def server(settings, engine) -> Iterator[Callable[..., TestClient]]:
    """A Headwater app with its worker, on a real clock (optionally running ``behind`` it)."""
    clients = []

    def start(behind: timedelta = timedelta(0), **overrides) -> TestClient:
        clock = Clock()
        clock.set(datetime.now(UTC) - behind)
        client = TestClient(create_app(settings.model_copy(update={**FAST, **overrides}), clock=clock))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def just_now() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)  # a run that failed ten minutes ago: news


def test_the_standard_webhooks_library_verifies_a_delivery_and_refuses_a_tampered_one(server, receiver):
    client = server()
    secret = new_secret()
    receiver.answer("/hook", 500)  # a retry is the same message (webhook-id), stamped and signed anew
    subscription = subscribe(client, receiver.url("/hook"), secret, namespaces=[NS])
    failing_run(client, time=just_now())
    first, retry = receiver.wait_for(2, "/hook")

    webhook = Webhook(secret)
    for call in (first, retry):
        assert webhook.verify(call.body, call.headers) == call.json
    assert retry.json["event"] == "incident.opened" and retry.json["incident"]["status"] == "open"
    (entry,) = wait_until(
        lambda: [d for d in deliveries(client, subscription)["deliveries"] if d["status"] == "delivered"]
    )
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == entry["id"]
    assert retry.headers["x-headwater-delivery"] == entry["id"]
    assert retry.headers["webhook-signature"].startswith("v1,")
    # The deprecated signature is still there, for receivers that have not moved yet.
    assert retry.signed_with(secret)

    tampered = json.loads(retry.body)
    tampered["incident"]["status"] = "resolved"
    refusals = [
        (json.dumps(tampered).encode(), retry.headers),
        (retry.body, {**retry.headers, "webhook-id": "another-delivery"}),
        (retry.body, {k: v for k, v in retry.headers.items() if k != "webhook-signature"}),
    ]
    for body, headers in refusals:
        with pytest.raises(WebhookVerificationError):
            webhook.verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # signed with another secret
        Webhook(new_secret()).verify(retry.body, retry.headers)


def test_a_delivery_replayed_later_is_refused(server, receiver):
    """What a receiver sees when a captured delivery is replayed ten minutes on: its timestamp is ten minutes
    old (here: a server whose clock runs ten minutes behind sends it). Putting a fresh timestamp on it breaks
    the signature. The deprecated header, which signs the body alone, cannot tell: the reason to move."""
    client = server(behind=timedelta(minutes=10))
    secret = new_secret()
    subscribe(client, receiver.url("/hook"), secret, namespaces=[NS])
    failing_run(client, time=just_now())
    (call,) = receiver.wait_for(1, "/hook")
    webhook = Webhook(secret)
    with pytest.raises(WebhookVerificationError, match="too old"):
        webhook.verify(call.body, call.headers)
    refreshed = {**call.headers, "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        webhook.verify(call.body, refreshed)
    assert call.signed_with(secret)  # the old scheme accepts the replay


def test_an_older_free_form_secret_still_signs_and_the_old_header_can_be_turned_off(server, receiver):
    client = server(webhook_legacy_signature=False)
    secret = "a free-form secret from before"
    subscribe(client, receiver.url("/hook"), secret, namespaces=[NS])
    failing_run(client, time=just_now())
    (call,) = receiver.wait_for(1, "/hook")
    # Such a secret is used as its UTF-8 bytes: the library takes it as bytes.
    assert Webhook(secret.encode()).verify(call.body, call.headers) == call.json
    assert "x-headwater-signature" not in call.headers


def test_a_malformed_standard_secret_is_refused(client):
    body = {"url": "https://hooks.example.com/x", "namespaces": [NS]}
    for secret, reason in [
        ("whsec_not base64!", "whsec_ followed by base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes, not 5"),
    ]:
        response = client.post("/api/v1/subscriptions", json={**body, "secret": secret})
        assert response.status_code == 400, response.text
        assert reason in response.json()["message"] and "secret" in response.json()["message"]
    assert client.post("/api/v1/subscriptions", json={**body, "secret": new_secret()}).status_code == 201
