"""Accuracy without labels (CBPE) and from feedback (Wilson)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from looplab.learn.intervals import wilson_interval
from looplab.watch.performance import (
    Calibration,
    ConfidenceSummary,
    accuracy_from_feedback,
    check_calibration,
    estimate_accuracy,
)


def model(rng: np.random.Generator, n: int, overconfidence: float = 0.0):
    """Binary model whose prediction is right with probability ``confidence - overconfidence``."""
    conf = rng.uniform(0.55, 1.0, n)
    right = rng.uniform(size=n) < np.clip(conf - overconfidence, 0, 1)
    predicted = rng.integers(0, 2, n)
    y = np.where(right, predicted, 1 - predicted)
    proba = np.where(predicted[:, None] == 1, np.c_[1 - conf, conf], np.c_[conf, 1 - conf])
    return proba, y, right


def test_calibrated_model_estimate_covers_true_accuracy() -> None:
    rng = np.random.default_rng(0)
    cal = check_calibration(*model(rng, 3000)[:2])
    assert cal.trusted and cal.ece < 0.05
    covered, trials = 0, 200
    for _ in range(trials):
        proba, _, right = model(rng, 500)
        est = estimate_accuracy(proba, calibration=cal)
        assert est.trusted
        covered += est.ci_low <= right.mean() <= est.ci_high
    assert covered >= 0.9 * trials  # a 95% interval


def test_overconfident_model_is_not_trusted() -> None:
    rng = np.random.default_rng(1)
    cal = check_calibration(*model(rng, 3000, overconfidence=0.15)[:2])
    assert not cal.trusted and cal.ece > 0.1
    proba, _, right = model(rng, 1000, overconfidence=0.15)
    est = estimate_accuracy(proba, calibration=cal)
    assert not est.trusted and "calibration error" in est.reason
    assert est.accuracy > right.mean() + 0.1  # what the untrusted flag protects against


def test_no_calibration_or_too_few_labels_is_untrusted() -> None:
    rng = np.random.default_rng(2)
    assert not estimate_accuracy(model(rng, 100)[0]).trusted
    cal = check_calibration(*model(rng, 50)[:2])
    assert not cal.trusted
    assert "labeled rows" in estimate_accuracy(model(rng, 100)[0], calibration=cal).reason


def test_summary_merges_and_matches_arrays() -> None:
    rng = np.random.default_rng(3)
    proba = model(rng, 1000)[0]
    conf = proba.max(axis=1)
    a = ConfidenceSummary().update(conf[:400])
    b = ConfidenceSummary().update(conf[400:])
    merged = ConfidenceSummary.from_dict(json.loads(json.dumps(a.merge(b).to_dict())))
    direct = estimate_accuracy(proba)
    via = estimate_accuracy(merged)
    assert via.accuracy == pytest.approx(direct.accuracy)
    assert via.ci_high == pytest.approx(direct.ci_high)
    d = via.to_dict()
    assert d["accuracy"] == pytest.approx(conf.mean()) and d["n"] == 1000  # what triggers read


def test_calibration_round_trip_and_labels() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    cal = check_calibration(proba, ["neg", "pos", "pos"], classes=["neg", "pos"], min_n=1, bins=3)
    assert cal.accuracy == pytest.approx(2 / 3)
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    with pytest.raises(ValueError, match="not in classes"):
        check_calibration(proba, ["neg", "maybe", "pos"], classes=["neg", "pos"])


def test_wilson_interval_known_values() -> None:
    # Agresti & Coull's example values, and the edges
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_accuracy_from_feedback() -> None:
    acc, low, high, n = accuracy_from_feedback(np.r_[np.ones(90, bool), np.zeros(10, bool)])
    assert (acc, n) == (0.9, 100) and low < 0.9 < high
    acc, low, high, n = accuracy_from_feedback([])
    assert np.isnan(acc) and (low, high, n) == (0.0, 1.0, 0)
