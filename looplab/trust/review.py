"""The review queue: records a reviewer should look at, and what their decision does.

A scan (:mod:`looplab.learn.labelscan`) or another check queues a record with a reason and a
score (lower = more suspect). A reviewer decides each item:

* ``keep``: the given label is right. An annotation of origin ``review`` with that label is
  added, so the record's label is settled and later scans leave it alone.
* ``relabel`` to another label: the answers that carried the suspect label become
  ``superseded`` (kept, never trained on) and the review's answer is added; the training set
  prefers a record's review answer to every other one (:mod:`looplab.learn.dataset`).
* ``ambiguous``: no label can be trusted; a review annotation without a label keeps the record
  out of training until someone decides again.

Every decision is audited in its own transaction. The share of decided items that reviewers
relabeled is the scan's precision as measured online, shown with a Wilson interval by
:func:`summary`: the only precision figure that counts the project's own labels and reviewers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from looplab.core import audit
from looplab.core.errors import Conflict, Invalid, NotFound
from looplab.core.tables import (
    REVIEW_REASONS,
    Annotation,
    Job,
    Project,
    ReviewItem,
    User,
    utcnow,
)
from looplab.trust.gold import wilson_interval

#: A reviewer's decision -> the item's status afterwards.
DECISIONS = {"keep": "kept", "relabel": "relabeled", "ambiguous": "ambiguous"}
#: The job kind of a label-error scan (its handler lives in :mod:`looplab.learn.labelscan`).
SCAN_KIND = "label_scan"


@dataclass(frozen=True)
class Candidate:
    """A record to queue: how suspect it is, and the answers that gave the suspect label."""

    record_id: int
    score: float
    given_label: str | None
    suggested_label: str | None
    annotation_ids: list[int]


def reviewed_records(session: Session, project: Project) -> set[int]:
    """Records a reviewer has decided (an active review answer): settled, not to be queued."""
    return set(
        session.scalars(
            select(Annotation.record_id).where(
                Annotation.project_id == project.id,
                Annotation.origin == "review",
                Annotation.status == "active",
            )
        )
    )


def ambiguous_records(session: Session, project: Project) -> set[int]:
    """Records a reviewer marked ambiguous (an active review answer without a label): no label
    of theirs is trusted, so the training set leaves them out until someone decides again."""
    return set(
        session.scalars(
            select(Annotation.record_id).where(
                Annotation.project_id == project.id,
                Annotation.origin == "review",
                Annotation.status == "active",
                Annotation.label.is_(None),
            )
        )
    )


def queue_candidates(
    session: Session,
    project: Project,
    candidates: Sequence[Candidate],
    *,
    reason: str,
    job_id: int | None,
) -> int:
    """Queue ``candidates`` for review; returns how many were queued.

    Open items of the same reason from an earlier run are dropped first: they were suggestions
    from an older model of the labels, and the new run ranks the records afresh. Decided items
    stay (they are the measured precision), and records already decided are not queued again.
    """
    if reason not in REVIEW_REASONS:
        raise Invalid(f"unknown review reason {reason!r}; valid: {', '.join(REVIEW_REASONS)}")
    session.execute(
        delete(ReviewItem).where(
            ReviewItem.project_id == project.id,
            ReviewItem.reason == reason,
            ReviewItem.status == "open",
        )
    )
    settled = reviewed_records(session, project)
    fresh = [c for c in candidates if c.record_id not in settled]
    session.add_all(
        ReviewItem(
            project_id=project.id,
            record_id=c.record_id,
            reason=reason,
            score=float(c.score),
            given_label=c.given_label,
            suggested_label=c.suggested_label,
            annotation_ids=list(c.annotation_ids),
            status="open",
            job_id=job_id,
        )
        for c in fresh
    )
    return len(fresh)


def list_items(
    session: Session, project: Project, *, status: str = "open", limit: int = 50, offset: int = 0
) -> tuple[list[ReviewItem], int]:
    """A page of ``project``'s items of ``status``, most suspect first, and how many there are."""
    where = (ReviewItem.project_id == project.id, ReviewItem.status == status)
    total = session.scalar(select(func.count()).select_from(ReviewItem).where(*where)) or 0
    rows = session.scalars(
        select(ReviewItem)
        .where(*where)
        .order_by(ReviewItem.score, ReviewItem.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def get_item(
    session: Session, project: Project, item_id: int, *, for_update: bool = False
) -> ReviewItem:
    """``project``'s review item ``item_id``; :class:`NotFound` otherwise.

    ``for_update`` locks the row (PostgreSQL) until the transaction ends: two reviewers
    deciding one item at once are served one after the other, and the second finds it decided.
    """
    item = session.get(ReviewItem, item_id, with_for_update=for_update)
    if item is None or item.project_id != project.id:
        raise NotFound(
            f"no review item {item_id} in project {project.name!r}",
            details={"item_id": item_id},
        )
    return item


def _check_decision(project: Project, item: ReviewItem, decision: str, label: str | None) -> None:
    if decision not in DECISIONS:
        raise Invalid(
            f"unknown decision {decision!r}; valid decisions: {', '.join(DECISIONS)}",
            details={"field": "decision", "value": decision},
        )
    if decision == "relabel":
        if label is None:
            raise Invalid("relabel needs the new label", details={"field": "label"})
        if label not in project.labels:
            raise Invalid(
                f"unknown label {label!r}; valid labels: {', '.join(project.labels)}",
                details={"field": "label", "value": label},
            )
        if label == item.given_label:
            raise Invalid(
                f"{label!r} is the given label: decide 'keep' to confirm it",
                details={"field": "label", "value": label},
            )
    elif label is not None:
        raise Invalid(f"{decision!r} takes no label", details={"field": "label", "value": label})
    if item.status != "open":
        raise Conflict(
            f"review item {item.id} was already decided ({item.status} by {item.decided_by})",
            code="stale",
            details={"item_id": item.id, "status": item.status},
        )


def _active(session: Session, ids: Sequence[int]) -> list[int]:
    if not ids:
        return []
    return list(
        session.scalars(
            select(Annotation.id).where(Annotation.id.in_(ids), Annotation.status == "active")
        )
    )


def decide(
    session: Session,
    project: Project,
    user: User,
    item: ReviewItem,
    decision: str,
    label: str | None = None,
) -> ReviewItem:
    """Apply a reviewer's ``decision`` (``keep``, ``relabel`` or ``ambiguous``) to ``item``.

    Raises :class:`Invalid` for an unknown decision or label, and :class:`Conflict` (code
    ``stale``) when the item was decided already or none of the answers it judged is still
    active (the record's label changed since it was queued). Nothing is written then.
    """
    _check_decision(project, item, decision, label)
    suspect = _active(session, item.annotation_ids or [])
    if item.annotation_ids and not suspect:
        raise Conflict(
            f"review item {item.id} is stale: the answers that gave record {item.record_id} "
            f"the label {item.given_label!r} are no longer active; run the scan again",
            code="stale",
            details={"item_id": item.id, "record_id": item.record_id},
        )
    answer = item.given_label if decision == "keep" else label
    earlier = _active_reviews(session, item.record_id)
    superseded = earlier + (suspect if decision == "relabel" else [])
    if superseded:
        session.execute(
            update(Annotation).where(Annotation.id.in_(superseded)).values(status="superseded")
        )
    note = Annotation(
        project_id=project.id,
        record_id=item.record_id,
        annotator_id=user.id,
        value={"label": answer} if decision != "ambiguous" else {"ambiguous": True},
        label=answer,
        origin="review",
        status="active",
    )
    session.add(note)
    session.flush()
    closed = _close(session, item, DECISIONS[decision], user.name, note.id)
    audit.record(
        session,
        actor=user.name,
        action="review.decide",
        entity_type="review_item",
        entity_id=item.id,
        project_id=project.id,
        details={
            "record_id": item.record_id,
            "reason": item.reason,
            "decision": decision,
            "given_label": item.given_label,
            "label": answer,
            "annotation_id": note.id,
            "superseded": superseded,
            "closed_items": closed,
        },
    )
    return item


def _active_reviews(session: Session, record_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Annotation.id).where(
                Annotation.record_id == record_id,
                Annotation.origin == "review",
                Annotation.status == "active",
            )
        )
    )


