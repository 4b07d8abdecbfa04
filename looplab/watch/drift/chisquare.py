"""Categorical columns (and predicted labels): chi-square test, Jensen-Shannon distance.

The test is Pearson's chi-square on the 2 x K contingency table of reference and window counts
(:func:`scipy.stats.chi2_contingency`). Categories the reference never had are one column of the
table (so a new value is evidence of drift, not an error), and categories seen fewer than
``min_count`` times in both samples together are pooled into one column first, so expected
counts stay large enough for the chi-square approximation. The effect size is the
Jensen-Shannon distance (base 2, in [0, 1]) between the two category distributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from looplab.watch.drift.base import Detector, DriftResult, as_1d
from looplab.watch.drift.sketch import OTHER, CategoryCounts


def categorical_test(
    ref: CategoryCounts, win: CategoryCounts, *, min_count: int = 10
) -> tuple[float, float, float, dict[str, Any]]:
    """(chi-square statistic, p-value, JS distance, details) of one categorical column."""
    r = ref.counts.astype(np.float64)
    w = win.counts.astype(np.float64)
    details: dict[str, Any] = {
        "n_reference": int(r.sum()),
        "n_window": int(w.sum()),
        "missing_reference": ref.missing,
        "missing_window": win.missing,
        "unseen": dict(sorted(win.unseen.items(), key=lambda kv: -kv[1])[:10]),
    }
    if r.sum() == 0 or w.sum() == 0:
        return 0.0, 1.0, 0.0, details
    js = float(jensenshannon(r / r.sum(), w / w.sum(), base=2.0))
    rare = (r + w) < min_count
    table = np.stack([r[~rare], w[~rare]])
    if rare.any():
        table = np.column_stack([table, [r[rare].sum(), w[rare].sum()]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, js, details
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    shares_r, shares_w = r / r.sum(), w / w.sum()
    names = [*ref.categories, OTHER]
    moved = np.argsort(-np.abs(shares_w - shares_r))[:5]
    details.update(
        dof=int(dof),
        pooled_rare=int(rare.sum()),
        largest_changes={
            names[i]: {"reference": float(shares_r[i]), "window": float(shares_w[i])} for i in moved
        },
    )
    return float(chi2), float(p), js, details


class ChiSquareDetector(Detector):
    """Drift of one categorical variable: chi-square on counts, Jensen-Shannon effect.

    Parameters
    ----------
    alpha : float
        Significance level of ``drift``.
    min_effect : float, optional
        Jensen-Shannon distance floor of ``drift`` (default 0.05).
    max_categories : int
        The reference keeps its most frequent categories and pools the rest.
    min_count : int
        Categories with fewer observations in both samples together are pooled for the test.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = ChiSquareDetector().fit(rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2]))
    >>> det.test(rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])).drift
    False
    >>> det.test(rng.choice(["a", "b", "c", "new"], 3000, p=[0.3, 0.3, 0.2, 0.2])).drift
    True
    """

    name = "chi2"
    effect_name = "jensen_shannon"

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        min_effect: float | None = None,
        max_categories: int = 50,
        min_count: int = 10,
    ) -> None:
        super().__init__(alpha=alpha, min_effect=min_effect)
        self.max_categories = max_categories
        self.min_count = min_count

    def _fit(self, reference: Any) -> None:
        if isinstance(reference, CategoryCounts):
            self.reference_ = reference
        else:
            self.reference_ = CategoryCounts.reference(
                as_1d(np.asarray(reference, dtype=object), "reference"),
                max_categories=self.max_categories,
            )
        if self.reference_.n == 0:
            raise ValueError("reference has no non-missing value to count")

    def _test(self, window: Any) -> DriftResult:
        if isinstance(window, CategoryCounts):
            win = window
        else:
            win = self.reference_.empty().update(as_1d(np.asarray(window, dtype=object), "window"))
        chi2, p, js, details = categorical_test(self.reference_, win, min_count=self.min_count)
        return self._result(chi2, p, js, details)
