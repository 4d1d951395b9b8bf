"""API keys: write-only and read+write keys, reads optionally protected, operator endpoints always open."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.support.events import T0, run_event

KEYS = "pipeline-key:write,analyst-key"


def app_client(settings: Settings, **overrides) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=overrides)))


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def event() -> dict:
    return run_event("COMPLETE", job=("ns", "job"), run_id=uuid.uuid4(), time=T0)


@pytest.mark.parametrize(
    ("protect_reads", "key", "write", "read"),
    [
        (False, None, 401, 200),
        (False, "wrong", 401, 200),
        (False, "pipeline-key", 201, 200),
        (False, "analyst-key", 201, 200),
        (True, None, 401, 401),
        (True, "wrong", 401, 401),
        (True, "pipeline-key", 201, 403),  # a pipeline's key sends events, it does not read metadata
        (True, "analyst-key", 201, 200),
    ],
)
def test_the_key_matrix(settings, engine, protect_reads, key, write, read):
    with app_client(settings, api_keys=KEYS, protect_reads=protect_reads) as client:
        posted = client.post("/api/v1/lineage", json=event(), headers=bearer(key))
        assert posted.status_code == write, posted.text
        batch = client.post("/api/v1/lineage/batch", json=[event()], headers=bearer(key))
        assert batch.status_code == (200 if write == 201 else write), batch.text
        got = client.get("/api/v1/namespaces", headers=bearer(key))
        assert got.status_code == read, got.text
        if read >= 400:
            assert "API key" in got.json()["message"]
        preview = client.post("/api/v1/backfills/preview", json={"runId": str(uuid.uuid4())}, headers=bearer(key))
        assert preview.status_code == (404 if read == 200 else read)  # a read: the run is unknown
        # Operator endpoints stay open whatever the keys.
        assert client.get("/ping").status_code == 200
        assert client.get("/healthcheck").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_saving_a_plan_is_a_write(settings, engine):
    with app_client(settings, api_keys=KEYS) as client:
        body = {"runId": str(uuid.uuid4())}
        assert client.post("/api/v1/backfills", json=body).status_code == 401
        assert client.post("/api/v1/backfills", json=body, headers=bearer("pipeline-key")).status_code == 404
