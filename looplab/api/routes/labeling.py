"""The annotator's loop: next record, answer, skip, go back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from looplab.api.deps import CurrentUser, SettingsDep, StoreDep
from looplab.api.schemas import (
    AnnotationIn,
    AnnotationOut,
    QueueItem,
    RecordOut,
    RowId,
    SkipIn,
    Suggestion,
)
from looplab.ask import gold, queue, suggestions
from looplab.core import projects
from looplab.core.errors import NotFound
from looplab.govern import access

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["labeling"])


@router.get("/queue/next", response_model=QueueItem)
def next_record(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    exclude: Annotated[
        list[RowId] | None, Query(description="Record ids already on screen.")
    ] = None,
) -> QueueItem:
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "queue.next")
        record = queue.next_record(
            session, project, user, lease_seconds=settings.lease_seconds, exclude=exclude
        )
        if record is None:
            return QueueItem(record=None)
        suggestion, note = suggestions.suggestion_for(session, project, record)
        # A gold record is shown as any open record is (looplab.ask.gold).
        shown = gold.as_handed(session, record)
        return QueueItem(
            record=RecordOut(**shown),
            suggestion=Suggestion(**suggestion) if suggestion else None,
            suggestion_note=note,
            source=suggestions.source_of(session, record) if shown["batch_id"] else None,
        )


@router.post("/annotations", response_model=AnnotationOut, status_code=201)
def annotate(name: str, body: AnnotationIn, user: CurrentUser, store: StoreDep) -> AnnotationOut:
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "annotation.create")
        annotation = queue.annotate(
            session, project, user, body.record_id, body.label, seconds=body.seconds
        )
        return AnnotationOut.model_validate(annotation)


@router.post("/queue/skip", response_model=AnnotationOut, status_code=201)
def skip(name: str, body: SkipIn, user: CurrentUser, store: StoreDep) -> AnnotationOut:
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "annotation.create")
        return AnnotationOut.model_validate(queue.skip(session, project, user, body.record_id))


@router.get("/annotations/last", response_model=AnnotationOut)
def last(name: str, user: CurrentUser, store: StoreDep) -> AnnotationOut:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        annotation = queue.last_answered(session, project, user)
        if annotation is None:
            raise NotFound("you have not answered anything in this project yet")
        return AnnotationOut.model_validate(annotation)
