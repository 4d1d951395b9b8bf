"""Response and request bodies of the Marquez REST API, with Marquez's exact field names.

Marquez keeps null fields in its responses and writes timestamps as ISO-8601 in UTC; pydantic does both.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.openlineage import NonEmptyStr as Name


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Namespace(_Wire):
    name: str
    createdAt: datetime
    updatedAt: datetime
    ownerName: str
    description: str | None
    isHidden: bool


class NamespaceList(_Wire):
    namespaces: list[Namespace]


class CreatedNamespace(_Wire):
    ownerName: str = Field(min_length=1, max_length=255)
    description: str | None = None


class Source(_Wire):
    type: str
    name: str
    createdAt: datetime
    updatedAt: datetime
    connectionUrl: str
    description: str | None


class SourceList(_Wire):
    sources: list[Source]


class CreatedSource(_Wire):
    type: str = Field(min_length=1, max_length=64)
    connectionUrl: str
    description: str | None = None


class DatasetId(_Wire):
    namespace: Name
    name: Name


class DatasetField(_Wire):
    name: str
    type: str | None
    tags: list[str]
    description: str | None


class ColumnLineageInputField(_Wire):
    namespace: str
    dataset: str
    field: str
    transformationDescription: str | None
    transformationType: str | None


class ColumnLineage(_Wire):
    name: str
    inputFields: list[ColumnLineageInputField]
    transformationDescription: str | None
    transformationType: str | None


class Dataset(_Wire):
    id: DatasetId
    type: str
    name: str
    physicalName: str
    createdAt: datetime
    updatedAt: datetime
    namespace: str
    sourceName: str | None
    fields: list[DatasetField]
    tags: list[str]
    lastModifiedAt: datetime | None
    lastLifecycleState: str | None
    description: str | None
    currentVersion: str | None
    columnLineage: list[ColumnLineage] | None
    facets: dict
    deleted: bool


class DatasetList(_Wire):
    datasets: list[Dataset]
    totalCount: int


class DatasetVersionId(_Wire):
    namespace: str
    name: str
    version: str


class JobVersionId(_Wire):
    namespace: str
    name: str
    version: str


class RunDatasetVersion(_Wire):
    datasetVersionId: DatasetVersionId
    facets: dict


class Run(_Wire):
    id: str
    createdAt: datetime
    updatedAt: datetime
    nominalStartTime: datetime | None
    nominalEndTime: datetime | None
    state: str
    startedAt: datetime | None
    endedAt: datetime | None
    durationMs: int | None
    args: dict[str, str]
    jobVersion: JobVersionId | None
    inputDatasetVersions: list[RunDatasetVersion]
    outputDatasetVersions: list[RunDatasetVersion]
    facets: dict


class RunList(_Wire):
    runs: list[Run]
    totalCount: int


class RunFacetsResponse(_Wire):
    runId: str
    facets: dict


class DatasetVersion(_Wire):
    id: DatasetVersionId
    type: str
    name: str
    physicalName: str
    createdAt: datetime
    version: str
    namespace: str
    sourceName: str | None
    fields: list[DatasetField]
    tags: list[str]
    lifecycleState: str | None
    description: str | None
    currentSchemaVersion: str | None
    createdByRun: Run | None
    facets: dict


class DatasetVersionList(_Wire):
    versions: list[DatasetVersion]
    totalCount: int


class JobId(_Wire):
    namespace: str
    name: str


class Job(_Wire):
    id: JobId
    type: str
    name: str
    simpleName: str
    parentJobName: str | None
    parentJobUuid: str | None
    parentJobNamespace: str | None = Field(
        None, description="Headwater's addition: the parent job's namespace (a dbt job's Airflow task is elsewhere)."
    )
    createdAt: datetime
    updatedAt: datetime
    namespace: str
    inputs: list[DatasetId]
    outputs: list[DatasetId]
    location: str | None
    description: str | None
    latestRun: Run | None
    latestRuns: list[Run]
    facets: dict
    currentVersion: str | None
    labels: list[str]
    tags: list[str]


class JobList(_Wire):
    jobs: list[Job]
    totalCount: int


class JobVersion(_Wire):
    id: JobVersionId
    name: str
    createdAt: datetime
    version: str
    namespace: str
    location: str | None
    inputs: list[DatasetId]
    outputs: list[DatasetId]
    latestRun: Run | None


class JobVersionList(_Wire):
    versions: list[JobVersion]


class LineageEventList(_Wire):
    events: list[dict]
    totalCount: int


class Tag(_Wire):
    name: str
    description: str | None


class TagList(_Wire):
    tags: list[Tag]


class CreatedTag(_Wire):
    description: str | None = None


class CreatedField(_Wire):
    name: Name
    type: str | None = None
    tags: list[Name] = []
    description: str | None = None


class CreatedDataset(_Wire):
    """Body of the deprecated PUT dataset: Marquez's DbTable or Stream."""

    type: Literal["DB_TABLE", "STREAM"]
    physicalName: str = Field(min_length=1, max_length=1024)
    sourceName: Name
    fields: list[CreatedField] = []
    tags: list[Name] = []
    description: str | None = None
    runId: str | None = None
    schemaLocation: str | None = None


class CreatedJob(_Wire):
    type: Literal["BATCH", "STREAM", "SERVICE"]
    inputs: list[DatasetId]
    outputs: list[DatasetId]
    location: str | None = None
    description: str | None = None
    context: dict[str, str] | None = None
    runId: str | None = None


class CreatedRun(_Wire):
    id: uuid.UUID | None = None
    nominalStartTime: datetime | None = None
    nominalEndTime: datetime | None = None
    args: dict[str, str] = {}


class GraphEdge(_Wire):
    origin: str
    destination: str


class GraphNode(_Wire):
    id: str
    type: Literal["DATASET", "JOB", "DATASET_FIELD"]
    data: dict
    inEdges: list[GraphEdge]
    outEdges: list[GraphEdge]


class LineageGraph(_Wire):
    graph: list[GraphNode]
    # Headwater: true when the node cap stopped the walk before the requested depth.
    truncated: bool = False


class UpstreamRunJob(_Wire):
    namespace: str
    name: str
    version: str | None


class UpstreamRunInfo(_Wire):
    id: str
    start: datetime | None
    end: datetime | None
    status: str


class UpstreamRunInput(_Wire):
    namespace: str
    name: str
    version: str
    producedByRunId: str | None


class UpstreamRun(_Wire):
    job: UpstreamRunJob
    run: UpstreamRunInfo
    inputs: list[UpstreamRunInput]


class UpstreamRunLineage(_Wire):
    runs: list[UpstreamRun]


class SearchResult(_Wire):
    type: Literal["DATASET", "JOB"]
    name: str
    updatedAt: datetime
    namespace: str
    nodeId: str


class SearchResultList(_Wire):
    totalCount: int
    results: list[SearchResult]
