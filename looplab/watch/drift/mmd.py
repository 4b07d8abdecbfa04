"""Maximum mean discrepancy with an RBF kernel and a permutation null.

MMD compares whole distributions, so it sees changes of spread and of dependence that mean-based
tests miss, at the price of power against a small mean shift. Both samples are subsampled to
``max_samples`` rows, standardised by the reference, and the kernel bandwidth is the median
pairwise distance of the pooled rows (a function of the pooled data only, so the permutation null
stays exact). The statistic is the biased MMD^2 (a V-statistic); each permutation reuses the one
kernel matrix, so ``n_permutations`` costs one ``N x N`` by ``N x B`` product. The p-value is
``(1 + #{permuted >= observed}) / (1 + B)``; the effect size is the root of the unbiased MMD^2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import cdist, pdist

from looplab.watch.drift.base import Detector, DriftResult, as_2d, as_generator
from looplab.watch.drift.classifier import standardise, subsample


def mmd_test(
    ref: np.ndarray, win: np.ndarray, *, n_permutations: int = 200, rng: np.random.Generator
) -> tuple[float, float, float, dict[str, Any]]:
    """(biased MMD^2, permutation p-value, root unbiased MMD^2, details) of two row samples."""
    m, n = len(ref), len(win)
    details: dict[str, Any] = {"n_reference": m, "n_window": n, "permutations": n_permutations}
    if m < 2 or n < 2:
        return 0.0, 1.0, 0.0, details
    pooled = np.vstack([ref, win])
    probe = subsample(pooled, 1000, rng)
    sq = pdist(probe, "sqeuclidean")
    bandwidth = float(np.median(sq[sq > 0])) if np.any(sq > 0) else 1.0
    kernel = np.exp(-cdist(pooled, pooled, "sqeuclidean") / bandwidth)
    weights = np.r_[np.full(m, 1.0 / m), np.full(n, -1.0 / n)]
    observed = float(weights @ kernel @ weights)
    perms = np.stack([rng.permutation(weights) for _ in range(n_permutations)], axis=1)
    null = np.einsum("ib,ib->b", perms, kernel @ perms)
    p = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))
    kxx, kyy, kxy = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    unbiased = (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.mean()
    )
    details.update(bandwidth=bandwidth, mmd2_unbiased=float(unbiased))
    return observed, p, float(np.sqrt(max(unbiased, 0.0))), details


class MMDDetector(Detector):
    """Multivariate drift: kernel two-sample test (RBF, median heuristic, permutations).

    Parameters
    ----------
    alpha : float
        Significance level of ``drift``.
    min_effect : float, optional
        Floor on the root unbiased MMD^2 (default 0: significance alone).
    max_samples : int
        Rows used from each side at most; the cost grows with its square.
    n_permutations : int
        Permutations for the null distribution.
    random_state : int, Generator or None
        Seeds the subsamples and the permutations.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = MMDDetector(max_samples=300).fit(rng.normal(size=(1000, 3)))
    >>> det.test(rng.normal(size=(1000, 3))).drift
    False
    >>> det.test(rng.normal(size=(1000, 3)) * [2.0, 1.0, 1.0]).drift
    True
    """

    name = "mmd"
    effect_name = "mmd"

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        min_effect: float | None = None,
        max_samples: int = 500,
        n_permutations: int = 200,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(alpha=alpha, min_effect=min_effect)
        self.max_samples = max_samples
        self.n_permutations = n_permutations
        self.random_state = random_state

    def _fit(self, reference: Any) -> None:
        x = as_2d(reference, "reference")
        if x.shape[0] < 2:
            raise ValueError("reference needs at least 2 rows")
        self.mean_ = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.reference_ = subsample(x, self.max_samples, as_generator(self.random_state))

    def _test(self, window: Any) -> DriftResult:
        x = as_2d(window, "window")
        if x.shape[1] != self.reference_.shape[1]:
            raise ValueError(
                f"window has {x.shape[1]} features, the reference {self.reference_.shape[1]}"
            )
        rng = as_generator(self.random_state)
        rng.integers(2)
        win = subsample(x, self.max_samples, rng)
        stat, p, effect, details = mmd_test(
            standardise(self.reference_, self.mean_, self.scale_),
            standardise(win, self.mean_, self.scale_),
            n_permutations=self.n_permutations,
            rng=rng,
        )
        return self._result(stat, p, effect, details)
