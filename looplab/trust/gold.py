"""Accuracy of each annotator on gold records (items whose true class is known).

A gold accuracy travels with its interval: 9 of 10 and 900 of 1,000 are both 90%, and only the
second says much. The interval is Wilson's score interval (Wilson 1927, closed form; statsmodels'
``proportion_confint(method="wilson")`` computes the same and is not a looplab dependency), which
keeps its coverage near the nominal level for small n and proportions near 0 or 1, where the
textbook normal interval fails (Brown, Cai & DasGupta 2001).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from looplab.trust import MISSING
from looplab.trust.matrix import check_matrix


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``n`` with a Wilson interval (NaN rate and [0, 1] when ``n`` is 0)."""

    successes: float
    n: float
    rate: float
    low: float
    high: float
    level: float


def wilson_interval(successes: float, n: float, level: float = 0.95) -> Proportion:
    """Wilson score interval of a proportion; counts may be fractional (expected counts).

    Examples
    --------
    >>> p = wilson_interval(8, 10)
    >>> round(p.rate, 3), round(p.low, 4), round(p.high, 4)
    (0.8, 0.4902, 0.9433)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95); got {level}")
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n; got successes={successes}, n={n}")
    if n == 0:
        return Proportion(0.0, 0.0, float("nan"), 0.0, 1.0, level)
    z = float(norm.ppf(0.5 + level / 2.0))
    rate = successes / n
    denominator = 1.0 + z * z / n
    center = (rate + z * z / (2.0 * n)) / denominator
    half = z / denominator * np.sqrt(rate * (1.0 - rate) / n + z * z / (4.0 * n * n))
    # Clip the rounding at the edges: 0 of n has low exactly 0, n of n high exactly 1.
    low = max(0.0, center - half) if successes > 0 else 0.0
    high = min(1.0, center + half) if successes < n else 1.0
    return Proportion(float(successes), float(n), float(rate), float(low), float(high), level)


def gold_accuracy(
    labels: np.ndarray,
    gold: np.ndarray,
    *,
    n_classes: int | None = None,
    level: float = 0.95,
) -> list[Proportion]:
    """Each annotator's accuracy on the gold items they labeled, with a Wilson interval.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not label an item.
    gold : ndarray of shape (n_items,)
        The known class of each gold item, ``-1`` for items that are not gold.
    level : float
        Coverage of the interval.

    Returns
    -------
    list of Proportion
        One per annotator (matrix column); ``n`` is 0 for a person who met no gold item.

    Examples
    --------
    >>> labels = np.array([[0, 1], [1, 1], [2, -1], [0, 0]])
    >>> [(p.successes, p.n) for p in gold_accuracy(labels, np.array([0, 1, 2, -1]))]
    [(3.0, 3.0), (1.0, 2.0)]
    """
    array, k = check_matrix(labels, n_classes)
    truth = np.asarray(gold)
    if truth.shape != (array.shape[0],):
        raise ValueError(
            f"gold must hold one entry per item ({array.shape[0]}); got shape {truth.shape}"
        )
    if truth.size and (truth.min() < MISSING or truth.max() >= k):
        raise ValueError(f"gold entries must be class indices below {k} or {MISSING}")
    is_gold = (truth != MISSING)[:, None] & (array != MISSING)
    correct = is_gold & (array == truth[:, None])
    return [
        wilson_interval(int(correct[:, j].sum()), int(is_gold[:, j].sum()), level)
        for j in range(array.shape[1])
    ]
