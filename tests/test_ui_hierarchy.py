"""The job hierarchy in a real browser: a dbt model's job page names the dbt invocation it runs inside, the
invocation's page lists its models and names its Airflow task, the lineage explorer groups the models into
their invocation on request, and a backfill plan says the models are re-run through the Airflow task."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests import test_ui_browser as ui
from tests.support.events import POSTGRES_NS
from tests.test_backfill_hierarchy import DBT, INVOCATION, NOV, RAW, dbt_day, load_day, model
from tests.test_ui_browser import drawn_nodes, expect, screenshot, wait_for_graph

# The browser suite's fixtures: one server per module, a fresh page and HTTP client per test (the browser is
# the session's, from conftest).
server, http, page = ui.server, ui.http, ui.page


class _Poster:
    """tests.test_backfill_hierarchy's helpers post with a TestClient; over real HTTP the same calls work."""

    def __init__(self, http) -> None:
        self.http = http

    def post(self, path, json):
        return self.http.post(path, json=json)


@pytest.fixture
def seeded(http):
    poster = _Poster(http)
    load_day(poster, NOV)
    return dbt_day(poster, NOV, models=("orders_daily", "customers"))


def test_job_pages_and_the_explorer_show_the_hierarchy(page, http, seeded):
    page.goto(f"/jobs/{DBT}/{quote(model('orders_daily'), safe='')}")
    parent = page.locator("a.parent-job")
    expect(parent).to_have_text(INVOCATION)
    parent.click()
    expect(page.locator("h1")).to_contain_text(INVOCATION)
    # Its parent is the Airflow task, in another namespace; its children are the models.
    expect(page.locator("a.parent-job")).to_have_attribute("href", "/jobs/airflow-prod/transform.dbt_run")
    children = page.locator("#job-children li")
    expect(children).to_have_count(2)
    expect(children).to_contain_text([model("customers"), model("orders_daily")])
    screenshot(page, "job-children")

    raw = f"dataset:{POSTGRES_NS}:{RAW}"
    page.goto(f"/lineage?nodeId={quote(raw, safe='')}&down=1")
    wait_for_graph(page, "lineage-graph")
    models = {f"job:{DBT}:{model(m)}" for m in ("orders_daily", "customers")}
    assert models <= drawn_nodes(page)
    page.get_by_label("Group jobs into their parent").check()
    expect(page).to_have_url(re.compile(r"collapse=1"))
    wait_for_graph(page, "lineage-graph")
    nodes = drawn_nodes(page)
    assert not models & nodes
    invocation = http.get(f"/api/v1/namespaces/{DBT}/jobs/{quote(model('orders_daily'), safe='')}").json()
    group = f"group:{invocation['parentJobUuid']}"
    assert group in nodes  # and the Airflow task load.orders is grouped into its DAG
    assert "job:airflow-prod:load.orders" not in nodes and len([n for n in nodes if n.startswith("group:")]) == 2
    assert f"dataset:{POSTGRES_NS}:analytics.public.orders_daily" in nodes  # the children's outputs stay
    page.select_option("#lineage-node-select", group)
    expect(page.locator("#node-details")).to_contain_text("2 jobs run inside it")
    screenshot(page, "lineage-collapsed")


def test_a_plan_says_a_model_is_rerun_through_its_airflow_task(page, seeded):
    page.goto(f"/backfills/new?runId={seeded['orders_daily']}")
    step = page.locator(f'article.step[data-node-id="job:{DBT}:{model("orders_daily")}"]')
    expect(step).to_contain_text("re-run through `transform.dbt_run`")
