"""Wire format of Airflow connections and of running a saved backfill plan through Airflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.backfill import TimeWindow


class AirflowConnectionRequest(BaseModel):
    """PUT body. A password or token left out keeps the one stored; an empty string removes it."""

    model_config = ConfigDict(extra="forbid")

    baseUrl: str = Field(
        min_length=1, pattern="^https?://", description="Where Airflow's API server answers, e.g. http://airflow:8080."
    )
    version: Literal[2, 3] = Field(3, description="Airflow's major version.")
    namespaces: list[str] = Field(
        min_length=1, description="The OpenLineage namespaces (the provider's OPENLINEAGE_NAMESPACE) of its DAGs."
    )
    username: str | None = Field(None, description="Airflow 3: the auth manager's user; Airflow 2: basic auth.")
    password: str | None = Field(None, description="Write-only.")
    token: str | None = Field(None, description="Write-only. A token to send as is instead of a username/password.")

    @field_validator("baseUrl")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if not url.host:
            raise ValueError("the URL has no host")
        return value.rstrip("/")


class AirflowConnection(BaseModel):
    name: str
    baseUrl: str
    version: int
    namespaces: list[str]
    username: str | None
    hasPassword: bool
    hasToken: bool
    source: Literal["api", "settings"] = Field(description="Made through the API, or from the server's settings.")


class AirflowConnectionList(BaseModel):
    connections: list[AirflowConnection]


class DagCheck(BaseModel):
    dagId: str
    exists: bool
    paused: bool | None


class ConnectionTest(BaseModel):
    ok: bool
    version: str | None = Field(description="Airflow's version as its API reports it.")
    dags: list[DagCheck] = Field(description="With planId: the plan's DAGs in this Airflow.")
    problems: list[str]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dryRun: bool = Field(False, description="Only say which calls would be made, in order, with their bodies.")
    maxActiveRuns: int | None = Field(
        None, ge=1, le=1000, description="max_active_runs of each Airflow 3 backfill (default: the server's)."
    )
    startedBy: str | None = Field(None, max_length=255, description="Who starts it, for the audit log.")


class PlannedCall(BaseModel):
    level: int
    namespace: str
    dagId: str
    method: str
    url: str
    body: dict[str, Any] | None
    note: str | None = None


class DryRun(BaseModel):
    calls: list[PlannedCall] = Field(description="The calls that would change something in Airflow, in order.")
    manual: list[str] = Field(description="Steps no Airflow task re-runs: Headwater waits for them to be redone.")


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(None, max_length=255, description="Who does it, for the audit log.")
    reason: str | None = Field(None, max_length=2000)


UnitStatus = Literal["pending", "submitting", "running", "done", "failed", "cancelled"]


class ExecutionUnit(BaseModel):
    """One DAG's tasks at one level (or, with no dagId, the level's steps that are redone by hand)."""

    id: str
    level: int
    namespace: str
    dagId: str | None
    connection: str | None
    tasks: list[str]
    logicalDateRanges: list[TimeWindow]
    mode: str | None = Field(description="backfill (Airflow 3, the whole DAG), clear (some tasks) or manual.")
    status: UnitStatus
    airflow: dict[str, Any] = Field(description="What was created in Airflow: backfill ids, cleared ranges.")
    error: str | None
    link: str | None
    steps: list[str]
    stepsDone: int
    submittedAt: datetime | None
    finishedAt: datetime | None
    nextPollAt: datetime | None = Field(description="When Airflow is asked next, lineage not having shown it done.")


class ExecutionLevel(BaseModel):
    level: int
    status: Literal["pending", "running", "done", "failed", "cancelled"]
    units: list[ExecutionUnit]


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    method: str | None
    url: str | None
    request: Any | None
    statusCode: int | None
    response: Any | None
    message: str | None


class Execution(BaseModel):
    planId: str
    status: Literal["running", "paused", "cancelling", "cancelled", "done"]
    startedBy: str
    startedAt: datetime
    updatedAt: datetime
    finishedAt: datetime | None
    reason: str | None = Field(description="Why it is paused or cancelled.")
    link: str | None = Field(description="Where to look: the failed DAG run in Airflow.")
    options: dict[str, Any]
    levels: list[ExecutionLevel]
    audit: list[AuditEntry] = Field(description="Newest last.")
