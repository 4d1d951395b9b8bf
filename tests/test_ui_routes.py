"""The web UI is served by the API's process: its pages answer index.html at every deep link (so a reload
works), its assets are served, and it shadows none of the API, operator or documentation paths."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from app.ui import STATIC_DIR

DEEP_LINKS = [
    "/",
    "/namespaces",
    "/namespaces/postgres%3A%2F%2Fwarehouse.example.com%3A5432",
    "/jobs/airflow-prod/bookings_etl.load_room_bookings",
    "/jobs/dbt-prod/analytics%2Froom_revenue",
    "/datasets/postgres%3A%2F%2Fwarehouse.example.com%3A5432/analytics.public.room%20revenue",
    "/runs/0193a3a4-0000-7000-8000-000000000000",
    "/lineage?nodeId=job%3Aairflow-prod%3Abookings_etl.load_room_bookings&up=1&down=3",
    "/backfills",
    "/backfills/new?runId=0193a3a4-0000-7000-8000-000000000000",
    "/backfills/6b3b8f7e-2f7e-4b55-9a55-0d3c1c1c1c1c",
]


@pytest.mark.parametrize("path", DEEP_LINKS)
def test_every_page_of_the_ui_reloads_to_the_app(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<div id="search">' in response.text and "<main" in response.text


def test_the_built_assets_are_served(client):
    index = client.get("/").text
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 1000
    assert "javascript" in client.get(next(a for a in assets if a.endswith(".js"))).headers["content-type"]


def test_the_ui_shadows_no_api_operator_or_docs_path(client):
    assert client.get("/api/v1/namespaces").json() == {"namespaces": []}
    missing = client.get("/api/v1/jobs/runs/not-a-uuid")
    assert missing.status_code == 400 and missing.headers["content-type"] == "application/json"
    unknown_api = client.get("/api/v1/no-such-thing")
    assert unknown_api.status_code == 404 and unknown_api.json()["code"] == 404
    assert client.get("/ping").text == "pong"
    assert client.get("/healthcheck").status_code == 200
    assert "headwater" in client.get("/metrics").text
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/openapi.json").json()["info"]["title"] == "Headwater"
    # A path that is no page of the UI is not swallowed by it.
    assert client.get("/no-such-page").status_code == 404


def test_the_built_ui_ships_as_package_data():
    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app.ui"]
    shipped = {p for pattern in patterns for p in STATIC_DIR.parent.glob(pattern) if p.is_file()}
    built = {p for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert built and shipped == built
