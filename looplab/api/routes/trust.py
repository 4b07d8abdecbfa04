"""Trust over HTTP: gold files, agreement, annotators, and quarantine decisions (reviewers).

Each handler loads the project (404), authorizes (403), and calls the service of
:mod:`looplab.trust`, which audits what it writes; ``looplab gold``, ``agreement``,
``annotators``, ``quarantine`` and ``release`` call the same services.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from looplab.api.deps import CurrentUser, ProjectName, SettingsDep, StoreDep
from looplab.api.responses import errors
from looplab.api.routes.transfer import receive_upload
from looplab.api.trust_schemas import (
    AgreementOut,
    AnnotatorsOut,
    CheckOut,
    DecisionIn,
    DecisionOut,
    GoldImportOut,
)
from looplab.collect import imports
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import User
from looplab.govern import access

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["trust"])

_GOLD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The gold file's bytes (CSV, JSONL or Parquet), as sent.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _import_gold(
    store: Store, name: str, path: Path, user: User, mapping: dict[str, Any]
) -> GoldImportOut:
    from looplab.trust import goldfile

    with store.write() as session:
        project = projects.get_project(session, name)
        report = goldfile.import_gold(session, project, path, actor=user.name, **mapping)
        return GoldImportOut(**report)


@router.post(
    "/gold",
    response_model=GoldImportOut,
    status_code=201,
    openapi_extra=_GOLD_BODY,
    responses=errors(413),
)
async def import_gold(
    name: ProjectName,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    filename: Annotated[
        str,
        Query(min_length=1, max_length=255, description="The file's name (its extension: format)."),
    ],
    label: Annotated[str, Query(min_length=1, description="Column of the known answers.")],
    text: Annotated[str | None, Query(description="Column holding the text (text tasks).")] = None,
    fields: Annotated[
        str | None, Query(description="Input columns, comma-separated (tabular).")
    ] = None,
    encoding: Annotated[str, Query(max_length=40)] = "utf-8",
) -> GoldImportOut:
    """Gold records (known answers), as `looplab gold` reads them; all or nothing (201)."""
    access.authorize(user, "gold.import")
    path = imports.upload_path(settings, filename)
    try:
        if await receive_upload(request, path, settings.upload_max_bytes) == 0:
            raise Invalid(
                "the request body is empty: send the file's bytes as the body",
                details={"field": "body"},
            )
        columns = [c.strip() for c in (fields or "").split(",") if c.strip()] or None
        mapping = {"label": label, "text": text, "fields": columns, "encoding": encoding}
        mapping["source"] = filename
        return await run_in_threadpool(_import_gold, store, name, path, user, mapping)
    finally:
        imports.discard(path)


@router.get("/agreement", response_model=AgreementOut)
def agreement(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    by: Annotated[
        Literal["day", "week", "month"], Query(description="Time batches of alpha over time.")
    ] = "week",
    min_shared: Annotated[int, Query(ge=2, le=10**6)] = 20,
) -> AgreementOut:
    """Krippendorff's alpha overall, per label and per batch; Cohen's kappa per pair."""
    from looplab.trust import agreement_report

    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "trust.read")
        found = agreement_report.agreement(session, project, by=by, min_shared=min_shared)
    return AgreementOut(**found)


@router.get("/annotators", response_model=AnnotatorsOut)
def annotators(name: str, user: CurrentUser, store: StoreDep) -> AnnotatorsOut:
    """Per person: labels, s/label, gold accuracy, estimated accuracy, confusion, flags, status."""
    from looplab.trust import annotators as evidence

    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "trust.read")
        return AnnotatorsOut(**evidence.report(session, project))


@router.post("/annotators/check", response_model=CheckOut)
def check(name: str, user: CurrentUser, store: StoreDep) -> CheckOut:
    """Run the reliability check now: flags, and quarantines under `quarantine_policy=auto`;
    then the `agreement_below` trigger rules."""
    from looplab.watch import trust_triggers

    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "annotator.decide")
        return CheckOut(**trust_triggers.check(session, project, actor=user.name))


def _decide(
    store: Store, name: str, who: str, body: DecisionIn, user: User, what: str
) -> DecisionOut:
    from looplab.trust import standing

    act = {
        "quarantine": standing.quarantine,
        "release": standing.release,
        "confirm": standing.confirm,
    }[what]
    with store.write() as session:
        project = projects.get_project(session, name)
        person = access.get_user(session, who)
        access.authorize(user, "annotator.decide")
        return DecisionOut(**act(session, project, person, reason=body.reason, actor=user.name))


@router.post("/annotators/{user_name}/quarantine", response_model=DecisionOut)
def quarantine(
    name: str, user_name: str, body: DecisionIn, user: CurrentUser, store: StoreDep
) -> DecisionOut:
    """Keep the person's answers out of training (kept and shown); queues a retrain."""
    return _decide(store, name, user_name, body, user, "quarantine")


@router.post("/annotators/{user_name}/confirm", response_model=DecisionOut)
def confirm(
    name: str, user_name: str, body: DecisionIn, user: CurrentUser, store: StoreDep
) -> DecisionOut:
    """Uphold a quarantine: the answers stay out."""
    return _decide(store, name, user_name, body, user, "confirm")


@router.post("/annotators/{user_name}/release", response_model=DecisionOut)
def release(
    name: str, user_name: str, body: DecisionIn, user: CurrentUser, store: StoreDep
) -> DecisionOut:
    """Bring the person's answers back into training; queues a retrain."""
    return _decide(store, name, user_name, body, user, "release")
