"""Admin operations the UI needs beyond create: a project's settings, disabling users, new
tokens, removing the model versions retention does not keep.

The handlers call the functions the CLI calls (``looplab config``, ``looplab user revoke``,
``looplab user token``, ``looplab gc``), so both paths validate and audit alike.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from looplab.api.deps import CurrentUser, ProjectName, StoreDep
from looplab.api.schemas import GcReport, UserCreated, UserOut
from looplab.core import projects
from looplab.govern import access
from looplab.learn import retention

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get(
    "/projects/{name}/settings",
    response_model=dict[str, Any],
    tags=["projects"],
)
def get_settings(name: str, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """Every setting of the project with defaults filled in, as `looplab config PROJECT` shows."""
    with store.read() as session:
        project = projects.get_project(session, name)
        access.authorize(user, "project.update")
        return projects.current_settings(project)


@router.post(
    "/users/{name}/disable",
    response_model=UserOut,
    tags=["users"],
)
def disable_user(name: str, user: CurrentUser, store: StoreDep) -> UserOut:
    """Revoke the user's token (within LOOPLAB_TOKEN_CACHE_SECONDS); a new token enables it."""
    access.authorize(user, "user.manage")
    with store.write() as session:
        access.revoke(session, name, actor=user.name)
        return UserOut.model_validate(access.get_user(session, name))


@router.post(
    "/users/{name}/token",
    response_model=UserCreated,
    tags=["users"],
)
def issue_token(name: str, user: CurrentUser, store: StoreDep) -> UserCreated:
    """A new token for the user, shown once (the old one stops working); enables the user."""
    access.authorize(user, "user.manage")
    with store.write() as session:
        token = access.rotate_token(session, name, actor=user.name)
        target = access.get_user(session, name)
        return UserCreated(
            name=target.name,
            role=target.role,
            active=target.active,
            created_at=target.created_at,
            token=token,
        )


@router.post("/projects/{name}/gc", response_model=GcReport, tags=["models"])
def collect_garbage(
    name: ProjectName, user: CurrentUser, store: StoreDep, dry_run: bool = False
) -> dict[str, Any]:
    """Remove the model versions (and artifact files) retention does not keep, audited; with
    ``dry_run``, only say what would go. As ``looplab gc``."""
    access.authorize(user, "model.manage")
    return retention.collect(store, name, actor=user.name, dry_run=dry_run)
