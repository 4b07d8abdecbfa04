"""Held-out metrics: bootstrap against scikit-learn, reliability, ECE, Brier, the summary."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from looplab.learn.evaluate import (
    bootstrap_metric,
    brier_score,
    classification_metrics,
    expected_calibration_error,
    metric_ci,
    reliability_curve,
)


def test_fast_bootstrap_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], size=80)
    pred = np.where(rng.random(80) < 0.7, y, rng.choice(["a", "b", "c"], size=80))
    dist = bootstrap_metric(y, pred, y, metric="macro_f1", n_boot=50, rng=3)
    draws = np.random.default_rng(3).integers(0, 80, size=(50, 80))
    expected = [f1_score(y[i], pred[i], average="macro", zero_division=0) for i in draws]
    np.testing.assert_allclose(dist[:, 0], expected)
    assert np.all(dist[:, 1] == 1.0)
    acc = bootstrap_metric(y, pred, n_boot=50, rng=3)[:, 0]
    np.testing.assert_allclose(acc, [accuracy_score(y[i], pred[i]) for i in draws])
    bal = bootstrap_metric(y, pred, metric="balanced_accuracy", n_boot=50, rng=3)[:, 0]
    expected_bal = [balanced_accuracy_score(y[i], pred[i]) for i in draws]
    np.testing.assert_allclose(bal, expected_bal)


def test_every_evaluation_carries_the_majority_baseline_and_balanced_accuracy() -> None:
    # 5% positives; the model catches 3 of 5 and raises 2 false alarms.
    y = np.array(["no"] * 95 + ["yes"] * 5)
    pred = np.array(["no"] * 93 + ["yes"] * 2 + ["yes"] * 3 + ["no"] * 2)
    proba = np.where((pred == "yes")[:, None], [0.2, 0.8], [0.9, 0.1])
    m = classification_metrics(y, proba, ["no", "yes"], majority="no", n_boot=200)
    assert m["baseline"] == {
        "label": "no",
        "accuracy": 0.95,
        "balanced_accuracy": 0.5,
        "macro_f1": pytest.approx(f1_score(y, ["no"] * 100, average="macro")),
        "source": "training",
    }
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["balanced_accuracy_ci"][0] < m["balanced_accuracy"] < m["balanced_accuracy_ci"][1]
    assert m["class_balance"] == {"minority": "yes", "minority_share": 0.05, "imbalanced": True}
    assert m["per_class"]["yes"]["recall"] == pytest.approx(0.6)


def test_a_class_absent_from_the_test_set_has_no_test_records_not_zeros() -> None:
    classes = ["a", "b", "c"]
    y = np.array(["a", "b", "a", "b"])
    never = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    m = classification_metrics(y, never, classes, n_boot=0)
    assert m["per_class"]["c"] == {
        "precision": None,
        "recall": None,
        "f1": None,
        "support": 0,
        "no_test_records": True,
    }
    guessed = never.copy()
    guessed[0] = [0.1, 0.1, 0.8]  # one record of 'a' predicted as 'c': a real false alarm
    m = classification_metrics(y, guessed, classes, n_boot=0)
    assert m["per_class"]["c"]["precision"] == 0.0 and m["per_class"]["c"]["recall"] is None


def test_ci_covers_the_estimate_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(0)

    def width(n: int) -> float:
        y = rng.choice(["a", "b"], size=n)
        pred = np.where(rng.random(n) < 0.8, y, np.where(y == "a", "b", "a"))
        est, low, high = metric_ci(y, pred, rng=0)
        assert low <= est <= high
        return high - low

    assert width(2000) < width(100) / 2


def test_reliability_and_ece_of_an_overconfident_model() -> None:
    y = np.array(["a"] * 70 + ["b"] * 30)
    proba = np.tile([0.95, 0.05], (100, 1))  # 95% sure of "a", right 70% of the time
    curve = reliability_curve(y, proba, ["a", "b"])
    assert curve.counts[9] == 100 and curve.counts[:9].sum() == 0
    assert curve.accuracy[9] == pytest.approx(0.7)
    assert expected_calibration_error(y, proba, ["a", "b"]) == pytest.approx(0.25)
    assert brier_score(["a"], [[1.0, 0.0]], ["a", "b"]) == 0.0
    assert brier_score(["b"], [[1.0, 0.0]], ["a", "b"]) == 2.0


def test_classification_metrics_summary() -> None:
    y = ["a", "a", "b", "b", "c"]
    proba = [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]]
    m = classification_metrics(y, proba, ["a", "b", "c"], n_boot=100)
    assert m["n"] == 5 and m["accuracy"] == pytest.approx(0.6)
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"]["b"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert m["accuracy_ci"][0] <= 0.6 <= m["accuracy_ci"][1]
    assert set(m) >= {"macro_f1", "macro_f1_ci", "ece", "brier", "reliability"}
    assert classification_metrics([], np.zeros((0, 2)), ["a", "b"]) == {"n": 0}


def test_shape_errors_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="one column per class"):
        classification_metrics(["a"], [[1.0, 0.0, 0.0]], ["a", "b"])
    with pytest.raises(ValueError, match="valid metrics"):
        metric_ci(["a"], ["a"], metric="auc")


def test_the_report_draws_absent_classes_as_no_test_records() -> None:
    from looplab.govern.report import per_class_svg

    y = np.array(["a", "b", "a", "b"])
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    per_class = classification_metrics(y, proba, ["a", "b", "c"], n_boot=0)["per_class"]
    svg = per_class_svg(per_class)
    assert svg.count("no test records") == 1
