"""The label-error scan: out-of-fold probabilities and the ranked suspects."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_info, threadpool_limits

from looplab.trust.label_errors import (
    default_estimators,
    out_of_fold_ensemble,
    out_of_fold_probabilities,
    suspects,
)


def _lr() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits with 10% of labels flipped uniformly to another class: X, true, noisy, flipped."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(7)
    flipped = rng.choice(len(y), len(y) // 10, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return X, y, noisy, flipped


@pytest.fixture(scope="module")
def ensemble_probas(planted: tuple[np.ndarray, ...]) -> np.ndarray:
    X, _, noisy, _ = planted
    return out_of_fold_probabilities(X, noisy, folds=5, seed=0)


def test_ensemble_finds_most_planted_flips(
    planted: tuple[np.ndarray, ...], ensemble_probas: np.ndarray
) -> None:
    _, y, noisy, flipped = planted
    found = suspects(noisy, ensemble_probas)
    hits = np.isin(found.indices, flipped).sum()
    precision, recall = hits / len(found.indices), hits / len(flipped)
    assert recall >= 0.85, recall
    assert precision >= 0.85, precision
    # Ranked worst first, and the suggestion is mostly the true class of a real flip.
    assert np.all(np.diff(found.scores) >= 0)
    real = np.isin(found.indices, flipped)
    assert (found.suggested[real] == y[found.indices[real]]).mean() >= 0.9


def test_ensemble_is_no_worse_than_logistic_regression_alone(
    planted: tuple[np.ndarray, ...], ensemble_probas: np.ndarray
) -> None:
    X, _, noisy, flipped = planted
    alone = suspects(noisy, out_of_fold_probabilities(X, noisy, _lr(), folds=5, seed=0))
    both = suspects(noisy, ensemble_probas)

    def f1(indices: np.ndarray) -> float:
        hits = np.isin(indices, flipped).sum()
        return 2 * hits / (len(indices) + len(flipped))

    assert f1(both.indices) >= f1(alone.indices)


def test_probabilities_are_out_of_fold_and_well_formed(planted: tuple[np.ndarray, ...]) -> None:
    X, y, _, _ = planted
    subset = np.arange(0, len(y), 3)
    probas = out_of_fold_probabilities(X[subset], y[subset], _lr(), folds=3, seed=1)
    assert probas.shape == (len(subset), 10)
    assert np.allclose(probas.sum(axis=1), 1.0)
    # Out of fold: accuracy of clean labels is high but a memorising 1-NN would score 1.0
    # in-sample; here a record's own label never trains the model that scores it.
    assert 0.85 < (probas.argmax(axis=1) == y[subset]).mean() < 1.0


def test_a_class_rarer_than_the_folds_falls_back_to_plain_folds() -> None:
    X, y = load_digits(return_X_y=True)
    keep = np.r_[np.flatnonzero(y != 9)[:300], np.flatnonzero(y == 9)[:2]]
    probas = out_of_fold_probabilities(X[keep], y[keep], _lr(), folds=5, seed=0)
    assert probas.shape == (len(keep), 10)
    assert np.allclose(probas.sum(axis=1), 1.0)


def test_single_estimator_and_sequence_agree() -> None:
    X, y = load_digits(return_X_y=True)
    X, y = X[:200], y[:200]
    one = out_of_fold_probabilities(X, y, _lr(), folds=3, seed=2)
    listed = out_of_fold_probabilities(X, y, [_lr()], folds=3, seed=2)
    assert np.allclose(one, listed)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": np.zeros(50, dtype=int)}, "single class"),
        ({"y": np.array(["a", "b"] * 25)}, "integer class indices"),
        ({"y": np.arange(40) % 2}, "40 entries for 50 records"),
        ({"y": -(np.arange(50) % 2)}, ">= 0"),
        ({"folds": 1}, "folds must be an integer >= 2"),
        ({"folds": 60}, "at least 60 records"),
        ({"estimators": []}, "estimators is empty"),
        ({"estimators": SVC()}, "no predict_proba"),
        ({"threads": 0}, "threads must be"),
    ],
)
def test_bad_input_to_out_of_fold_probabilities(kwargs: dict[str, object], message: str) -> None:
    X, y = load_digits(return_X_y=True)
    args: dict[str, object] = {"X": X[:50], "y": y[:50] % 2, "estimators": _lr(), "folds": 3}
    args |= kwargs
    with pytest.raises(ValueError, match=message):
        out_of_fold_probabilities(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "probas", "kwargs", "message"),
    [
        (np.array([0, 1, 1]), np.full((2, 2), 0.5), {}, "probas must be"),
        (np.array([0, 2, 1]), np.full((3, 2), 0.5), {}, "label 2 has no column"),
        (np.array([0, 1, 1]), np.full((3, 2), 0.7), {}, "sum to 1"),
        (np.array([0, 1, 1]), np.full((3, 2), 0.5), {"filter_by": "magic"}, "filter_by"),
        (np.array([0, 1, 1]), np.full((3, 2), 0.5), {"frac_noise": 0.0}, "frac_noise"),
    ],
)
def test_bad_input_to_suspects(
    labels: np.ndarray, probas: np.ndarray, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        suspects(labels, probas, **kwargs)  # type: ignore[arg-type]


def test_large_sets_approximate_the_kernel_instead_of_fitting_an_svc() -> None:
    from sklearn.kernel_approximation import Nystroem

    from looplab.trust.label_errors import SVC_MAX_RECORDS, default_estimators

    small = default_estimators(0, SVC_MAX_RECORDS)[1]
    large = default_estimators(0, SVC_MAX_RECORDS + 1)[1]
    assert not any(isinstance(step, Nystroem) for _, step in small.steps)
    assert any(isinstance(step, Nystroem) for _, step in large.steps)


class _Constant(ClassifierMixin, BaseEstimator):
    """Predicts the same class probabilities for every record (a hand-computable member)."""

    def __init__(self, proba: tuple[float, ...] = (0.5, 0.5)) -> None:
        self.proba = proba

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Constant:
        self.classes_ = np.arange(len(self.proba))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile(np.asarray(self.proba, dtype=float), (len(X), 1))


def test_selection_keeps_the_subset_with_the_lowest_log_loss_by_hand() -> None:
    """Constant members, so every out-of-fold row is the member's vector.

    Labels: six 0s, three 1s, one 2. A = (.6, .3, .1): loss (6 ln(1/.6) + 3 ln(1/.3) + ln 10)/10
    = 0.898; B = (.2, .4, .4): 1.332; their average (.4, .35, .25): 1.003. A alone wins.
    """
    X = np.zeros((10, 1))
    y = np.array([0] * 6 + [1] * 3 + [2])
    a, b = _Constant((0.6, 0.3, 0.1)), _Constant((0.2, 0.4, 0.4))
    result = out_of_fold_ensemble(X, y, [a, b], folds=2, seed=0)
    assert result.members == (0,)
    np.testing.assert_allclose(result.log_loss, [0.8980, 1.3322], atol=1e-4)
    assert result.ensemble_log_loss == pytest.approx(0.8980, abs=1e-4)
    np.testing.assert_allclose(result.probabilities, np.tile([0.6, 0.3, 0.1], (10, 1)))
    # Without selection both are averaged; with the average's loss being lower it is chosen.
    both = out_of_fold_probabilities(X, y, [a, b], folds=2, select=False)
    np.testing.assert_allclose(both, np.tile([0.4, 0.35, 0.25], (10, 1)))
    c, d = _Constant((0.9, 0.1)), _Constant((0.1, 0.9))
    y2 = np.array([0] * 5 + [1] * 5)
    # c alone: (5 ln(1/.9) + 5 ln 10)/10 = 1.204; d the same; their average (.5, .5): ln 2.
    mixed = out_of_fold_ensemble(X, y2, [c, d], folds=2, seed=0)
    assert mixed.members == (0, 1)
    assert mixed.ensemble_log_loss == pytest.approx(np.log(2), abs=1e-9)
    np.testing.assert_allclose(mixed.log_loss, [1.2040, 1.2040], atol=1e-4)


def test_sparse_input_gets_the_text_candidates_and_works_by_default() -> None:
    texts = [f"goal match team {i}" for i in range(30)] + [
        f"vote minister law {i}" for i in range(30)
    ]
    X = TfidfVectorizer().fit_transform(texts)
    y = np.array([0] * 30 + [1] * 30)
    y[[3, 40]] = 1 - y[[3, 40]]
    for model in default_estimators(0, sparse=True):
        steps = getattr(model, "steps", [])
        assert not any(isinstance(step, StandardScaler) for _, step in steps)
    # Naive Bayes reads counts: a candidate only for non-negative features.
    assert any(isinstance(m, MultinomialNB) for m in default_estimators(0, sparse=True))
    signed = default_estimators(0, sparse=True, nonnegative=False)
    assert not any(isinstance(m, MultinomialNB) for m in signed)
    negative = X.copy()
    negative.data[0] = -1.0
    assert out_of_fold_probabilities(negative, y, folds=3).shape == (60, 2)
    # The dense default would fail on sparse input (a scaler cannot centre it).
    found = suspects(y, out_of_fold_probabilities(X, y, folds=3, seed=0))
    assert set(found.indices[:2].tolist()) == {3, 40}


def test_too_many_candidates_to_select_among() -> None:
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="at most 6 estimators"):
        out_of_fold_ensemble(X[:50], y[:50] % 2, [_lr()] * 7, folds=3)


class _ThreadSpy(_Constant):
    """Records the BLAS threads it was allowed while fitting."""

    seen: list[int] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> _ThreadSpy:
        type(self).seen.extend(i["num_threads"] for i in threadpool_info())
        return super().fit(X, y)


def test_fits_run_with_one_blas_thread_by_default() -> None:
    X, y = np.zeros((10, 1)), np.array([0, 1] * 5)
    _ThreadSpy.seen = []
    out_of_fold_probabilities(X, y, _ThreadSpy(), folds=2)
    assert _ThreadSpy.seen and set(_ThreadSpy.seen) == {1}
    with threadpool_limits(limits=2):
        _ThreadSpy.seen = []
        out_of_fold_probabilities(X, y, _ThreadSpy(), folds=2, threads=None)
        assert max(_ThreadSpy.seen) == 2
