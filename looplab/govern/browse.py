"""The record browser: search a project's records by text and metadata, filter them by label,
annotator, split, disagreement and flags, a page at a time.

Every filter is one SQL condition on ``records``, so a page costs one indexed query however
large the project is. The split is the one the latest model version trained or tested the
record's answers in (its lineage), not a guess: a record no version has read is in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from looplab.core.errors import Invalid, did_you_mean
from looplab.core.tables import (
    Annotation,
    LineageRun,
    ModelVersion,
    Project,
    Record,
    ReviewItem,
    User,
)
from looplab.learn import lineage

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Filters:
    """What to look for; None (or False) leaves a filter out."""

    text: str | None = None
    label: str | None = None
    annotator: str | None = None
    split: str | None = None
    disagreement: bool = False
    flagged: bool = False


def _answered(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        Annotation.record_id == Record.id, Annotation.status == "active", *conditions
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(session: Session, project: Project, f: Filters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [Record.project_id == project.id]
    if f.text:
        pattern = _like(f.text)
        out.append(
            cast(Record.payload, String).ilike(pattern, escape="\\")
            | cast(Record.meta, String).ilike(pattern, escape="\\")
        )
    if f.label is not None:
        if f.label not in project.labels:
            raise Invalid(
                f"unknown label {f.label!r}; valid labels: {', '.join(project.labels)}",
                details={"field": "label", "value": f.label},
            )
        out.append(_answered(Annotation.label == f.label))
    if f.annotator is not None:
        user_id = session.scalar(select(User.id).where(User.name == f.annotator))
        if user_id is None:
            names = session.scalars(select(User.name).order_by(User.name))
            raise Invalid(
                f"no annotator named {f.annotator!r}{did_you_mean(f.annotator, names, 'users')}",
                details={"field": "annotator", "value": f.annotator},
            )
        out.append(_answered(Annotation.annotator_id == user_id))
    if f.split is not None:
        out.append(_in_split(session, project, f.split))
    if f.disagreement:
        out.append(Record.id.in_(_disagreeing(project)))
    if f.flagged:
        out.append(_flagged())
    return out


def _in_split(session: Session, project: Project, split: str) -> ColumnElement[bool]:
    if split not in SPLITS:
        raise Invalid(
            f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}",
            details={"field": "split", "value": split},
        )
    latest = session.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    # The version's records once (an uncorrelated IN), not an EXISTS per record: SQLite ran that
    # by walking the version's runs for every record (148 s on 16k records, 10k labels).
    seen = (
        select(Annotation.record_id)
        .join(LineageRun, LineageRun.annotation_id == Annotation.id)
        .where(
            lineage.covering(project.id, latest if latest is not None else -1),
            LineageRun.split == split,
        )
    )
    return Record.id.in_(seen)


def _disagreeing(project: Project) -> Any:
    """Records whose active answers (reviews aside) carry two or more labels."""
    return (
        select(Annotation.record_id)
        .where(
            Annotation.project_id == project.id,
            Annotation.status == "active",
            Annotation.origin != "review",
            Annotation.label.is_not(None),
        )
        .group_by(Annotation.record_id)
        .having(func.count(func.distinct(Annotation.label)) > 1)
    )


def _flagged() -> ColumnElement[bool]:
    """An open review item, or an answer from a quarantined annotator."""
    return exists().where(
        ReviewItem.record_id == Record.id, ReviewItem.status == "open"
    ) | exists().where(Annotation.record_id == Record.id, Annotation.status == "quarantined")


def search(
    session: Session, project: Project, filters: Filters, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of matching records (in id order) with their answers in brief, and the total."""
    where = _conditions(session, project, filters)
    total = session.scalar(select(func.count()).select_from(Record).where(*where)) or 0
    records = list(
        session.scalars(
            select(Record).where(*where).order_by(Record.id).limit(limit).offset(offset)
        )
    )
    briefs = _briefs(session, [r.id for r in records])
    open_items = set(
        session.scalars(
            select(ReviewItem.record_id).where(
                ReviewItem.record_id.in_([r.id for r in records]), ReviewItem.status == "open"
            )
        )
    )
    items = []
    for record in records:
        answers = briefs.get(record.id, [])
        voted = {a["label"] for a in answers if a["origin"] != "review" and a["status"] == "active"}
        labels = sorted({a["label"] for a in answers if a["label"] is not None})
        items.append(
            {
                "id": record.id,
                "payload": record.payload,
                "meta": record.meta or {},
                "labels": labels,
                "annotators": sorted({a["annotator"] for a in answers if a["annotator"]}),
                "n_answers": len(answers),
                "disagreement": len(voted) > 1,
                "flagged": record.id in open_items
                or any(a["status"] == "quarantined" for a in answers),
            }
        )
    return items, int(total)


def _briefs(session: Session, record_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Record -> its active and quarantined answers (label, annotator, origin, status)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not record_ids:
        return out
    rows = session.execute(
        select(
            Annotation.record_id, Annotation.label, User.name, Annotation.origin, Annotation.status
        )
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(
            Annotation.record_id.in_(record_ids),
            Annotation.status.in_(("active", "quarantined")),
            Annotation.label.is_not(None),
        )
    ).tuples()
    for record_id, label, name, origin, status in rows:
        out.setdefault(record_id, []).append(
            {"label": label, "annotator": name, "origin": origin, "status": status}
        )
    return out
