"""The labeling queue: which record a person sees next, and what happens when they answer.

A record is *open* while it has fewer human answers than it ``needed`` (1, or the project's overlap
for the overlapped fraction). ``next_record`` hands the open record with the highest ``score`` that
the person has not answered or skipped and that is not held by enough other people's leases.
Leases expire, so a record abandoned in a closed browser tab comes back to the queue.

Handing out a record is a read-then-write, so concurrent callers are serialised per project: on
SQLite by the write lock every write transaction takes (``BEGIN IMMEDIATE``), on PostgreSQL by a
transaction-scoped advisory lock. Both keep two annotators from ever getting the same record unless
overlap asks for it. Leases are queue bookkeeping, not data, so they are not audited; answers are.

Everything here runs inside that serialised section, so its cost is the queue's throughput: the
hot statements are built once at import with bound parameters (SQLAlchemy then reuses their
cache keys and compiled SQL), leases and counters are written with Core statements rather than
ORM objects, and only the answer itself is an ORM object (callers use it). The open-record query
is served by the partial index ``ix_records_open``, which holds only records still open.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import Select, and_, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from looplab.ask import gold, pace
from looplab.core import audit
from looplab.core.errors import Invalid, NotFound
from looplab.core.store import advisory_lock, lock_key
from looplab.core.tables import (
    Annotation,
    Base,
    GoldAnswer,
    Lease,
    Project,
    Record,
    User,
    utcnow,
)
from looplab.trust import standing

#: A person may hold this many leases at once: the record on screen plus prefetched ones.
MAX_LEASES_PER_USER = 3
#: Origins of answers given through looplab, which fill a record's ``needed`` one per person.
#: A record's first imported label counts as one answer too (see ``ingest``).
PEOPLE = ("human", "feedback")
#: Statuses of a person's answer that keep the record from being handed to them again (a
#: quarantined person's answers are still theirs).
ANSWERED = ("active", "skipped", "quarantined")


def _serialise(session: Session, project_id: int) -> None:
    advisory_lock(session, lock_key(f"looplab.queue.{project_id}"))


# Core tables (typed as Table, which the ORM's __table__ is not) for the hot statements.
_leases = Base.metadata.tables["leases"]
_records = Base.metadata.tables["records"]
_annotations = Base.metadata.tables["annotations"]
_projects = Base.metadata.tables["projects"]

#: The user's live leases, oldest first.
_HELD = (
    select(_leases.c.id, _leases.c.record_id)
    .where(
        _leases.c.project_id == bindparam("project_id"),
        _leases.c.user_id == bindparam("user_id"),
        _leases.c.expires_at > bindparam("now"),
    )
    .order_by(_leases.c.expires_at)
)
_RENEW = (
    update(_leases)
    .where(_leases.c.id == bindparam("lease_id"))
    .values(expires_at=bindparam("until"))
)
_DROP_LEASE = delete(_leases).where(_leases.c.id == bindparam("lease_id"))
_DROP_USER_LEASE = delete(_leases).where(
    _leases.c.project_id == bindparam("project_id"),
    _leases.c.record_id == bindparam("record_id"),
    _leases.c.user_id == bindparam("user_id"),
)
_ADD_LEASE = insert(_leases)


def _open_records_query(*, excluding: bool) -> Select[tuple[Record]]:
    """Best open record for a user: not full, not held by enough others, not answered by them."""
    others_leases = (
        select(func.count())
        .where(
            Lease.record_id == Record.id,
            Lease.expires_at > bindparam("now"),
            Lease.user_id != bindparam("user_id"),
        )
        .correlate(Record)
        .scalar_subquery()
    )
    answered = exists().where(
        Annotation.record_id == Record.id,
        Annotation.annotator_id == bindparam("user_id"),
        Annotation.status.in_(ANSWERED),
    )
    # Gold records come only through the gold draw (looplab.ask.gold), at gold_rate.
    known = exists().where(GoldAnswer.record_id == Record.id)
    query = (
        select(Record)
        .where(
            Record.project_id == bindparam("project_id"),
            # Spelled as in ix_records_open's WHERE, so that the planner may use that index.
            Record.n_human < Record.needed,
            Record.n_human + others_leases < Record.needed,
            ~answered,
            ~known,
        )
        .order_by(Record.score.desc(), Record.id)
        .limit(1)
    )
    if excluding:
        query = query.where(Record.id.not_in(bindparam("skip", expanding=True)))
    return query


_NEXT = _open_records_query(excluding=False)
_NEXT_EXCLUDING = _open_records_query(excluding=True)


def next_record(
    session: Session,
    project: Project,
    user: User,
    *,
    lease_seconds: int,
    exclude: list[int] | None = None,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> Record | None:
    """Lease and return the best open record for ``user``, or ``None`` when nothing is left.

    A record the user already holds (and did not list in ``exclude``) comes back first, so a page
    reload shows the same record instead of burning a new one; ``exclude`` lets a client prefetch.
    ``rng`` draws whether the hand-out is a gold record (:mod:`looplab.ask.gold`; tests seed it).
    """
    now = now or utcnow()
    excluded = set(exclude or [])
    _serialise(session, project.id)
    until = now + dt.timedelta(seconds=lease_seconds)
    who = {"project_id": project.id, "user_id": user.id, "now": now}

    held = session.execute(_HELD, who).all()
    for lease_id, record_id in held:
        if record_id not in excluded:
            session.execute(_RENEW, {"lease_id": lease_id, "until": until})
            return session.get(Record, record_id)

    skip = excluded | {record_id for _, record_id in held}
    # At gold_rate, a known-answer record instead (looplab.ask.gold); else the best open one.
    record = gold.next_gold(session, project, user, skip=skip, rng=rng)
    if record is None and skip:
        record = session.scalars(_NEXT_EXCLUDING, {**who, "skip": sorted(skip)}).first()
    elif record is None:
        record = session.scalars(_NEXT, who).first()
    if record is None:
        return None

    if len(held) >= MAX_LEASES_PER_USER:
        session.execute(_DROP_LEASE, {"lease_id": held[0][0]})
    # An expired lease of this user on this record would collide with the new one.
    session.execute(_DROP_USER_LEASE, {**who, "record_id": record.id})
    session.execute(
        _ADD_LEASE,
        {"project_id": project.id, "record_id": record.id, "user_id": user.id, "expires_at": until},
    )
    return record


def handed_to(session: Session, user: User, record_id: int) -> bool:
    """Whether ``record_id`` was handed to ``user``: leased to them now, or answered by them."""
    leased = select(Lease.id).where(
        Lease.record_id == record_id, Lease.user_id == user.id, Lease.expires_at > utcnow()
    )
    answered = select(Annotation.id).where(
        Annotation.record_id == record_id, Annotation.annotator_id == user.id
    )
    return session.scalar(leased.union_all(answered).limit(1)) is not None


def release(session: Session, project: Project, user: User, record_id: int) -> None:
    session.execute(
        _DROP_USER_LEASE,
        {"project_id": project.id, "record_id": record_id, "user_id": user.id},
    )


def purge_expired(session: Session, *, now: dt.datetime | None = None) -> int:
    result = session.execute(delete(Lease).where(Lease.expires_at <= (now or utcnow())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


_RECORD_PROJECT = select(_records.c.project_id).where(_records.c.id == bindparam("record_id"))
#: The user's current answer or skip for a record (at most one of each, normally).
_PREVIOUS = select(_annotations.c.id, _annotations.c.status, _annotations.c.origin).where(
    _annotations.c.record_id == bindparam("record_id"),
    _annotations.c.annotator_id == bindparam("user_id"),
    _annotations.c.status.in_(ANSWERED),
)
_SUPERSEDE = (
    update(_annotations)
    .where(_annotations.c.id.in_(bindparam("ids", expanding=True)))
    .values(status="superseded")
)
_COUNT_ANSWER = (
    update(_records)
    .where(_records.c.id == bindparam("record_id"))
    .values(n_human=_records.c.n_human + 1)
    .returning(_records.c.n_human)
)


def _sync(session: Session, cls: type, key: int, field: str, value: object) -> None:
    """Mirror a Core UPDATE onto the session's copy of the row, if it holds one."""
    loaded = session.identity_map.get(session.identity_key(cls, key))
    if loaded is not None:
        set_committed_value(loaded, field, value)


