"""Wire format of recent failures (Headwater's own API; the UI's home page reads it)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas.marquez import JobId, Run


class FailedRun(BaseModel):
    job: JobId
    run: Run


class FailedRunList(BaseModel):
    failures: list[FailedRun] = Field(description="Failed runs, the most recently ended first.")
