"""Query strategies and top-k selection on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from looplab.ask import strategies
from looplab.ask.strategies import (
    STRATEGIES,
    entropy,
    get_strategy,
    least_confidence,
    margin,
    random,
    top_k,
    validate_proba,
)

# Row 0 is sure, row 1 hesitates between two classes, row 2 is spread over three.
PROBA = np.array(
    [
        [0.98, 0.01, 0.01],
        [0.48, 0.47, 0.05],
        [0.34, 0.33, 0.33],
        [0.70, 0.20, 0.10],
    ]
)


def test_least_confidence_values_and_order() -> None:
    np.testing.assert_allclose(least_confidence(PROBA), [0.02, 0.52, 0.66, 0.30])
    assert top_k(least_confidence(PROBA), 4, rng=0).tolist() == [2, 1, 3, 0]


def test_margin_values_and_order() -> None:
    np.testing.assert_allclose(margin(PROBA), [0.03, 0.99, 0.99, 0.50])
    assert set(top_k(margin(PROBA), 2, rng=0).tolist()) == {1, 2}
    assert top_k(margin(PROBA), 4, rng=0).tolist()[2:] == [3, 0]


def test_margin_ranks_a_near_tie_above_a_spread() -> None:
    # Entropy prefers the spread row; margin prefers the near tie between the top two.
    proba = np.array([[0.5, 0.5, 0.0, 0.0], [0.4, 0.2, 0.2, 0.2]])
    assert top_k(margin(proba), 1, rng=0).tolist() == [0]
    assert top_k(entropy(proba), 1, rng=0).tolist() == [1]


def test_entropy_is_normalised() -> None:
    scores = entropy(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    np.testing.assert_allclose(scores, [0.0, 1.0], atol=1e-12)


def test_margin_matches_sort_on_many_rows() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(7), size=20_000)
    top = np.sort(proba, axis=1)
    np.testing.assert_allclose(margin(proba), 1 - (top[:, -1] - top[:, -2]))
    np.testing.assert_allclose(least_confidence(proba), 1 - top[:, -1])


def test_float32_input_is_accepted() -> None:
    proba32 = PROBA.astype(np.float32)
    np.testing.assert_allclose(margin(proba32), margin(PROBA), atol=1e-6)


def test_random_is_reproducible_and_uses_the_rng() -> None:
    a = random(PROBA, np.random.default_rng(7))
    b = random(PROBA, np.random.default_rng(7))
    c = random(PROBA, np.random.default_rng(8))
    assert a.shape == (4,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_one_class_gives_equal_scores(name: str) -> None:
    scores = get_strategy(name)(np.ones((5, 1)), 0)
    assert scores.shape == (5,)
    if name != "random":
        assert np.all(scores == scores[0])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_empty_pool(name: str) -> None:
    assert get_strategy(name)(np.empty((0, 3)), 0).shape == (0,)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[0.5, np.nan]]), "NaN or infinite"),
        (np.array([[np.inf, 0.0]]), "NaN or infinite"),
        (np.array([[-np.inf, 1.0]]), "NaN or infinite"),
        (np.array([[1.5, -0.5]]), "negative"),
        (np.array([[0.2, 0.2]]), "sum to 1"),
        (np.array([0.5, 0.5]), "2-D"),
        (np.ones((2, 2, 2)) / 2, "2-D"),
        (np.empty((3, 0)), "no columns"),
        (np.array([["a", "b"]]), "numbers"),
    ],
)
def test_invalid_proba_is_rejected(name: str, bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_strategy(name)(bad, 0)


def test_bad_row_is_located_far_into_the_array() -> None:
    proba = np.full((20_000, 2), 0.5)
    proba[17_001, 0] = np.nan
    with pytest.raises(ValueError, match="row 17001"):
        validate_proba(proba)


def test_entropy_matches_scipy_with_zeros_and_float32() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.full(6, 0.3), size=5_000)
    proba[::7, 2] = 0.0  # exact zeros: 0 log 0 counts as 0
    proba /= proba.sum(axis=1, keepdims=True)
    expected = scipy.stats.entropy(proba, axis=1) / np.log(6)
    np.testing.assert_allclose(entropy(proba), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(entropy(proba.astype(np.float32)), expected, atol=1e-6)


def test_half_precision_and_strided_input() -> None:
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(4), size=1_000)
    wide = np.zeros((1_000, 8))
    wide[:, ::2] = proba  # a strided view, not a copy
    np.testing.assert_array_equal(margin(wide[:, ::2]), margin(proba))
    np.testing.assert_allclose(margin(proba.astype(np.float16)), margin(proba), atol=2e-3)


def test_unknown_strategy_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="entropy, least_confidence, margin, random"):
        get_strategy("uncertainty")


def test_top_k_matches_full_argsort() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(10_000)
    expected = np.argsort(-scores)[:100]
    np.testing.assert_array_equal(top_k(scores, 100, rng=1), expected)


def test_top_k_breaks_ties_randomly_but_reproducibly() -> None:
    scores = np.zeros(1000)
    picks = {tuple(top_k(scores, 5, rng=seed).tolist()) for seed in range(20)}
    assert len(picks) > 15  # not index order, not always the same
    assert top_k(scores, 5, rng=42).tolist() == top_k(scores, 5, rng=42).tolist()
    first = [top_k(scores, 1, rng=seed)[0] for seed in range(200)]
    assert np.mean(np.asarray(first) < 500) == pytest.approx(0.5, abs=0.15)


def test_top_k_ties_at_the_cut_off() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
    for seed in range(10):
        picked = top_k(scores, 3, rng=seed)
        assert picked[0] == 0
        assert set(picked[1:]) <= {1, 2, 3, 4}


def test_class_major_and_float32_layouts_give_the_same_margins() -> None:
    rng = np.random.default_rng(5)
    proba = rng.dirichlet(np.ones(10), size=20_000)
    class_major = np.ascontiguousarray(proba.T)  # (n_classes, n_samples), read in place
    np.testing.assert_array_equal(margin(class_major.T), margin(proba))
    np.testing.assert_array_equal(least_confidence(class_major.T), least_confidence(proba))
    scores32 = margin(class_major.astype(np.float32).T)
    assert scores32.dtype == np.float64
    np.testing.assert_allclose(scores32, margin(proba), atol=1e-6)


@pytest.mark.parametrize("k", [1, 100, 3000])
@pytest.mark.parametrize("layout", ["random", "sorted", "coarse ties"])
def test_top_k_on_long_arrays_matches_the_plain_partition(
    k: int, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sampled threshold only shrinks the search: picks and tie draws stay the same."""
    rng = np.random.default_rng(11)
    scores = rng.random(300_000)
    if layout == "sorted":
        scores.sort()  # a leading sample would set a useless threshold; a strided one does not
    elif layout == "coarse ties":
        scores = np.round(scores, 3)  # ~300 records share each value, the cut-off's included
    picked = top_k(scores, k, rng=4)
    assert np.sort(scores[picked]).tolist() == np.sort(scores)[-k:].tolist()
    monkeypatch.setattr(strategies, "_SAMPLE_ABOVE", 10**12)  # the plain argpartition path
    assert picked.tolist() == top_k(scores, k, rng=4).tolist()


