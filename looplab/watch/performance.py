"""Model accuracy in production: estimated without labels, measured from feedback.

**Without labels** (confidence-based performance estimation, CBPE): if a model is calibrated, a
prediction made with confidence ``c`` (its top class probability) is right with probability
``c``. The number of right predictions in a window is then a Poisson-binomial variable, so the
expected accuracy is the mean confidence and its variance is ``sum c (1 - c) / n^2``; the
interval is the normal one around it. This only holds for a calibrated model, so the estimate
carries the calibration measured on held-out labeled data from the reference
(:func:`check_calibration`): when the expected calibration error there exceeds ``max_ece`` the
estimate is returned but marked ``trusted=False``. Calibration is checked where the labels are
(the reference); under covariate shift it is assumed to carry over, which is what makes the
estimate useful and also its main limit: a concept shift (same inputs, new labels) is invisible
without labels.

**With labels** (people's feedback on served predictions): :func:`accuracy_from_feedback`, a
proportion with a Wilson interval, which stays inside [0, 1] and keeps its coverage for small
``n`` and for accuracies near 1, where the normal interval does not.

Both window summaries are mergeable (:class:`ConfidenceSummary` keeps ``n``, the sum of ``c``
and the sum of ``c (1 - c)``), so a monitor updates them from the prediction log batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from looplab.learn.intervals import wilson_interval

__all__ = [
    "AccuracyEstimate",
    "Calibration",
    "ConfidenceSummary",
    "accuracy_from_feedback",
    "check_calibration",
    "estimate_accuracy",
]


def accuracy_from_feedback(
    correct: Any, *, confidence: float = 0.95
) -> tuple[float, float, float, int]:
    """Accuracy of feedback verdicts with a Wilson interval: ``(acc, ci_low, ci_high, n)``.

    Parameters
    ----------
    correct : array of bool
        One entry per prediction a person judged: was it right?
    confidence : float
        Coverage of the interval.

    Returns
    -------
    tuple
        ``acc`` is NaN when ``n == 0`` (and the interval is then ``(0, 1)``).

    Examples
    --------
    >>> acc, low, high, n = accuracy_from_feedback([True] * 45 + [False] * 5)
    >>> acc, round(low, 3), round(high, 3), n
    (0.9, 0.786, 0.957, 50)
    """
    arr = np.asarray(correct, dtype=bool).ravel()
    n = int(arr.size)
    k = int(arr.sum())
    low, high = wilson_interval(k, n, confidence=confidence)
    return (k / n if n else float("nan")), low, high, n


@dataclass(frozen=True)
class Calibration:
    """How well confidence matched accuracy on held-out labeled reference data.

    ``ece`` is the expected calibration error over ``bins`` equal-count bins of confidence:
    the row-weighted mean of ``|accuracy - mean confidence|`` per bin. ``trusted`` is
    ``ece <= max_ece and n >= min_n``. Store ``to_dict()`` beside the reference profile.
    """

    ece: float
    n: int
    max_ece: float
    min_n: int
    trusted: bool
    accuracy: float
    mean_confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": self.ece,
            "n": self.n,
            "max_ece": self.max_ece,
            "min_n": self.min_n,
            "trusted": self.trusted,
            "accuracy": self.accuracy,
            "mean_confidence": self.mean_confidence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(
            float(d["ece"]),
            int(d["n"]),
            float(d["max_ece"]),
            int(d["min_n"]),
            bool(d["trusted"]),
            float(d["accuracy"]),
            float(d["mean_confidence"]),
        )


def check_calibration(
    proba: Any,
    y_true: Any,
    *,
    classes: Any = None,
    max_ece: float = 0.05,
    min_n: int = 200,
    bins: int = 10,
) -> Calibration:
    """Measure calibration of ``proba`` (n x k) against the true labels on held-out data.

    Parameters
    ----------
    proba : array, shape (n, k)
        Predicted class probabilities (columns in the order of ``classes``).
    y_true : array, shape (n,)
        True labels: column indices, or labels found in ``classes``.
    classes : array, optional
        The label of each column of ``proba``.
    max_ece : float
        Largest expected calibration error the estimate is trusted with.
    min_n : int
        Fewest labeled rows the check is trusted with (ECE is noisy below).
    bins : int
        Equal-count bins of confidence.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0.5, 1.0, 5000)
    >>> y = (rng.uniform(size=5000) < conf).astype(int)  # right with probability conf
    >>> proba = np.column_stack([1 - conf, conf])  # class 1 predicted every time
    >>> check_calibration(proba, y).trusted
    True
    """
    p = _proba(proba)
    y = np.asarray(y_true).ravel()
    if len(y) != len(p):
        raise ValueError(f"proba has {len(p)} rows but y_true has {len(y)}")
    if classes is not None:
        index = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
        unknown = {v for v in y.tolist() if v not in index}
        if unknown:
            raise ValueError(f"labels {sorted(map(str, unknown))[:5]} are not in classes")
        y = np.asarray([index[v] for v in y.tolist()])
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    n = len(conf)
    if n == 0:
        return Calibration(float("nan"), 0, max_ece, min_n, False, float("nan"), float("nan"))
    order = np.argsort(conf, kind="stable")
    ece = 0.0
    for chunk in np.array_split(order, min(bins, n)):
        ece += len(chunk) * abs(correct[chunk].mean() - conf[chunk].mean())
    ece /= n
    trusted = bool(ece <= max_ece and n >= min_n)
    return Calibration(
        float(ece), n, max_ece, min_n, trusted, float(correct.mean()), float(conf.mean())
    )


@dataclass
class ConfidenceSummary:
    """Mergeable window state for CBPE: count, sum of confidences, sum of ``c (1 - c)``.

    Examples
    --------
    >>> s = ConfidenceSummary().update([0.9, 0.8]).update([0.7])
    >>> s.n, round(s.total, 2)
    (3, 2.4)
    """

    n: int = 0
    total: float = 0.0
    variance: float = 0.0

    def update(self, confidence: Any) -> ConfidenceSummary:
        """Add top-class probabilities of a batch in place; returns ``self``."""
        c = np.asarray(confidence, dtype=np.float64).ravel()
        c = c[np.isfinite(c)]
        if np.any((c < 0) | (c > 1)):
            raise ValueError("confidences must be probabilities in [0, 1]")
        self.n += int(c.size)
        self.total += float(c.sum())
        self.variance += float((c * (1 - c)).sum())
        return self

    def merge(self, other: ConfidenceSummary) -> ConfidenceSummary:
        return ConfidenceSummary(
            self.n + other.n, self.total + other.total, self.variance + other.variance
        )

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total, "variance": self.variance}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfidenceSummary:
        return cls(int(d["n"]), float(d["total"]), float(d["variance"]))


@dataclass(frozen=True)
class AccuracyEstimate:
    """Label-free accuracy estimate of a window; ``to_dict()`` has ``accuracy`` and ``n``."""

    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    trusted: bool
    reason: str
    ece: float | None = None
    se: float | None = None

    def to_dict(self) -> dict[str, Any]:
        finite = self.n > 0
        return {
            "method": "cbpe",
            "accuracy": self.accuracy if finite else None,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "se": self.se if finite else None,
            "n": self.n,
            "trusted": self.trusted,
            "reason": self.reason,
            "ece": self.ece,
        }


def estimate_accuracy(
    proba_or_summary: Any,
    *,
    calibration: Calibration | None = None,
    confidence: float = 0.95,
) -> AccuracyEstimate:
    """CBPE: expected accuracy of a window from its confidences, with an interval.

    Parameters
    ----------
    proba_or_summary : array or ConfidenceSummary
        Class probabilities (n x k), top-class confidences (n,), or a window's summary.
    calibration : Calibration, optional
        The reference's calibration check; without one the estimate is not trusted.
    confidence : float
        Coverage of the interval.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> conf = rng.uniform(0.6, 1.0, 2000)
    >>> ref_y = (rng.uniform(size=2000) < conf).astype(int)
    >>> cal = check_calibration(np.column_stack([1 - conf, conf]), ref_y)
    >>> est = estimate_accuracy(rng.uniform(0.6, 1.0, 1000), calibration=cal)
    >>> round(est.accuracy, 2), est.trusted
    (0.8, True)
    """
    if isinstance(proba_or_summary, ConfidenceSummary):
        summary = proba_or_summary
    else:
        arr = np.asarray(proba_or_summary, dtype=np.float64)
        conf = _proba(arr).max(axis=1) if arr.ndim == 2 else arr
        summary = ConfidenceSummary().update(conf)
    if calibration is None:
        trusted, reason, ece = False, "no calibration check on labeled reference data", None
    elif calibration.trusted:
        trusted, reason, ece = True, "calibrated on the reference", calibration.ece
    else:
        trusted, ece = False, calibration.ece
        # Too few rows first: ECE is biased upwards on small samples, so its value says little.
        reason = (
            f"calibration checked on {calibration.n} < {calibration.min_n} labeled rows"
            if calibration.n < calibration.min_n
            else f"reference calibration error {calibration.ece:.3f} > {calibration.max_ece}"
        )
    n = summary.n
    if n == 0:
        return AccuracyEstimate(float("nan"), 0.0, 1.0, 0, False, "empty window", ece)
    acc = summary.total / n
    z = _z(confidence)
    half = z * np.sqrt(summary.variance) / n
    return AccuracyEstimate(
        float(acc),
        max(0.0, float(acc - half)),
        min(1.0, float(acc + half)),
        n,
        trusted,
        reason,
        ece,
        float(np.sqrt(summary.variance) / n),
    )


def _z(confidence: float) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 at 0.95), from the standard library.

    Not scipy: ``looplab monitor`` would import all of it for this one quantile.
    """
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _proba(proba: Any) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be n x k with k >= 2 classes, got shape {p.shape}")
    return p
