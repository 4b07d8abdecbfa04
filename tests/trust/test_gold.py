"""Gold accuracy per annotator and the Wilson interval behind it."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.trust import MISSING
from looplab.trust.gold import gold_accuracy, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "level", "low", "high"),
    [
        # statsmodels.stats.proportion.proportion_confint(x, n, alpha, method="wilson")
        (8, 10, 0.95, 0.4901625, 0.9433178),
        (0, 10, 0.95, 0.0, 0.2775328),
        (10, 10, 0.95, 0.7224672, 1.0),
    ],
)
def test_wilson_against_published_values(
    successes: int, n: int, level: float, low: float, high: float
) -> None:
    p = wilson_interval(successes, n, level)
    assert (p.low, p.high) == pytest.approx((low, high), abs=1e-6)
    assert p.rate == successes / n


@pytest.mark.parametrize(("level", "z"), [(0.95, 1.959964), (0.90, 1.644854), (0.99, 2.575829)])
def test_wilson_is_the_score_test_inversion(level: float, z: float) -> None:
    """At each bound the score statistic |p_hat - p| / sqrt(p (1 - p) / n) equals z."""
    p = wilson_interval(37.5, 61, level)  # fractional counts (expected counts) work too
    for bound in (p.low, p.high):
        score = abs(37.5 / 61 - bound) / np.sqrt(bound * (1 - bound) / 61)
        assert score == pytest.approx(z, abs=1e-5)


def test_wilson_covers_about_as_often_as_it_says_at_small_n() -> None:
    rng = np.random.default_rng(0)
    for true_rate in (0.1, 0.5, 0.9):
        draws = rng.binomial(25, true_rate, 2000)
        covered = np.mean(
            [(q := wilson_interval(int(x), 25)).low <= true_rate <= q.high for x in draws]
        )
        assert 0.91 <= covered <= 0.99


def test_no_gold_means_no_information() -> None:
    p = wilson_interval(0, 0)
    assert np.isnan(p.rate) and (p.low, p.high) == (0.0, 1.0)


def test_gold_accuracy_counts_only_gold_items_each_person_labeled() -> None:
    labels = np.array(
        [
            [0, 1, MISSING],
            [1, 1, MISSING],
            [2, MISSING, MISSING],
            [0, 0, 2],  # not gold: never counts
        ]
    )
    gold = np.array([0, 1, 2, MISSING])
    result = gold_accuracy(labels, gold)
    assert [(p.successes, p.n) for p in result] == [(3, 3), (1, 2), (0, 0)]
    assert result[0].rate == 1.0 and result[0].high == 1.0 and result[0].low < 1.0
    assert result[1].rate == 0.5
    assert np.isnan(result[2].rate)


def test_a_random_annotator_is_told_apart_from_a_careful_one_with_enough_gold() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 200)
    careful = np.where(rng.random(200) < 0.95, truth, (truth + 1) % 4)
    random = rng.integers(0, 4, 200)
    good, bad = gold_accuracy(np.column_stack([careful, random]), truth)
    assert bad.high < good.low


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson_interval(3, 2), "0 <= successes <= n"),
        (lambda: wilson_interval(1, 2, level=1.5), "level must be between 0 and 1"),
        (lambda: gold_accuracy(np.zeros((3, 2), int), np.zeros(2, int)), "one entry per item"),
        (lambda: gold_accuracy(np.zeros((2, 2), int), np.array([0, 5])), "class indices below"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
