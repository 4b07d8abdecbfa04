"""Slice-based evaluation: accuracy per value of each metadata field, and which slices lag.

A *slice* is the records sharing one value of one metadata field (``source=email``), or, for a
numeric field with more distinct values than ``n_quantiles``, one quantile bin of it
(``length=[12, 30)``). Records without the field form a ``(missing)`` slice. Only slices with at
least ``min_size`` records are reported, and only when the rest of the data is not empty.

Each slice is compared with the rest of the records by a one-sided Fisher exact test ("is the
slice's accuracy lower?"), and the p-values of all slices of all fields are adjusted together with
Benjamini-Hochberg, so with 40 slices the flags are not just the expected two false alarms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest, false_discovery_control, fisher_exact

MISSING = "(missing)"


@dataclass(frozen=True)
class SliceRow:
    """Accuracy of one slice, its Wilson interval, and the comparison with the other records.

    ``p_value`` is the one-sided Fisher exact p-value of "the slice is less accurate than the
    rest", ``q_value`` the same after Benjamini-Hochberg over every reported slice; ``flagged``
    means ``q_value <= alpha``.
    """

    field: str
    value: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    rest_n: int
    rest_accuracy: float
    p_value: float
    q_value: float
    flagged: bool

    @property
    def name(self) -> str:
        """``field=value``, for messages."""
        return f"{self.field}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _bin_labels(values: NDArray[np.float64], n_quantiles: int) -> NDArray[np.str_]:
    """Quantile bin of each value as "[low, high)"; the last bin is closed."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_quantiles + 1)))
    inner = edges[1:-1]
    which = np.searchsorted(inner, values, side="right")
    names = [
        f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}"
        for i in range(len(edges) - 1)
    ]
    return np.asarray(names)[which]


def _field_values(meta: Sequence[Mapping[str, Any]], name: str, n_quantiles: int) -> NDArray[Any]:
    """The slice label of every record for one field."""
    raw = [m.get(name) for m in meta]
    present = [v for v in raw if not _missing(v)]
    numeric = bool(present) and all(_is_number(v) for v in present)
    if numeric and len(set(present)) > n_quantiles:
        mask = np.array([not _missing(v) for v in raw])
        out = np.full(len(raw), MISSING, dtype=object)
        out[mask] = _bin_labels(np.array(present, dtype=float), n_quantiles)
        return out
    return np.array([MISSING if _missing(v) else str(v) for v in raw], dtype=object)


def slice_masks(
    meta: Sequence[Mapping[str, Any]],
    *,
    fields: Sequence[str] | None = None,
    min_size: int = 30,
    n_quantiles: int = 4,
) -> list[tuple[str, str, NDArray[np.bool_]]]:
    """Every slice with at least ``min_size`` records and a non-empty rest, as a boolean mask.

    Parameters
    ----------
    meta : sequence of dict
        One metadata dict per record (``LabeledSet.meta``).
    fields : sequence of str, optional
        Fields to slice on; by default every key found in ``meta``.
    min_size : int
        Fewest records in a slice.
    n_quantiles : int
        Bins for a numeric field with more distinct values than this.

    Returns
    -------
    list of (field, value, mask)
        In field order, then value order.

    Examples
    --------
    >>> meta = [{"lang": "en"}] * 3 + [{"lang": "fr"}] * 2 + [{}]
    >>> [(f, v, int(m.sum())) for f, v, m in slice_masks(meta, min_size=2)]
    [('lang', 'en', 3), ('lang', 'fr', 2)]
    """
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1, got {min_size}")
    if n_quantiles < 2:
        raise ValueError(f"n_quantiles must be at least 2, got {n_quantiles}")
    names = sorted({k for m in meta for k in m}) if fields is None else list(fields)
    out = []
    for name in names:
        labels = _field_values(meta, name, n_quantiles)
        values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        for i in np.flatnonzero((counts >= min_size) & (counts < len(labels))):
            out.append((name, str(values[i]), inverse == i))
    return out


def slice_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    meta: Sequence[Mapping[str, Any]],
    *,
    fields: Sequence[str] | None = None,
    min_size: int = 30,
    n_quantiles: int = 4,
    alpha: float = 0.05,
) -> list[SliceRow]:
    """Accuracy per metadata slice with a Wilson interval, flagging slices significantly worse.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    meta : sequence of dict
        One metadata dict per record.
    fields, min_size, n_quantiles
        Which slices, as in :func:`slice_masks`.
    alpha : float
        False discovery rate of the flags, and 1 - coverage of the Wilson intervals.

    Returns
    -------
    list of SliceRow
        Worst first (lowest accuracy; ties by p-value, then name).

    Examples
    --------
    >>> meta = [{"src": "web"}] * 50 + [{"src": "mail"}] * 50
    >>> y = ["a"] * 100
    >>> pred = ["a"] * 50 + ["a"] * 20 + ["b"] * 30
    >>> [(r.name, r.accuracy, r.flagged) for r in slice_metrics(y, pred, meta)]
    [('src=mail', 0.4, True), ('src=web', 1.0, False)]
    """
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    if not len(y) == len(pred) == len(meta):
        raise ValueError(
            f"y_true, y_pred and meta must have one entry per record, "
            f"got {len(y)}, {len(pred)} and {len(meta)}"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    correct = pred == y
    total_k, total_n = int(correct.sum()), len(y)
    masks = slice_masks(meta, fields=fields, min_size=min_size, n_quantiles=n_quantiles)
    rows = []
    for name, value, mask in masks:
        n, k = int(mask.sum()), int(correct[mask].sum())
        rest_n, rest_k = total_n - n, total_k - k
        ci = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
        # alternative="less": the odds of a correct prediction are lower in the slice.
        p = fisher_exact([[k, n - k], [rest_k, rest_n - rest_k]], alternative="less").pvalue
        rows.append((name, value, n, k, float(ci.low), float(ci.high), rest_n, rest_k, float(p)))
    q = false_discovery_control([r[-1] for r in rows], method="bh") if rows else []
    out = [
        SliceRow(
            field=name,
            value=value,
            n=n,
            correct=k,
            accuracy=k / n,
            ci_low=lo,
            ci_high=hi,
            rest_n=rest_n,
            rest_accuracy=rest_k / rest_n,
            p_value=p,
            q_value=float(qv),
            flagged=bool(qv <= alpha),
        )
        for (name, value, n, k, lo, hi, rest_n, rest_k, p), qv in zip(rows, q, strict=True)
    ]
    return sorted(out, key=lambda r: (r.accuracy, r.p_value, r.field, r.value))
