"""``/api/core/jobs``: jobs, manual runs and run history, for admins. Thin over the service."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from platform_core import requires_scopes
from platform_core.auth.deps import get_context
from platform_core.http import IdPath
from platform_core.jobs import service
from platform_core.jobs.schemas import JobOut, JobRunOut, RunState
from platform_core.types import Line

router = APIRouter()
ADMIN = requires_scopes("core:admin")
JobName = Annotated[Line, Path(max_length=200, description="<plugin>.<job>")]


@router.get("/jobs", response_model=list[JobOut], openapi_extra=ADMIN)
async def list_jobs(request: Request) -> list[JobOut]:
    """Every job of the active plugins, with its schedule, next run and last state."""
    ctx = get_context(request)
    return [JobOut(**dataclasses.asdict(j)) for j in await service.overview(ctx)]


@router.get("/jobs/runs", response_model=list[JobRunOut], openapi_extra=ADMIN)
async def list_runs(
    request: Request,
    job: Annotated[Line | None, Query(max_length=200, description="<plugin>.<job>")] = None,
    state: RunState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[JobRunOut]:
    """Run history, newest first: one entry per attempt."""
    runs = await service.list_runs(get_context(request), job=job, state=state, limit=limit)
    return [JobRunOut.model_validate(r) for r in runs]


@router.get("/jobs/runs/{run_id}", response_model=JobRunOut, openapi_extra=ADMIN)
async def get_run(run_id: IdPath, request: Request) -> JobRunOut:
    """One attempt of a run."""
    return JobRunOut.model_validate(await service.get_run(get_context(request), run_id))


@router.post(
    "/jobs/{name}/run",
    response_model=JobRunOut,
    status_code=202,
    openapi_extra=ADMIN,
)
async def run_job(name: JobName, request: Request) -> JobRunOut:
    """Enqueue a run of the job now (404 for an unknown job); a runner picks it up."""
    run = await service.enqueue(get_context(request), name, trigger="manual")
    return JobRunOut.model_validate(run)
