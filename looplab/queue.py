"""The labeling queue: which record a person sees next, and what happens when they answer.

A record is *open* while it has fewer human answers than it ``needed`` (1, or the project's overlap
for the overlapped fraction). ``next_record`` hands the open record with the highest ``score`` that
the person has not answered or skipped and that is not held by enough other people's leases.
Leases expire, so a record abandoned in a closed browser tab comes back to the queue.

Handing out a record is a read-then-write, so concurrent callers are serialised per project: on
SQLite by the write lock every write transaction takes (``BEGIN IMMEDIATE``), on PostgreSQL by a
transaction-scoped advisory lock. Both keep two annotators from ever getting the same record unless
overlap asks for it. Leases are queue bookkeeping, not data, so they are not audited; answers are.
"""

from __future__ import annotations

import datetime as dt
import zlib

from sqlalchemy import and_, delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from looplab import audit, jobs
from looplab.errors import Invalid, NotFound
from looplab.projects import setting
from looplab.tables import Annotation, Lease, Project, Record, User, utcnow

#: A person may hold this many leases at once: the record on screen plus prefetched ones.
MAX_LEASES_PER_USER = 3
#: Origins of answers given by people (not imported), which fill a record's ``needed``.
PEOPLE = ("human", "feedback")


def _serialise(session: Session, project_id: int) -> None:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        key = zlib.crc32(f"looplab.queue.{project_id}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def next_record(
    session: Session,
    project: Project,
    user: User,
    *,
    lease_seconds: int,
    exclude: list[int] | None = None,
    now: dt.datetime | None = None,
) -> Record | None:
    """Lease and return the best open record for ``user``, or ``None`` when nothing is left.

    A record the user already holds (and did not list in ``exclude``) comes back first, so a page
    reload shows the same record instead of burning a new one; ``exclude`` lets a client prefetch.
    """
    now = now or utcnow()
    exclude = exclude or []
    _serialise(session, project.id)
    until = now + dt.timedelta(seconds=lease_seconds)

    held = session.scalars(
        select(Lease)
        .where(Lease.project_id == project.id, Lease.user_id == user.id, Lease.expires_at > now)
        .order_by(Lease.expires_at)
    ).all()
    for lease in held:
        if lease.record_id not in exclude:
            lease.expires_at = until
            return session.get(Record, lease.record_id)

    others_leases = (
        select(func.count())
        .where(
            Lease.record_id == Record.id,
            Lease.expires_at > now,
            Lease.user_id != user.id,
        )
        .correlate(Record)
        .scalar_subquery()
    )
    answered = exists().where(
        Annotation.record_id == Record.id,
        Annotation.annotator_id == user.id,
        Annotation.status.in_(("active", "skipped")),
    )
    held_ids = [lease.record_id for lease in held]
    query = (
        select(Record)
        .where(
            Record.project_id == project.id,
            Record.n_human < Record.needed,
            Record.n_human + others_leases < Record.needed,
            ~answered,
        )
        .order_by(Record.score.desc(), Record.id)
        .limit(1)
    )
    if exclude or held_ids:
        query = query.where(Record.id.not_in(set(exclude) | set(held_ids)))
    record = session.scalar(query)
    if record is None:
        return None

    if len(held) >= MAX_LEASES_PER_USER:
        session.delete(held[0])
    session.execute(delete(Lease).where(Lease.record_id == record.id, Lease.user_id == user.id))
    session.add(
        Lease(project_id=project.id, record_id=record.id, user_id=user.id, expires_at=until)
    )
    session.flush()
    return record


def release(session: Session, project: Project, user: User, record_id: int) -> None:
    session.execute(
        delete(Lease).where(
            Lease.project_id == project.id, Lease.record_id == record_id, Lease.user_id == user.id
        )
    )


