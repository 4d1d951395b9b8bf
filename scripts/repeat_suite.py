"""Run the whole test suite repeatedly, as a new user would, to find flaky tests (issue 19).

Each round makes a fresh `git clone` of one commit into a temporary directory, installs its virtualenv
(`make .venv/.installed-dev`), then runs the SQLite suite and the PostgreSQL suite AT THE SAME TIME: each suite is
the CPU load the other one runs under, as on a CI machine with two shared cores. Every round appends one line per
database to <out>/results.jsonl (commit, duration, counts, and each failed test with the first lines of its
error) and keeps the logs and JUnit XML under <out>/round-<n>/.

    nice -n 10 .venv/bin/python scripts/repeat_suite.py --rounds 10 --ref main --out /tmp/headwater-repeat \\
        --pause-file /work/notes/PAUSE-TESTS
    .venv/bin/python scripts/repeat_suite.py --out /tmp/headwater-repeat --table   # the Markdown table so far

    nice -n 10 .venv/bin/python scripts/repeat_suite.py --ref main --merge flakes ...   # main with a branch merged

--ref (and --merge) are resolved at the start of every round, so a branch that gains commits while the loop runs
is tested at its newest commit from the next round on. While --pause-file exists no new round starts (someone
needs a quiet machine, e.g. for a benchmark); a round already running finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from pathlib import Path

DATABASES = ("sqlite", "postgres")
ERROR_LINES = 6


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def wait_while_paused(pause_file: Path | None) -> None:
    announced = False
    while pause_file is not None and pause_file.exists():
        if not announced:
            print(f"{now()} paused: {pause_file} exists", flush=True)
            announced = True
        time.sleep(10)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_id(testcase: ElementTree.Element) -> str:
    """tests.test_x.TestY + test_z -> tests/test_x.py::TestY::test_z"""
    parts = testcase.get("classname", "").split(".")
    module = [p for p in parts if not p[:1].isupper()]
    classes = [p for p in parts if p[:1].isupper()]
    return "::".join(["/".join(module) + ".py", *classes, testcase.get("name", "?")])


def failures(junit_xml: Path) -> tuple[dict, list[dict]]:
    root = ElementTree.parse(junit_xml).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failed = []
    for testcase in suite.iter("testcase"):
        for outcome in ("failure", "error"):
            element = testcase.find(outcome)
            if element is not None:
                text = (element.get("message") or "") + "\n" + (element.text or "")
                lines = [line for line in text.splitlines() if line.strip()]
                failed.append({"test": test_id(testcase), "outcome": outcome, "error": lines[:ERROR_LINES]})
    return counts, failed


def run_suites(clone: Path, round_dir: Path, timeout: float) -> dict[str, dict]:
    """Both databases' suites side by side; returns per database its exit code and duration."""
    started = {}
    for database in DATABASES:
        log = (round_dir / f"{database}.log").open("w")
        command = [
            str(clone / ".venv/bin/python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            f"--junitxml={round_dir / f'{database}.xml'}",
        ]
        env = {**os.environ, "HEADWATER_TEST_DB": database}
        process = subprocess.Popen(
            command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started[database] = (process, time.monotonic(), log)
    results = {}
    deadline = time.monotonic() + timeout
    for database, (process, start, log) in started.items():
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the suite's own process group: pytest and its servers
            code = process.wait()
            results[database] = {"exit": code, "timed_out": True}
        else:
            results[database] = {"exit": code, "timed_out": False}
        results[database]["seconds"] = round(time.monotonic() - start)
        log.close()
    return results


def one_round(number: int, repo: Path, ref: str, merge: str | None, out: Path, timeout: float, keep: bool) -> None:
    commit = git(repo, "rev-parse", ref)
    label = commit[:7]
    round_dir = out / f"round-{number}"
    round_dir.mkdir(parents=True, exist_ok=True)
    clone = Path(tempfile.mkdtemp(prefix=f"headwater-round-{number}-"))
    try:
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
        if merge:  # a branch's fixes on top of the newest main, as they would be once merged
            merged = git(repo, "rev-parse", merge)
            identity = ["-c", "user.name=repeat-suite", "-c", "user.email=repeat-suite@localhost"]
            git(clone, *identity, "merge", "--quiet", "--no-edit", merged)
            label = f"{commit[:7]}+{merged[:7]}"
            ref = f"{ref}+{merge}"
        with (round_dir / "install.log").open("w") as install_log:
            subprocess.run(
                ["make", ".venv/.installed-dev"], cwd=clone, check=True, stdout=install_log, stderr=subprocess.STDOUT
            )
        print(f"{now()} round {number}: {label} ({ref}) both suites started", flush=True)
        results = run_suites(clone, round_dir, timeout)
    finally:
        if not keep:
            shutil.rmtree(clone, ignore_errors=True)
    with (out / "results.jsonl").open("a") as results_file:
        for database, result in results.items():
            junit = round_dir / f"{database}.xml"
            counts, failed = failures(junit) if junit.exists() else ({}, [])
            record = {
                "round": number,
                "commit": label,
                "ref": ref,
                "database": database,
                "finished": now(),
                **result,
                **counts,
                "failed": failed,
            }
            results_file.write(json.dumps(record) + "\n")
            names = ", ".join(f["test"] for f in failed) or "-"
            print(
                f"{now()} round {number} {database}: exit {result['exit']}, {result['seconds']} s, "
                f"{counts.get('passed', '?')} passed, failed: {names}",
                flush=True,
            )


def table(out: Path) -> str:
    rows = [
        "| round | commit | DB | duration | passed | failed tests |",
        "|---|---|---|---|---|---|",
    ]
    for line in (out / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        failed = "<br>".join(f"`{f['test']}`" for f in record["failed"]) or "-"
        if record.get("timed_out"):
            failed = "TIMED OUT " + failed
        elif record["exit"] != 0 and not record["failed"]:
            failed = f"exit {record['exit']}, no test named (see the log)"
        duration = f"{record['seconds'] // 60}m{record['seconds'] % 60:02d}s"
        rows.append(
            f"| {record['round']} | {record['commit']} | {record['database']} | {duration} | "
            f"{record.get('passed', '?')} | {failed} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="repository to clone")
    parser.add_argument("--ref", default="HEAD", help="commit or branch to test, resolved at each round's start")
    parser.add_argument("--merge", help="branch merged into --ref in each round's clone (e.g. fixes not yet on main)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--first-round", type=int, default=1, help="number of the first round (to continue a log)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "headwater-repeat")
    parser.add_argument("--pause-file", type=Path, help="no round starts while this file exists")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before a round's suites are killed")
    parser.add_argument("--keep", action="store_true", help="keep each round's clone")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of --out's results and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.out))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for number in range(args.first_round, args.first_round + args.rounds):
        wait_while_paused(args.pause_file)
        one_round(number, args.repo, args.ref, args.merge, args.out, args.timeout, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
