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


def test_run_dry_run_and_follow_a_plan_on_a_server(database_url, engine, tmp_path):
    """`headwater backfill run` against a real server whose executor drives a (fake) Airflow over HTTP; no
    lineage comes back, so the server learns from Airflow's answers (its fallback poll) that the runs are done."""
    from tests.support.fake_airflow import FakeAirflow, serve

    airflow = FakeAirflow()
    airflow.auto_finish = True
    dates = [NOV + d * DAY for d in range(3)]
    airflow.dag("bookings_etl", ["load_room_bookings"], dates)
    airflow.dag("bookings_reports", ["top_rooms", "publish_dashboard"], dates)
    env = {"HEADWATER_BACKFILL_STEP_SECONDS": "0.2", "HEADWATER_BACKFILL_POLL_SECONDS": "0.5"}
    with serve(airflow) as airflow_url, LiveServer(database_url, log_path=tmp_path / "server.log", env=env) as server:
        import httpx

        with httpx.Client(base_url=server.url) as http:
            for day in range(3):
                bookings_day(http, NOV + day * DAY)
            connection = {"baseUrl": airflow_url, "namespaces": ["airflow-prod"], "username": "headwater",
                          "password": "s3cret"}  # fmt: skip
            assert http.put("/api/v1/airflow-connections/local", json=connection).status_code == 200
            job = {"namespace": "airflow-prod", "name": "bookings_etl.load_room_bookings"}
            request = {"job": job, "start": (NOV + DAY).isoformat(), "end": (NOV + 2 * DAY).isoformat()}
            plan_id = http.post("/api/v1/backfills", json=request).json()["id"]
        runner = CliRunner()
        args = ["backfill", "run", plan_id, "--server", server.url]
        dry = runner.invoke(cli, [*args, "--dry-run"], env={"COLUMNS": "300"})
        assert dry.exit_code == 0, dry.output
        lines = dry.output.splitlines()
        assert lines[0] == f"1. level 0 bookings_etl: POST {airflow_url}/api/v2/backfills"
        assert '"reprocess_behavior": "completed"' in dry.output and "clearTaskInstances" in dry.output
        assert airflow.writes() == []

        followed = runner.invoke(cli, [*args, "--follow", "--interval", "0.2", "--timeout", "60"])
        assert followed.exit_code == 0, followed.output
        assert "Level 0 [####################] 1/1 DAGs done  done" in followed.output
        assert followed.output.rstrip().splitlines()[-3:] == [
            "  bookings_reports (clear): done, 0/1 steps redone",
            "Level 2 [####################] 1/1 DAGs done  done",
            "  bookings_reports (clear): done, 0/1 steps redone",
        ]
        assert f"Plan {plan_id}: done" in followed.output
        assert [p for m, p, _ in airflow.writes()] == [
            "/api/v2/backfills",
            "/api/v2/dags/bookings_reports/clearTaskInstances",
            "/api/v2/dags/bookings_reports/clearTaskInstances",
            "/api/v2/dags/bookings_reports/clearTaskInstances",
            "/api/v2/dags/bookings_reports/clearTaskInstances",
        ]
        again = runner.invoke(cli, args)
        assert again.exit_code == 1 and "409 This plan was started already (it is done)" in again.output
        status = runner.invoke(cli, ["backfill", "status", plan_id, "--server", server.url])
        assert status.exit_code == 0 and f"Plan {plan_id}: done" in status.output
