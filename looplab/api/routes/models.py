"""Model versions and the learning curve."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from looplab import access, jobs, projects, registry
from looplab.api.deps import CurrentUser, StoreDep

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["models"])


class CurvePoint(BaseModel):
    version: str
    n_labels: int
    accuracy: float | None
    macro_f1: float | None
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
