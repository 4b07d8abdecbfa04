"""Background jobs: poll one's status, progress, result or error (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from looplab.api.deps import CurrentUser, StoreDep
from looplab.api.schemas import MAX_ID, JobOut
from looplab.collect import imports
from looplab.core import jobs
from looplab.govern import access

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


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
