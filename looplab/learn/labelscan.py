"""The label-error scan job: which labeled records probably carry a wrong label.

The records are read as the project's model reads them (the feature steps of
:func:`looplab.learn.train.build_pipeline`: TF-IDF for text, the typed columns for tables),
then :func:`looplab.trust.label_errors.out_of_fold_probabilities` fits a small ensemble k times
so that no record is judged by a model that saw its label, and
:func:`looplab.trust.label_errors.suspects` (confident learning) ranks the labels those
probabilities contradict. The suspects go to the review queue (:mod:`looplab.trust.review`).

The feature steps are fitted once on every labeled record, without labels (a vocabulary, a
scaling): no label leaks into the out-of-fold probabilities through them.

What the scan cannot catch: a label that is wrong the same way on most records of a kind (a
systematic error the model learns as the truth), a class too rare for the folds to learn (its
records are then all suspects), and any error on records no one labeled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.collect import schema as types
from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, Job, Project, Record
from looplab.learn import train
from looplab.trust import answers, label_errors, review, standing
from looplab.trust.labels import TrainingLabels

#: Fewest labeled records, and per class, before a scan means anything.
MIN_RECORDS = 30
MIN_PER_CLASS = 3
#: Folds of the out-of-fold probabilities.
FOLDS = 5


@dataclass
class Labeled:
    """One label per labeled record: what the scan judges."""

    record_ids: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)


def scan_labels(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Scan the project's labeled records and queue the suspects for review (a job handler).

    Three reasons are queued: ``label_error`` (confident learning), ``low_consensus`` (records
    the consensus held back from training, :mod:`looplab.trust.labels`) and
    ``flagged_annotator`` (trained records with an active answer of a person the reliability
    check flagged, the least confident consensus first). Gold records and records a reviewer
    decided are left alone.
    """
    started = time.perf_counter()
    seed = int(job.params.get("seed", 0))
    with store.read() as session:
        project = jobs.project_of(session, job)
        decided = answers.for_training(session, project)
        fixed = review.reviewed_records(session, project) | set(
            answers.gold_labels(session, project)
        )
        labeled = one_label_per_record(session, decided)
        flagged = flagged_answers(session, project)
    too_few = too_few_labels(labeled.labels)
    if too_few:
        return {"skipped": too_few, "n_scanned": len(labeled.record_ids)}
    ranked, figures = label_error_suspects(project, labeled, seed)
    others: dict[str, list[tuple[int, float, str, str | None]]] = {
        "label_error": list(ranked),
        "low_consensus": [
            (rid, e.confidence, e.label, None) for rid, e in sorted(decided.held.items())
        ],
        "flagged_annotator": [
            (rid, min(e.confidence for e in decided.examples[rid]), label, None)
            for rid, label in zip(labeled.record_ids, labeled.labels, strict=True)
            if rid in flagged
        ],
    }
    with store.write() as session:
        jobs.hold(session, job, lease_seconds=settings.job_lease_seconds)
        project = jobs.project_of(session, job)
        queued = {
            reason: _queue(session, project, [r for r in rows if r[0] not in fixed], reason, job.id)
            for reason, rows in others.items()
        }
    return {
        **figures,
        "n_scanned": len(labeled.record_ids),
        "n_queued": queued["label_error"],
        "n_low_consensus": queued["low_consensus"],
        "n_flagged_annotator": queued["flagged_annotator"],
        "seconds": round(time.perf_counter() - started, 3),
    }


def label_error_suspects(
    project: Project, labeled: Labeled, seed: int
) -> tuple[list[tuple[int, float, str, str]], dict[str, Any]]:
    """Confident learning on out-of-fold probabilities: (record, score, given, suggested)."""
    classes = sorted(set(labeled.labels))
    y = np.array([classes.index(label) for label in labeled.labels], dtype=np.int64)
    X = features(project, labeled.payloads)
    estimators = estimators_for(X, seed)
    probas = label_errors.out_of_fold_probabilities(X, y, estimators, folds=FOLDS, seed=seed)
    found = label_errors.suspects(y, probas)
    ranked = [
        (labeled.record_ids[i], float(score), labeled.labels[i], classes[int(suggested)])
        for i, score, suggested in zip(
            found.indices.tolist(), found.scores.tolist(), found.suggested.tolist(), strict=True
        )
    ]
    figures = {
        "n_suspects": len(ranked),
        "estimated_error_share": round(len(ranked) / len(y), 4),
        "classes": classes,
        "estimators": [_name(e) for e in estimators],
        "folds": FOLDS,
    }
    return ranked, figures


