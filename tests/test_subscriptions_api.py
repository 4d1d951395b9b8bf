"""Webhook subscriptions over REST: create, read, replace, delete; secrets are write-only; writes need the
write key; bad input is a clear 400."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from app.main import create_app
from tests.test_backfill_plans import DAY, NOV

SUBSCRIPTION = {
    "url": "https://hooks.example.com/services/T000/B000/XXXX",
    "secret": "s3cret-signing-key",
    "description": "analytics on-call",
    "namespaces": ["airflow-prod"],
    "jobs": [{"namespace": "airflow-prod", "name": "bookings_reports.top_rooms"}],
    "datasets": [{"namespace": "postgres://db:5432", "name": "public.orders"}],
    "owners": ["team-analytics"],
    "kinds": ["late", "run_failed"],
}


def test_create_read_replace_and_delete_a_subscription(client):
    created = client.post("/api/v1/subscriptions", json=SUBSCRIPTION)
    assert created.status_code == 201, created.text
    body = created.json()
    assert "secret" not in body and body["hasSecret"] is True
    assert {k: body[k] for k in ("url", "description", "namespaces", "jobs", "datasets", "owners", "kinds")} == {
        k: v for k, v in SUBSCRIPTION.items() if k != "secret"
    }
    subscription_id = body["id"]
    assert client.get(f"/api/v1/subscriptions/{subscription_id}").json() == body
    listed = client.get("/api/v1/subscriptions").json()
    assert listed == {"subscriptions": [body], "totalCount": 1}
    assert "s3cret" not in client.get("/api/v1/subscriptions").text

    # Replacing without a secret keeps the one set; the delivery log starts empty.
    replaced = client.put(
        f"/api/v1/subscriptions/{subscription_id}", json={"url": "http://127.0.0.1:9/hook", "owners": ["team-x"]}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["hasSecret"] is True and replaced.json()["owners"] == ["team-x"]
    assert replaced.json()["namespaces"] == [] and replaced.json()["kinds"] == []
    assert client.get(f"/api/v1/subscriptions/{subscription_id}/deliveries").json() == {
        "deliveries": [],
        "totalCount": 0,
    }

    assert client.delete(f"/api/v1/subscriptions/{subscription_id}").status_code == 204
    missing = client.get(f"/api/v1/subscriptions/{subscription_id}")
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": f"Subscription '{subscription_id}' not found."}
    assert client.delete(f"/api/v1/subscriptions/{subscription_id}").status_code == 404
    assert client.get(f"/api/v1/subscriptions/{subscription_id}/deliveries").status_code == 404


def test_bad_subscriptions_are_refused_with_a_reason(client):
    cases = [
        ({**SUBSCRIPTION, "url": "ftp://example.com/x"}, "url: must be an http:// or https:// URL"),
        ({"url": "https://example.com/x"}, "subscribe to at least one of namespaces, jobs, datasets, owners"),
        ({**SUBSCRIPTION, "kinds": ["fire"]}, "kinds[0]"),
        ({**SUBSCRIPTION, "secret": "short"}, "secret"),
        ({**SUBSCRIPTION, "jobs": [{"namespace": "ns"}]}, "jobs[0].name"),
        ({**SUBSCRIPTION, "colour": "red"}, "colour"),
    ]
    for body, message in cases:
        response = client.post("/api/v1/subscriptions", json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == 400 and message in response.json()["message"], response.json()
    assert client.get("/api/v1/subscriptions/not-a-uuid").status_code == 400
    assert client.get(f"/api/v1/subscriptions/{uuid.uuid4()}").status_code == 404


def test_incident_reads_validate_their_filters(client):
    assert client.get("/api/v1/incidents").json() == {"incidents": [], "totalCount": 0}
    assert client.get("/api/v1/incidents", params={"status": "closed"}).status_code == 400
    assert client.get("/api/v1/incidents", params={"kind": "fire"}).status_code == 400
    assert client.get("/api/v1/incidents", params={"limit": -1}).status_code == 400
    missing = uuid.uuid4()
    response = client.get(f"/api/v1/incidents/{missing}")
    assert response.status_code == 404 and response.json()["message"] == f"Incident '{missing}' not found."


def test_subscription_writes_need_the_write_key_and_reads_a_read_write_key(settings, engine):
    with TestClient(create_app(settings.model_copy(update={"api_keys": "ops-key,pipeline-key:write"}))) as client:
        assert client.post("/api/v1/subscriptions", json=SUBSCRIPTION).status_code == 401
        created = client.post("/api/v1/subscriptions", json=SUBSCRIPTION, headers={"Authorization": "Bearer ops-key"})
        assert created.status_code == 201
        path = f"/api/v1/subscriptions/{created.json()['id']}"
        assert client.put(path, json=SUBSCRIPTION).status_code == 401
        assert client.delete(path).status_code == 401
        # Webhook URLs are credentials: reading them needs a read+write key, even with reads unprotected.
        for read in (path, f"{path}/deliveries", "/api/v1/subscriptions"):
            assert client.get(read).status_code == 401
            assert client.get(read, headers={"Authorization": "Bearer pipeline-key"}).status_code == 403
            assert client.get(read, headers={"Authorization": "Bearer ops-key"}).status_code == 200
        assert client.get("/api/v1/incidents").status_code == 200  # incidents read like any metadata
        assert client.delete(path, headers={"Authorization": "Bearer ops-key"}).status_code == 204


def test_an_incident_can_be_resolved_by_hand(news_client):
    from tests.test_incidents import failing_run

    client = news_client
    failing_run(client)
    (incident,) = client.get("/api/v1/incidents").json()["incidents"]
    path = f"/api/v1/incidents/{incident['id']}/resolve"
    assert client.post(path, json={"reason": "retired", "colour": "red"}).status_code == 400
    resolved = client.post(path, json={"reason": "load_orders was retired"})
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolution"]) == ("resolved", "load_orders was retired")
    again = client.post(path)
    assert again.status_code == 400 and again.json()["message"] == f"Incident '{incident['id']}' is already resolved."
    assert client.post(f"/api/v1/incidents/{uuid.uuid4()}/resolve").status_code == 404
    # The job failing again is a new incident.
    failing_run(client, time=NOV + 2 * DAY)
    assert client.get("/api/v1/incidents", params={"status": "open"}).json()["totalCount"] == 1
