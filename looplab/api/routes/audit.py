"""Read and verify the audit log (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from looplab.api.deps import CurrentUser, SettingsDep, StoreDep
from looplab.api.schemas import MAX_ID, AuditEventOut, Page, Verification
from looplab.core import audit
from looplab.govern import access

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEventOut])
def list_events(
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ID)] = 100,
) -> Page[AuditEventOut]:
    access.authorize(user, "audit.read")
    limit = min(limit, settings.page_size_max)
    with store.read() as session:
        events = audit.events_after(session, after, limit)
    items = [AuditEventOut.model_validate(e) for e in events]
    return Page(items=items, next_after=items[-1].id if len(items) == limit else None)


@router.get("/verify", response_model=Verification)
def verify(user: CurrentUser, store: StoreDep) -> Verification:
    access.authorize(user, "audit.read")
    with store.read() as session:
        return Verification(**audit.verify(session).to_dict())
