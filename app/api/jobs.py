"""Jobs (Marquez API)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.errors import ApiError
from app.api.pagination import PageParams
from app.api.paths import WrittenName
from app.schemas.marquez import CreatedJob, CreatedRun, Job, JobList, JobVersion, JobVersionList, Run, RunList
from app.services import jobs, legacy

router = APIRouter(prefix="/api/v1", tags=["jobs"])


async def _last_run_states(
    lastRunStates: Annotated[
        list[str] | None, Query(description="Only jobs whose latest run is in these states.")
    ] = None,
) -> list[str]:
    states = [s.upper() for s in lastRunStates or []]
    unknown = [s for s in states if s not in jobs.RUN_STATES]
    if unknown:
        raise ApiError(
            400, f"lastRunStates: unknown run state(s) {', '.join(unknown)}; use {', '.join(sorted(jobs.RUN_STATES))}"
        )
    return states


StatesParam = Annotated[list[str], Depends(_last_run_states)]


@router.get("/jobs", response_model=JobList, summary="List jobs of every namespace")
def list_all_jobs(engine: EngineDep, page: PageParams, states: StatesParam) -> JobList:
    found, total = jobs.list_jobs(engine, None, limit=page.limit, offset=page.offset, last_run_states=states)
    return JobList(jobs=found, totalCount=total)


@router.get("/namespaces/{namespace:name}/jobs", response_model=JobList, summary="List a namespace's jobs")
def list_jobs(namespace: str, engine: EngineDep, page: PageParams, states: StatesParam) -> JobList:
    found, total = jobs.list_jobs(engine, namespace, limit=page.limit, offset=page.offset, last_run_states=states)
    return JobList(jobs=found, totalCount=total)


@router.get("/namespaces/{namespace:name}/jobs/{job:name}", response_model=Job, summary="Get a job")
def get_job(namespace: str, job: str, engine: EngineDep) -> Job:
    return jobs.get_job(engine, namespace, job)


@router.delete(
    "/namespaces/{namespace:name}/jobs/{job:name}",
    response_model=Job,
    summary="Soft-delete a job (hidden until an event names it again)",
    dependencies=[Depends(require_write_key)],
)
def delete_job(namespace: str, job: str, engine: EngineDep) -> Job:
    return jobs.delete_job(engine, namespace, job)


@router.get(
    "/namespaces/{namespace:name}/jobs/{job:name}/children",
    response_model=JobList,
    summary="List the jobs that run inside a job (Headwater: an Airflow DAG's tasks, the dbt or Spark jobs of a task)",
)
def list_job_children(namespace: str, job: str, engine: EngineDep, page: PageParams) -> JobList:
    found, total = jobs.list_children(engine, namespace, job, limit=page.limit, offset=page.offset)
    return JobList(jobs=found, totalCount=total)


@router.get("/namespaces/{namespace:name}/jobs/{job:name}/runs", response_model=RunList, summary="List a job's runs")
def list_job_runs(namespace: str, job: str, engine: EngineDep, page: PageParams) -> RunList:
    found, total = jobs.list_job_runs(engine, namespace, job, limit=page.limit, offset=page.offset)
    return RunList(runs=found, totalCount=total)


@router.get(
    "/namespaces/{namespace:name}/jobs/{job:name}/versions",
    response_model=JobVersionList,
    summary="List a job's versions",
)
def list_job_versions(namespace: str, job: str, engine: EngineDep, page: PageParams) -> JobVersionList:
    return JobVersionList(versions=jobs.list_job_versions(engine, namespace, job, limit=page.limit, offset=page.offset))


@router.get(
    "/namespaces/{namespace:name}/jobs/{job:name}/versions/{version}",
    response_model=JobVersion,
    summary="Get a job version",
)
def get_job_version(namespace: str, job: str, version: uuid.UUID, engine: EngineDep) -> JobVersion:
    return jobs.get_job_version(engine, namespace, job, version)


@router.post(
    "/namespaces/{namespace:name}/jobs/{job:name}/tags/{tag:name}",
    response_model=Job,
    summary="Tag a job",
    dependencies=[Depends(require_write_key)],
)
def tag_job(namespace: str, job: str, tag: str, engine: EngineDep) -> Job:
    return jobs.set_job_tag(engine, namespace, job, tag, present=True)


@router.delete(
    "/namespaces/{namespace:name}/jobs/{job:name}/tags/{tag:name}",
    response_model=Job,
    summary="Untag a job",
    dependencies=[Depends(require_write_key)],
)
def untag_job(namespace: str, job: str, tag: str, engine: EngineDep) -> Job:
    return jobs.set_job_tag(engine, namespace, job, tag, present=False)


@router.put(
    "/namespaces/{namespace:name}/jobs/{job:name}",
    response_model=Job,
    summary="Create or update a job with its inputs and outputs (deprecated in Marquez: use OpenLineage)",
    dependencies=[Depends(require_write_key)],
)
def put_job(namespace: WrittenName, job: WrittenName, body: CreatedJob, engine: EngineDep) -> Job:
    return legacy.put_job(engine, namespace, job, body)


@router.post(
    "/namespaces/{namespace:name}/jobs/{job:name}/runs",
    response_model=Run,
    status_code=201,
    summary="Create a run in state NEW (deprecated in Marquez: use OpenLineage)",
    dependencies=[Depends(require_write_key)],
)
def create_run(namespace: str, job: str, body: CreatedRun, engine: EngineDep, response: Response) -> Run:
    run = legacy.create_run(engine, namespace, job, body)
    response.headers["Location"] = f"/api/v1/jobs/runs/{run.id}"
    return run
