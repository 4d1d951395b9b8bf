"""Airflow's REST API as the executor uses it: Airflow 3 (/api/v2, a token from the auth manager) and Airflow 2
(/api/v1, basic auth). Every call is handed to a recorder (the plan's audit log) with credentials left out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app.services.backfill.connections import ConnectionConfig

HIDDEN = "(hidden)"
# A response kept in the audit log whole up to this size; longer ones are cut.
_KEPT_CHARS = 8000


@dataclass
class Call:
    method: str
    url: str
    request: Any
    status_code: int | None
    response: Any
    error: str | None = None


Recorder = Callable[[Call], None]


class AirflowUnavailable(Exception):
    """Airflow did not answer (refused, timed out, 5xx): try again later."""


class AirflowRefused(Exception):
    """Airflow answered no: bad credentials, missing permission, a request it rejects."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


TokenCache = dict[tuple[str, str | None, str], str]


def _kept(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return {"text": response.text[:_KEPT_CHARS]} if response.text else None
    text = response.text
    if len(text) > _KEPT_CHARS:
        return {"truncated": text[:_KEPT_CHARS]}
    return body


def _date(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class AirflowApi:
    def __init__(
        self, connection: ConnectionConfig, http: httpx.Client, record: Recorder, tokens: TokenCache | None = None
    ) -> None:
        """``tokens``: Airflow 3 tokens by (base URL, user, password digest), kept by the caller across calls
        (the executor's); fetched again when Airflow says 401."""
        self.connection, self.http, self.record = connection, http, record
        self.tokens = tokens if tokens is not None else {}
        self.prefix = "/api/v2" if connection.version >= 3 else "/api/v1"

    # --- plumbing -------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.connection.base_url}{path}"

    def _token(self, refresh: bool = False) -> str:
        c = self.connection
        if c.token:
            return c.token
        key = (c.base_url, c.username, hashlib.sha256((c.password or "").encode()).hexdigest())
        if not refresh and key in self.tokens:
            return self.tokens[key]
        url = self.url("/auth/token")
        shown = {"username": c.username, "password": HIDDEN}
        try:
            response = self.http.post(url, json={"username": c.username, "password": c.password or ""})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self.record(Call("POST", url, shown, None, None, f"{type(exc).__name__}: {exc}"))
            raise AirflowUnavailable(f"Airflow at {c.base_url} did not answer: {exc}") from None
        ok = response.status_code in (200, 201)
        self.record(Call("POST", url, shown, response.status_code, {"access_token": HIDDEN} if ok else _kept(response)))
        if response.status_code >= 500:
            raise AirflowUnavailable(f"Airflow's /auth/token answered {response.status_code}")
        if not ok:
            raise AirflowRefused(
                f"Airflow refused the credentials of connection '{c.name}' ({response.status_code})",
                response.status_code,
            )
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise AirflowRefused("Airflow's /auth/token answered without an access_token")
        self.tokens[key] = token
        return token

    def _auth(self, refresh: bool = False) -> dict[str, Any]:
        c = self.connection
        if c.version >= 3 or c.token:
            return {"headers": {"Authorization": f"Bearer {self._token(refresh)}"}}
        return {"auth": httpx.BasicAuth(c.username or "", c.password or "")}

    def call(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> httpx.Response:
        """One call, recorded; Airflow 3's 401 (an expired token) fetches a new token once."""
        url = self.url(self.prefix + path)
        try:
            shown_url = str(httpx.URL(url, params=params)) if params else url
        except httpx.InvalidURL as exc:
            raise AirflowRefused(f"connection '{self.connection.name}' has an invalid URL: {exc}") from None
        for attempt in (0, 1):
            try:
                response = self.http.request(method, url, json=body, params=params, **self._auth(refresh=attempt > 0))
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                self.record(Call(method, shown_url, body, None, None, f"{type(exc).__name__}: {exc}"))
                raise AirflowUnavailable(f"Airflow at {self.connection.base_url} did not answer: {exc}") from None
            self.record(Call(method, shown_url, body, response.status_code, _kept(response)))
            if (
                response.status_code == 401
                and attempt == 0
                and self.connection.version >= 3
                and not self.connection.token
            ):
                continue
            break
        if response.status_code >= 500:
            raise AirflowUnavailable(f"{method} {path} answered {response.status_code}")
        if response.status_code in (401, 403):
            raise AirflowRefused(
                f"Airflow refused {method} {path} ({response.status_code}): check the credentials and permissions of "
                f"connection '{self.connection.name}'",
                response.status_code,
            )
        return response

    @staticmethod
    def message(response: httpx.Response) -> str:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        return f"{response.status_code} {detail if detail is not None else response.text[:500]}"

    # --- what the executor asks -----------------------------------------------------------------------------

    def version(self) -> str | None:
        response = self.call("GET", "/version")
        return response.json().get("version") if response.status_code == 200 else None

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        response = self.call("GET", f"/dags/{dag_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AirflowRefused(f"GET dag {dag_id}: {self.message(response)}", response.status_code)
        return response.json()

    def tasks(self, dag_id: str) -> list[str]:
        response = self.call("GET", f"/dags/{dag_id}/tasks")
        if response.status_code != 200:
            raise AirflowRefused(f"GET tasks of {dag_id}: {self.message(response)}", response.status_code)
        return [task["task_id"] for task in response.json().get("tasks", [])]

    def backfill_body(self, dag_id: str, start: datetime, end: datetime, max_active_runs: int) -> dict[str, Any]:
        return {
            "dag_id": dag_id,
            "from_date": _date(start),
            "to_date": _date(end),
            "run_backwards": False,
            "dag_run_conf": {},
            "reprocess_behavior": "completed",
            "max_active_runs": max_active_runs,
        }

    def clear_body(self, tasks: list[str], start: datetime, end: datetime, *, dry_run: bool) -> dict[str, Any]:
        return {
            "dry_run": dry_run,
            "task_ids": sorted(tasks),
            "start_date": _date(start),
            "end_date": _date(end),
            "only_failed": False,
            "only_running": False,
            "reset_dag_runs": True,
            "include_upstream": False,
            "include_downstream": False,
            "include_future": False,
            "include_past": False,
        }

    def dag_runs(self, dag_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        date = "logical_date" if self.connection.version >= 3 else "execution_date"
        params = {f"{date}_gte": _date(start), f"{date}_lte": _date(end), "limit": 100}
        response = self.call("GET", f"/dags/{dag_id}/dagRuns", params=params)
        if response.status_code != 200:
            raise AirflowRefused(f"GET runs of {dag_id}: {self.message(response)}", response.status_code)
        return list(response.json().get("dag_runs", []))

    def run_link(self, dag_id: str, run_id: str) -> str:
        base = self.connection.base_url
        if self.connection.version >= 3:
            return f"{base}/dags/{dag_id}/runs/{run_id}"
        return str(httpx.URL(f"{base}/dags/{dag_id}/grid", params={"dag_run_id": run_id}))
