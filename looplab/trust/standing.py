"""An annotator's standing in a project: flagged, quarantined, released or confirmed.

Quarantine keeps a person's answers and takes them out of everything that learns or counts: their
active annotations become ``quarantined`` (kept, shown, never trained on: the training set reads
``active`` answers only), the records they counted towards go back to the queue for someone else
(``n_human`` drops by one each), later answers of theirs arrive quarantined, and a retrain is
queued so the next model no longer holds what they taught. Release reverses each step. Every
change is audited with its reason and evidence, in the transaction that makes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, select, update
from sqlalchemy.orm import Session

from looplab.core import audit, jobs
from looplab.core.errors import Conflict, Invalid
from looplab.core.tables import Annotation, AnnotatorStanding, Project, Record, User, utcnow

#: Standings that keep a person's answers out of training.
EXCLUDED = ("quarantined", "confirmed")
#: Origins that count towards a record's ``needed`` (as :data:`looplab.ask.queue.PEOPLE`).
_COUNTED = ("human", "feedback")


def standing(session: Session, project: Project, user: User) -> AnnotatorStanding | None:
    return session.scalar(
        select(AnnotatorStanding).where(
            AnnotatorStanding.project_id == project.id, AnnotatorStanding.user_id == user.id
        )
    )


def standings(session: Session, project: Project) -> dict[int, AnnotatorStanding]:
    """User id -> standing, for everyone with one in ``project``."""
    rows = session.scalars(
        select(AnnotatorStanding).where(AnnotatorStanding.project_id == project.id)
    )
    return {row.user_id: row for row in rows}


def is_excluded(session: Session, project_id: int, user_id: int) -> bool:
    """Whether ``user_id``'s answers in the project are kept out of training now."""
    status = session.scalar(
        select(AnnotatorStanding.status).where(
            AnnotatorStanding.project_id == project_id, AnnotatorStanding.user_id == user_id
        )
    )
    return status in EXCLUDED


def _set(
    session: Session,
    project: Project,
    user: User,
    *,
    status: str,
    policy: str,
    reason: str,
    evidence: dict[str, Any],
    actor: str,
) -> AnnotatorStanding:
    row = standing(session, project, user)
    if row is None:
        row = AnnotatorStanding(project_id=project.id, user_id=user.id)
        session.add(row)
    row.status, row.policy, row.reason = status, policy, reason
    row.evidence, row.decided_by, row.decided_at = evidence, actor, utcnow()
    session.flush()
    return row


def _recount(session: Session, project: Project, user: User, *, status: str, delta: int) -> None:
    """Move ``n_human`` by ``delta`` on each record the person answered (answers in ``status``)."""
    counted = (
        select(distinct(Annotation.record_id))
        .where(
            Annotation.project_id == project.id,
            Annotation.annotator_id == user.id,
            Annotation.status == status,
            Annotation.origin.in_(_COUNTED),
        )
        .scalar_subquery()
    )
    session.execute(
        update(Record)
        .where(Record.id.in_(counted))
        .values(n_human=Record.n_human + delta)
        .execution_options(synchronize_session=False)
    )