def _check_record(session: Session, project: Project, record_id: int) -> None:
    if session.scalar(_RECORD_PROJECT, {"record_id": record_id}) != project.id:
        raise NotFound(
            f"no record {record_id} in project {project.name!r}",
            details={"record_id": record_id, "project": project.name},
        )


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
    """Store a person's answer for a record; their earlier answer *of the same origin* is replaced.

    Replacing (rather than adding) is what "go back and fix the last one" needs: a second answer
    from the labeling page replaces the person's first one (or their skip), a second verdict
    through feedback replaces their first feedback. An answer of the other origin is kept beside
    it: a labeling answer and a feedback verdict are two observations, and where they disagree
    :func:`looplab.trust.labels.consensus` decides the training label. The replaced answer is kept
    as ``superseded`` for the record. A person counts once towards the record's ``needed`` whatever
    the number of their answers.
    """
    if label not in project.labels:
        raise Invalid(
            f"unknown label {label!r}; valid labels: {', '.join(project.labels)}",
            details={"field": "label", "value": label},
        )
    if seconds is not None and not (0 <= seconds < 86_400):
        raise Invalid("seconds must be between 0 and 86400", details={"field": "seconds"})
    _serialise(session, project.id)
    _check_record(session, project, record_id)
    session.flush()  # answers this session added are visible to the Core statements below
    previous = session.execute(_PREVIOUS, {"record_id": record_id, "user_id": user.id}).all()
    # Feedback on a served prediction is a person's answer too: it counts like a queue answer.
    counted_before = any(status == "active" and kind in PEOPLE for _, status, kind in previous)
    # A quarantined person's answer is kept, never trained on, and fills no record's `needed`.
    held_out = standing.is_excluded(session, project.id, user.id)
    replaced = [row_id for row_id, _, kind in previous if kind == origin]
    if replaced:
        session.execute(_SUPERSEDE, {"ids": replaced})
        for row_id in replaced:
            _sync(session, Annotation, row_id, "status", "superseded")
    annotation = Annotation(
        project_id=project.id,
        record_id=record_id,
        annotator_id=user.id,
        value={"label": label},
        label=label,
        seconds=seconds,
        origin=origin,
        status="quarantined" if held_out else "active",
        prediction_id=prediction_id,
    )
    session.add(annotation)
    if origin in PEOPLE and not counted_before and not held_out:
        n_human = session.scalar(_COUNT_ANSWER, {"record_id": record_id})
        _sync(session, Record, record_id, "n_human", n_human)
    if not held_out:
        pace.count_towards_retraining(session, project)
    release(session, project, user, record_id)
    session.flush()
    if origin in PEOPLE:
        pace.check_reliability_now_and_then(session, project, annotation.id)
    audit.record(
        session,
        actor=user.name,
        action="annotation.create",
        entity_type="annotation",
        entity_id=annotation.id,
        project_id=project.id,
        details={
            "record_id": record_id,
            "label": label,
            "seconds": seconds,
            "origin": origin,
            "replaces": replaced,
        },
    )
    return annotation


def skip(session: Session, project: Project, user: User, record_id: int) -> Annotation:
    """Record that ``user`` passed on a record, so it is not offered to them again."""
    _serialise(session, project.id)
    _check_record(session, project, record_id)
    mark = Annotation(
        project_id=project.id,
        record_id=record_id,
        annotator_id=user.id,
        value={"skipped": True},
        label=None,
        origin="human",
        status="skipped",
    )
    session.add(mark)
    release(session, project, user, record_id)
    session.flush()
    audit.record(
        session,
        actor=user.name,
        action="annotation.skip",
        entity_type="annotation",
        entity_id=mark.id,
        project_id=project.id,
        details={"record_id": record_id},
    )
    return mark


def last_answered(session: Session, project: Project, user: User) -> Annotation | None:
    """The person's most recent labeling-page answer: what "Backspace" brings back.

    Feedback verdicts are left out: a labeling answer would be stored beside one, not replace it.
    """
    return session.scalar(
        select(Annotation)
        .where(
            and_(
                Annotation.project_id == project.id,
                Annotation.annotator_id == user.id,
                Annotation.origin == "human",
                Annotation.status.in_(ANSWERED),
            )
        )
        .order_by(Annotation.id.desc())
        .limit(1)
    )
