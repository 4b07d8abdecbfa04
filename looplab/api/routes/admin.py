"""Admin operations the UI needs beyond create: a project's settings, disabling users, new tokens.

The handlers call the functions the CLI calls (``looplab config``, ``looplab user revoke``,
``looplab user token``), so both paths validate and audit alike.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from looplab.api.deps import CurrentUser, StoreDep
from looplab.api.schemas import UserCreated, UserOut
from looplab.core import projects
from looplab.govern import access

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
