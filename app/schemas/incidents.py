"""Wire format of incidents, webhook subscriptions and deliveries (Headwater's own API, camelCase)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.backfill import AirflowTask, NodeRef

IncidentKind = Literal["run_failed", "data_quality", "late", "schema_change", "backfill_failed"]
IncidentStatus = Literal["open", "resolved"]
INCIDENT_KINDS: tuple[str, ...] = ("run_failed", "data_quality", "late", "schema_change", "backfill_failed")


class AssertionResult(BaseModel):
    assertion: str
    column: str | None = None
    success: bool


class BrokenRule(BaseModel):
    """A `dataQualityMetrics` value outside a configured bound."""

    metric: str
    column: str | None = None
    value: float
    min: float | None = None
    max: float | None = None


class ChangedColumn(BaseModel):
    name: str
    before: str | None = Field(description="Type in the previous version.")
    after: str | None = Field(description="Type in the new version; null when the column was dropped.")


class DownstreamColumns(BaseModel):
    """Columns of a downstream dataset that column lineage derives from the changed columns."""

    nodeId: str
    dataset: NodeRef
    columns: list[str]


class IncidentDetails(BaseModel):
    """What was observed; the fields of the incident's kind are set, the others are null."""

    state: str | None = Field(None, description="run_failed: FAILED or ABORTED.")
    errorMessage: str | None = Field(None, description="run_failed: the run's errorMessage facet.")
    failedAssertions: list[AssertionResult] | None = Field(None, description="data_quality: failed assertions.")
    brokenRules: list[BrokenRule] | None = Field(None, description="data_quality: metrics outside configured rules.")
    reportedBy: NodeRef | None = Field(None, description="data_quality: the job whose run reported it.")
    changedColumns: list[ChangedColumn] | None = Field(None, description="schema_change: dropped or retyped.")
    downstreamColumns: list[DownstreamColumns] | None = Field(
        None, description="schema_change: downstream columns derived from the changed ones."
    )
    cadenceSeconds: float | None = Field(None, description="late: the job's learned cadence.")
    lastCompletedAt: datetime | None = Field(None, description="late: when its last run completed.")
    expectedBy: datetime | None = Field(None, description="late: cadence plus tolerance after that.")
    lateDatasets: list[NodeRef] | None = Field(None, description="late: the datasets the job writes.")
    planId: str | None = Field(None, description="backfill_failed: the saved plan Headwater was running.")
    dagId: str | None = Field(None, description="backfill_failed: the DAG whose re-run failed.")
    reason: str | None = Field(None, description="backfill_failed: what failed.")
    link: str | None = Field(None, description="backfill_failed: the failed DAG run in Airflow.")


class ImpactedJobSummary(BaseModel):
    nodeId: str
    job: NodeRef
    owners: list[str]
    airflow: AirflowTask | None


class ImpactedDatasetSummary(BaseModel):
    nodeId: str
    dataset: NodeRef
    owners: list[str]
    columns: list[str] | None = Field(description="The bad columns (null: every column).")


class DagRef(BaseModel):
    namespace: str
    dagId: str


class ImpactTotals(BaseModel):
    jobs: int
    datasets: int
    dags: int
    owners: int


class IncidentImpact(BaseModel):
    """Downstream of the incident, from the backfill module's impact computation."""

    jobs: list[ImpactedJobSummary]
    datasets: list[ImpactedDatasetSummary]
    dags: list[DagRef]
    owners: list[str] = Field(description="Owners of the impacted jobs and datasets.")
    subjectOwners: list[str] = Field(description="Owners of the job the incident is about.")
    totals: ImpactTotals
    error: str | None = Field(None, description="Why the impact could not be computed, if it could not.")


class BackfillPreviewRequest(BaseModel):
    method: Literal["POST"] = "POST"
    path: str = "/api/v1/backfills/preview"
    body: dict[str, Any] = Field(description="A BackfillRequest: post it to plan the repair.")


class BackfillLink(BaseModel):
    preview: BackfillPreviewRequest
    url: str = Field(description="The backfill page, prefilled.")


class Incident(BaseModel):
    id: str
    kind: IncidentKind
    status: IncidentStatus
    title: str
    namespace: str
    job: NodeRef | None
    dataset: NodeRef | None
    runId: str | None
    datasetVersion: str | None
    details: IncidentDetails
    impact: IncidentImpact | None = Field(description="Null until computed (the worker does, shortly after).")
    backfill: BackfillLink
    occurrences: int = Field(description="How often it was seen while open (e.g. repeated failures).")
    openedAt: datetime
    updatedAt: datetime
    resolvedAt: datetime | None
    resolution: str | None


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=1024, description="Why (shown as the incident's resolution).")


class IncidentList(BaseModel):
    incidents: list[Incident]
    totalCount: int


# --- subscriptions -----------------------------------------------------------------------------------------


class SubscriptionRequest(BaseModel):
    """Who to call, and for what: incidents about, or impacting, these namespaces, jobs, datasets or owners."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=4096, description="http(s) URL that receives the JSON POSTs.")
    secret: str | None = Field(
        None,
        min_length=8,
        max_length=1024,
        description="Signing secret, preferably `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks: "
        "the `webhook-signature` header); write-only. On PUT, leave out to keep the current one.",
    )
    description: str | None = Field(None, max_length=1024)
    namespaces: list[str] = Field(default_factory=list)
    jobs: list[NodeRef] = Field(default_factory=list)
    datasets: list[NodeRef] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list, description="Owners from `ownership` facets or Airflow DAGs.")
    kinds: list[IncidentKind] = Field(default_factory=list, description="Only these kinds (default: all).")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: str | None) -> str | None:
        # A whsec_ secret is what Standard Webhooks libraries take: check it decodes, as they will.
        if value is not None and value.startswith("whsec_"):
            try:
                key = base64.b64decode(value[len("whsec_") :], validate=True)
            except ValueError:
                raise ValueError("a whsec_ secret must be whsec_ followed by base64") from None
            if not 24 <= len(key) <= 64:
                raise ValueError(f"a whsec_ secret must encode 24 to 64 bytes, not {len(key)}")
        return value

    @model_validator(mode="after")
    def _selects_something(self) -> SubscriptionRequest:
        if not (self.namespaces or self.jobs or self.datasets or self.owners):
            raise ValueError("subscribe to at least one of namespaces, jobs, datasets, owners")
        return self


class Subscription(BaseModel):
    id: str
    url: str
    hasSecret: bool = Field(description="Deliveries are signed (the secret itself is never returned).")
    description: str | None
    namespaces: list[str]
    jobs: list[NodeRef]
    datasets: list[NodeRef]
    owners: list[str]
    kinds: list[IncidentKind]
    createdAt: datetime
    updatedAt: datetime


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]
    totalCount: int


class DeliveryAttempt(BaseModel):
    at: datetime
    statusCode: int | None
    error: str | None


class Delivery(BaseModel):
    id: str
    subscriptionId: str
    incidentId: str
    event: Literal["incident.opened", "incident.resolved"]
    status: Literal["pending", "delivered", "failed", "superseded"] = Field(
        description="superseded: an `incident.opened` still waiting for a retry when the incident resolved; "
        "the `incident.resolved` delivery is sent instead (deliveries of one incident never overtake each other)."
    )
    attempts: int
    lastStatusCode: int | None
    lastError: str | None
    history: list[DeliveryAttempt]
    createdAt: datetime
    nextAttemptAt: datetime | None = Field(description="When the next attempt is due (pending only).")
    deliveredAt: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    totalCount: int
