"""Monitoring: windows, drift, accuracy from feedback, latency and triggers of a served model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from looplab.api.deps import CurrentUser, ProjectName, StoreDep
from looplab.api.responses import errors
from looplab.api.schemas import DriftNow, MonitorState, TriggerState, Window
from looplab.core import projects
from looplab.govern import access
from looplab.watch import overview

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["monitoring"])


@router.get("/monitor", response_model=MonitorState, response_model_exclude_unset=True)
def monitor(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The production model, its last ``limit`` windows (oldest first), alarms and triggers."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return overview.monitor_state(session, project, limit=limit)


@router.get("/triggers", response_model=list[TriggerState], response_model_exclude_unset=True)
def trigger_rules(name: str, user: CurrentUser, store: StoreDep) -> list[dict[str, Any]]:
    """The trigger rules in force and what each last decided."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return overview.trigger_state(session, project)


@router.get(
    "/drift", response_model=DriftNow, response_model_exclude_unset=True, responses=errors(503)
)
def drift(
    name: ProjectName,
    user: CurrentUser,
    store: StoreDep,
    window: Annotated[Window, Query(description="e.g. 30m, 12h, 1d, 2w")] = "1d",
) -> dict[str, Any]:
    """Drift of the last ``window`` of predictions against the production model's training data."""
    access.authorize(user, "model.read")
    return overview.drift_now(store, name, window)
