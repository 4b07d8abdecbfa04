"""What one window of served predictions holds: its latency and label mix, and its accuracy
from feedback, counted when read.

Both the ``monitor`` job (:mod:`looplab.watch.monitor`) that closes windows, the reference code that
measures drift since a time (:mod:`looplab.watch.reference`), the triggers that judge windows
(:mod:`looplab.watch.triggers`) and the views people read (:mod:`looplab.watch.overview`) use
these, so they live below all four.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from looplab.core.tables import Annotation, AuditSample, Feedback, MonitorWindow
from looplab.learn.intervals import wilson_interval
from looplab.watch import levels


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(latencies_ms, dtype=float), [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def mix(predicted: Sequence[str]) -> dict[str, float]:
    labels, counts = np.unique(np.asarray(predicted, dtype=str), return_counts=True)
    return {str(label): float(c / counts.sum()) for label, c in zip(labels, counts, strict=True)}


#: Join condition: feedback belongs to the window, and version, of the prediction it judges.
FEEDBACK_OF_WINDOW = and_(
    Feedback.project_id == MonitorWindow.project_id,
    Feedback.model_version == MonitorWindow.model_version,
    Feedback.prediction_seq >= MonitorWindow.first_seq,
    Feedback.prediction_seq <= MonitorWindow.last_seq,
)


def window_feedback(
    session: Session,
    project_id: int,
    *,
    version: int | None = None,
    ids: Collection[int] | None = None,
) -> dict[int, dict[str, Any]]:
    """Accuracy from feedback of the project's windows, by window id, as of now.

    Feedback counts in the window, and for the model version, of the prediction it judges,
    whenever it arrives: a label given a week later improves that week-old window's figure and
    never a later window about other traffic. Late labels are normal in production, so the figure
    is counted when read (every ``/monitor``, ``looplab monitor``, trigger decision), not frozen
    in the window's report when it closed: a window's accuracy keeps gaining labels with no job
    to run, and what people read is never staler than the store.

    One statement: each window's feedback is a range scan of ``ix_feedback_window`` (project,
    version, ``prediction_seq``), so the cost grows with the windows asked for and their
    feedback, not with the predictions logged. ``version`` limits it to one version's windows,
    ``ids`` to those windows. Windows without feedback get ``n == 0``.
    """
    query = (
        select(MonitorWindow.id, Feedback.accepted, Feedback.label, func.count())
        .join(Feedback, FEEDBACK_OF_WINDOW)
        .where(MonitorWindow.project_id == project_id)
        .group_by(MonitorWindow.id, Feedback.accepted, Feedback.label)
    )
    if version is not None:
        query = query.where(MonitorWindow.model_version == version)
    if ids is not None:
        query = query.where(MonitorWindow.id.in_(list(ids)))
    verdicts: dict[int, list[tuple[bool, str]]] = {}
    for window_id, accepted, label, n in session.execute(query).tuples():
        verdicts.setdefault(window_id, []).extend([(bool(accepted), str(label))] * n)
    return {
        window_id: {**accuracy_of(rows), "selective": True} for window_id, rows in verdicts.items()
    }


def accuracy_of(verdicts: Sequence[tuple[bool, str]]) -> dict[str, Any]:
    """Accuracy with its Wilson interval and the true labels' counts of ``(right, label)`` pairs."""
    n = len(verdicts)
    k = sum(1 for right, _ in verdicts if right)
    labels: dict[str, int] = {}
    for _, label in verdicts:
        labels[label] = labels.get(label, 0) + 1
    low, high = wilson_interval(k, n)
    return {
        "n": n,
        "accepted": k,
        "accuracy": k / n if n else None,
        "ci_low": low if n else None,
        "ci_high": high if n else None,
        "labels": labels,
    }


