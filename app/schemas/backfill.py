"""Wire format of backfill impact and plans (Headwater's own API, camelCase like Marquez's)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class NodeRef(BaseModel):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)


class TimeWindow(BaseModel):
    """A half-open interval [start, end) of data time (nominal time / Airflow data interval)."""

    start: datetime
    end: datetime


class BackfillRequest(BaseModel):
    """The root cause, exactly one of: a run; a dataset (a version, a window, or its current version); a job and
    a window. Options narrow the plan."""

    model_config = ConfigDict(extra="forbid")

    runId: uuid.UUID | None = Field(None, description="A run that failed or wrote bad data.")
    dataset: NodeRef | None = Field(None, description="A dataset with bad data.")
    version: uuid.UUID | None = Field(None, description="The bad version of `dataset` (default: its current one).")
    job: NodeRef | None = Field(None, description="A job that wrote bad data between `start` and `end`.")
    start: datetime | None = Field(None, description="Start of the bad window (with `job`, or `dataset`).")
    end: datetime | None = Field(None, description="End of the bad window, exclusive.")
    columns: list[str] | None = Field(
        None, description="Only these columns of the root dataset are bad: column lineage narrows the impact."
    )
    schemaChange: bool = Field(
        False,
        description="The root dataset version dropped or retyped columns: those columns are the bad ones.",
    )
    depth: int = Field(20, ge=0, le=1000, description="Job hops downstream of the root.")
    includeNamespaces: list[str] = Field(default_factory=list, description="Only plan jobs in these namespaces.")
    excludeNamespaces: list[str] = Field(default_factory=list, description="Never plan jobs in these namespaces.")
    includeJobs: list[str] = Field(default_factory=list, description="Only plan jobs whose name matches a glob.")
    excludeJobs: list[str] = Field(default_factory=list, description="Never plan jobs whose name matches a glob.")
    includeRoot: bool = Field(True, description="Re-run the root job itself (run and job roots).")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC, as in events."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _one_root(self) -> BackfillRequest:
        roots = [name for name in ("runId", "dataset", "job") if getattr(self, name) is not None]
        if len(roots) != 1:
            raise ValueError("give exactly one root cause: runId, dataset or job")
        if self.version is not None and self.dataset is None:
            raise ValueError("version needs dataset")
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together")
        if self.job is not None and self.start is None:
            raise ValueError("job needs a window: start and end")
        if self.runId is not None and self.start is not None:
            raise ValueError("a run root has its own window: leave out start and end")
        if self.version is not None and self.start is not None:
            raise ValueError("give a dataset version or a window, not both")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        if (self.columns or self.schemaChange) and self.dataset is None:
            raise ValueError("columns and schemaChange apply to a dataset root")
        return self


class FailedAssertion(BaseModel):
    assertion: str
    column: str | None = None
    runId: str | None = Field(None, description="The run that reported it.")
    job: NodeRef | None = None


class RootCause(BaseModel):
    kind: Literal["run", "dataset", "job"]
    nodeId: str
    description: str
    job: NodeRef | None = None
    dataset: NodeRef | None = None
    runs: list[str] = Field(description="The root runs: the run given, or the job's runs in the window.")
    versions: list[str] = Field(description="The dataset versions the root wrote or named as bad.")
    windows: list[TimeWindow]
    columns: list[str] | None = Field(None, description="The bad columns (null: every column).")
    failedAssertions: list[FailedAssertion] = Field(default_factory=list)


class RunToRedo(BaseModel):
    runId: str
    state: str
    nominalStartTime: datetime | None
    nominalEndTime: datetime | None
    nominalTimeFrom: str | None = Field(
        None,
        description="A run without nominal times of its own (a dbt model, a Spark job under an Airflow task) takes"
        " its nearest ancestor run's: that run's id. Null: its own nominal times (or none).",
    )
    logicalDate: datetime | None = Field(description="Airflow's logical date when the run carries one.")
    startedAt: datetime | None
    endedAt: datetime | None
    reasons: list[str]
    done: bool | None = Field(None, description="Saved plans: a later COMPLETE run redid it.")


class ImpactedInput(BaseModel):
    dataset: NodeRef
    versions: list[str]
    columns: list[str] | None
    windows: list[TimeWindow]


class AirflowTask(BaseModel):
    dagId: str
    taskId: str


class PlanStep(BaseModel):
    """One job to re-run: which runs, why, and the path from the root cause that put it in the plan."""

    level: int = Field(description="Topological level: every step of a level can run in parallel.")
    nodeId: str
    job: NodeRef
    isRoot: bool
    airflow: AirflowTask | None = Field(
        description="The Airflow task whose re-run redoes this step: the job itself, or the task it runs inside."
    )
    rerunThrough: NodeRef | None = Field(
        None, description="The ancestor job (an Airflow task) that re-runs this job, when it runs inside one."
    )
    rerun: str | None = Field(None, description="How this step is redone, in words.")
    owners: list[str]
    path: list[str] = Field(description="Node ids from the root cause to this job.")
    dependsOn: list[str] = Field(description="Steps (job node ids) that must be redone before this one.")
    inputs: list[ImpactedInput] = Field(description="The bad inputs this job read.")
    windows: list[TimeWindow] = Field(description="Data time to redo, merged.")
    runs: list[RunToRedo]
    inCycle: bool = False
    done: bool | None = Field(None, description="Saved plans: every run of the step was redone.")


class ImpactedDataset(BaseModel):
    nodeId: str
    dataset: NodeRef
    versions: list[str]
    columns: list[str] | None
    windows: list[TimeWindow]
    path: list[str]
    owners: list[str]


class AirflowCommands(BaseModel):
    airflow2: list[str] = Field(description="Airflow 2: clear the impacted tasks of the existing DAG runs.")
    airflow2Backfill: list[str] = Field(description="Airflow 2 alternative: backfill the impacted tasks.")
    airflow3: list[str] = Field(description="Airflow 3: a backfill that re-runs the DAG runs.")
    airflow3Api: list[dict[str, Any]] = Field(description="Requests for Airflow 3's REST API (POST /api/v2/backfills).")


class DagGroup(BaseModel):
    """The steps of one Airflow DAG, with the logical dates to redo merged into ranges (inclusive)."""

    namespace: str
    dagId: str
    level: int
    tasks: list[str]
    logicalDateRanges: list[TimeWindow] = Field(description="First and last logical date of each range, inclusive.")
    owners: list[str]
    dependsOn: list[str] = Field(description="DAGs with steps this DAG's steps wait for.")
    commands: AirflowCommands


class Cycle(BaseModel):
    jobs: list[str]


class Totals(BaseModel):
    jobs: int
    runs: int
    dags: int
    datasets: int
    levels: int


class PlanLevel(BaseModel):
    level: int
    steps: list[PlanStep]


class Impact(BaseModel):
    root: RootCause
    jobs: list[PlanStep]
    datasets: list[ImpactedDataset]
    cycles: list[Cycle]
    excluded: list[str] = Field(description="Impacted jobs left out by the namespace/job filters.")
    notImpacted: list[str] = Field(description="Downstream jobs cleared by column lineage: they use no bad column.")
    totals: Totals


class BackfillPlan(Impact):
    levels: list[PlanLevel]
    dags: list[DagGroup]


class PlanProgress(BaseModel):
    status: Literal["open", "in_progress", "done"]
    stepsDone: int
    steps: int
    runsDone: int
    runs: int


class SavedPlanSummary(BaseModel):
    id: str
    name: str | None
    createdAt: datetime
    root: RootCause
    totals: Totals
    progress: PlanProgress


class SavedPlan(BackfillPlan):
    id: str
    name: str | None
    createdAt: datetime
    request: BackfillRequest
    progress: PlanProgress


class SavePlanRequest(BackfillRequest):
    name: str | None = Field(None, max_length=255, description="A label for the plan.")


class SavedPlanList(BaseModel):
    plans: list[SavedPlanSummary]
    totalCount: int
