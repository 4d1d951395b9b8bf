"""Incoming OpenLineage events (spec 2-0-2): strict about what the model needs, permissive about the rest.

Clients drop an event for good when it gets a 4xx, so the only things rejected are those that cannot be
stored: a missing job name or namespace, a run id that is no UUID, a timestamp that is not a timestamp, a
field of the wrong JSON type. Unknown fields and facets are kept verbatim (``extra="allow"``; facets are
free-form dicts).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, field_validator, model_validator

_ISO_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?P<fraction>[.,]\d+)?"
    r"(?P<zone>Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 as producers really send it: nanoseconds (truncated to µs), ``Z`` or an offset, or no zone
    at all (read as UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        match = _ISO_TIMESTAMP.match(value.strip())
        if not match:
            raise ValueError("must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00.000Z")
        fraction = (match["fraction"] or "")[1:7]
        zone = match["zone"] or ""
        if zone in ("Z", "z"):
            zone = "+00:00"
        elif len(zone) == 3:
            zone += ":00"
        elif len(zone) == 5:
            zone = zone[:3] + ":" + zone[3:]
        text = f"{match['date']}T{match['time']}{'.' + fraction.ljust(6, '0') if fraction else ''}{zone}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"is not a valid date-time: {exc}") from None
    else:
        raise ValueError("must be an ISO-8601 date-time string")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _none_as_empty_dict(value: Any) -> Any:
    return {} if value is None else value


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


# Names are indexed; 1024 characters is what Marquez allows too.
NonEmptyStr = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
Facets = Annotated[dict[str, Any], BeforeValidator(_none_as_empty_dict)]


class _Permissive(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Dataset(_Permissive):
    namespace: NonEmptyStr
    name: NonEmptyStr
    facets: Facets = {}


class InputDataset(Dataset):
    inputFacets: Facets = {}


class OutputDataset(Dataset):
    outputFacets: Facets = {}


class Job(_Permissive):
    namespace: NonEmptyStr
    name: NonEmptyStr
    facets: Facets = {}


class Run(_Permissive):
    runId: str
    facets: Facets = {}

    @field_validator("runId")
    @classmethod
    def _must_be_uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("must be a UUID (RFC 4122 text form)") from None
        return value

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.runId)


Inputs = Annotated[list[InputDataset], BeforeValidator(_none_as_empty_list)]
Outputs = Annotated[list[OutputDataset], BeforeValidator(_none_as_empty_list)]


# The fields that tell the kinds apart. Sent on a kind that has no such field, one is an unknown field like any
# other: kept in the stored payload, never read as the event's own (a RunEvent's stray "dataset" is no dataset).
_KIND_FIELDS = frozenset({"run", "job", "dataset"})


class _BaseEvent(_Permissive):
    eventTime: Timestamp
    producer: str | None = None
    schemaURL: str | None = None

    @model_validator(mode="after")
    def _other_kinds_fields_are_not_read(self):
        for name in _KIND_FIELDS & (self.__pydantic_extra__ or {}).keys():
            del self.__pydantic_extra__[name]
        return self


class RunEvent(_BaseEvent):
    KIND: ClassVar[str] = "RUN_EVENT"
    eventType: str | None = None
    run: Run
    job: Job
    inputs: Inputs = []
    outputs: Outputs = []


class DatasetEvent(_BaseEvent):
    KIND: ClassVar[str] = "DATASET_EVENT"
    # Not in the spec for this kind, but when sent it is read (and stored) as for the others: a string.
    eventType: str | None = None
    dataset: Dataset


class JobEvent(_BaseEvent):
    KIND: ClassVar[str] = "JOB_EVENT"
    eventType: str | None = None
    job: Job
    inputs: Inputs = []
    outputs: Outputs = []


LineageEvent = RunEvent | DatasetEvent | JobEvent


def event_class_for(payload: dict[str, Any]) -> type[LineageEvent] | None:
    """Tell the event kinds apart by structure, as the spec's ``oneOf`` does (not by ``schemaURL``)."""
    if "run" in payload:
        return RunEvent
    if "dataset" in payload:
        return DatasetEvent
    if "job" in payload:
        return JobEvent
    return None


# --- POST /api/v1/lineage/batch (the OpenLineage OpenAPI document's postEventBatch answer) -----------------


class BatchSummary(BaseModel):
    received: int
    successful: int
    failed: int
    retriable: int
    non_retriable: int


class FailedEvent(BaseModel):
    index: int  # position in the posted array
    reason: str
    retriable: bool


class BatchResult(BaseModel):
    status: str  # "success" | "partial_success", as the spec names them
    summary: BatchSummary
    failed_events: list[FailedEvent]
