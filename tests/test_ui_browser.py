"""The web UI in a real browser (Playwright driving headless Chromium) against `headwater serve` on the test
database: incidents, search, the lineage explorer and node details, the backfill planner from a failed run to
a saved plan opened by URL, and a 500-node graph. Screenshots land in test-output/ui/ for a person to look at."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.services import synthetic
from tests.conftest import TEST_DB
from tests.support.browser import CHROMIUM, SCREENSHOTS
from tests.support.events import POSTGRES_NS, T0, dataset, run_event
from tests.support.history import AS_NEWS_ENV
from tests.support.installation import room_revenue, three_days
from tests.support.live_server import LiveServer
from tests.test_backfill_api import rerun
from tests.test_backfill_plans import DAY, NOV

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)

ETL = "job:airflow-prod:bookings_etl.load_room_bookings"
TOP_ROOMS = "job:airflow-prod:bookings_reports.top_rooms"
PUBLISH = "job:airflow-prod:bookings_reports.publish_dashboard"
REVENUE_JOB = "job:dbt-prod:analytics/room_revenue"


def table(name: str) -> str:
    return f"dataset:{POSTGRES_NS}:{name}"


# --- fixtures: one browser for the session (conftest), one server for the module, a fresh page per test -----


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    # The seeded histories are dated in the past and must raise their incidents (support/history.py).
    log = tmp_path_factory.mktemp("ui") / "server.log"
    with LiveServer(database_url, log_path=log, env=AS_NEWS_ENV) as server:
        yield server


@pytest.fixture
def http(server, engine):
    """Seeds events over real HTTP; requesting `engine` empties the database before each test."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{TEST_DB}-{name}.png", full_page=True)


def drawn_nodes(page, graph: str = "lineage") -> set[str]:
    return set(page.evaluate(f"window.__headwater.{graph}.nodeIds()"))


def wait_for_graph(page, element_id: str, timeout: float = 15_000) -> None:
    expect(page.locator(f"#{element_id}")).to_have_attribute("data-ready", "true", timeout=timeout)


def click_node(page, node_id: str, graph: str = "lineage") -> None:
    """A real mouse click where cytoscape drew the node."""
    point = page.evaluate(
        """([graph, id]) => {
            const cy = window.__headwater[graph].cy;
            const node = cy.getElementById(id);
            const box = cy.container().getBoundingClientRect();
            const at = node.renderedPosition();
            return { x: box.left + at.x, y: box.top + at.y };
        }""",
        [graph, node_id],
    )
    page.mouse.click(point["x"], point["y"])


# --- seed data ----------------------------------------------------------------------------------------------