def _queue(
    session: Session,
    project: Project,
    rows: list[tuple[int, float, str, str | None]],
    reason: str,
    job_id: int | None,
) -> int:
    behind = answers_with_label(session, project, [r[0] for r in rows])
    candidates = [
        review.Candidate(rid, score, given, suggested, behind.get((rid, given), []))
        for rid, score, given, suggested in rows
    ]
    return review.queue_candidates(session, project, candidates, reason=reason, job_id=job_id)


def one_label_per_record(session: Session, decided: TrainingLabels) -> Labeled:
    """Per record: the label of its heaviest example, and the record's payload.

    A repeated input observed with several labels trains with each of them; the scan judges
    the one most of its rows carry (the others are observations of P(y|x), not errors).
    """
    out = Labeled()
    ids = sorted(decided.examples)
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(Record.id, Record.payload)
            .where(Record.id.in_(ids[start : start + 5000]))
            .order_by(Record.id)
        ).tuples()
        for record_id, payload in rows:
            best = max(decided.examples[record_id], key=lambda e: e.weight)
            out.record_ids.append(record_id)
            out.labels.append(best.label)
            out.payloads.append(payload)
    return out


def flagged_answers(session: Session, project: Project) -> set[int]:
    """Records with an active answer by a person whose standing is ``flagged``."""
    people = [
        uid for uid, row in standing.standings(session, project).items() if row.status == "flagged"
    ]
    if not people:
        return set()
    return set(
        session.scalars(
            select(Annotation.record_id).where(
                Annotation.project_id == project.id,
                Annotation.annotator_id.in_(people),
                Annotation.status == "active",
            )
        )
    )


def answers_with_label(
    session: Session, project: Project, record_ids: list[int]
) -> dict[tuple[int, str], list[int]]:
    """(record, label) -> the active trainable answers that gave the record that label."""
    out: dict[tuple[int, str], list[int]] = {}
    for start in range(0, len(record_ids), 5000):
        rows = session.execute(
            select(Annotation.record_id, Annotation.label, Annotation.id).where(
                Annotation.project_id == project.id,
                Annotation.record_id.in_(record_ids[start : start + 5000]),
                Annotation.status == "active",
                Annotation.origin.in_(answers.TEACHING_ORIGINS),
                Annotation.label.is_not(None),
            )
        ).tuples()
        for record_id, label, annotation_id in rows:
            out.setdefault((record_id, str(label)), []).append(annotation_id)
    return out


def too_few_labels(labels: list[str]) -> str | None:
    """Why ``labels`` are too few to scan, or None."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if len(labels) < MIN_RECORDS or len(counts) < 2:
        return (
            f"need {MIN_RECORDS} labeled records of 2+ labels to scan; have {len(labels)} "
            f"of {len(counts)}"
        )
    rare = sorted(label for label, n in counts.items() if n < MIN_PER_CLASS)
    if len(rare) == len(counts) - 1:
        return f"every label but one has fewer than {MIN_PER_CLASS} records: {', '.join(rare)}"
    return None


def features(project: Project, payloads: list[dict[str, Any]]) -> Any:
    """The records as the project's pipeline reads them (its steps before the classifier)."""
    stored = types.of_project(project) if project.task != "text" else None
    pipeline = train.build_pipeline(
        project.task, project.fields, None, stored.to_dict() if stored else None
    )
    steps = Pipeline(pipeline.steps[:-1])
    X = steps.fit_transform(payloads)
    if sp.issparse(X):
        return sp.csr_matrix(X)
    return np.nan_to_num(np.asarray(X, dtype=np.float64))


def estimators_for(X: Any, seed: int) -> list[Any]:
    """Dense features: the trust library's ensemble; sparse (TF-IDF): two linear models.

    Scaling and kernels do not suit sparse TF-IDF rows; a logistic regression and a
    Platt-scaled linear SVM make different mistakes on them at linear cost.
    """
    if not sp.issparse(X):
        return label_errors.default_estimators(seed, X.shape[0])
    return [
        LogisticRegression(C=10.0, max_iter=2000),
        CalibratedClassifierCV(LinearSVC(C=0.5), ensemble=False),
    ]


def _name(estimator: Any) -> str:
    if isinstance(estimator, Pipeline):
        return "+".join(type(step).__name__ for _, step in estimator.steps)
    return type(estimator).__name__