def _close(session: Session, item: ReviewItem, status: str, who: str, note_id: int) -> list[int]:
    """Close ``item`` and the record's other open items: one decision settles the record."""
    now = utcnow()
    others = list(
        session.scalars(
            select(ReviewItem).where(
                ReviewItem.record_id == item.record_id,
                ReviewItem.status == "open",
                ReviewItem.id != item.id,
            )
        )
    )
    for row in [item, *others]:
        row.status, row.decided_by, row.decided_at, row.decision_id = status, who, now, note_id
    return [row.id for row in others]


def last_scan(session: Session, project: Project) -> Job | None:
    """The project's latest label-error scan job (queued, running or done), or None."""
    return session.scalar(
        select(Job)
        .where(Job.project_id == project.id, Job.kind == SCAN_KIND)
        .order_by(Job.id.desc())
        .limit(1)
    )


def _counts(session: Session, project: Project, job_id: int | None) -> dict[str, int]:
    query = select(ReviewItem.status, func.count()).where(
        ReviewItem.project_id == project.id, ReviewItem.reason == "label_error"
    )
    if job_id is not None:
        query = query.where(ReviewItem.job_id == job_id)
    counts = dict(session.execute(query.group_by(ReviewItem.status)).tuples().all())
    return {status: int(counts.get(status, 0)) for status in ("open", *DECISIONS.values())}


def precision(counts: dict[str, int]) -> dict[str, Any]:
    """Reviewers' confirm rate (relabeled / decided) with a 95% Wilson interval.

    ``ambiguous`` counts as decided and not confirmed: the figure is a floor of the scan's
    precision, never flattered by records nobody could settle.
    """
    decided = counts["kept"] + counts["relabeled"] + counts["ambiguous"]
    share = wilson_interval(counts["relabeled"], decided)
    return {
        "decided": decided,
        "confirmed": counts["relabeled"],
        "rate": None if decided == 0 else share.rate,
        "low": share.low,
        "high": share.high,
    }


def summary(session: Session, project: Project) -> dict[str, Any]:
    """The last scan (when, records scanned, suspects), its queue and its measured precision."""
    job = last_scan(session, project)
    out: dict[str, Any] = {"project": project.name, "scan": None}
    if job is not None:
        result = job.result or {}
        out["scan"] = {
            "job_id": job.id,
            "status": job.status,
            "error": job.error,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            **{k: result.get(k) for k in _SCAN_FIELDS},
        }
        counts = _counts(session, project, job.id)
        out["scan"]["counts"] = counts
        out["scan"]["precision"] = precision(counts)
    every = _counts(session, project, None)
    out["all_scans"] = {"counts": every, "precision": precision(every)}
    return out


_SCAN_FIELDS = (
    "skipped",
    "n_scanned",
    "n_suspects",
    "n_queued",
    "n_low_consensus",
    "n_flagged_annotator",
    "estimated_error_share",
    "estimators",
    "folds",
    "seconds",
)
