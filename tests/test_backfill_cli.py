"""`headwater backfill plan` on the local database and against a running server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.support.live_server import LiveServer
from tests.test_backfill_plans import DAY, NOV, bookings_day

ETL = "airflow-prod:bookings_etl.load_room_bookings"


@pytest.fixture
def bookings(client):
    return [bookings_day(client, NOV + day * DAY) for day in range(3)]


def run_cli(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["backfill", "plan", *args], env={"HEADWATER_DATABASE_URL": database_url, "COLUMNS": "300"}
    )
    return result.exit_code, result.output


def test_table_output_reads_as_a_plan(database_url, bookings):
    code, out = run_cli(database_url, "--job", ETL, "--start", "2024-11-02", "--end", "2024-11-04")
    assert code == 0, out
    assert "Root cause: Job bookings_etl.load_room_bookings wrote bad data" in out
    assert "3 jobs, 6 runs, 2 Airflow DAGs, 3 levels" in out
    level_1 = out.index("Level 1")
    assert out.index("airflow-prod:bookings_reports.top_rooms  [bookings_reports / top_rooms]") > level_1
    assert "owners: team-analytics" in out
    assert "why: job:airflow-prod:bookings_etl.load_room_bookings → dataset:" in out
    assert "DAG bookings_reports (level 1, after bookings_etl; owners: team-analytics)" in out


def test_airflow_formats_print_only_commands(database_url, bookings):
    code, out = run_cli(database_url, "--run-id", bookings[1], "--format", "airflow3")
    assert code == 0, out
    assert out.splitlines() == [
        "# bookings_etl (level 0; tasks: load_room_bookings)",
        "airflow backfill create --dag-id bookings_etl --from-date 2024-11-02T00:00:00+00:00 "
        "--to-date 2024-11-02T00:00:00+00:00 --reprocess-behavior completed",
        "# bookings_reports (level 1; tasks: publish_dashboard, top_rooms)",
        "airflow backfill create --dag-id bookings_reports --from-date 2024-11-02T00:00:00+00:00 "
        "--to-date 2024-11-02T00:00:00+00:00 --reprocess-behavior completed",
    ]
    code, out = run_cli(database_url, "--run-id", bookings[1], "--format", "airflow2")
    assert "airflow tasks clear -s 2024-11-02T00:00:00+00:00 -e 2024-11-02T00:00:00+00:00 " in out


def test_bad_arguments_and_unknown_roots_fail_clearly(database_url, bookings):
    code, out = run_cli(database_url, "--job", ETL)
    assert code != 0 and "job needs a window" in out
    code, out = run_cli(database_url, "--dataset", "no-separator")
    assert code != 0 and "expected <namespace>:<name>" in out
    code, out = run_cli(database_url, "--job", "airflow-prod:nope", "--start", "2024-11-02", "--end", "2024-11-03")
    assert code == 1 and "Job 'nope' not found." in out


def test_the_same_plan_from_a_running_server(database_url, bookings, tmp_path):
    local_code, local = run_cli(database_url, "--run-id", bookings[1], "--format", "json")
    with LiveServer(database_url, log_path=tmp_path / "server.log") as server:
        code, remote = run_cli(database_url, "--run-id", bookings[1], "--format", "json", "--server", server.url)
        missing_code, missing = run_cli(
            database_url, "--run-id", "00000000-0000-0000-0000-000000000000", "--server", server.url
        )
    assert local_code == code == 0, remote
    assert json.loads(remote) == json.loads(local)
    assert json.loads(remote)["totals"]["runs"] == 3
    assert missing_code == 1 and "404" in missing and "not found" in missing
