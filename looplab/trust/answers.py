"""The store's answers as trust reads them: what may teach, what people said, what is known.

* :func:`for_training` -- each record's training examples under the project's ``consensus``
  (the one call :mod:`looplab.learn.dataset` makes);
* :func:`people_matrix` -- people's answers as an items x annotators
  :class:`~looplab.trust.matrix.LabelMatrix`, with gold, seconds and time batches beside it (what
  agreement and reliability read);
* :func:`gold_labels` -- the known answer of each gold record.

Only ``active`` annotations teach or count: a quarantined person's answers (status
``quarantined``), superseded and skipped ones are left out here, once, for every reader.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import projects
from looplab.core.tables import Annotation, GoldAnswer, Project, Record, User
from looplab.trust import MISSING
from looplab.trust.labels import Answer, TrainingLabels, training_labels

#: Origins that teach the model: imported labels, people's answers and feedback, and reviewers'
#: decisions. Quarantined or superseded answers never do (their status is not ``active``).
TEACHING_ORIGINS = ("human", "import", "feedback", "review")
#: Origins of people's answers given through looplab: the columns of agreement and reliability.
PEOPLE = ("human", "feedback")


def gold_labels(session: Session, project: Project) -> dict[int, str]:
    """Record id -> known answer, for every gold record of ``project``."""
    rows = session.execute(
        select(GoldAnswer.record_id, GoldAnswer.label).where(GoldAnswer.project_id == project.id)
    ).tuples()
    return {int(rid): str(label) for rid, label in rows}


def teaching_answers(
    session: Session, project: Project
) -> tuple[dict[int, list[Answer]], dict[int, int]]:
    """Each record's active, trainable answers in id order, and the rows each record stands for."""
    rows = session.execute(
        select(
            Annotation.record_id,
            Annotation.id,
            Annotation.annotator_id,
            Annotation.label,
            Annotation.origin,
            Annotation.row_count,
            Record.row_count,
        )
        .join(Record, Record.id == Annotation.record_id)
        .where(
            Annotation.project_id == project.id,
            Annotation.status == "active",
            Annotation.origin.in_(TEACHING_ORIGINS),
            Annotation.label.is_not(None),
        )
        .order_by(Annotation.record_id, Annotation.id)
    ).tuples()
    answers: dict[int, list[Answer]] = defaultdict(list)
    row_counts: dict[int, int] = {}
    for record_id, aid, person, label, origin, rows_of, record_rows in rows:
        answers[record_id].append((aid, person, str(label), origin, int(rows_of or 1)))
        row_counts[record_id] = int(record_rows or 1)
    return dict(answers), row_counts


def for_training(session: Session, project: Project) -> TrainingLabels:
    """Each record's training examples (label, rows, answers behind it, confidence)."""
    answers, row_counts = teaching_answers(session, project)
    return training_labels(
        answers,
        row_counts,
        gold=gold_labels(session, project),
        method=str(projects.setting(project, "consensus")),
        min_posterior=float(projects.setting(project, "consensus_min_posterior")),
        classes=[str(label) for label in project.labels],
    )


@dataclass(frozen=True)
class PeopleAnswers:
    """People's active answers as a label matrix, with what trust reads beside it."""

    values: np.ndarray
    """``(n_records, n_people)`` class indices, ``MISSING`` where a person did not answer."""
    records: list[int]
    people: list[str]
    classes: list[str]
    gold: np.ndarray
    """``(n_records,)`` known class of gold records, ``MISSING`` elsewhere."""
    seconds: np.ndarray
    """``(n_records, n_people)`` seconds each answer took, NaN where unknown."""
    answered_at: np.ndarray
    """``(n_records,)`` time of each record's first answer (numpy datetime64[s], UTC)."""


def people_matrix(
    session: Session,
    project: Project,
    *,
    only_overlap: bool = False,
    statuses: tuple[str, ...] = ("active",),
) -> PeopleAnswers:
    """People's answers (labeling page and feedback; a person's latest per record).

    ``only_overlap`` keeps the records at least two people answered (agreement is measured
    there); ``statuses`` which answers count (judging a person reads their quarantined ones too).
    """
    rows = session.execute(
        select(
            Annotation.record_id,
            User.name,
            Annotation.label,
            Annotation.seconds,
            Annotation.created_at,
        )
        .join(User, User.id == Annotation.annotator_id)
        .where(
            Annotation.project_id == project.id,
            Annotation.status.in_(statuses),
            Annotation.origin.in_(PEOPLE),
            Annotation.label.is_not(None),
        )
        .order_by(Annotation.id)
    ).all()
    # A person's later answer of a record wins (a feedback verdict after a labeling answer).
    cells: dict[tuple[int, str], tuple[str, float | None, dt.datetime]] = {}
    for rid, person, label, seconds, at in rows:
        cells[(int(rid), str(person))] = (str(label), seconds, at)
    if only_overlap:
        per_record: dict[int, int] = defaultdict(int)
        for rid, _ in cells:
            per_record[rid] += 1
        cells = {key: v for key, v in cells.items() if per_record[key[0]] >= 2}
    return _matrix(cells, project, gold_labels(session, project))


def _matrix(
    cells: dict[tuple[int, str], tuple[str, float | None, dt.datetime]],
    project: Project,
    gold: dict[int, str],
) -> PeopleAnswers:
    classes = [str(c) for c in project.labels]
    classes += sorted({label for label, _, _ in cells.values()} - set(classes))
    cls = {name: k for k, name in enumerate(classes)}
    records = sorted({rid for rid, _ in cells})
    people = sorted({person for _, person in cells})
    row = {rid: i for i, rid in enumerate(records)}
    col = {person: j for j, person in enumerate(people)}
    values = np.full((len(records), len(people)), MISSING, dtype=np.int64)
    seconds = np.full(values.shape, np.nan)
    first: dict[int, dt.datetime] = {}
    for (rid, person), (label, took, at) in cells.items():
        values[row[rid], col[person]] = cls[label]
        if took is not None:
            seconds[row[rid], col[person]] = float(took)
        moment = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
        first[rid] = min(first.get(rid, moment), moment)
    known = np.array([cls.get(gold.get(rid, ""), MISSING) for rid in records], dtype=np.int64)
    answered_at = np.array([np.datetime64(first[rid], "s") for rid in records], dtype="M8[s]")
    return PeopleAnswers(values, records, people, classes, known, seconds, answered_at)
