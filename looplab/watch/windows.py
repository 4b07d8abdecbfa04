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

from looplab.core.tables import Feedback, MonitorWindow
from looplab.learn.intervals import wilson_interval


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
        select(MonitorWindow.id, Feedback.accepted, func.count())
        .join(Feedback, FEEDBACK_OF_WINDOW)
        .where(MonitorWindow.project_id == project_id)
        .group_by(MonitorWindow.id, Feedback.accepted)
    )
    if version is not None:
        query = query.where(MonitorWindow.model_version == version)
    if ids is not None:
        query = query.where(MonitorWindow.id.in_(list(ids)))
    counts: dict[int, dict[bool, int]] = {}
    for window_id, accepted, n in session.execute(query).tuples():
        counts.setdefault(window_id, {})[bool(accepted)] = n
    out = {}
    for window_id, by_verdict in counts.items():
        n, k = sum(by_verdict.values()), by_verdict.get(True, 0)
        low, high = wilson_interval(k, n)
        out[window_id] = {"n": n, "accepted": k, "accuracy": k / n, "ci_low": low, "ci_high": high}
    return out


#: The feedback of a window no feedback has reached yet.
NO_FEEDBACK: dict[str, Any] = {
    "n": 0,
    "accepted": 0,
    "accuracy": None,
    "ci_low": None,
    "ci_high": None,
}
