"""Offline evaluation of a classifier on held-out labels: plain functions over arrays.

:func:`classification_metrics` is the one-call summary stored beside a model version (and drawn by
:mod:`looplab.govern.report`). The pieces it is built from are public too: :func:`metric_ci` and
:func:`bootstrap_metric` for uncertainty, :func:`reliability_curve` and
:func:`expected_calibration_error` for calibration, :func:`brier_score`.

Conventions: ``proba`` columns follow ``classes`` (a model's ``classes_``); a record whose label the
model never saw counts as an error, which is what it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

#: Metrics with a bootstrap implementation, by name.
METRICS = ("accuracy", "macro_f1", "balanced_accuracy")
#: How each metric is written in messages and tables.
METRIC_LABELS = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "balanced_accuracy": "balanced accuracy",
}
#: A label set is imbalanced when its rarest class has less than this share of an equal split.
IMBALANCE_RATIO = 0.5
#: Bootstrap weights are built this many cells (resamples x records) at a time, to bound memory.
_CHUNK_CELLS = 2_000_000

RngLike = np.random.Generator | int | None


class Interval(NamedTuple):
    """A point estimate and a confidence interval around it (unpacks as a 3-tuple)."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class ReliabilityCurve:
    """Top-label reliability per equal-width confidence bin; empty bins hold NaN.

    ``edges`` has ``n_bins + 1`` entries; ``confidence`` is the mean top-label probability in a bin,
    ``accuracy`` the share of its records predicted correctly, ``counts`` its number of records.
    """

    edges: NDArray[np.float64]
    confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    counts: NDArray[np.int64]

    @property
    def ece(self) -> float:
        """Expected calibration error: count-weighted mean |accuracy - confidence| over bins."""
        total = self.counts.sum()
        if total == 0:
            return 0.0
        full = self.counts > 0
        gaps = np.abs(self.accuracy[full] - self.confidence[full])
        return float(np.sum(self.counts[full] * gaps) / total)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready lists; empty bins become ``None`` (JSON has no NaN)."""

        def clean(a: NDArray[np.float64]) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in a]

        return {
            "edges": [float(e) for e in self.edges],
            "confidence": clean(self.confidence),
            "accuracy": clean(self.accuracy),
            "counts": [int(c) for c in self.counts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReliabilityCurve:
        """Inverse of :meth:`to_dict`."""

        def arr(values: list[float | None]) -> NDArray[np.float64]:
            return np.array([np.nan if v is None else v for v in values], dtype=float)

        return cls(
            edges=np.asarray(data["edges"], dtype=float),
            confidence=arr(data["confidence"]),
            accuracy=arr(data["accuracy"]),
            counts=np.asarray(data["counts"], dtype=np.int64),
        )


def check_proba(
    y_true: ArrayLike, proba: ArrayLike, classes: list[str]
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Labels and probabilities as arrays, after checking their shapes agree with ``classes``.

    Raises
    ------
    ValueError
        When ``proba`` does not have one row per label and one column per class.
    """
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise ValueError(
            f"proba must have one column per class ({len(classes)}), got shape {p.shape}; "
            "pass the model's classes_ in column order"
        )
    if p.shape[0] != len(y):
        raise ValueError(f"proba has {p.shape[0]} rows but y_true has {len(y)} labels")
    return y, p


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")


def predicted_labels(proba: ArrayLike, classes: list[str]) -> NDArray[Any]:
    """The arg-max class of each row of ``proba``.

    Examples
    --------
    >>> predicted_labels([[0.2, 0.8], [0.6, 0.4]], ["cat", "dog"]).tolist()
    ['dog', 'cat']
    """
    return np.asarray(classes)[np.asarray(proba, dtype=float).argmax(axis=1)]


def confidence_bins(confidence: NDArray[np.float64], n_bins: int) -> NDArray[np.intp]:
    """The equal-width bin of each top-label confidence; a confidence of exactly 1 is in the last.

    Same binning as looplab has always stored ECE with, so old and new numbers compare; the
    gate's bootstrap of the ECE (:mod:`looplab.learn.gate`) bins with it too.
    """
    return np.minimum((confidence * n_bins).astype(np.intp), n_bins - 1)


