"""Test fixtures. The suite runs against the database named by HEADWATER_TEST_DB (sqlite | postgres);
`make test` runs it once for each. Postgres is a real server: a throwaway cluster started for the session
(or HEADWATER_TEST_POSTGRES_URL, whose tables are reset)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.db.tables import BACKFILL_RUN_TABLES, INCIDENT_TABLES, MODEL_TABLES, backfill_plans, lineage_events
from app.main import create_app
from app.settings import Settings
from tests.support.history import AS_NEWS
from tests.support.live_server import LiveServer

TEST_DB = os.environ.get("HEADWATER_TEST_DB", "sqlite")


def pytest_report_header(config):
    return f"headwater database: {TEST_DB}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    if TEST_DB == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'headwater.db'}"
    elif TEST_DB == "postgres":
        if os.environ.get("HEADWATER_TEST_POSTGRES_URL"):
            url = os.environ["HEADWATER_TEST_POSTGRES_URL"]
            engine = create_db_engine(Settings(database_url=url))
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            yield url
        else:
            from tests.support.postgres import TemporaryPostgres

            with TemporaryPostgres() as pg:
                yield pg.url
    else:
        raise pytest.UsageError(f"HEADWATER_TEST_DB must be sqlite or postgres, not {TEST_DB!r}")


@pytest.fixture(scope="session")
def settings(database_url) -> Settings:
    # The incident worker runs in the tests of incidents (tests/test_incidents*.py), with their own clock.
    # Reads wait for the applier however loaded the machine is (the bounded wait has its own test).
    return Settings(
        database_url=database_url,
        migrate_on_start=False,
        incident_worker=False,
        backfill_executor=False,
        freeze_gc_after_start=False,
        read_wait_seconds=60,
    )


@pytest.fixture(scope="session")
def engine(settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    upgrade(engine)  # the schema under test is the one the migrations build
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    """Empty every table Headwater writes."""
    tables = [*BACKFILL_RUN_TABLES, *INCIDENT_TABLES, backfill_plans, *MODEL_TABLES, lineage_events]
    # A live server's incident worker may be writing while we empty the tables; TRUNCATE locks them one by one,
    # so Postgres can pick it as the victim of a deadlock with the worker. The worker's pass is short: try again.
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)} RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        conn.execute(table.delete())
            return
        except OperationalError as error:
            if attempt == 4 or "deadlock" not in str(error.orig).lower():
                raise
            time.sleep(0.2)


@pytest.fixture(autouse=True)
def clean_database(request) -> None:
    """Empty every table before each test that touches the database."""
    if "engine" not in request.fixturenames:
        return
    empty_tables(request.getfixturevalue("engine"))


@pytest.fixture
def client(settings, engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def news_client(settings, engine) -> Iterator[TestClient]:
    """A client whose server takes the suite's dated histories as news: they raise incidents (support/history.py)."""
    with TestClient(create_app(settings.model_copy(update=AS_NEWS))) as client:
        yield client


@pytest.fixture
def live_server(database_url, engine, tmp_path) -> Iterator[LiveServer]:
    """`headwater serve` in its own process, on the test database."""
    with LiveServer(database_url, log_path=tmp_path / "server.log") as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test module of the session (Playwright's sync API allows one
    running instance per thread)."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    from tests.support.browser import launch

    with playwright_sync.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
