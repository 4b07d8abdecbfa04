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
from looplab.core.tables import Annotation, Job, Project
from looplab.learn import dataset, train
from looplab.learn.dataset import LabeledSet
from looplab.trust import label_errors, review

#: Fewest labeled records, and per class, before a scan means anything.
MIN_RECORDS = 30
MIN_PER_CLASS = 3
#: Folds of the out-of-fold probabilities.
FOLDS = 5


def scan_labels(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Scan the project's labeled records and queue the suspects for review (a job handler)."""
    started = time.perf_counter()
    with store.read() as session:
        project = jobs.project_of(session, job)
        data = dataset.labeled_set(session, project)
        settled = review.reviewed_records(session, project)
    records, labels = one_label_per_record(data)
    too_few = too_few_labels(labels)
    if too_few:
        return {"skipped": too_few, "n_scanned": len(records)}
    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels], dtype=np.int64)
    seed = int(job.params.get("seed", 0))
    X = features(project, [data.payloads[i] for i in records])
    estimators = estimators_for(X, seed)
    probas = label_errors.out_of_fold_probabilities(X, y, estimators, folds=FOLDS, seed=seed)
    found = label_errors.suspects(y, probas)
    ranked = [
        (data.record_ids[records[i]], float(score), labels[i], classes[int(suggested)])
        for i, score, suggested in zip(
            found.indices.tolist(), found.scores.tolist(), found.suggested.tolist(), strict=True
        )
        if data.record_ids[records[i]] not in settled
    ]
    with store.write() as session:
        jobs.hold(session, job, lease_seconds=settings.job_lease_seconds)
        project = jobs.project_of(session, job)
        behind = answers_with_label(session, project, [r[0] for r in ranked])
        candidates = [
            review.Candidate(rid, score, given, suggested, behind.get((rid, given), []))
            for rid, score, given, suggested in ranked
        ]
        queued = review.queue_candidates(
            session, project, candidates, reason="label_error", job_id=job.id
        )
    return {
        "n_scanned": len(records),
        "n_suspects": len(found.indices),
        "n_queued": queued,
        "estimated_error_share": round(len(found.indices) / len(records), 4),
        "classes": classes,
        "estimators": [_name(e) for e in estimators],
        "folds": FOLDS,
        "seconds": round(time.perf_counter() - started, 3),
    }


def one_label_per_record(data: LabeledSet) -> tuple[list[int], list[str]]:
    """Per record: the index of its heaviest example and that example's label.

    A repeated input observed with several labels trains with each of them; the scan judges
    the one most of its rows carry (the others are observations of P(y|x), not errors).
    """
    best: dict[int, int] = {}
    for i, record_id in enumerate(data.record_ids):
        if record_id not in best or data.weights[i] > data.weights[best[record_id]]:
            best[record_id] = i
    order = sorted(best.values())
    return order, [data.labels[i] for i in order]


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
                Annotation.origin.in_(dataset.TRAINING_ORIGINS),
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
