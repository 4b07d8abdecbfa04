"""A tamper-evident, append-only audit log.

Every mutation calls :func:`record` inside its own transaction, so the event and the change commit
or roll back together. Each event stores a digest of what changed and the hash of the event before
it; :func:`verify` walks the chain and names the first event whose content or link does not match.

What the chain proves: no event was edited, inserted or deleted *before the head*. Deleting events
at the very end leaves a shorter, valid chain, so keep the head hash that ``looplab audit verify``
prints somewhere else (a ticket, a CI log) if you need to prove that too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core.store import advisory_lock
from looplab.core.tables import AuditEvent, utcnow

GENESIS = "0" * 64
# Any fixed 64-bit key: PostgreSQL transactions take it to append to the chain one at a time.
_PG_AUDIT_LOCK = 7420112
# Events recorded in a session and not yet linked into the chain (see record()).
_PENDING = "looplab.core.audit.pending"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _utc_text(moment: dt.datetime) -> str:
    # SQLite hands datetimes back naive and PostgreSQL in the session's zone: hash one spelling.
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def _event_hash(event: AuditEvent) -> str:
    fields = [
        event.prev_hash,
        _utc_text(event.created_at),
        event.actor,
        event.action,
        event.entity_type,
        event.entity_id,
        "" if event.project_id is None else str(event.project_id),
        event.digest,
    ]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    details: dict[str, Any] | None = None,
    project_id: int | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction.

    The event is linked into the chain when the transaction commits (see :func:`_link_pending`),
    not now: appending needs the one chain-wide lock, and taking it last, after every other lock
    the transaction wants, is what keeps it out of deadlock cycles on PostgreSQL (a transaction
    holding it never waits for anything else) and holds it for the shortest time.
    """
    details = details or {}
    event = AuditEvent(
        created_at=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        project_id=project_id,
        details=details,
        digest=hashlib.sha256(canonical(details).encode()).hexdigest(),
    )
    session.info.setdefault(_PENDING, []).append(event)
    return event


@sa_event.listens_for(Session, "before_commit")
def _link_pending(session: Session) -> None:
    pending: list[AuditEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    advisory_lock(session, _PG_AUDIT_LOCK)
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    for item in pending:
        item.prev_hash = prev or GENESIS
        item.hash = _event_hash(item)
        session.add(item)
        session.flush()  # in order: ids follow the chain
        prev = item.hash


@sa_event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    head: str
    first_bad_id: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "first_bad_id": self.first_bad_id,
            "reason": self.reason,
        }


def verify(session: Session) -> Verification:
    """Walk the whole chain in order; stop at the first event that does not match."""
    prev = GENESIS
    count = 0
    rows = session.scalars(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=2000)
    )
    for event in rows:
        count += 1
        if event.prev_hash != prev:
            return Verification(
                False, count, prev, event.id, "link to the previous event is broken"
            )
        digest = hashlib.sha256(canonical(event.details).encode()).hexdigest()
        if digest != event.digest:
            return Verification(False, count, prev, event.id, "details were changed")
        if _event_hash(event) != event.hash:
            return Verification(False, count, prev, event.id, "event fields were changed")
        prev = event.hash
    return Verification(True, count, prev)


def events_after(session: Session, after: int, limit: int) -> list[AuditEvent]:
    """A page of the audit log: up to ``limit`` events with id above ``after``, in order."""
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id).limit(limit)
        )
    )