def test_top_k_edge_cases() -> None:
    assert top_k(np.array([0.3, 0.9]), 5, rng=0).tolist() == [1, 0]
    assert top_k(np.array([0.3, 0.9]), 0, rng=0).tolist() == []
    assert top_k(np.array([]), 3, rng=0).tolist() == []
    with pytest.raises(ValueError, match="non-negative"):
        top_k(np.array([0.1]), -1, rng=0)
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([0.1, np.nan]), 1, rng=0)
    with pytest.raises(ValueError, match="1-D"):
        top_k(np.ones((2, 2)), 1, rng=0)


@st.composite
def probabilities(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(1, 40))
    c = draw(st.integers(1, 6))
    raw = draw(
        arrays(
            np.float64, (n, c), elements=st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
        )
    )
    raw = raw + 1e-9  # avoid all-zero rows
    return raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(proba=probabilities(), k=st.integers(0, 50), seed=st.integers(0, 2**32 - 1))
def test_property_scores_and_top_k(proba: np.ndarray, k: int, seed: int) -> None:
    for name, strategy in STRATEGIES.items():
        scores = strategy(proba, seed)
        assert scores.shape == (proba.shape[0],), name
        assert np.isfinite(scores).all(), name
        picked = top_k(scores, k, rng=seed)
        assert picked.size == min(k, proba.shape[0])
        assert np.unique(picked).size == picked.size
        assert ((picked >= 0) & (picked < proba.shape[0])).all()
        # Every selected score is at least every unselected one, and the order is descending.
        if 0 < picked.size < proba.shape[0]:
            rest = np.delete(scores, picked)
            assert scores[picked].min() >= rest.max()
        assert np.all(np.diff(scores[picked]) <= 0)
