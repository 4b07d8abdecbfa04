"""Monitoring: windows, drift, accuracy from feedback, latency and triggers of a served model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, WithJsonSchema

from looplab.api.deps import CurrentUser, StoreDep
from looplab.api.responses import errors
from looplab.core import projects
from looplab.govern import access
from looplab.watch import overview

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["monitoring"])

# A positive number below 100,000 and a unit: the schema shows the pattern checked here, so a
# schema-valid window is one the server takes (99999w still leaves a year after 1 AD).
WINDOW = r"^([1-9][0-9]{0,4}(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)[smhdw]$"


def _window(text: str) -> str:
    if re.fullmatch(WINDOW, text) is None:
        raise ValueError(
            f"window {text!r}: use a number below 100000 and a unit (s, m, h, d or w),"
            " e.g. 30m, 12h, 1d or 2w"
        )
    return text


Window = Annotated[
    str,
    AfterValidator(_window),
    WithJsonSchema({"type": "string", "pattern": WINDOW, "examples": ["1d"]}),
]


@router.get("/monitor")
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


@router.get("/triggers")
def trigger_rules(name: str, user: CurrentUser, store: StoreDep) -> list[dict[str, Any]]:
    """The trigger rules in force and what each last decided."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "model.read")
        return overview.trigger_state(session, project)


@router.get("/drift", responses=errors(503))
def drift(
    name: str,
    user: CurrentUser,
    store: StoreDep,
    window: Annotated[Window, Query(description="e.g. 30m, 12h, 1d, 2w")] = "1d",
) -> dict[str, Any]:
    """Drift of the last ``window`` of predictions against the production model's training data."""
    with store.read() as session:
        projects.get_project(session, name)
    access.authorize(user, "model.read")
    return overview.drift_now(store, name, window)