def _move(session: Session, project: Project, user: User, old: str, new: str) -> int:
    result = session.execute(
        update(Annotation)
        .where(
            Annotation.project_id == project.id,
            Annotation.annotator_id == user.id,
            Annotation.status == old,
        )
        .values(status=new)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise Invalid("a reason is required (it is audited and shown)", details={"field": "reason"})
    if len(reason) > 2000:
        raise Invalid("reason is longer than 2,000 characters", details={"field": "reason"})
    return reason


def quarantine(
    session: Session,
    project: Project,
    user: User,
    *,
    reason: str,
    actor: str,
    policy: str = "flag",
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Quarantine ``user``'s answers in ``project`` and queue a retrain; audited.

    ``policy`` says who decided: ``flag`` (a person) or ``auto`` (the reliability check).
    :class:`Conflict` if the person is already quarantined.
    """
    reason = _check_reason(reason)
    current = standing(session, project, user)
    if current is not None and current.status in EXCLUDED:
        raise Conflict(
            f"{user.name!r} is already {current.status} in project {project.name!r} "
            f"(by {current.decided_by}); `looplab release` brings their answers back",
            details={"user": user.name, "status": current.status},
        )
    session.flush()
    _recount(session, project, user, status="active", delta=-1)
    moved = _move(session, project, user, "active", "quarantined")
    _set(
        session,
        project,
        user,
        status="quarantined",
        policy=policy,
        reason=reason,
        evidence=evidence or {},
        actor=actor,
    )
    job = jobs.enqueue(session, "train", project_id=project.id)
    audit.record(
        session,
        actor=actor,
        action="annotator.quarantine",
        entity_type="user",
        entity_id=user.id,
        project_id=project.id,
        details={"user": user.name, "reason": reason, "policy": policy, "annotations": moved},
    )
    return {"user": user.name, "status": "quarantined", "annotations": moved, "train_job": job.id}


def release(
    session: Session, project: Project, user: User, *, reason: str, actor: str
) -> dict[str, Any]:
    """Bring a quarantined person's answers back to ``active`` and queue a retrain; audited."""
    reason = _check_reason(reason)
    current = standing(session, project, user)
    if current is None or current.status not in EXCLUDED:
        raise Conflict(
            f"{user.name!r} is not quarantined in project {project.name!r}; nothing to release",
            details={"user": user.name, "status": None if current is None else current.status},
        )
    session.flush()
    moved = _move(session, project, user, "quarantined", "active")
    _recount(session, project, user, status="active", delta=1)
    _set(
        session,
        project,
        user,
        status="released",
        policy=current.policy,
        reason=reason,
        evidence=current.evidence,
        actor=actor,
    )
    job = jobs.enqueue(session, "train", project_id=project.id)
    audit.record(
        session,
        actor=actor,
        action="annotator.release",
        entity_type="user",
        entity_id=user.id,
        project_id=project.id,
        details={"user": user.name, "reason": reason, "annotations": moved},
    )
    return {"user": user.name, "status": "released", "annotations": moved, "train_job": job.id}


def flag(
    session: Session, project: Project, user: User, *, evidence: dict[str, Any], actor: str
) -> AnnotatorStanding | None:
    """Record the reliability check's flags on ``user`` (status ``flagged``); audited.

    A person already quarantined, confirmed or released by a reviewer keeps that status (a
    person's decision is not overturned by the check); only the evidence is refreshed. Returns
    the standing, or None when nothing changed.
    """
    current = standing(session, project, user)
    if current is not None and current.evidence == evidence:
        return None
    if current is not None and current.status != "flagged":
        current.evidence = evidence
        session.flush()
        return current
    row = _set(
        session,
        project,
        user,
        status="flagged",
        policy="flag",
        reason="flagged by the reliability check",
        evidence=evidence,
        actor=actor,
    )
    audit.record(
        session,
        actor=actor,
        action="annotator.flag",
        entity_type="user",
        entity_id=user.id,
        project_id=project.id,
        details={"user": user.name, "evidence": evidence},
    )
    return row


def confirm(
    session: Session, project: Project, user: User, *, reason: str, actor: str
) -> dict[str, Any]:
    """A reviewer upholds a quarantine (``confirmed``: the answers stay out); audited."""
    reason = _check_reason(reason)
    current = standing(session, project, user)
    if current is None or current.status != "quarantined":
        raise Conflict(
            f"{user.name!r} is not quarantined in project {project.name!r}; nothing to confirm",
            details={"user": user.name, "status": None if current is None else current.status},
        )
    _set(
        session,
        project,
        user,
        status="confirmed",
        policy=current.policy,
        reason=reason,
        evidence=current.evidence,
        actor=actor,
    )
    audit.record(
        session,
        actor=actor,
        action="annotator.confirm",
        entity_type="user",
        entity_id=user.id,
        project_id=project.id,
        details={"user": user.name, "reason": reason},
    )
    return {"user": user.name, "status": "confirmed"}