def reliability_curve(
    y_true: ArrayLike, proba: ArrayLike, classes: list[str], n_bins: int = 10
) -> ReliabilityCurve:
    """Bin records by top-label confidence and compare each bin's confidence to its accuracy.

    Bins are equal-width on [0, 1]; a confidence of exactly 1 falls in the last bin. A perfectly
    calibrated model has ``accuracy == confidence`` in every bin (the diagonal of a reliability
    diagram).

    Examples
    --------
    >>> curve = reliability_curve(["a", "b", "a", "a"], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4],
    ...                                                   [0.35, 0.65]], ["a", "b"], n_bins=5)
    >>> curve.counts.tolist()
    [0, 0, 0, 3, 1]
    >>> round(curve.ece, 4)
    0.0375
    """
    y, proba = check_proba(y_true, proba, classes)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence = proba.max(axis=1) if len(y) else np.zeros(0)
    correct = (predicted_labels(proba, classes) == y).astype(float) if len(y) else np.zeros(0)
    bins = confidence_bins(confidence, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / counts
    return ReliabilityCurve(
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        confidence=mean_conf,
        accuracy=accuracy,
        counts=counts.astype(np.int64),
    )


def expected_calibration_error(
    y_true: ArrayLike, proba: ArrayLike, classes: list[str], n_bins: int = 10
) -> float:
    """Top-label ECE with equal-width confidence bins, in [0, 1] (lower is better, 0 is perfect).

    Examples
    --------
    >>> expected_calibration_error(["a", "a"], [[1.0, 0.0], [1.0, 0.0]], ["a", "b"])
    0.0
    >>> expected_calibration_error(["b", "b"], [[1.0, 0.0], [1.0, 0.0]], ["a", "b"])
    1.0
    """
    return reliability_curve(y_true, proba, classes, n_bins).ece


def brier_score(y_true: ArrayLike, proba: ArrayLike, classes: list[str]) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot truth (0 best, 2 worst).

    Examples
    --------
    >>> brier_score(["a", "b"], [[1.0, 0.0], [0.5, 0.5]], ["a", "b"])
    0.25
    """
    proba = np.asarray(proba, dtype=float)
    onehot = (np.asarray(y_true)[:, None] == np.asarray(classes)[None, :]).astype(float)
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def resample_weights(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[NDArray[Any]]:
    """How often each record is drawn in each bootstrap resample, in chunks of resamples."""
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n, 1)))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        flat = (np.arange(size)[:, None] * n + idx).ravel()
        yield np.bincount(flat, minlength=size * n).reshape(size, n).astype(float)


def _onehot(codes: NDArray[np.intp], k: int) -> sparse.csr_matrix:
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, k))


def bootstrap_metric(
    y_true: ArrayLike,
    *y_preds: ArrayLike,
    metric: str = "accuracy",
    n_boot: int = 1000,
    rng: RngLike = 0,
) -> NDArray[np.float64]:
    """The metric of each prediction on the same bootstrap resamples of the records.

    Each resample draws ``len(y_true)`` record indices with replacement, and every prediction in
    ``y_preds`` is scored on the same indices, so differences between columns are *paired*.
    Macro-F1 averages over the labels present in the resample's truth or that prediction (as
    scikit-learn does by default); balanced accuracy is the mean recall over the labels present
    in the resample's truth (as :func:`sklearn.metrics.balanced_accuracy_score`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    *y_preds : array-like of shape (n,)
        One or more predicted label arrays for the same records.
    metric : {"accuracy", "macro_f1", "balanced_accuracy"}
    n_boot : int
        Number of resamples.
    rng : numpy Generator, int seed or None

    Returns
    -------
    ndarray of shape (n_boot, len(y_preds))

    Examples
    --------
    >>> y = ["a", "b", "a", "b"]
    >>> dist = bootstrap_metric(y, ["a", "b", "a", "a"], y, n_boot=200, rng=0)
    >>> dist.shape, bool(np.all(dist[:, 1] == 1.0))
    ((200, 2), True)
    """
    _check_metric(metric)
    y = np.asarray(y_true)
    preds = [np.asarray(p) for p in y_preds]
    if not preds:
        raise ValueError("pass at least one array of predicted labels")
    n = len(y)
    for p in preds:
        if len(p) != n:
            raise ValueError(f"y_true has {n} labels but a prediction array has {len(p)}")
    if n == 0:
        raise ValueError("cannot bootstrap a metric on zero records")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    generator = np.random.default_rng(rng)
    _, codes = np.unique(np.concatenate([y, *preds]), return_inverse=True)
    k = int(codes.max()) + 1
    truth = codes[:n]
    correct = [(codes[(j + 1) * n : (j + 2) * n] == truth).astype(float) for j in range(len(preds))]
    # Scoring weighted resamples with matrix products is ~100x faster than calling scikit-learn
    # once per resample; the tests check the two agree.
    if metric != "accuracy":
        true_hot = _onehot(truth, k)
        pred_hot = [_onehot(codes[(j + 1) * n : (j + 2) * n], k) for j in range(len(preds))]
        hit_hot = [_onehot(truth, k).multiply(c[:, None]).tocsr() for c in correct]
    out = []
    for w in resample_weights(n, n_boot, generator):
        cols = []
        for j in range(len(preds)):
            if metric == "accuracy":
                cols.append(w @ correct[j] / n)
                continue
            true_n, tp = (true_hot.T @ w.T).T, (hit_hot[j].T @ w.T).T
            pred_n = None if metric == "balanced_accuracy" else (pred_hot[j].T @ w.T).T
            cols.append(_per_class_mean(true_n, tp, pred_n))
        out.append(np.column_stack(cols))
    return np.vstack(out)


def _per_class_mean(
    true_n: NDArray[np.float64], tp: NDArray[np.float64], pred_n: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """Per resample (row): mean recall over the classes in the truth (``pred_n`` None), or
    macro-F1 over the classes in the truth or the predictions, from weighted class counts."""
    if pred_n is None:
        seen = true_n > 0
        recall = np.divide(tp, true_n, out=np.zeros_like(true_n), where=seen)
        return np.asarray(recall.sum(axis=1) / seen.sum(axis=1))
    denom = true_n + pred_n
    present = denom > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(denom), where=present)
    return np.asarray(f1.sum(axis=1) / present.sum(axis=1))


def metric_value(y_true: ArrayLike, y_pred: ArrayLike, metric: str = "accuracy") -> float:
    """Accuracy, macro-F1 over the labels present in ``y_true`` or ``y_pred``, or balanced accuracy
    (mean recall over the labels present in ``y_true``), all by scikit-learn.

    Examples
    --------
    >>> metric_value(["a", "b", "b"], ["a", "b", "a"], "macro_f1")
    0.6666666666666666
    >>> metric_value(["a", "a", "a", "b"], ["a", "a", "a", "a"], "balanced_accuracy")
    0.5
    """
    _check_metric(metric)
    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    if metric == "balanced_accuracy":
        with warnings.catch_warnings():
            # A predicted label absent from the truth is not an error here: it has no recall.
            warnings.simplefilter("ignore", UserWarning)
            return float(balanced_accuracy_score(y_true, y_pred))
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def label_counts(labels: ArrayLike) -> dict[str, int]:
    """How many times each label occurs, as text."""
    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


def majority_label(labels: ArrayLike | Mapping[str, int]) -> str:
    """The most frequent label (ties: the first in sorted order), from labels or label counts.

    Examples
    --------
    >>> majority_label(["b", "a", "b"]), majority_label({"x": 3, "y": 5})
    ('b', 'y')
    """
    counts = (
        {str(k): int(v) for k, v in labels.items()}
        if isinstance(labels, Mapping)
        else label_counts(labels)
    )
    if not counts:
        raise ValueError("no labels to take the majority of")
    return min(counts, key=lambda label: (-counts[label], label))


def majority_baseline(y_true: ArrayLike, label: str) -> dict[str, Any]:
    """Every metric of the constant model that always answers ``label``.

    This is the cheapest honest baseline (scikit-learn's ``DummyClassifier(strategy=
    "most_frequent")`` fitted on the training labels): on a table with 3% positives it scores 0.97
    accuracy, which is why accuracy alone flatters imbalance. Its balanced accuracy is 1 / the
    number of classes in ``y_true`` (or 0 when ``label`` is not among them).

    Examples
    --------
    >>> b = majority_baseline(["a"] * 9 + ["b"], "a")
    >>> b["accuracy"], b["balanced_accuracy"], round(b["macro_f1"], 3)
    (0.9, 0.5, 0.474)
    """
    y = np.asarray(y_true).astype(str)
    constant = np.full(len(y), str(label))
    return {"label": str(label)} | {m: metric_value(y, constant, m) for m in METRICS}


def class_balance(counts: Mapping[str, int]) -> dict[str, Any]:
    """The share of the rarest class, and whether it is small enough that accuracy flatters.

    A label set is *imbalanced* when its rarest class holds less than half the share it would
    have if all classes were equal (under 25% of two classes, under 5% of ten):
    then always answering the majority already scores a high accuracy.

    Examples
    --------
    >>> class_balance({"no": 95, "yes": 5})["imbalanced"]
    True
    >>> class_balance({"a": 40, "b": 60})["imbalanced"]
    False
    """
    total = sum(int(v) for v in counts.values())
    if total == 0 or len(counts) < 2:
        return {"minority": None, "minority_share": None, "imbalanced": False}
    rarest = min(counts, key=lambda label: (int(counts[label]), label))
    share = int(counts[rarest]) / total
    return {
        "minority": str(rarest),
        "minority_share": share,
        "imbalanced": share * len(counts) < IMBALANCE_RATIO,
    }


def metric_ci(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    metric: str = "accuracy",
    n_boot: int = 1000,
    rng: RngLike = 0,
    level: float = 0.95,
) -> Interval:
    """Point estimate and percentile bootstrap confidence interval of one of :data:`METRICS`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    metric : {"accuracy", "macro_f1", "balanced_accuracy"}
    n_boot : int
        Number of bootstrap resamples of the records.
    rng : numpy Generator, int seed or None
        The same seed gives the same interval.
    level : float
        Coverage of the interval (0.95 gives the 2.5th and 97.5th percentiles).

    Returns
    -------
    Interval
        ``(estimate, low, high)``; the estimate is computed by scikit-learn on all records.

    Examples
    --------
    >>> y = ["a"] * 80 + ["b"] * 20
    >>> pred = ["a"] * 70 + ["b"] * 10 + ["b"] * 15 + ["a"] * 5
    >>> est, low, high = metric_ci(y, pred, "accuracy", rng=0)
    >>> est, low < est < high
    (0.85, True)
    """
    _check_metric(metric)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    dist = bootstrap_metric(y, pred, metric=metric, n_boot=n_boot, rng=rng)[:, 0]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(dist, [tail, 100 - tail])
    return Interval(metric_value(y, pred, metric), float(low), float(high))


def per_class_table(
    y: NDArray[Any], predicted: NDArray[Any], labels: list[str]
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of each label; ``None`` where there is nothing to count.

    A label with no test record has no recall or F1 (0 of 0 is not a failure): its row says
    ``"no_test_records": True``, and its precision is ``None`` too unless the model predicted it
    (then every such prediction is wrong and precision 0 is the truth).
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    predicted_n = label_counts(predicted)
    out: dict[str, dict[str, Any]] = {}
    for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True):
        if s > 0:
            row: dict[str, Any] = {"precision": float(p), "recall": float(r), "f1": float(f)}
        else:
            guessed = predicted_n.get(str(label), 0) > 0
            row = {"precision": 0.0 if guessed else None, "recall": None, "f1": None}
            row["no_test_records"] = True
        out[label] = {**row, "support": int(s)}
    return out


def classification_metrics(
    y_true: ArrayLike,
    proba: ArrayLike,
    classes: list[str],
    *,
    majority: str | None = None,
    n_boot: int = 1000,
    rng: RngLike = 0,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy and macro-F1 with 95% bootstrap CIs, the majority baseline,
    a per-class table, confusion, ECE, Brier.

    The result is JSON-ready and is what :func:`looplab.govern.report.render_html` draws. Macro-F1
    averages over labels present in the truth or the predictions (scikit-learn's default), so a
    class the model knows but the test set lacks and the model never predicts does not drag it
    down. ``majority`` is the training majority label (``None``: the test split's); ``baseline``
    holds every metric of always answering it (:func:`majority_baseline`). ``n_boot=0`` skips
    the intervals. ``rng`` defaults to a fixed seed, so re-evaluating a model gives the same
    numbers.

    Keys: ``n``, ``accuracy``, ``accuracy_ci`` ([low, high]), ``balanced_accuracy`` (+ ``_ci``),
    ``macro_f1`` (+ ``_ci``), ``baseline``, ``class_balance`` (:func:`class_balance` of the test
    labels), ``per_class`` (:func:`per_class_table`), ``confusion`` (``labels`` and ``matrix``,
    rows true, columns predicted), ``ece``, ``brier`` and ``reliability``
    (:meth:`ReliabilityCurve.to_dict`). With no records: ``{"n": 0}``.

    Examples
    --------
    >>> m = classification_metrics(["a", "b", "b"], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]],
    ...                            ["a", "b"], n_boot=0)
    >>> round(m["accuracy"], 3), m["confusion"]["matrix"], m["baseline"]["label"]
    (0.667, [[1, 0], [1, 1]], 'b')
    """
    y, proba = np.asarray(y_true), np.asarray(proba, dtype=float)
    if len(y) == 0:
        return {"n": 0}
    y, proba = check_proba(y, proba, classes)
    predicted = predicted_labels(proba, classes)
    labels = sorted(set(classes) | set(y.tolist()))
    curve = reliability_curve(y, proba, classes, n_bins)
    out: dict[str, Any] = {"n": len(y)}
    out |= {metric: metric_value(y, predicted, metric) for metric in METRICS}
    out |= {
        "baseline": majority_baseline(y, majority if majority is not None else majority_label(y)),
        "class_balance": class_balance(label_counts(y)),
        "per_class": per_class_table(y, predicted, labels),
        "confusion": {
            "labels": labels,
            "matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        },
        "ece": curve.ece,
        "brier": brier_score(y, proba, classes),
        "reliability": curve.to_dict(),
    }
    out["baseline"]["source"] = "training" if majority is not None else "test"
    if n_boot > 0:
        generator = np.random.default_rng(rng)
        for metric in METRICS:
            _, low, high = metric_ci(y, predicted, metric, n_boot=n_boot, rng=generator)
            out[f"{metric}_ci"] = [low, high]
    return out
