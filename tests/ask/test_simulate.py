"""Active-learning simulation, comparison summaries, table and plot."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from looplab.ask.simulate import (
    Comparison,
    LearningCurve,
    StrategySummary,
    compare,
    format_table,
    parse_strategy,
    plot_curves,
    precompute_features,
    simulate,
    verdict,
)

MODEL = partial(LogisticRegression, max_iter=500)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_tiny_run_has_the_right_shape(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    curve = simulate(X, y, make_model=MODEL, strategy="margin", budget=60, batch_size=10, seed=0)
    assert curve.n_labels.tolist() == [20, 30, 40, 50, 60]
    assert curve.accuracy.shape == curve.balanced_accuracy.shape == (5,)
    assert ((curve.accuracy >= 0) & (curve.accuracy <= 1)).all()
    assert ((curve.balanced_accuracy >= 0) & (curve.balanced_accuracy <= 1)).all()
    assert 0 <= curve.auc() <= 1


def test_last_batch_is_cut_to_the_budget(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    curve = simulate(X, y, make_model=MODEL, strategy="random", budget=45, batch_size=10, seed=0)
    assert curve.n_labels.tolist() == [20, 30, 40, 45]


@pytest.mark.parametrize("spec", ["margin", "entropy", "margin+diversity", "margin+balance"])
def test_same_seed_same_curve(digits: tuple[np.ndarray, np.ndarray], spec: str) -> None:
    X, y = digits
    run = partial(simulate, X, y, make_model=MODEL, strategy=spec, budget=50, batch_size=10)
    a, b, c = run(seed=3), run(seed=3), run(seed=4)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    np.testing.assert_array_equal(a.balanced_accuracy, b.balanced_accuracy)
    assert not np.array_equal(a.accuracy, c.accuracy)


def test_seed_labels_are_shared_by_strategies(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    run = partial(simulate, X, y, make_model=MODEL, budget=20, batch_size=10, seed=5)
    # With the budget spent on seed labels, only the (shared) seed set is evaluated.
    assert run(strategy="margin").accuracy[0] == run(strategy="random").accuracy[0]


def test_explicit_test_indices(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    test = np.arange(0, 1797, 3)
    curve = simulate(
        X, y, make_model=MODEL, strategy="margin", budget=40, batch_size=20, seed=0,
        test_indices=test,
    )  # fmt: skip
    assert curve.n_labels.tolist() == [20, 40]


def test_single_class_seed_labels_do_not_crash() -> None:
    X = np.arange(40, dtype=float).reshape(-1, 1)
    y = np.array([0] * 36 + [1] * 4)
    curve = simulate(
        X, y, make_model=MODEL, strategy="margin", budget=25, batch_size=5, seed=0,
        initial=2, test_indices=[0, 39],
    )  # fmt: skip
    assert curve.n_labels[-1] == 25


def test_invalid_arguments(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    with pytest.raises(ValueError, match="unknown strategy 'best'"):
        simulate(X, y, make_model=MODEL, strategy="best", budget=40, batch_size=10, seed=0)
    with pytest.raises(ValueError, match="at least the seed labels"):
        simulate(X, y, make_model=MODEL, strategy="margin", budget=10, batch_size=10, seed=0)
    with pytest.raises(ValueError, match="'\\+diversity' and/or"):
        parse_strategy("margin+fast")
    assert parse_strategy("entropy+diversity+balance") == ("entropy", True, True)


def test_curve_metrics() -> None:
    curve = LearningCurve(
        n_labels=np.array([20, 30, 40, 50, 60]),
        accuracy=np.array([0.5, 0.96, 0.90, 0.99, 0.995]),
        balanced_accuracy=np.array([0.4, 0.5, 0.6, 0.7, 0.8]),
    )
    assert curve.labels_to_reach(0.95) == 30
    assert curve.labels_to_hold(0.95) == 50  # 40 dips below
    assert curve.labels_to_reach(0.999) is None
    assert curve.labels_to_hold(0.999) is None
    assert curve.labels_to_reach(0.65, "balanced_accuracy") == 50
    # Trapezoids over a width of 40 labels.
    expected = (0.73 + 0.93 + 0.945 + 0.9925) * 10 / 40
    assert curve.auc() == pytest.approx(expected)
    with pytest.raises(ValueError, match="unknown metric"):
        curve.auc("f1")


def test_margin_beats_random_on_digits(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = digits
    result = compare(
        X, y, make_model=MODEL, strategies=["margin"], seeds=3, budget=200, batch_size=10,
    )  # fmt: skip
    random, margin = result.summaries["random"], result.summaries["margin"]
    assert len(result.curves["margin"]) == 3 and result.seeds == [0, 1, 2]
    assert len(margin.auc_gain) == 3
    assert np.mean(margin.auc) > np.mean(random.auc) + 0.015
    assert all(0.9 < f <= 1 for f in result.full_accuracy)
    table = format_table(result)
    assert "margin" in table and "random" in table and "reach 95%" in table
    png = plot_curves(result, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_precompute_features_for_text() -> None:
    texts = ["good film", "great plot", "bad film", "awful plot"] * 10
    labels = np.array(["pos", "pos", "neg", "neg"] * 10)
    X, make_model = precompute_features("text", ["text"], [{"text": t} for t in texts])
    assert X.shape[0] == 40
    assert make_model() is not make_model()
    curve = simulate(
        X, labels, make_model=make_model, strategy="margin", budget=24, batch_size=2, seed=0,
        initial=4, test_size=0.3,
    )  # fmt: skip
    assert curve.accuracy[-1] == 1.0


def test_random_baseline_averages_its_draws(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    run = partial(compare, X, y, make_model=MODEL, strategies=["margin"], budget=60, batch_size=10)
    single, averaged = run(seeds=[1, 2]), run(seeds=[1, 2], random_draws=3)
    # Draw 0 is the single-draw run; the baseline is the pointwise mean of the three draws.
    assert len(averaged.random_runs) == 3
    for i in range(2):
        draws = [run_[i] for run_ in averaged.random_runs]
        np.testing.assert_array_equal(draws[0].accuracy, single.curves["random"][i].accuracy)
        assert not np.array_equal(draws[0].accuracy, draws[1].accuracy)
        mean = np.mean([d.accuracy for d in draws], axis=0)
        np.testing.assert_allclose(averaged.curves["random"][i].accuracy, mean)
    # Other strategies run once per seed, unchanged; their gains are against the mean.
    np.testing.assert_array_equal(
        averaged.curves["margin"][0].accuracy, single.curves["margin"][0].accuracy
    )
    gain = averaged.summaries["margin"].auc_gain[0]
    assert gain == pytest.approx(
        averaged.curves["margin"][0].auc() - averaged.curves["random"][0].auc()
    )
    assert "random = mean of 3 runs per seed" in format_table(averaged)
    assert single.random_runs == [] and "mean of" not in format_table(single)
    with pytest.raises(ValueError, match="random_draws must be a positive integer"):
        run(seeds=1, random_draws=0)


def _comparison(gains_points: list[float]) -> Comparison:
    n = len(gains_points)
    summary = StrategySummary(
        "margin", [None] * n, [None] * n, [0.9] * n, [0.9] * n,
        [g / 100 for g in gains_points], [0.0] * n,
    )  # fmt: skip
    return Comparison(
        seeds=list(range(n)), budget=100, batch_size=10, metric="accuracy", target=0.95,
        hold=0.99, full_accuracy=[1.0] * n, full_balanced_accuracy=[1.0] * n, curves={},
        summaries={"margin": summary},
    )  # fmt: skip


def test_verdict_says_when_two_seeds_cannot_tell() -> None:
    v = verdict(_comparison([-3.0, -3.3]), "margin")
    assert v.text.startswith(
        "on this data, margin did worse than random by 3.15 points of AUC with 100 labels"
    )
    assert "2 seeds are too few to tell" in v.text and "--seeds 6" in v.text
    assert v.too_few_seeds and v.p_value is None and not v.significant
    assert "per seed: -3.00, -3.30" in v.text


def test_verdict_runs_a_paired_test_once_seeds_suffice() -> None:
    v = verdict(_comparison([2, 3, 1, 2.5, 4, 1.5]), "margin")
    assert v.p_value == pytest.approx(2 / 2**6)  # every seed better: exact signed-rank p
    assert v.significant and "significant on 6 seeds" in v.text and "beat random by 2.33" in v.text
    mixed = verdict(_comparison([2, -1, 1, 0.5, 3, -1.5, 0.2]), "margin")
    assert not mixed.significant and "not significant on 7 seeds" in mixed.text
    assert mixed.ci_points is not None and mixed.ci_points[0] < 0 < mixed.ci_points[1]


def test_verdict_says_when_a_strategy_only_converges_to_the_majority() -> None:
    grid = np.array([20, 40, 60])

    def curve(bal: float, f1: float) -> LearningCurve:
        return LearningCurve(grid, np.array([0.90, 0.94, 0.95]), np.array([0.5, 0.5, bal]),
                             macro_f1=np.array([0.49, 0.49, f1]))  # fmt: skip

    comparison = _comparison([2, 3, 1, 2.5, 4, 1.5])
    stuck = replace(
        comparison,
        curves={"margin": [curve(0.5, 0.487)] * 6},
        baselines={"balanced_accuracy": [0.5] * 6, "macro_f1": [0.487] * 6},
        baseline_label="no",
    )
    v = verdict(stuck, "margin")
    assert v.text.startswith("on this data, margin beat random by")
    assert "no better than always answering 'no'" in v.text
    assert v.text.endswith("it only converges to the majority faster")
    learned = replace(stuck, curves={"margin": [curve(0.71, 0.66)] * 6})
    assert "majority" not in verdict(learned, "margin").text