def purge_expired(session: Session, *, now: dt.datetime | None = None) -> int:
    result = session.execute(delete(Lease).where(Lease.expires_at <= (now or utcnow())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _record_in(session: Session, project: Project, record_id: int) -> Record:
    record = session.get(Record, record_id)
    if record is None or record.project_id != project.id:
        raise NotFound(
            f"no record {record_id} in project {project.name!r}",
            details={"record_id": record_id, "project": project.name},
        )
    return record


def annotate(
    session: Session,
    project: Project,
    user: User,
    record_id: int,
    label: str,
    *,
    seconds: float | None = None,
    origin: str = "human",
    prediction_id: str | None = None,
) -> Annotation:
    """Store a person's answer for a record; a second answer from them replaces the first.

    Replacing (rather than adding) is what "go back and fix the last one" needs, and keeps one vote
    per person for agreement measures. The old answer is kept as ``superseded`` for the record.
    """
    if label not in project.labels:
        raise Invalid(
            f"unknown label {label!r}; valid labels: {', '.join(project.labels)}",
            details={"field": "label", "value": label},
        )
    if seconds is not None and not (0 <= seconds < 86_400):
        raise Invalid("seconds must be between 0 and 86400", details={"field": "seconds"})
    _serialise(session, project.id)
    record = _record_in(session, project, record_id)
    previous = session.scalars(
        select(Annotation).where(
            Annotation.record_id == record.id,
            Annotation.annotator_id == user.id,
            Annotation.status.in_(("active", "skipped")),
        )
    ).all()
    # Feedback on a served prediction is a person's answer too: it counts like a queue answer.
    counted_before = any(a.status == "active" and a.origin in PEOPLE for a in previous)
    for old in previous:
        old.status = "superseded"
    annotation = Annotation(
        project_id=project.id,
        record_id=record.id,
        annotator_id=user.id,
        value={"label": label},
        label=label,
        seconds=seconds,
        origin=origin,
        status="active",
        prediction_id=prediction_id,
    )
    session.add(annotation)
    if origin in PEOPLE and not counted_before:
        session.execute(
            update(Record).where(Record.id == record.id).values(n_human=Record.n_human + 1)
        )
    _count_towards_retraining(session, project)
    release(session, project, user, record.id)
    session.flush()
    audit.record(
        session,
        actor=user.name,
        action="annotation.create",
        entity_type="annotation",
        entity_id=annotation.id,
        project_id=project.id,
        details={
            "record_id": record.id,
            "label": label,
            "seconds": seconds,
            "origin": origin,
            "replaces": [a.id for a in previous],
        },
    )
    return annotation


def _count_towards_retraining(session: Session, project: Project) -> None:
    """Queue a training job once ``retrain_every`` new answers have come in since the last one."""
    session.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(labels_since_model=Project.labels_since_model + 1)
    )
    pending = session.scalar(select(Project.labels_since_model).where(Project.id == project.id))
    if pending is not None and pending >= int(setting(project, "retrain_every")):
        jobs.enqueue(session, "train", project_id=project.id)


def skip(session: Session, project: Project, user: User, record_id: int) -> Annotation:
    """Record that ``user`` passed on a record, so it is not offered to them again."""
    _serialise(session, project.id)
    record = _record_in(session, project, record_id)
    mark = Annotation(
        project_id=project.id,
        record_id=record.id,
        annotator_id=user.id,
        value={"skipped": True},
        label=None,
        origin="human",
        status="skipped",
    )
    session.add(mark)
    release(session, project, user, record.id)
    session.flush()
    audit.record(
        session,
        actor=user.name,
        action="annotation.skip",
        entity_type="annotation",
        entity_id=mark.id,
        project_id=project.id,
        details={"record_id": record.id},
    )
    return mark


def last_answered(session: Session, project: Project, user: User) -> Annotation | None:
    """The person's most recent answer in the project: what "Backspace" brings back."""
    return session.scalar(
        select(Annotation)
        .where(
            and_(
                Annotation.project_id == project.id,
                Annotation.annotator_id == user.id,
                Annotation.status.in_(("active", "skipped")),
            )
        )
        .order_by(Annotation.id.desc())
        .limit(1)
    )
