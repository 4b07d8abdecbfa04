"""Text columns: a domain classifier on TF-IDF vectors (or on embeddings you give).

Text is tested in a vector space. Samples of reference and window texts are mapped with a
TF-IDF vectoriser and a logistic regression trained on part of them tries to tell the rest apart
(:func:`~looplab.watch.drift.classifier.classifier_test`: held-out AUC, exact Mann-Whitney null).
The vectoriser's vocabulary is fitted on both samples together, without their labels: a vocabulary
from the reference alone cannot see words only the window uses (the commonest text drift), and
since the fit ignores which side a text came from, the null distribution is unchanged.

Given a 2-D array instead of strings (sentence embeddings, say), the same test runs on it
directly. ``details`` lists the terms that moved most, to explain a drift to a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from looplab.watch.drift.base import Detector, DriftResult, as_generator
from looplab.watch.drift.classifier import classifier_test, standardise, subsample


def text_test(
    ref: Sequence[str | None],
    win: Sequence[str | None],
    *,
    max_features: int = 5000,
    test_size: float = 0.5,
    rng: np.random.Generator,
) -> tuple[float, float, float, dict[str, Any]]:
    """(held-out AUC, p-value, gini, details) of two samples of texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    r = [t for t in ref if t is not None]
    w = [t for t in win if t is not None]
    if len(r) < 2 or len(w) < 2:
        return 0.5, 1.0, 0.0, {"n_reference": len(r), "n_window": len(w)}
    vec = TfidfVectorizer(max_features=max_features, sublinear_tf=True, min_df=2)
    try:
        x = vec.fit_transform(r + w)
    except ValueError:  # no term appears twice: nothing to compare on
        return 0.5, 1.0, 0.0, {"n_reference": len(r), "n_window": len(w)}
    auc, p, gini, details = classifier_test(x[: len(r)], x[len(r) :], test_size=test_size, rng=rng)
    mean_r = np.asarray(x[: len(r)].mean(axis=0)).ravel()
    mean_w = np.asarray(x[len(r) :].mean(axis=0)).ravel()
    terms = vec.get_feature_names_out()
    moved = np.argsort(-(mean_w - mean_r))[:5]
    details.update(
        vocabulary=len(terms),
        rising_terms=[str(terms[i]) for i in moved if mean_w[i] > mean_r[i]],
        mean_length_reference=float(np.mean([len(t) for t in r])),
        mean_length_window=float(np.mean([len(t) for t in w])),
    )
    return auc, p, gini, details


class TextDetector(Detector):
    """Drift of a text column (or of embedding vectors) by a domain classifier.

    Parameters
    ----------
    alpha : float
        Significance level of ``drift``.
    min_effect : float, optional
        Gini (2 AUC - 1) floor of ``drift`` (default 0.03).
    max_features : int
        TF-IDF vocabulary size.
    test_size : float
        Share of the texts held out to test the trained classifier.
    max_samples : int
        Texts used from each side at most (a seeded subsample beyond that).
    random_state : int, Generator or None
        Seeds the subsamples and the split.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sport = ["the team won the match", "a late goal won the cup", "the coach praised the side"]
    >>> tech = ["the new chip is fast", "a software update fixed the bug", "the phone has a chip"]
    >>> det = TextDetector().fit(rng.choice(sport, 300).tolist())
    >>> det.test(rng.choice(sport, 300).tolist()).drift
    False
    >>> det.test(rng.choice(sport + tech, 300).tolist()).drift
    True
    """

    name = "tfidf-classifier"
    effect_name = "gini"

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        min_effect: float | None = None,
        max_features: int = 5000,
        test_size: float = 0.5,
        max_samples: int = 2000,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(alpha=alpha, min_effect=min_effect)
        self.max_features = max_features
        self.test_size = test_size
        self.max_samples = max_samples
        self.random_state = random_state

    def _fit(self, reference: Any) -> None:
        rng = as_generator(self.random_state)
        arr = np.asarray(reference, dtype=object)
        if arr.ndim == 2:  # embeddings: a domain classifier on the given vectors
            x = arr.astype(np.float64)
            self.mean_ = x.mean(axis=0)
            sd = x.std(axis=0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
            self.reference_ = subsample(x, self.max_samples, rng)
            return
        if arr.ndim != 1 or len(arr) < 2:
            raise ValueError(
                "reference must be a list of at least 2 texts or a 2-D array of vectors"
            )
        self.mean_ = None
        self.reference_ = subsample(arr, self.max_samples, rng)

    def _test(self, window: Any) -> DriftResult:
        rng = as_generator(self.random_state)
        rng.integers(2)
        arr = np.asarray(window, dtype=object)
        if self.mean_ is not None:
            x = subsample(arr.astype(np.float64).reshape(len(arr), -1), self.max_samples, rng)
            auc, p, gini, details = classifier_test(
                standardise(self.reference_, self.mean_, self.scale_),
                standardise(x, self.mean_, self.scale_),
                test_size=self.test_size,
                rng=rng,
            )
        else:
            texts = subsample(arr, self.max_samples, rng)
            auc, p, gini, details = text_test(
                [None if v is None else str(v) for v in self.reference_],
                [None if v is None else str(v) for v in texts],
                max_features=self.max_features,
                test_size=self.test_size,
                rng=rng,
            )
        return self._result(auc, p, gini, details)
