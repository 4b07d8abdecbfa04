"""Multivariate mean shift: Hotelling's two-sample T^2 from streamed moments.

Against a small shift of the mean spread over several features this is the test to beat: for
Gaussian data it is the uniformly most powerful test invariant to linear changes of the features,
a domain classifier with logistic regression learns the same direction less efficiently (it
spends rows on fitting), and MMD spreads its power over every kind of change. It needs only
each sample's count, mean vector and co-moment matrix
(:class:`~looplab.watch.drift.sketch.Moments`),
which merge exactly, so it runs on all rows of a window of any size at no extra memory.

The pooled covariance is taken in correlation form and inverted through its eigenvalues;
directions with eigenvalue below ``rcond`` times the largest (collinear or constant features) are
dropped and the degrees of freedom follow. The null distribution is
``F(r, N - r - 1)`` with ``T^2 (N - r - 1) / (r (N - 2))``, exact for Gaussian rows and
asymptotically right for any rows with finite variance. The effect size is the Mahalanobis
distance between the means, bias-corrected (its square minus its null expectation, floored at 0),
in pooled standard deviations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from looplab.watch.drift.base import Detector, DriftResult, as_2d
from looplab.watch.drift.sketch import Moments


def hotelling_test(
    ref: Moments, win: Moments, *, columns: list[str] | None = None, rcond: float = 1e-10
) -> tuple[float, float, float, dict[str, Any]]:
    """(T^2, p-value, bias-corrected Mahalanobis distance, details) of two moment summaries."""
    n1, n2 = ref.n, win.n
    total = n1 + n2
    details: dict[str, Any] = {"n_reference": n1, "n_window": n2}
    if n1 < 2 or n2 < 1 or total < 4:
        return 0.0, 1.0, 0.0, details
    pooled = (ref.m2 + win.m2) / (total - 2)
    diff = win.mean - ref.mean
    sd = np.sqrt(np.clip(np.diag(pooled), 0.0, None))
    keep = sd > 0.0
    z = diff[keep] / sd[keep]
    corr = pooled[np.ix_(keep, keep)] / np.outer(sd[keep], sd[keep])
    eigval, eigvec = np.linalg.eigh(corr)
    good = eigval > rcond * max(float(eigval.max(initial=0.0)), 0.0)
    rank = int(good.sum())
    if rank == 0 or total - rank - 1 <= 0:
        return 0.0, 1.0, 0.0, details
    proj = eigvec[:, good].T @ z
    d2 = float(np.sum(proj * proj / eigval[good]))
    t2 = n1 * n2 / total * d2
    f = t2 * (total - rank - 1) / (rank * (total - 2))
    p = float(stats.f.sf(f, rank, total - rank - 1))
    # E[D^2] under the null: rank (1/n1 + 1/n2) (N - 2) / (N - rank - 3) for Gaussian rows.
    bias = rank * (1 / n1 + 1 / n2) * (total - 2) / max(total - rank - 3, 1)
    effect = float(np.sqrt(max(d2 - bias, 0.0)))
    names = columns or [f"x{i}" for i in range(len(diff))]
    shifts = np.zeros(len(diff))
    shifts[keep] = z
    top = np.argsort(-np.abs(shifts))[:5]
    details.update(
        rank=rank,
        f_statistic=float(f),
        df=[rank, total - rank - 1],
        mahalanobis_raw=float(np.sqrt(d2)),
        largest_mean_shifts_sd={names[i]: float(shifts[i]) for i in top},
    )
    return float(t2), p, effect, details


class HotellingDetector(Detector):
    """Shift of the mean vector of several numeric features (Hotelling's T^2).

    Parameters
    ----------
    alpha : float
        Significance level of ``drift``.
    min_effect : float, optional
        Mahalanobis-distance floor of ``drift`` (default 0.05 standard deviations).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = HotellingDetector().fit(rng.normal(size=(1000, 20)))
    >>> det.test(rng.normal(size=(1000, 20))).drift
    False
    >>> shifted = rng.normal(size=(1000, 20)) + np.r_[[0.2] * 3, [0.0] * 17]
    >>> det.test(shifted).drift
    True
    """

    name = "hotelling"
    effect_name = "mahalanobis"

    def _fit(self, reference: Any) -> None:
        if isinstance(reference, Moments):
            self.reference_ = reference
        else:
            x = as_2d(reference, "reference")
            self.reference_ = Moments.empty(x.shape[1]).update(x)
        if self.reference_.n < 2:
            raise ValueError("reference needs at least 2 complete rows for a covariance")

    def _test(self, window: Any) -> DriftResult:
        if isinstance(window, Moments):
            win = window
        else:
            x = as_2d(window, "window")
            if x.shape[1] != len(self.reference_.mean):
                raise ValueError(
                    f"window has {x.shape[1]} features, the reference {len(self.reference_.mean)}"
                )
            win = Moments.empty(x.shape[1]).update(x)
        t2, p, effect, details = hotelling_test(self.reference_, win)
        return self._result(t2, p, effect, details)
