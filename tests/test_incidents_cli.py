"""`headwater incidents list` and `headwater subscriptions …` on the local database and against a running server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import cli
from tests.support.live_server import LiveServer
from tests.test_incidents import NS, failing_run


def run_cli(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"HEADWATER_DATABASE_URL": database_url, "COLUMNS": "300"})
    return result.exit_code, result.output


def test_incidents_list_on_the_local_database(news_client, database_url):
    client = news_client
    assert run_cli(database_url, "incidents", "list") == (0, "No incidents.\n")
    run_id = failing_run(client)
    code, out = run_cli(database_url, "incidents", "list", "--status", "open")
    assert code == 0, out
    first, second, total = out.splitlines()
    assert "OPEN" in first and "run_failed" in first and "Run of job load_orders failed" in first
    assert f"backfill: /backfills/new?runId={run_id}" in second
    assert total == "1 of 1"
    code, out = run_cli(database_url, "incidents", "list", "--kind", "late")
    assert (code, out) == (0, "No incidents.\n")
    code, out = run_cli(database_url, "incidents", "list", "--format", "json")
    assert json.loads(out)["incidents"][0]["runId"] == run_id
    code, out = run_cli(database_url, "incidents", "list", "--status", "closed")
    assert code == 2 and "open or resolved" in out


def test_subscriptions_from_the_command_line(client, database_url, tmp_path):
    code, out = run_cli(database_url, "subscriptions", "add", "--url", "https://hooks.example.com/x",
                        "--secret", "a-long-secret", "--namespace", NS, "--owner", "team-a")  # fmt: skip
    assert code == 0 and out.endswith("→ https://hooks.example.com/x (signed)\n"), out
    subscription_id = out.split()[1]
    code, out = run_cli(database_url, "subscriptions", "list")
    assert out == f"{subscription_id}  https://hooks.example.com/x  ← {NS}, owner team-a\n"
    code, out = run_cli(database_url, "subscriptions", "add", "--url", "https://hooks.example.com/x")
    assert code == 2 and "subscribe to at least one of" in out
    code, out = run_cli(database_url, "subscriptions", "add", "--url", "https://h.example.com", "--job", "nocolon")
    assert code == 2 and "expected <namespace>:<name>" in out
    assert run_cli(database_url, "subscriptions", "deliveries", subscription_id) == (0, "No deliveries.\n")

    with LiveServer(database_url, log_path=tmp_path / "server.log") as server:
        code, out = run_cli(database_url, "incidents", "list", "--server", server.url)
        assert (code, out) == (0, "No incidents.\n")
        code, out = run_cli(database_url, "subscriptions", "list", "--server", server.url)
        assert out.startswith(subscription_id)
        code, out = run_cli(database_url, "subscriptions", "remove", subscription_id, "--server", server.url)
        assert (code, out) == (0, f"subscription {subscription_id} removed\n")
        code, out = run_cli(database_url, "subscriptions", "remove", subscription_id, "--server", server.url)
        assert code == 1 and "404" in out
    assert run_cli(database_url, "subscriptions", "list") == (0, "No subscriptions.\n")
