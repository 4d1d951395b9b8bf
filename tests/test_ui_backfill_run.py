"""The saved plan's page runs it in Airflow (a real browser against `headwater serve`, whose executor drives a fake
Airflow over HTTP): the dry run, Start, each level and DAG updating live, pause and resume, the audit log."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.browser import CHROMIUM
from tests.support.fake_airflow import FakeAirflow, serve
from tests.support.live_server import LiveServer
from tests.test_backfill_plans import DAY, NOV, bookings_day, iso
from tests.test_ui_browser import screenshot

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture
def airflow():
    fake = FakeAirflow()
    dates = [NOV + d * DAY for d in range(3)]
    fake.dag("bookings_etl", ["load_room_bookings"], dates)
    fake.dag("bookings_reports", ["top_rooms", "publish_dashboard"], dates)
    with serve(fake) as url:
        fake.url = url
        yield fake


@pytest.fixture
def server(database_url, engine, tmp_path):
    env = {"HEADWATER_BACKFILL_STEP_SECONDS": "0.2", "HEADWATER_BACKFILL_POLL_SECONDS": "0.5"}
    with LiveServer(database_url, log_path=tmp_path / "server.log", env=env) as server:
        yield server


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_start_a_plan_from_its_page_and_watch_it_finish(page, server, airflow):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for day in range(3):
            bookings_day(http, NOV + day * DAY)
        connection = {
            "baseUrl": airflow.url,
            "namespaces": ["airflow-prod"],
            "username": "headwater",
            "password": "s3cret",
        }
        assert http.put("/api/v1/airflow-connections/local", json=connection).status_code == 200
        job = {"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"}
        body = {"job": job, "start": iso(NOV + DAY), "end": iso(NOV + 2 * DAY), "name": "Bookings, 2 Nov"}
        plan_id = http.post("/api/v1/backfills", json=body).json()["id"]

    page.goto(f"/backfills/{plan_id}")
    run = page.locator("section.execution")
    expect(run.get_by_role("button", name="Start")).to_be_visible()
    run.get_by_role("button", name="Dry run").click()
    expect(run.locator(".dry-run li")).to_have_count(5)
    expect(run.locator(".dry-run li").first).to_contain_text(
        f"Level 0 · bookings_etl: POST {airflow.url}/api/v2/backfills"
    )
    assert airflow.writes() == []

    run.get_by_role("button", name="Start").click()
    expect(run.locator("h3 .run-status")).to_have_text("running")
    etl = run.locator('li.run-unit[data-dag-id="bookings_etl"]')
    expect(etl).to_have_attribute("data-status", "running", timeout=15_000)  # the executor sent the backfill
    expect(etl).to_contain_text("(backfill)")
    expect(run.locator("li.run-level").nth(1)).to_have_attribute("data-status", "pending")

    run.get_by_role("button", name="Pause").click()
    expect(run.locator("h3 .run-status")).to_have_text("paused")
    expect(run.locator(".run-reason")).to_contain_text("paused by")
    run.get_by_role("button", name="Resume").click()
    expect(run.locator("h3 .run-status")).to_have_text("running")

    airflow.auto_finish = True  # Airflow runs what it is given; no lineage: Headwater asks Airflow
    expect(run.locator("h3 .run-status")).to_have_text("done", timeout=30_000)  # live, no reload
    expect(run.locator("li.run-level")).to_have_count(3)
    for level in range(3):
        expect(run.locator("li.run-level").nth(level)).to_have_attribute("data-status", "done")
    run.locator(".audit summary").click()
    expect(run.locator(".audit")).to_contain_text(f"POST {airflow.url}/api/v2/backfills")
    expect(run.locator(".audit")).to_contain_text("pause")
    expect(run.get_by_role("button", name="Pause")).to_have_count(0)
    screenshot(page, "backfill-run")
