"""Model versions, the learning curve, the gate, promotion, rollback and model cards."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from looplab.api.deps import CurrentUser, StoreDep
from looplab.api.schemas import NOT_BLANK
from looplab.core import jobs, projects
from looplab.govern import access
from looplab.govern import card as cards
from looplab.learn import promotion, registry

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["models"])


class CurvePoint(BaseModel):
    version: str
    n_labels: int
    accuracy: float | None
    macro_f1: float | None
    accuracy_ci: list[float] | None = None  # 95% bootstrap interval on the n_test records
    macro_f1_ci: list[float] | None = None
    n_test: int
    created_at: dt.datetime


class ModelOut(BaseModel):
    version: str
    stage: str
    n_train: int
    n_test: int
    metrics: dict[str, Any]
    config: dict[str, Any]
    sha256: str
    created_at: dt.datetime


class JobOut(BaseModel):
    id: int
    kind: str
    status: str


@router.get("/learning-curve", response_model=list[CurvePoint])
def learning_curve(name: str, user: CurrentUser, store: StoreDep) -> list[CurvePoint]:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.read")
        return [
            CurvePoint(
                version=m.name,
                n_labels=m.n_train,
                accuracy=m.metrics.get("accuracy"),
                macro_f1=m.metrics.get("macro_f1"),
                accuracy_ci=m.metrics.get("accuracy_ci"),
                macro_f1_ci=m.metrics.get("macro_f1_ci"),
                n_test=m.n_test,
                created_at=m.created_at,
            )
            for m in registry.list_versions(session, project)
        ]


@router.get("/models", response_model=list[ModelOut])
def list_models(name: str, user: CurrentUser, store: StoreDep) -> list[ModelOut]:
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return [
            ModelOut(
                version=m.name,
                stage=m.stage,
                n_train=m.n_train,
                n_test=m.n_test,
                metrics=m.metrics,
                config=m.config,
                sha256=m.sha256,
                created_at=m.created_at,
            )
            for m in registry.list_versions(session, project)
        ]


@router.post("/train", response_model=JobOut, status_code=202)
def train(name: str, user: CurrentUser, store: StoreDep) -> JobOut:
    """Queue a training job; a worker runs it and then re-scores the pool."""
    with store.write() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.manage")
        job = jobs.enqueue(session, "train", project_id=project.id, params={"actor": user.name})
        return JobOut(id=job.id, kind=job.kind, status=job.status)


class PromoteIn(BaseModel):
    # The schema says what promotion.promote_version checks: forcing needs a reason.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"force": {"const": True}}, "required": ["force"]},
            "then": {
                "properties": {"reason": {"type": "string", "pattern": NOT_BLANK}},
                "required": ["reason"],
            },
        },
    )
    force: bool = False
    reason: str = Field("", description="Kept in the audit log; required with force.")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = ""


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
    name: str, version: str, body: PromoteIn, user: CurrentUser, store: StoreDep
) -> dict[str, Any]:
    """Promote if the gate passes (409 ``gate_failed`` with the reasons if not); audited."""
    with store.read() as session:
        projects.get_project(session, name)
        access.authorize(user, "model.manage")
    return promotion.promote_version(
        store, name, version, actor=user.name, force=body.force, reason=body.reason
    )


@router.post("/models/rollback")
def rollback(name: str, body: RollbackIn, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """Put the previous production version back; audited."""
    with store.read() as session:
        projects.get_project(session, name)
        access.authorize(user, "model.manage")
    return promotion.rollback_project(store, name, actor=user.name, reason=body.reason)


@router.get("/models/{version}/card", response_class=PlainTextResponse)
def card(name: str, version: str, user: CurrentUser, store: StoreDep) -> str:
    """The version's model card as Markdown."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return cards.model_card(session, project, registry.get_version(session, project, version))