def window_audit(
    session: Session, project_id: int, *, ids: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Accuracy on the audit sample of the project's windows, by window id, as of now.

    An audit sample's true label is the first human answer on its record given after it was
    drawn (:class:`looplab.core.tables.AuditSample`); samples not answered yet do not count.
    Windows without an answered sample are left out.
    """
    query = (
        select(MonitorWindow.id, AuditSample.id, AuditSample.label, Annotation.label)
        .join(
            AuditSample,
            and_(
                AuditSample.project_id == MonitorWindow.project_id,
                AuditSample.model_version == MonitorWindow.model_version,
                AuditSample.prediction_seq >= MonitorWindow.first_seq,
                AuditSample.prediction_seq <= MonitorWindow.last_seq,
            ),
        )
        .join(
            Annotation,
            and_(
                Annotation.record_id == AuditSample.record_id,
                Annotation.origin == "human",
                Annotation.status == "active",
                Annotation.created_at >= AuditSample.created_at,
            ),
        )
        .where(MonitorWindow.project_id == project_id)
        .order_by(AuditSample.id, Annotation.id)
    )
    if ids is not None:
        query = query.where(MonitorWindow.id.in_(list(ids)))
    first: dict[int, tuple[int, bool, str]] = {}
    for window_id, sample_id, predicted, truth in session.execute(query).tuples():
        if sample_id not in first and truth is not None:
            first[sample_id] = (window_id, str(predicted) == str(truth), str(truth))
    verdicts: dict[int, list[tuple[bool, str]]] = {}
    for window_id, right, truth in first.values():
        verdicts.setdefault(window_id, []).append((right, truth))
    return {
        window_id: {**accuracy_of(rows), "selective": False} for window_id, rows in verdicts.items()
    }


#: The feedback of a window no feedback has reached yet.
NO_FEEDBACK: dict[str, Any] = {
    "n": 0,
    "accepted": 0,
    "accuracy": None,
    "ci_low": None,
    "ci_high": None,
    "labels": {},
    "selective": True,
}
#: The audit figure of a window no answered audit sample has reached yet.
NO_AUDIT: dict[str, Any] = {**NO_FEEDBACK, "selective": False}


def _clusters(ids: Sequence[int], gap: int) -> list[list[int]]:
    """Sorted ids cut where two neighbours are more than ``gap`` apart."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and i - out[-1][-1] <= gap:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _predecessors(
    session: Session, project_id: int, rows: Sequence[MonitorWindow], depth: int
) -> dict[int, list[int]]:
    """For each window of ``rows``, the ids of up to ``depth`` windows of its version before it.

    The windows asked for come in runs (the latest, a window far back): each run costs two
    statements, its ``depth`` predecessors and the ids within it, so the cost grows with the
    windows asked for, never with the history between them.
    """
    out: dict[int, list[int]] = {}
    for version in {w.model_version for w in rows}:
        of_version = (
            MonitorWindow.project_id == project_id,
            MonitorWindow.model_version == version,
        )
        mine = [w.id for w in rows if w.model_version == version]
        for run in _clusters(mine, depth + 1):
            before = session.scalars(
                select(MonitorWindow.id)
                .where(*of_version, MonitorWindow.id < run[0])
                .order_by(MonitorWindow.id.desc())
                .limit(depth)
            )
            within = session.scalars(
                select(MonitorWindow.id).where(
                    *of_version, MonitorWindow.id >= run[0], MonitorWindow.id <= run[-1]
                )
            )
            ids = sorted({*before, *within})
            at = {window_id: i for i, window_id in enumerate(ids)}
            for window_id in run:
                i = at[window_id]
                out[window_id] = ids[max(0, i - depth) : i][::-1]
    return out


def judge_windows(
    session: Session, project_id: int, rows: Sequence[MonitorWindow], *, margin: float
) -> dict[int, dict[str, Any]]:
    """Each window's level as of its labels now, its labels pooled with its version's last ones.

    By window id: ``{"judged": assess_window(...), "feedback": ..., "audit": ...}``. The label
    tests pool up to :data:`looplab.watch.levels.POOLS` consecutive windows
    (:func:`looplab.watch.levels.assess_window`), so the windows just before each are read too.
    """
    if not rows:
        return {}
    depth = max(levels.POOLS) - 1
    earlier = _predecessors(session, project_id, rows, depth)
    known = {w.id: w for w in rows}
    missing = {i for ids in earlier.values() for i in ids} - set(known)
    if missing:
        known.update(
            (w.id, w)
            for w in session.scalars(select(MonitorWindow).where(MonitorWindow.id.in_(missing)))
        )
    feedback = window_feedback(session, project_id, ids=list(known))
    audits = window_audit(session, project_id, ids=list(known))

    def labelled(window_id: int) -> levels.Window:
        return (
            known[window_id].report or {},
            feedback.get(window_id, NO_FEEDBACK),
            audits.get(window_id, NO_AUDIT),
        )

    out = {}
    for w in rows:
        report, fb, au = labelled(w.id)
        judged = levels.assess_window(
            report, fb, au, earlier=[labelled(i) for i in earlier[w.id]], margin=margin
        )
        out[w.id] = {"judged": judged, "feedback": fb, "audit": au}
    return out
