"""How much annotators agree: Krippendorff's alpha (nominal) and Cohen's kappa per pair.

Alpha is computed from each item's class counts (Krippendorff, *Computing Krippendorff's
Alpha-Reliability*, 2011): with ``N[u, c]`` the number of annotators who gave item ``u`` class
``c`` and ``m_u`` its number of labels (items with fewer than two labels are not pairable and
are left out), the coincidences on the diagonal add up to ``sum_u (sum_c N[u,c]^2 - m_u) /
(m_u - 1)``, the class totals are ``n_c = sum_u N[u, c]`` and

    alpha = 1 - (n - 1) * (n - diagonal) / (n^2 - sum_c n_c^2).

Alpha is 1 for perfect agreement, 0 for agreement at chance, negative below it, and undefined
(NaN) when every pairable label is the same class (nothing to disagree about). Its interval is a
percentile bootstrap over items (the unit that was sampled), seeded, so a figure travels with
its uncertainty; with few pairable items the interval is wide and says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score

from looplab.trust import MISSING
from looplab.trust.matrix import check_matrix, counts_per_item


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha with its bootstrap interval and what it rests on."""

    alpha: float
    low: float
    high: float
    level: float
    n_items: int
    """Pairable items: those with at least two labels."""
    n_labels: int
    """Labels on pairable items (Krippendorff's n)."""


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two annotators (matrix columns ``a < b``) on the items both labeled."""

    a: int
    b: int
    n_shared: int
    kappa: float
    low: float
    high: float


def _item_stats(counts: np.ndarray) -> np.ndarray:
    """Per pairable item: ``[m_u, diagonal coincidences, N[u, 0], ..., N[u, K-1]]``.

    Alpha is a function of the column sums of this array, so a bootstrap replicate only sums
    resampled rows.
    """
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    diagonal = ((counts**2).sum(axis=1) - m) / (m - 1)
    return np.column_stack([m, diagonal, counts])


def _alpha_from_sums(sums: np.ndarray) -> np.ndarray:
    """Alpha from column sums of :func:`_item_stats` (one row per replicate)."""
    sums = np.atleast_2d(sums)
    n, diagonal, totals = sums[:, 0], sums[:, 1], sums[:, 2:]
    expected = n**2 - (totals**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * (n - diagonal) / expected
    # No disagreement possible (one class only, or fewer than two labels): undefined.
    return np.where(expected > 1e-12, alpha, np.nan)


def _bootstrap(
    stats: np.ndarray, n_boot: int, level: float, rng: np.random.Generator
) -> tuple[float, float]:
    if n_boot <= 0 or len(stats) < 2:
        return float("nan"), float("nan")
    replicates = np.empty(n_boot)
    for b in range(n_boot):
        replicates[b] = _alpha_from_sums(stats[rng.integers(0, len(stats), len(stats))].sum(0))[0]
    if np.all(np.isnan(replicates)):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(replicates, [tail, 1.0 - tail])
    return float(low), float(high)


def _alpha(counts: np.ndarray, n_boot: int, level: float, seed: int) -> AlphaResult:
    stats = _item_stats(counts)
    alpha = float(_alpha_from_sums(stats.sum(axis=0))[0])
    low, high = _bootstrap(stats, n_boot, level, np.random.default_rng(seed))
    return AlphaResult(alpha, low, high, level, len(stats), int(stats[:, 0].sum()))


def _check_level(level: float, n_boot: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95); got {level}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be 0 (no interval) or a positive count; got {n_boot}")


def krippendorff_alpha(
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> AlphaResult:
    """Krippendorff's alpha (nominal) of an items x annotators label matrix.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not label an item.
    n_classes : int, optional
        Number of classes (defaults to the largest index seen plus one).
    n_boot : int
        Bootstrap replicates over items for the interval (0: no interval, NaN bounds).
    level : float
        Coverage of the percentile interval.
    seed : int
        Seed of the bootstrap, so the same data give the same interval.

    Examples
    --------
    >>> r = krippendorff_alpha(np.array([[0, 0, -1], [1, 1, 1], [0, 1, 0], [1, 1, -1]]))
    >>> round(r.alpha, 3), r.n_items, r.n_labels
    (0.625, 4, 10)
    """
    _check_level(level, n_boot)
    array, k = check_matrix(labels, n_classes)
    return _alpha(counts_per_item(array, k), n_boot, level, seed)


def alpha_per_label(
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[int, AlphaResult]:
    """Alpha of each class against the rest (one-vs-rest), keyed by class index.

    A low alpha for one class says annotators disagree about *that* class (its guideline is
    unclear, or someone flips it), which the overall alpha averages away.
    """
    _check_level(level, n_boot)
    array, k = check_matrix(labels, n_classes)
    counts = counts_per_item(array, k)
    results = {}
    for c in range(k):
        binary = np.column_stack([counts.sum(axis=1) - counts[:, c], counts[:, c]])
        results[c] = _alpha(binary, n_boot, level, seed)
    return results


def alpha_per_batch(
    labels: np.ndarray,
    batches: np.ndarray,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[Hashable, AlphaResult]:
    """Alpha of the items of each time batch (``batches[i]`` names item ``i``'s batch).

    Batches come back in sorted order, so a drop over time reads left to right. The class count
    is fixed over all batches so each batch's alpha counts the same classes.
    """
    _check_level(level, n_boot)
    array, k = check_matrix(labels, n_classes)
    keys = np.asarray(batches)
    if keys.shape != (array.shape[0],):
        raise ValueError(
            f"batches must name one batch per item: {array.shape[0]} items, got shape {keys.shape}"
        )
    counts = counts_per_item(array, k)
    return {
        key.item() if isinstance(key, np.generic) else key: _alpha(
            counts[keys == key], n_boot, level, seed
        )
        for key in np.unique(keys)
    }


def _kappa_from_codes(codes: np.ndarray, k: int) -> float:
    """Cohen's kappa from pair codes ``a * k + b`` (the bootstrap's fast path)."""
    confusion = np.bincount(codes, minlength=k * k).reshape(k, k) / len(codes)
    observed = np.trace(confusion)
    expected = confusion.sum(axis=1) @ confusion.sum(axis=0)
    return (observed - expected) / (1.0 - expected) if expected < 1.0 - 1e-12 else float("nan")


def pairwise_kappa(
    labels: np.ndarray,
    *,
    min_shared: int = 20,
    n_classes: int | None = None,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> list[PairKappa]:
    """Cohen's kappa (``sklearn.metrics.cohen_kappa_score``) of every annotator pair that
    labeled at least ``min_shared`` items in common, with a bootstrap interval over those items.

    Kappa is NaN when both annotators gave one and the same class to every shared item (chance
    agreement is then total and kappa undefined).
    """
    _check_level(level, n_boot)
    if min_shared < 2:
        raise ValueError(f"min_shared must be at least 2; got {min_shared}")
    array, k = check_matrix(labels, n_classes)
    present = array != MISSING
    shared = present.T.astype(np.int64) @ present.astype(np.int64)
    rng = np.random.default_rng(seed)
    tail = (1.0 - level) / 2.0
    results = []
    for a, b in zip(*np.nonzero(np.triu(shared >= min_shared, k=1)), strict=True):
        both = present[:, a] & present[:, b]
        x, y = array[both, a], array[both, b]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined kappa is reported as NaN, not warned
            kappa = float(cohen_kappa_score(x, y, labels=np.arange(k)))
        low = high = float("nan")
        if n_boot:
            codes = x * k + y
            replicates = np.array(
                [
                    _kappa_from_codes(codes[rng.integers(0, len(codes), len(codes))], k)
                    for _ in range(n_boot)
                ]
            )
            if not np.all(np.isnan(replicates)):
                low, high = (float(v) for v in np.nanquantile(replicates, [tail, 1.0 - tail]))
        results.append(PairKappa(int(a), int(b), int(both.sum()), kappa, low, high))
    return results
