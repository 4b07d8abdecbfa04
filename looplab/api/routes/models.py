"""Model versions, the learning curve, the gate, promotion, rollback and model cards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from looplab.api.deps import CurrentUser, ProjectName, StoreDep
from looplab.api.schemas import CurvePoint, JobQueued, ModelOut, PromoteIn, RollbackIn
from looplab.core import jobs, projects
from looplab.govern import access
from looplab.govern import card as cards
from looplab.learn import promotion, registry

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["models"])


@router.get("/learning-curve", response_model=list[CurvePoint])
def learning_curve(name: str, user: CurrentUser, store: StoreDep) -> list[CurvePoint]:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        gate_metric = str(projects.setting(project, "gate_metric"))
        return [CurvePoint.of(m, gate_metric) for m in registry.list_versions(session, project)]


@router.get("/models", response_model=list[ModelOut])
def list_models(name: str, user: CurrentUser, store: StoreDep) -> list[ModelOut]:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return [ModelOut.of(m) for m in registry.list_versions(session, project)]


@router.post("/train", response_model=JobQueued, status_code=202)
def train(name: str, user: CurrentUser, store: StoreDep) -> JobQueued:
    """Queue a training job; a worker runs it and then re-scores the pool."""
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.manage")
        job = jobs.enqueue(session, "train", project_id=project.id, params={"actor": user.name})
        return JobQueued(id=job.id, kind=job.kind, status=job.status)


@router.get("/models/{version}/gate")
def gate(name: str, version: str, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """Would this version pass the gate against production now? Every check and reason."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        candidate = registry.get_version(session, project, version)
        return promotion.run_gate(session, project, candidate).to_dict()


@router.post("/models/{version}/promote")
def promote(
    name: ProjectName, version: str, body: PromoteIn, user: CurrentUser, store: StoreDep
) -> dict[str, Any]:
    """Promote if the gate passes (409 ``gate_failed`` with the reasons if not); audited."""
    access.authorize(user, "model.manage")
    return promotion.promote_version(
        store, name, version, actor=user.name, force=body.force, reason=body.reason
    )


@router.post("/models/rollback")
def rollback(
    name: ProjectName, body: RollbackIn, user: CurrentUser, store: StoreDep
) -> dict[str, Any]:
    """Put the previous production version back; audited."""
    access.authorize(user, "model.manage")
    return promotion.rollback_project(store, name, actor=user.name, reason=body.reason)


@router.get("/models/{version}/card", response_class=PlainTextResponse)
def card(name: str, version: str, user: CurrentUser, store: StoreDep) -> str:
    """The version's model card as Markdown."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return cards.model_card(session, project, registry.get_version(session, project, version))
