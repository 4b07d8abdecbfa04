"""Post-hoc calibration: temperature and isotonic, kept only when it helps on held-out data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from looplab.learn.calibration import (
    CalibratedClassifier,
    Calibrator,
    choose_calibration,
    fit_isotonic,
    fit_temperature,
)
from looplab.learn.evaluate import expected_calibration_error
from looplab.learn.train import load_model, save_model


def overconfident(n: int, rng: np.random.Generator, accuracy: float = 0.75, sure: float = 0.98):
    y = rng.choice(["a", "b", "c"], size=n)
    right = rng.random(n) < accuracy
    other = np.array([{"a": "b", "b": "c", "c": "a"}[v] for v in y])
    top = np.where(right, y, other)
    proba = np.full((n, 3), (1 - sure) / 2)
    proba[np.arange(n), ["abc".index(t) for t in top]] = sure
    return y, proba


def test_temperature_softens_an_overconfident_model() -> None:
    y, proba = overconfident(2000, np.random.default_rng(0))
    cal = fit_temperature(y, proba, ["a", "b", "c"])
    assert cal.temperature > 1.5
    after = cal.apply(proba)
    np.testing.assert_allclose(after.sum(axis=1), 1.0)
    assert (after.argmax(axis=1) == proba.argmax(axis=1)).all()  # never changes the class
    before = expected_calibration_error(y, proba, ["a", "b", "c"])
    assert expected_calibration_error(y, after, ["a", "b", "c"]) < before / 4


def test_isotonic_maps_and_round_trips() -> None:
    y, proba = overconfident(1000, np.random.default_rng(1))
    cal = fit_isotonic(y, proba, ["a", "b", "c"])
    np.testing.assert_allclose(cal.apply(proba).sum(axis=1), 1.0)
    assert Calibrator.from_dict(cal.to_dict()) == cal
    with pytest.raises(ValueError, match="not a calibrator dict"):
        Calibrator.from_dict({"classes": ["a"]})


def test_choose_keeps_calibration_only_when_it_helps() -> None:
    rng = np.random.default_rng(2)
    y, proba = overconfident(2000, rng)
    choice = choose_calibration(y[:1000], proba[:1000], ["a", "b", "c"], y[1000:], proba[1000:])
    assert choice.method in ("temperature", "isotonic")
    assert choice.ece_after < choice.ece_before - 0.1
    assert "lowers ECE" in choice.reason
    # Already calibrated: confidence 0.75 and accuracy 0.75. Nothing is kept.
    y, proba = overconfident(2000, rng, sure=0.75)
    choice = choose_calibration(y[:1000], proba[:1000], ["a", "b", "c"], y[1000:], proba[1000:])
    assert choice.method == "none" and "not calibrated" in choice.reason
    few = choose_calibration(y[:5], proba[:5], ["a", "b", "c"], y[5:10], proba[5:10])
    assert few.method == "none" and "needs 20 records" in few.reason


@parametrize_with_checks([CalibratedClassifier()])
def test_calibrated_classifier_follows_the_scikit_learn_contract(estimator, check) -> None:
    check(estimator)


def test_calibrated_classifier_survives_skops(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=300) > 0, "a", "b")
    base = LogisticRegression(C=100).fit(X, y)
    model = CalibratedClassifier.wrap(base, Calibrator("temperature", ["a", "b"], 3.0))
    digest = save_model(model, tmp_path / "m.skops")
    loaded = load_model(tmp_path / "m.skops", digest)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.predict_proba(X).max() < base.predict_proba(X).max()
    with pytest.raises(ValueError, match="calibrator is for classes"):
        CalibratedClassifier.wrap(base, Calibrator("none", ["x", "y"]))
