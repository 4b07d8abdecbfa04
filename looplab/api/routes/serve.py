"""Predictions and feedback: the production half of the loop."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from looplab.api.deps import BatcherDep, CurrentUser, ModelsDep, PredictionLogDep, StoreDep
from looplab.api.responses import errors
from looplab.api.schemas import (
    FeedbackIn,
    FeedbackOut,
    OnlineMetric,
    PredictIn,
    PredictionOut,
    PredictOut,
)
from looplab.core import projects
from looplab.govern import access
from looplab.serve import serving

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["serving"])


@router.post("/predict", response_model=PredictOut, responses=errors(503))
async def predict(
    name: str,
    body: PredictIn,
    user: CurrentUser,
    models: ModelsDep,
    log: PredictionLogDep,
    batcher: BatcherDep,
) -> PredictOut:
    # async on purpose: a cached model and an in-memory log need no thread hop; the model itself
    # runs in a worker thread, batched with concurrent calls.
    started = time.perf_counter()
    access.authorize(user, "prediction.create")
    served = await models.get(name)
    predictions = await serving.predict(served, body.records, log, batcher, started)
    return PredictOut(
        model_version=served.name,
        predictions=[PredictionOut(**p) for p in predictions],
    )


@router.post("/feedback", response_model=FeedbackOut, status_code=201)
async def feedback(
    name: str, body: FeedbackIn, user: CurrentUser, store: StoreDep, log: PredictionLogDep
) -> FeedbackOut:
    access.authorize(user, "feedback.create")

    entry = await serving.feedback_when_logged(
        store, log, name, user, body.prediction_id, label=body.label, accepted=body.accepted
    )
    return FeedbackOut(
        id=entry.id,
        prediction_id=entry.prediction_id,
        accepted=entry.accepted,
        label=entry.label,
        annotation_id=entry.annotation_id,
    )


@router.get("/online-metrics", response_model=list[OnlineMetric])
def online_metrics(name: str, user: CurrentUser, store: StoreDep) -> list[dict[str, Any]]:
    """Per served version: predictions, feedback and the accept rate with its 95% interval."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return serving.online_metrics(session, project)
