"""Background jobs: poll one's status, progress, result or error; list a project's (admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from looplab.api.deps import CurrentUser, ProjectName, StoreDep
from looplab.api.schemas import MAX_ID, JobOut
from looplab.collect import imports
from looplab.core import jobs, projects
from looplab.govern import access

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
project_router = APIRouter(prefix="/api/v1/projects", tags=["jobs"])


@router.get(
    "/{job_id}",
    response_model=JobOut,
)
def get_job(
    job_id: Annotated[int, Path(ge=0, le=MAX_ID)], user: CurrentUser, store: StoreDep
) -> JobOut:
    """A job's status (queued, running, done, failed), progress, result or error."""
    access.authorize(user, "job.read")
    with store.read() as session:
        job, project = jobs.get_job(session, job_id)
        return JobOut(**imports.view(store, job, project))


@project_router.get("/{name}/jobs", response_model=list[JobOut])
def list_jobs(
    name: ProjectName,
    user: CurrentUser,
    store: StoreDep,
    status: Literal["queued", "running", "done", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[JobOut]:
    """The project's jobs, newest first: who runs them, their progress and heartbeat."""
    access.authorize(user, "job.read")
    with store.read() as session:
        project = projects.get_project(session, name)
        found = jobs.list_jobs(session, project.id, status=status, limit=limit)
        return [JobOut(**imports.view(store, job, project.name)) for job in found]