def incidents_with_impact(http, timeout: float = 15) -> list[dict]:
    """Open and resolved incidents, once the worker has stored the impact of each."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            incident
            for status in ("open", "resolved")
            for incident in http.get("/api/v1/incidents", params={"status": status}).json()["incidents"]
        ]
        if found and all(incident["impact"] is not None for incident in found):
            return found
        assert time.monotonic() < deadline, f"impacts not stored in {timeout}s: {found}"
        time.sleep(0.1)


# --- the tests ----------------------------------------------------------------------------------------------


def test_incidents_search_lineage_and_node_details(page, http):
    runs = three_days(http)
    room_revenue(http)
    # An incident's impact is the downstream when the worker stored it (the page asks /impact until then):
    # open the page once every incident has its stored impact, so the page and the API read the same.
    stored = incidents_with_impact(http)

    page.goto("/")
    # Open: the failed quality check that room_revenue's run reported on room_bookings, with its impact.
    quality = page.locator('#incidents article.incident[data-kind="data_quality"]')
    expect(quality).to_contain_text("bookings.public.room_bookings")
    expect(quality).to_contain_text("Failed assertion not_null on room_id")
    expect(quality.locator("ul.impacted li").first).to_be_visible()
    # Resolved: day 2's run completed after day 1's failure, which still needs its backfill.
    incident = page.locator(f'#resolved-incidents article.incident[data-run-id="{runs[1]}"]')
    expect(incident).to_contain_text("Resolved")
    expect(incident).to_contain_text("bookings_etl.load_room_bookings")
    expect(incident).to_contain_text("relation does not exist")
    (failed,) = [i for i in stored if i["runId"] == str(runs[1])]
    downstream = [j["job"]["name"] for j in failed["impact"]["jobs"]]
    assert {"bookings_reports.top_rooms", "bookings_reports.publish_dashboard"} <= set(downstream)
    expect(incident.locator("ul.impacted li")).to_have_text([re.compile(re.escape(n)) for n in downstream])
    expect(incident).to_contain_text(f"{len(downstream)} downstream jobs")
    expect(incident).to_contain_text("notify team-analytics")
    screenshot(page, "home")

    # Instant search: results while typing, then open one.
    search = page.get_by_role("combobox", name="Search jobs and datasets")
    search.press_sequentially("revenue", delay=20)
    options = page.get_by_role("option")
    expect(options).to_have_count(2)
    expect(options).to_contain_text(["analytics.public.room revenue", "analytics/room_revenue"])
    screenshot(page, "search")
    options.filter(has_text="analytics/room_revenue").click()
    expect(page).to_have_url(re.compile(r"/jobs/dbt-prod/analytics%2Froom_revenue$"))
    page.reload()  # a deep link with an encoded '/' survives a reload
    expect(page.locator("h1")).to_contain_text("analytics/room_revenue")
    expect(page.locator("pre.sql .hljs-keyword").first).to_have_text("SELECT")
    expect(page.locator(".facet-documentation")).to_contain_text("Sums booking amounts per room")

    # The lineage explorer from the job page: the directed walk two job hops each way.
    page.get_by_role("link", name="Lineage", exact=True).click()
    wait_for_graph(page, "lineage-graph")
    assert drawn_nodes(page) == {
        REVENUE_JOB,
        table("analytics.public.room revenue"),
        table("bookings.public.room_bookings"),
        ETL,
        table("bookings.public.bookings"),
    }
    # Re-centre on room_bookings, then narrow upstream to one hop with the depth controls.
    page.get_by_label("Select a node").select_option(table("bookings.public.room_bookings"))
    page.locator("#node-details").get_by_role("link", name="Center here").click()
    wait_for_graph(page, "lineage-graph")
    page.get_by_label("Upstream depth").fill("1")
    page.get_by_label("Downstream depth").fill("2")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"up=1&down=2"))
    expect(page.locator("#lineage-graph")).to_have_attribute("data-node-count", "9")
    assert drawn_nodes(page) == {
        ETL,
        table("bookings.public.bookings"),
        table("bookings.public.room_bookings"),
        TOP_ROOMS,
        table("bookings.public.top_room_bookings"),
        PUBLISH,
        table("bookings.public.room_dashboard"),
        REVENUE_JOB,
        table("analytics.public.room revenue"),
    }

    # Click a job: its latest run, duration, owners and highlighted SQL.
    click_node(page, TOP_ROOMS)
    details = page.locator("#node-details")
    expect(details.locator("h2")).to_contain_text("bookings_reports.top_rooms")
    expect(details).to_contain_text("COMPLETED")
    expect(details).to_contain_text("3 min 0 s")
    expect(details.locator(".facet-ownership")).to_contain_text("team-analytics")
    expect(details.locator("pre.sql .hljs-keyword").first).to_have_text("INSERT INTO")
    assert page.locator("#lineage-graph").get_attribute("data-selected") == TOP_ROOMS
    faded = page.evaluate("window.__headwater.lineage.cy.nodes('.faded').map(n => n.id())")
    assert REVENUE_JOB in faded and ETL not in faded  # the selected node's paths stay lit
    screenshot(page, "lineage-job")

    # A dataset: schema, data-quality results its reader reported, versions, column lineage of a field.
    page.get_by_label("Select a node").select_option(table("bookings.public.room_bookings"))
    expect(details.locator("table.schema tbody tr")).to_have_count(2)
    expect(details.locator(".facet-dataQualityAssertions")).to_contain_text("not_null")
    expect(details.locator(".facet-dataQualityAssertions .state-failed")).to_have_text("failed")
    expect(details.locator("table.versions tbody tr")).to_have_count(3)
    details.get_by_label("Column").select_option("amount")
    details.get_by_role("button", name="Show column lineage").click()
    expect(details.locator(".column-lineage-result")).to_contain_text("Downstream of amount")
    expect(details.locator(".column-lineage-result li")).to_have_text(
        [re.compile(r"1 hop analytics\.public\.room revenue\.revenue")]
    )
    screenshot(page, "lineage-dataset")

    # The dataset page behind an encoded namespace and a name with a space.
    page.get_by_label("Select a node").select_option(table("analytics.public.room revenue"))
    details.get_by_role("link", name="Dataset page").click()
    expect(page).to_have_url(
        re.compile(r"/datasets/postgres%3A%2F%2Fwarehouse\.example\.com%3A5432/analytics\.public\.room%20revenue$")
    )
    page.reload()
    expect(page.locator(".facet-documentation")).to_contain_text("Revenue per room and day")
    page.get_by_label("Column").select_option("revenue")
    page.get_by_role("button", name="Show column lineage").click()
    expect(page.locator(".column-lineage-result")).to_contain_text("bookings.public.room_bookings.amount")


def test_a_backfill_plan_from_a_failed_run_saved_and_opened_by_url(page, http):
    runs = three_days(http)

    page.goto("/jobs/airflow-prod/bookings_etl.load_room_bookings")
    failed_rows = page.locator("table.runs tr.failed")
    expect(failed_rows).to_have_count(1)
    expect(failed_rows).to_have_attribute("data-run-id", runs[1])
    expect(failed_rows).to_contain_text("2024-11-02 00:00Z → 2024-11-03 00:00Z")
    expect(page.locator("table.runs tbody tr")).to_have_count(3)
    screenshot(page, "job-runs")

    page.goto("/")
    page.locator(f'article.incident[data-run-id="{runs[1]}"]').get_by_role("link", name="Plan backfill").click()
    expect(page).to_have_url(re.compile(rf"/backfills/new\?runId={runs[1]}$"))
    levels = page.locator("li.level")
    expect(levels).to_have_count(3)
    for level, job in enumerate(
        ["bookings_etl.load_room_bookings", "bookings_reports.top_rooms", "bookings_reports.publish_dashboard"]
    ):
        expect(levels.nth(level).locator("article.step h4")).to_have_text([job])
    expect(levels.nth(0)).to_contain_text("Owners: team-bookings")
    expect(levels.nth(2)).to_contain_text("Owners: team-analytics")
    expect(levels.nth(2).locator(".why ol.path li")).to_have_text(
        [
            f"Run {runs[1][:8]}",
            "Dataset bookings.public.room_bookings",
            "Job bookings_reports.top_rooms",
            "Dataset bookings.public.top_room_bookings",
            "Job bookings_reports.publish_dashboard",
        ]
    )
    expect(page.locator(".totals")).to_have_text(
        "3 jobs in 3 levels · 3 runs to redo · 2 Airflow DAGs · 3 datasets affected"
    )
    wait_for_graph(page, "plan-graph")
    cause = f"cause:run:{runs[1]}"
    assert drawn_nodes(page, "plan") == {cause, ETL, TOP_ROOMS, PUBLISH}
    assert set(page.evaluate("window.__headwater.plan.edgeIds()")) == {
        f"{cause}->{ETL}",
        f"{ETL}->{TOP_ROOMS}",
        f"{TOP_ROOMS}->{PUBLISH}",
    }

    etl_commands = page.locator('article.dag[data-dag-id="bookings_etl"] pre')
    clear = (
        "airflow tasks clear -s 2024-11-02T00:00:00+00:00 -e 2024-11-02T00:00:00+00:00 "
        "-t '^(load_room_bookings)$' -y bookings_etl"
    )
    expect(etl_commands.nth(0)).to_have_text(clear)
    expect(page.locator('article.dag[data-dag-id="bookings_reports"] pre').nth(2)).to_have_text(
        "airflow backfill create --dag-id bookings_reports --from-date 2024-11-02T00:00:00+00:00 "
        "--to-date 2024-11-02T00:00:00+00:00 --reprocess-behavior completed"
    )
    page.locator('article.dag[data-dag-id="bookings_etl"]').get_by_role("button", name="Copy").first.click()
    expect(page.locator('article.dag[data-dag-id="bookings_etl"] .copy-status').first).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == clear
    screenshot(page, "backfill-preview")

    page.get_by_label("Plan name").fill("Bookings outage, 2 Nov")
    page.get_by_role("button", name="Save plan").click()
    expect(page).to_have_url(re.compile(r"/backfills/[0-9a-f-]{36}$"))
    plan_url = page.url
    page.goto("about:blank")
    page.goto(plan_url)  # the saved plan, opened by its URL
    expect(page.locator("h1")).to_have_text("Bookings outage, 2 Nov")
    expect(page.locator(".progress").first).to_contain_text("open · 0/3 steps · 0/3 runs")
    expect(page.locator("li.level")).to_have_count(3)

    # The ETL task is re-run for 2 November: the saved plan shows that step done.
    rerun(http, "bookings_etl", "load_room_bookings", NOV + DAY, ["bookings"], ["room_bookings"])
    page.get_by_role("button", name="Refresh progress").click()
    expect(page.locator(".progress").first).to_contain_text("in progress · 1/3 steps · 1/3 runs")
    expect(page.locator("li.level").nth(0).locator(".tag.done")).to_have_text("done")
    screenshot(page, "backfill-saved")

    page.get_by_role("link", name="Backfill plans").click()
    expect(page.get_by_role("link", name="Bookings outage, 2 Nov")).to_be_visible()
    expect(page.locator("table.list tbody tr")).to_contain_text(["in progress · 1/3 steps · 1/3 runs"])


def test_a_backfill_plan_for_a_job_and_dates_and_for_a_dataset_version(page, http):
    runs = three_days(http, failed_day=None)
    # Keyboard only: search, arrow to the result, Enter; then Enter on a focused link.
    page.goto("/")
    page.get_by_role("combobox", name="Search jobs and datasets").focus()
    page.keyboard.type("load_room")
    expect(page.get_by_role("option")).to_have_count(1)
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("option").first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/jobs/airflow-prod/bookings_etl\.load_room_bookings$"))
    page.get_by_role("link", name="Plan backfill for dates").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("A job, between two dates")).to_be_checked()
    expect(page.get_by_label("Job", exact=True)).to_have_value("bookings_etl.load_room_bookings")
    page.get_by_label("From (data time, inclusive)").fill("2024-11-02")
    page.get_by_label("To (exclusive)").fill("2024-11-04")
    page.get_by_role("button", name="Preview plan").click()
    expect(page.locator(".totals")).to_have_text(
        "3 jobs in 3 levels · 6 runs to redo · 2 Airflow DAGs · 3 datasets affected"
    )
    expect(page.locator('article.dag[data-dag-id="bookings_reports"]')).to_contain_text(
        "Logical dates: 2024-11-02 00:00Z … 2024-11-03 00:00Z"
    )
    screenshot(page, "backfill-job-window")

    # From the dataset page: the version the ETL wrote for 2 November is bad.
    page.goto("/datasets/postgres%3A%2F%2Fwarehouse.example.com%3A5432/bookings.public.room_bookings")
    row = page.locator("table.versions tbody tr").filter(has_text=runs[1][:8])
    version = http.get(f"/api/v1/jobs/runs/{runs[1]}").json()["outputDatasetVersions"][0]["datasetVersionId"]["version"]
    expect(row).to_contain_text(version[:8])
    row.get_by_role("link", name="Plan backfill").click()
    expect(page.get_by_label("A bad dataset version")).to_be_checked()
    expect(page.get_by_label("Bad version")).to_have_value(version)
    expect(page.locator(".root-description")).to_contain_text(f"Version {version}")
    levels = page.locator("li.level")
    expect(levels).to_have_count(2)
    expect(levels.nth(0).locator("article.step h4")).to_have_text(["bookings_reports.top_rooms"])
    expect(levels.nth(1).locator("article.step h4")).to_have_text(["bookings_reports.publish_dashboard"])
    expect(page.locator(".totals")).to_contain_text("2 jobs in 2 levels · 2 runs to redo · 1 Airflow DAG ·")
    screenshot(page, "backfill-dataset-version")


def test_a_500_node_graph_is_drawn_and_timed(page, http, engine):
    shape = synthetic.Shape(pipelines=1, layers=26, width=11, fan_in=2, outputs=1, runs_per_job=1)
    synthetic.generate(engine, shape)
    root = f"job:{synthetic.JOB_NAMESPACE}:{synthetic.job_name(0, 1, 0)}"
    expected = set()
    for direction in ("upstream", "downstream"):
        graph = http.get("/api/v1/lineage", params={"nodeId": root, "depth": 50, "direction": direction}).json()
        expected |= {node["id"] for node in graph["graph"]}
    assert len(expected) >= 500

    page.goto(f"/lineage?nodeId={root}&up=50&down=50")
    wait_for_graph(page, "lineage-graph", timeout=60_000)
    assert drawn_nodes(page) == expected
    render_ms = page.evaluate("window.__headwater.lineage.renderMs")
    click_node(page, root)
    expect(page.locator("#node-details h2")).to_contain_text(synthetic.job_name(0, 1, 0))
    screenshot(page, "lineage-500")
    report = {"database": TEST_DB, "nodes": len(expected), "renderMs": render_ms}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{TEST_DB}-graph-render.json").write_text(json.dumps(report))
    print(f"\n{len(expected)}-node lineage graph drawn in {render_ms} ms ({TEST_DB})")
    assert render_ms < 30_000, report  # a sanity bound, not a benchmark


# --- readability of the lineage explorer ----------------------------------------------------------------------

MIN_LABEL_PX = 13  # ui/src/graph.js: no label is drawn smaller than this in the default view or after 'Fit'
CHAIN_NS = "airflow-hotel"
CHAIN = [  # dataset → job → dataset → job → dataset → job: six nodes with long, dotted Airflow names
    ("dataset", "reservations.public.new_room_bookings_raw"),
    ("job", "new_room_bookings.new_room_bookings_staging"),
    ("dataset", "reservations.public.new_room_bookings_staged"),
    ("job", "new_room_bookings.new_room_bookings_enriched"),
    ("dataset", "reservations.public.new_room_bookings_enriched"),
    ("job", "new_room_bookings.publish_new_room_bookings_dashboard"),
]


def six_node_chain(http) -> str:
    """The chain above, the middle job having failed; returns the node id of that job."""
    for index in (1, 3, 5):
        inputs = [dataset(POSTGRES_NS, CHAIN[index - 1][1], columns=[("booking_id", "BIGINT"), ("room_id", "INTEGER")])]
        outputs = [dataset(POSTGRES_NS, CHAIN[index + 1][1], columns=COLUMNS)] if index + 1 < len(CHAIN) else []
        run_id = uuid.uuid4()
        for event_type, minutes in (("START", 0), ("FAIL" if index == 3 else "COMPLETE", 4)):
            event = run_event(
                event_type, job=(CHAIN_NS, CHAIN[index][1]), run_id=run_id, time=T0 + timedelta(minutes=minutes),
                inputs=inputs, outputs=outputs,
            )  # fmt: skip
            assert http.post("/api/v1/lineage", json=event).status_code == 201
    return f"job:{CHAIN_NS}:{CHAIN[3][1]}"


COLUMNS = [("booking_id", "BIGINT"), ("room_id", "INTEGER"), ("guest_country", "VARCHAR"), ("amount_eur", "DECIMAL")]


def smallest_label_px(page) -> float:
    """The smallest on-screen font size of any node label: cytoscape's zoom × the label's font size."""
    return page.evaluate(
        "(() => { const cy = window.__headwater.lineage.cy;"
        " return Math.min(...cy.nodes().map(n => cy.zoom() * n.numericStyle('font-size'))); })()"
    )


def node_on_screen(page, node_id: str) -> bool:
    return page.evaluate(
        """(id) => { const cy = window.__headwater.lineage.cy; const at = cy.getElementById(id).renderedPosition();
            return at.x > 0 && at.y > 0 && at.x < cy.width() && at.y < cy.height(); }""",
        node_id,
    )


def hover(page, node_id: str) -> None:
    point = page.evaluate(
        """(id) => { const cy = window.__headwater.lineage.cy; const box = cy.container().getBoundingClientRect();
            const at = cy.getElementById(id).renderedPosition(); return { x: box.left + at.x, y: box.top + at.y }; }""",
        node_id,
    )
    page.mouse.move(point["x"], point["y"])


def test_a_six_node_chain_is_readable_with_full_names_columns_and_a_legend(page, http):
    root = six_node_chain(http)
    page.goto(f"/lineage?nodeId={root}")
    wait_for_graph(page, "lineage-graph")
    ids = {kind: [f"{kind}:{CHAIN_NS if kind == 'job' else POSTGRES_NS}:{name}" for k, name in CHAIN if k == kind]
           for kind in ("job", "dataset")}  # fmt: skip
    assert drawn_nodes(page) == {*ids["job"], *ids["dataset"]}

    # Every label is drawn at a readable size, and the whole name is on the node (wrapped, never cut short).
    assert smallest_label_px(page) >= MIN_LABEL_PX
    for kind, name in CHAIN:
        node_id = f"{kind}:{CHAIN_NS if kind == 'job' else POSTGRES_NS}:{name}"
        lines = page.evaluate("(id) => window.__headwater.lineage.nameLines(id)", node_id)
        assert "".join(lines) == name and len(lines) > 1, lines  # these names are too long for one line
    assert node_on_screen(page, root)  # centred on the node asked for
    screenshot(page, "lineage-chain-6")

    # The legend names the node kinds and the run states.
    legend = page.get_by_role("list", name="Legend")
    expect(legend).to_be_visible()
    for entry in ("Job", "Dataset", "Last run completed", "Last run failed", "Last run running", "Never run"):
        expect(legend.get_by_role("listitem").filter(has_text=re.compile(f"^{entry}$"))).to_have_count(1)
    failed_class = page.evaluate(f"window.__headwater.lineage.cy.getElementById('{root}').hasClass('failed')")
    assert failed_class  # the failed job is drawn as the legend's "failed"

    # Hover: the full name and namespace in a tooltip.
    publish = f"job:{CHAIN_NS}:{CHAIN[5][1]}"
    page.get_by_label("Select a node").select_option(publish)  # centres it, so the mouse can reach it
    page.wait_for_timeout(400)
    hover(page, publish)
    tooltip = page.get_by_role("tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text(CHAIN[5][1])
    expect(tooltip).to_contain_text(CHAIN_NS)
    expect(tooltip).to_contain_text("Last run: COMPLETED")
    # The side panel has the full name too.
    expect(page.locator("#node-details h2")).to_contain_text(CHAIN[5][1])
    screenshot(page, "lineage-chain-6-hover")

    # A dataset's columns on its node, from the side panel; the labels stay readable.
    staged = f"dataset:{POSTGRES_NS}:{CHAIN[4][1]}"
    page.get_by_label("Select a node").select_option(staged)
    before = page.evaluate(f"window.__headwater.lineage.cy.getElementById('{staged}').height()")
    page.locator("#node-details").get_by_role("button", name="Show columns on the graph").click()
    label = page.evaluate(f"window.__headwater.lineage.cy.getElementById('{staged}').data('label')")
    for column, column_type in COLUMNS:
        assert f"{column} · {column_type}" in label
    assert page.evaluate(f"window.__headwater.lineage.cy.getElementById('{staged}').height()") > before
    assert smallest_label_px(page) >= MIN_LABEL_PX
    page.wait_for_timeout(300)
    screenshot(page, "lineage-chain-6-columns")

    # 'Fit' keeps the floor too: it pans rather than shrinking the labels.
    page.get_by_role("button", name="Fit").click()
    assert smallest_label_px(page) >= MIN_LABEL_PX


def test_a_200_node_graph_opens_readable_around_its_root(page, http, engine):
    shape = synthetic.Shape(pipelines=1, layers=16, width=8, fan_in=3, outputs=1, runs_per_job=1, cross_links=0)
    synthetic.generate(engine, shape)
    root = f"job:{synthetic.JOB_NAMESPACE}:{synthetic.job_name(0, 8, 0)}"
    page.goto(f"/lineage?nodeId={root}&up=50&down=50")
    wait_for_graph(page, "lineage-graph", timeout=60_000)
    count = len(drawn_nodes(page))
    assert 150 <= count <= 250, count
    assert smallest_label_px(page) >= MIN_LABEL_PX
    assert node_on_screen(page, root)
    expect(page.get_by_role("list", name="Legend")).to_be_visible()
    expect(page.locator("#node-details h2")).to_contain_text(synthetic.job_name(0, 8, 0))
    screenshot(page, "lineage-200")
    # 'Fit' on a graph this size would shrink labels to a few pixels: it stays at the floor and pans.
    page.get_by_role("button", name="Fit").click()
    assert smallest_label_px(page) >= MIN_LABEL_PX
