"""Intervals for a proportion: light (numpy and the standard library), so the serving path, the
labeling queue and monitoring can all use them without importing scikit-learn or scipy."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n``; ``(0, 1)`` when ``n == 0``.

    Examples
    --------
    >>> low, high = wilson_interval(10, 200)
    >>> round(low, 4), round(high, 4)
    (0.0274, 0.0896)
    """
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 and k = n the bounds are exactly 0 and 1; the formula only gets there up to rounding.
    low = 0.0 if k == 0 else max(0.0, float(centre - half))
    high = 1.0 if k == n else min(1.0, float(centre + half))
    return low, high
