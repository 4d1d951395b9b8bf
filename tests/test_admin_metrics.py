"""Operator endpoints: /ping, /healthcheck, Prometheus /metrics counting what the server does."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.support.events import AIRFLOW_PRODUCER, T0, run_event


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text format, or None when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_ping_and_healthcheck(client):
    assert client.get("/ping").text == "pong"
    health = client.get("/healthcheck")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_healthcheck_fails_when_the_database_is_unreachable():
    # Nothing listens on port 9 of the loopback: the connection is refused at once.
    settings = Settings(
        database_url="postgresql://headwater:x@127.0.0.1:9/headwater", migrate_on_start=False, incident_worker=False
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthcheck")
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        assert client.get("/ping").status_code == 200


def test_metrics_count_events_rejections_and_requests(client):
    event = run_event("COMPLETE", job=("ns", "job"), run_id=uuid.uuid4(), time=T0, producer=AIRFLOW_PRODUCER)
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert client.post("/api/v1/lineage", json=event).status_code == 201  # a retry: stored once, counted twice
    assert client.post("/api/v1/lineage", json={"eventTime": "2024-01-01T00:00:00Z"}).status_code == 422
    bad = client.post("/api/v1/lineage", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert client.get("/api/v1/namespaces/ns").status_code == 200

    text = client.get("/metrics").text
    accepted = sample(
        text, "headwater_events_ingested_total", kind="RUN_EVENT", event_type="COMPLETE", producer=AIRFLOW_PRODUCER
    )
    assert accepted == 2
    assert sample(text, "headwater_ingest_rejections_total", reason="invalid_event") == 1
    assert sample(text, "headwater_ingest_rejections_total", reason="malformed_body") == 1
    # Latency is labelled by route template, not by the names in the path.
    assert (
        sample(
            text,
            "headwater_http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/namespaces/{namespace}",
            status="200",
        )
        == 1
    )
    assert sample(text, "headwater_http_request_duration_seconds_count", route="/api/v1/lineage", status="201") == 2
    assert sample(text, "headwater_db_pool_connections_in_use") is not None


def test_the_admin_port_serves_only_the_operator_endpoints(database_url, engine, tmp_path):
    import httpx

    from tests.support.live_server import LiveServer

    with LiveServer(database_url, log_path=tmp_path / "server.log") as server:
        admin = f"http://127.0.0.1:{server.admin_port}"
        assert httpx.get(f"{admin}/ping").text == "pong"
        assert httpx.get(f"{admin}/healthcheck").json()["status"] == "ok"
        assert "headwater_http_request_duration_seconds" in httpx.get(f"{admin}/metrics").text
        refused = httpx.get(f"{admin}/api/v1/namespaces")
        assert refused.status_code == 404 and "Only /ping" in refused.json()["message"]
        assert httpx.get(f"{server.url}/api/v1/namespaces").status_code == 200
        process = server.process
    # Both listeners shut down on SIGTERM within the grace period (uvicorn re-raises the signal once done, so
    # the exit status is the signal's); a hang would have ended in SIGKILL (-9).
    assert process.returncode in (0, -15)


def test_serve_waits_for_the_database_then_fails_clearly(tmp_path):
    import os
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "HEADWATER_DATABASE_URL": "postgresql://headwater:x@127.0.0.1:9/headwater",
        "HEADWATER_DB_WAIT_SECONDS": "2",
        "HEADWATER_PORT": "0",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "waiting for the database at postgresql+psycopg://headwater:***@127.0.0.1:9/headwater" in result.stderr
    assert "did not answer within 2s" in result.stderr
    assert time.monotonic() - started < 30


def test_request_ids_are_answered_and_json_logs_carry_them(database_url, engine, tmp_path):
    import json

    import httpx

    from tests.support.live_server import LiveServer

    log = tmp_path / "server.log"
    env = {"HEADWATER_LOG_FORMAT": "json", "HEADWATER_LOG_LEVEL": "info", "HEADWATER_API_KEYS": "secret-key-1"}
    with LiveServer(database_url, log_path=log, env=env) as server:
        mine = httpx.get(f"{server.url}/api/v1/namespaces", headers={"X-Request-ID": "trace-42"})
        assert mine.headers["x-request-id"] == "trace-42"
        generated = httpx.get(f"{server.url}/api/v1/namespaces").headers["x-request-id"]
        assert len(generated) == 32
        refused = httpx.post(
            f"{server.url}/api/v1/lineage",
            json={},
            headers={"Authorization": "Bearer wrong-key", "X-Request-ID": "t-2"},
        )
        assert refused.status_code == 401
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "headwater.access"]
    traced = next(entry for entry in access if entry["request_id"] == "trace-42")
    assert traced["method"] == "GET" and traced["path"] == "/api/v1/namespaces" and traced["status"] == 200
    assert {"time", "level", "message"} <= traced.keys()
    assert any(entry["request_id"] == "t-2" and entry["status"] == 401 for entry in access)
    assert "secret-key-1" not in log.read_text() and "wrong-key" not in log.read_text()
