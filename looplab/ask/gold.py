"""Gold records in the queue: handed out at ``gold_rate``, never twice to one person, and looking
like any other record.

Whether the next hand-out is gold is a fresh random draw at ``gold_rate``: no stored state, no
query, and no pattern a person could learn (every third record, ...); a page reload still shows
the same record, because the queue hands back a held lease first. The gold record is the
best-scored one the person has never answered nor skipped.

What the annotator sees of a gold record is what they see of an ordinary open record
(:func:`as_handed`): no answer count that says "already labeled", no gold file's name.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from looplab.core.projects import setting
from looplab.core.tables import Annotation, GoldAnswer, Lease, Project, Record, User


def next_gold(
    session: Session,
    project: Project,
    user: User,
    *,
    skip: set[int],
    rng: random.Random | None = None,
) -> Record | None:
    """The gold record to hand ``user`` now, or None (not drawn, or none left for them)."""
    rate = float(setting(project, "gold_rate") or 0.0)
    if rate <= 0 or (rng or random.Random()).random() >= rate:
        return None
    theirs = exists().where(Annotation.record_id == Record.id, Annotation.annotator_id == user.id)
    leased = exists().where(Lease.record_id == Record.id, Lease.user_id == user.id)
    query = (
        select(Record)
        .join(GoldAnswer, GoldAnswer.record_id == Record.id)
        .where(GoldAnswer.project_id == project.id, ~theirs, ~leased)
        .order_by(Record.score.desc(), Record.id)
        .limit(1)
    )
    if skip:
        query = query.where(Record.id.not_in(sorted(skip)))
    return session.scalars(query).first()


def is_gold(session: Session, record_id: int) -> bool:
    found = session.scalar(select(GoldAnswer.id).where(GoldAnswer.record_id == record_id))
    return found is not None


def as_handed(session: Session, record: Record) -> dict[str, Any]:
    """The record's fields as an annotator sees them; a gold record's look like an open one's.

    An ordinary record handed out is open (fewer answers than it needs); a gold record may have
    many, and its provenance may be the gold file: both would tell it apart.
    """
    fields = {
        "id": record.id,
        "payload": record.payload,
        "meta": record.meta,
        "n_human": record.n_human,
        "needed": record.needed,
        "score": record.score,
        "batch_id": record.batch_id,
        "source_line": record.source_line,
        "created_at": record.created_at,
    }
    if is_gold(session, record.id):
        fields.update(n_human=0, needed=1, batch_id=None, source_line=None)
    return fields
