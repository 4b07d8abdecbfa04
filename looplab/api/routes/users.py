"""Who am I, and user management (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from looplab.api.deps import CurrentUser, StoreDep
from looplab.api.schemas import UserCreated, UserIn, UserOut
from looplab.govern import access

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.get("/users", response_model=list[UserOut])
def list_users(user: CurrentUser, store: StoreDep) -> list[UserOut]:
    access.authorize(user, "user.manage")
    with store.read() as session:
        return [UserOut.model_validate(u) for u in access.list_users(session)]


@router.post("/users", response_model=UserCreated, status_code=201)
def create_user(body: UserIn, user: CurrentUser, store: StoreDep) -> UserCreated:
    access.authorize(user, "user.manage")
    with store.write() as session:
        created, token = access.create_user(session, body.name, body.role, actor=user.name)
        return UserCreated(
            name=created.name,
            role=created.role,
            active=created.active,
            created_at=created.created_at,
            token=token,
        )
