"""A record's full history: every answer (who, when, origin, status), the model versions each
answer taught (training lineage), the consensus of its answers, the label training uses now,
the model's suggestion and the review items about it.

What a reviewer reads before deciding, and what an auditor reads after: nothing here is
inferred after the fact, every line comes from a stored row (``annotations``,
``training_labels``, ``review_items``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import projects
from looplab.core.tables import (
    Annotation,
    GoldAnswer,
    ModelVersion,
    Project,
    Record,
    ReviewItem,
    TrainingLabel,
    User,
    version_name,
)
from looplab.trust import answers as teaching
from looplab.trust import labels


def history(session: Session, project: Project, record_id: int) -> dict[str, Any]:
    """Everything stored about ``project``'s record ``record_id`` (:class:`NotFound` if none)."""
    record = projects.get_record(session, project, record_id)
    answers = _answers(session, record)
    gold = session.scalar(select(GoldAnswer).where(GoldAnswer.record_id == record.id))
    known = None if gold is None else gold.label
    return {
        "record": {
            "id": record.id,
            "payload": record.payload,
            "meta": record.meta or {},
            "row_count": record.row_count,
            "created_at": record.created_at,
        },
        "answers": answers,
        "consensus": consensus_of(answers),
        "training_label": _training_label(answers, record.row_count, known),
        "gold": None
        if gold is None
        else {
            "label": gold.label,
            "source": gold.source,
            "created_by": gold.created_by,
            "created_at": gold.created_at,
        },
        "suggestion": _suggestion(session, record),
        "reviews": [_item(i) for i in _items(session, record.id)],
    }


def _answers(session: Session, record: Record) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Annotation, User.name)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Annotation.record_id == record.id)
        .order_by(Annotation.id)
    ).all()
    taught = _lineage(session, [a.id for a, _ in rows])
    return [
        {
            "id": a.id,
            "annotator": name,
            "annotator_id": a.annotator_id,
            "label": a.label,
            "ambiguous": bool((a.value or {}).get("ambiguous")),
            "origin": a.origin,
            "status": a.status,
            "seconds": a.seconds,
            "row_count": a.row_count,
            "ground_truth": a.ground_truth,
            "created_at": a.created_at,
            "models": taught.get(a.id, []),
        }
        for a, name in rows
    ]


def _lineage(session: Session, annotation_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Annotation -> the versions it was trained or tested on (and the rows it stood for)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not annotation_ids:
        return out
    rows = session.execute(
        select(TrainingLabel.annotation_id, ModelVersion.version, TrainingLabel.split)
        .join(ModelVersion, ModelVersion.id == TrainingLabel.model_id)
        .add_columns(TrainingLabel.weight, ModelVersion.stage)
        .where(TrainingLabel.annotation_id.in_(annotation_ids))
        .order_by(ModelVersion.version)
    ).tuples()
    for annotation_id, version, split, weight, stage in rows:
        out.setdefault(annotation_id, []).append(
            {"version": version_name(version), "split": split, "weight": weight, "stage": stage}
        )
    return out


def consensus_of(answers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The vote of the active answers other than reviews: label, its share, and every count.

    Each person counts once per label (as :func:`looplab.trust.labels.consensus` counts), so
    ``confidence`` is the winning label's share of the votes: 1.0 for unanimity.
    """
    votes = [
        (a["id"], a["annotator_id"], a["label"])
        for a in answers
        if a["status"] == "active" and a["origin"] != "review" and a["label"] is not None
    ]
    if not votes:
        return None
    label = labels.consensus(votes)
    voters = {(("import", aid) if who is None else who, lab) for aid, who, lab in votes}
    counts = Counter(lab for _, lab in voters)
    return {
        "label": label,
        "confidence": counts[label] / sum(counts.values()),
        "votes": dict(counts),
        "n_answers": len(votes),
    }


def _training_label(
    answers: list[dict[str, Any]], row_count: int, gold: str | None
) -> dict[str, Any]:
    """The label the next training set gives the record, and why (or why none).

    Gold answers and reviews settle a record; otherwise the majority of its answers (a
    Dawid-Skene project weighs them over the whole project at training time, which one
    record's history cannot repeat, so ``why`` says which rule was read).
    """
    active = [a for a in answers if a["status"] == "active"]
    if any(a["origin"] == "review" and a["ambiguous"] for a in active):
        return {"label": None, "why": "a reviewer marked it ambiguous: left out of training"}
    trainable: list[labels.Answer] = [
        (a["id"], a["annotator_id"], a["label"], a["origin"], int(a["row_count"] or 1))
        for a in active
        if a["origin"] in teaching.TEACHING_ORIGINS and a["label"] is not None
    ]
    if not trainable:
        return {"label": None, "why": "no active answer to train on"}
    decided = labels.training_labels(
        {0: trainable}, {0: row_count}, gold={0: gold} if gold is not None else {}
    )
    examples = decided.examples.get(0) or [decided.held[0]]
    label = max(examples, key=lambda e: e.weight).label
    if gold is not None:
        why = "its gold answer"
    elif any(a[3] == "review" for a in trainable):
        why = "a reviewer's decision"
    else:
        why = "the majority of its answers"
    return {"label": label, "why": why, "examples": [[e.label, e.weight] for e in examples]}


def _suggestion(session: Session, record: Record) -> dict[str, Any] | None:
    if record.pred_label is None:
        return None
    return {
        "label": record.pred_label,
        "confidence": record.pred_confidence,
        "model": None if record.pred_model is None else version_name(record.pred_model),
    }


def _items(session: Session, record_id: int) -> list[ReviewItem]:
    return list(
        session.scalars(
            select(ReviewItem).where(ReviewItem.record_id == record_id).order_by(ReviewItem.id)
        )
    )


def _item(item: ReviewItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "reason": item.reason,
        "score": item.score,
        "given_label": item.given_label,
        "suggested_label": item.suggested_label,
        "status": item.status,
        "decided_by": item.decided_by,
        "decided_at": item.decided_at,
        "job_id": item.job_id,
        "created_at": item.created_at,
    }
