"""The used-columns wrapper: scikit-learn's estimator contract, and exactness for L2 models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from looplab.learn.sparsefit import UsedColumnsClassifier


@parametrize_with_checks([UsedColumnsClassifier()])
def test_sklearn_contract(estimator: UsedColumnsClassifier, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_same_predictions_as_the_full_fit() -> None:
    rng = np.random.default_rng(0)
    X = sp.random(300, 5000, density=0.003, random_state=0, format="csr")
    y = rng.integers(0, 3, size=300)
    train, rest = np.arange(60), np.arange(60, 300)
    full = LogisticRegression(C=10, tol=1e-10, max_iter=5000).fit(X[train], y[train])
    wrapped = UsedColumnsClassifier(LogisticRegression(C=10, tol=1e-10, max_iter=5000))
    wrapped.fit(X[train], y[train])
    assert wrapped.columns_.size < 5000 / 2
    np.testing.assert_allclose(
        wrapped.predict_proba(X[rest]), full.predict_proba(X[rest]), atol=1e-6
    )
    np.testing.assert_array_equal(wrapped.predict(X[rest]), full.predict(X[rest]))


def test_sample_weight_reaches_the_wrapped_classifier() -> None:
    # A weight of 2 is the same example twice for a loss summed over rows.
    rng = np.random.default_rng(1)
    X = sp.random(80, 400, density=0.02, random_state=1, format="csr")
    y = rng.integers(0, 2, size=80)
    weights = rng.integers(1, 3, size=80)
    repeated = np.repeat(np.arange(80), weights)
    model = LogisticRegression(C=10, tol=1e-10, max_iter=5000)
    weighted = UsedColumnsClassifier(model).fit(X, y, sample_weight=weights.astype(float))
    twice = UsedColumnsClassifier(model).fit(X[repeated], y[repeated])
    np.testing.assert_allclose(weighted.predict_proba(X), twice.predict_proba(X), atol=1e-5)
    unweighted = UsedColumnsClassifier(model).fit(X, y)
    assert np.abs(unweighted.predict_proba(X) - weighted.predict_proba(X)).max() > 1e-3
