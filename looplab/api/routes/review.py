"""Review: the queue of suspect labels and its decisions, the record browser, record history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query

from looplab.api.deps import CurrentUser, StoreDep
from looplab.api.review_schemas import (
    BrowsePage,
    DecisionIn,
    QualityOut,
    RecordHistory,
    ReviewItemOut,
    ReviewPage,
)
from looplab.api.schemas import MAX_ID, JobQueued
from looplab.core import jobs, projects
from looplab.govern import access, browse, records
from looplab.trust import review

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["review"])

Id = Annotated[int, Path(ge=0, le=MAX_ID)]


@router.get("/review", response_model=ReviewPage)
def review_queue(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    status: Literal["open", "kept", "relabeled", "ambiguous"] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ReviewPage:
    """The project's review items of ``status``, most suspect first."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "annotation.review")
        rows, total = review.list_items(session, project, status=status, limit=limit, offset=offset)
        return ReviewPage(items=[ReviewItemOut.model_validate(r) for r in rows], total=total)


@router.post("/review/{item_id}", response_model=ReviewItemOut)
def decide(
    name: str,
    item_id: Id,
    body: Annotated[DecisionIn, Body()],
    user: CurrentUser,
    store: StoreDep,
) -> ReviewItemOut:
    """Keep the given label, relabel the record, or mark it ambiguous (audited)."""
    with store.write() as session:
        project = projects.get_project(session, name)
        item = review.get_item(session, project, item_id, for_update=True)
        access.authorize(user, "annotation.review")
        label = getattr(body, "label", None)
        done = review.decide(session, project, user, item, body.decision, label)
        return ReviewItemOut.model_validate(done)


@router.get("/quality", response_model=QualityOut)
def quality(name: str, user: CurrentUser, store: StoreDep) -> QualityOut:
    """The last label-error scan and reviewers' confirm rate (its measured precision)."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "annotation.review")
        return QualityOut.model_validate(review.summary(session, project))


@router.post("/quality/scan", response_model=JobQueued, status_code=202)
def scan(name: str, user: CurrentUser, store: StoreDep) -> JobQueued:
    """Queue a label-error scan; a worker runs it (poll ``GET .../quality``)."""
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "labels.scan")
        job = jobs.enqueue(session, review.SCAN_KIND, project_id=project.id)
        return JobQueued(id=job.id, kind=job.kind, status=job.status)


@router.get("/records/{record_id}/history", response_model=RecordHistory)
def record_history(name: str, record_id: Id, user: CurrentUser, store: StoreDep) -> RecordHistory:
    """Every answer the record got (who, when, origin, status, the versions it taught)."""
    with store.read() as session:
        project = projects.get_project(session, name)
        projects.get_record(session, project, record_id)
        access.authorize(user, "record.read")
        return RecordHistory.model_validate(records.history(session, project, record_id))


@router.get("/browse", response_model=BrowsePage)
def browse_records(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in the record or its metadata.")
    ] = None,
    label: str | None = None,
    annotator: str | None = None,
    split: Literal["train", "test"] | None = None,
    disagreement: bool = False,
    flagged: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> BrowsePage:
    """Search and filter the project's records, a page at a time."""
    # An empty filter (a form's blank field) filters nothing.
    filters = browse.Filters(
        q or None, label or None, annotator or None, split, disagreement, flagged
    )
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "record.read")
        items, total = browse.search(session, project, filters, limit=limit, offset=offset)
        return BrowsePage.model_validate({"items": items, "total": total})
