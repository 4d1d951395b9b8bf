"""A small Airflow REST API (3's /api/v2 with the simple auth manager's /auth/token, or 2's /api/v1 with basic
auth) behind an httpx transport: DAGs with their tasks and DAG runs by logical date, backfills (one active per
DAG, as Airflow allows), clearing task instances with its dry run. Tests finish or fail DAG runs themselves."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class FakeDag:
    tasks: list[str]
    paused: bool = False
    runs: dict[datetime, str] = field(default_factory=dict)  # logical date -> state


class FakeAirflow:
    def __init__(self, version: int = 3, *, username: str = "headwater", password: str = "s3cret") -> None:
        self.version, self.username, self.password = version, username, password
        self.dags: dict[str, FakeDag] = {}
        self.backfills: dict[int, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []  # (method, path, body) of every API call
        self.tokens: set[str] = set()
        self.down = False  # answer nothing: a connection error
        self.clear_dry_run_drops: set[tuple[str, datetime]] = set()  # task instances its dry run leaves out
        self.auto_finish = False  # queued DAG runs have succeeded by the time anyone asks for them
        self.transport = httpx.MockTransport(self.handle)

    # --- what tests do --------------------------------------------------------------------------------------

    def dag(self, dag_id: str, tasks: list[str], dates: list[datetime], *, paused: bool = False) -> None:
        self.dags[dag_id] = FakeDag(tasks=tasks, paused=paused, runs={d: "success" for d in dates})

    def finish(self, dag_id: str, state: str = "success", date: datetime | None = None) -> None:
        """The scheduler ran the queued DAG runs (or the one of ``date``) to ``state``."""
        dag = self.dags[dag_id]
        for when, current in dag.runs.items():
            if current in ("queued", "running") and (date is None or when == date):
                dag.runs[when] = state
        for backfill in self.backfills.values():
            if backfill["dag_id"] == dag_id and all(
                s not in ("queued", "running")
                for d, s in dag.runs.items()
                if _parse(backfill["from_date"]) <= d <= _parse(backfill["to_date"])
            ):
                backfill["completed_at"] = backfill["completed_at"] or _iso(datetime.now(UTC))

    def writes(self) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] != "GET" and c[1] != "/auth/token"]

    # --- the API --------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append((request.method, path, body))
        if path == "/auth/token" and self.version == 3:
            if body == {"username": self.username, "password": self.password}:
                token = f"token-{len(self.tokens)}"
                self.tokens.add(token)
                return httpx.Response(201, json={"access_token": token})
            return httpx.Response(401, json={"detail": "Invalid credentials"})
        if not self._authorized(request):
            return httpx.Response(401, json={"detail": "Not authenticated"})
        prefix = "/api/v2" if self.version == 3 else "/api/v1"
        if not path.startswith(prefix + "/"):
            return httpx.Response(404, json={"detail": "Not Found"})
        parts = path[len(prefix) + 1 :].split("/")
        return self._route(request.method, parts, body, request.url.params)

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.version == 3:
            return header.startswith("Bearer ") and header[7:] in self.tokens
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    def _route(self, method: str, parts: list[str], body: Any, params: httpx.QueryParams) -> httpx.Response:
        match (method, parts):
            case ("GET", ["version"]):
                return httpx.Response(200, json={"version": "3.3.2" if self.version == 3 else "2.10.5"})
            case ("GET", ["dags", dag_id]):
                if dag_id not in self.dags:
                    return httpx.Response(404, json={"detail": f"Dag {dag_id} not found"})
                return httpx.Response(200, json={"dag_id": dag_id, "is_paused": self.dags[dag_id].paused})
            case ("GET", ["dags", dag_id, "tasks"]):
                return httpx.Response(200, json={"tasks": [{"task_id": t} for t in self.dags[dag_id].tasks]})
            case ("GET", ["dags", dag_id, "dagRuns"]):
                if self.auto_finish:
                    self.finish(dag_id)
                key = "logical_date" if self.version == 3 else "execution_date"
                start, end = _parse(params[f"{key}_gte"]), _parse(params[f"{key}_lte"])
                runs = [
                    {"dag_run_id": f"scheduled__{_iso(d)}", key: _iso(d), "state": s}
                    for d, s in sorted(self.dags[dag_id].runs.items())
                    if start <= d <= end
                ]
                return httpx.Response(200, json={"dag_runs": runs, "total_entries": len(runs)})
            case ("POST", ["dags", dag_id, "clearTaskInstances"]):
                return self._clear(dag_id, body)
            case ("POST", ["backfills"]) if self.version == 3:
                return self._backfill(body)
            case ("GET", ["backfills"]) if self.version == 3:
                found = [b for b in self.backfills.values() if b["dag_id"] == params.get("dag_id")]
                return httpx.Response(200, json={"backfills": found, "total_entries": len(found)})
            case ("PUT", ["backfills", backfill_id, "cancel"]) if self.version == 3:
                backfill = self.backfills.get(int(backfill_id))
                if backfill is None:
                    return httpx.Response(404, json={"detail": "Backfill not found"})
                if backfill["completed_at"]:
                    return httpx.Response(409, json={"detail": "Backfill is already completed."})
                backfill["completed_at"] = _iso(datetime.now(UTC))
                backfill["cancelled"] = True
                return httpx.Response(200, json=backfill)
        return httpx.Response(404, json={"detail": "Not Found"})

    def _backfill(self, body: dict[str, Any]) -> httpx.Response:
        dag = self.dags.get(body["dag_id"])
        if dag is None:
            return httpx.Response(404, json={"detail": "Could not find dag"})
        if any(b["dag_id"] == body["dag_id"] and not b["completed_at"] for b in self.backfills.values()):
            return httpx.Response(409, json={"detail": f"There is already a running backfill for dag {body['dag_id']}"})
        start, end = _parse(body["from_date"]), _parse(body["to_date"])
        for date in dag.runs:
            if start <= date <= end:
                dag.runs[date] = "queued"
        backfill_id = len(self.backfills) + 1
        self.backfills[backfill_id] = {
            "id": backfill_id,
            "dag_id": body["dag_id"],
            "from_date": body["from_date"],
            "to_date": body["to_date"],
            "max_active_runs": body["max_active_runs"],
            "reprocess_behavior": body["reprocess_behavior"],
            "is_paused": False,
            "created_at": _iso(datetime.now(UTC)),
            "completed_at": None,
        }
        return httpx.Response(200, json=self.backfills[backfill_id])

    def _clear(self, dag_id: str, body: dict[str, Any]) -> httpx.Response:
        dag = self.dags[dag_id]
        start, end = _parse(body["start_date"]), _parse(body["end_date"])
        key = "logical_date" if self.version == 3 else "execution_date"
        instances = [
            {"task_id": task, "dag_id": dag_id, "dag_run_id": f"scheduled__{_iso(d)}", key: _iso(d)}
            for d in sorted(dag.runs)
            if start <= d <= end
            for task in body["task_ids"]
            if task in dag.tasks and (task, d) not in self.clear_dry_run_drops
        ]
        if not body["dry_run"]:
            for d in dag.runs:
                if start <= d <= end:
                    dag.runs[d] = "queued"
        return httpx.Response(200, json={"task_instances": instances, "total_entries": len(instances)})


@contextmanager
def serve(fake: FakeAirflow) -> Iterator[str]:
    """The fake on a real socket (for a server in another process): yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = httpx.Request(
                self.command,
                f"http://{self.headers['host']}{self.path}",
                headers=dict(self.headers),
                content=self.rfile.read(length) if length else b"",
            )
            response = fake.handle(request)
            body = response.read()
            self.send_response(response.status_code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
