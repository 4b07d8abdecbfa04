"""What a trained version is judged on: cross-fitted calibration, one pass over the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from looplab.core import projects
from looplab.core.store import Store
from looplab.core.tables import ModelVersion
from looplab.learn import assess, calibration, dataset, promotion, registry
from looplab.learn.calibration import FITTERS, CalibratedClassifier, Calibrator
from looplab.learn.dataset import LabeledSet
from looplab.learn.evaluate import brier_score, expected_calibration_error
from tests.calibrated import cross_fitted, forget_cross_calibrator, in_fit_half
from tests.textdata import add_text_project, train

CLASSES = ["a", "b", "c"]


def overconfident(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and 98%-sure probabilities of a 70%-accurate model."""
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, size=n)
    right = rng.random(n) < 0.7
    top = np.where(right, y, np.array([{"a": "b", "b": "c", "c": "a"}[v] for v in y]))
    proba = np.full((n, 3), 0.01)
    proba[np.arange(n), [CLASSES.index(t) for t in top]] = 0.98
    # A little noise, so isotonic regression has many distinct values to overfit.
    proba += rng.uniform(0, 0.02, size=proba.shape)
    return y, proba / proba.sum(axis=1, keepdims=True)


def test_kept_calibration_is_measured_only_on_records_it_was_not_fitted_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Isotonic needs 1,000 fitting records by default; the mechanism is the same on fewer.
    monkeypatch.setattr(calibration, "ISOTONIC_MIN_RECORDS", 100)
    y, proba = overconfident(600)
    test = LabeledSet(
        record_ids=list(range(1, 601)),
        payloads=[{"x": 0.0}] * 600,
        meta=[{}] * 600,
        labels=y.tolist(),
        splits=["test"] * 600,
        annotation_ids=[[i] for i in range(600)],
    )
    model = Pipeline([("classifier", LogisticRegression().fit([[0], [1], [2]], CLASSES))])
    calibrated, info, honest = assess.calibrate(model, test, proba, "isotonic")
    assert info["method"] == "isotonic"
    kept = Calibrator.from_dict(calibrated[-1].calibration)
    fit = np.array([in_fit_half(r) for r in test.record_ids])
    # Each half goes through the calibrator fitted on the other one.
    cross = FITTERS["isotonic"](y[~fit], proba[~fit], CLASSES)
    np.testing.assert_allclose(honest[~fit], kept.apply(proba[~fit]))
    np.testing.assert_allclose(honest[fit], cross.apply(proba[fit]))
    assert Calibrator.from_dict(info["cross_calibrator"]) == cross
    # The artifact's own probabilities over the whole split flatter it: isotonic regression
    # nearly zeroes its ECE on the records it was fitted on.
    in_sample = expected_calibration_error(y[fit], kept.apply(proba[fit]), CLASSES)
    out_of_fold = expected_calibration_error(y[fit], honest[fit], CLASSES)
    assert in_sample < out_of_fold / 2
    assert expected_calibration_error(y, honest, CLASSES) > expected_calibration_error(
        y, kept.apply(proba), CLASSES
    )
    metrics = assess.held_out_metrics(test, honest, CLASSES)
    assert metrics["ece"] == pytest.approx(expected_calibration_error(y, honest, CLASSES))
    # Nothing kept: the raw probabilities are the honest ones.
    _, off, same = assess.calibrate(model, test, proba, "none")
    assert off["method"] == "none" and same is proba


def honest_figures(session: Any, row: ModelVersion, artifact: Pipeline) -> dict[str, float]:
    """ECE and Brier of a calibrated version, each test record calibrated by what never saw it."""
    project = projects.get_project(session, "news")
    test = dataset.labeled_set(session, project).subset("test")
    last = artifact[-1]
    assert isinstance(last, CalibratedClassifier)
    raw = last.estimator_.predict_proba(artifact[:-1].transform(test.payloads))
    y = np.asarray(test.labels)
    classes = row.config["classes"]
    proba = cross_fitted(row, last.calibration, raw, y, test.record_ids)
    return {
        "ece": expected_calibration_error(y, proba, classes),
        "brier": brier_score(y, proba, classes),
        "n": len(y),
    }


def test_stored_and_gated_figures_leave_out_what_the_calibrator_saw(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as session:
        add_text_project(session)
    train(store, tmp_path)
    with store.read() as session:
        project = projects.get_project(session, "news")
        row = registry.get_version(session, project, "v1")
        # The synthetic project's model is over-confident enough for temperature scaling to pay.
        assert row.config["calibration"]["method"] == "temperature"
        artifact = promotion.load_version(session, row)
        expected = honest_figures(session, row, artifact)
        report = promotion.run_gate(session, project, row)
    assert row.metrics["n"] == expected["n"]
    assert row.metrics["ece"] == pytest.approx(expected["ece"], abs=1e-12)
    assert row.metrics["brier"] == pytest.approx(expected["brier"], abs=1e-12)
    # The gate scores the candidate the same way, so its ECE check is not flattered either.
    assert report.result.candidate["ece"] == pytest.approx(expected["ece"], abs=1e-12)
    assert not any("optimistic" in n for n in report.result.notes)


def test_a_version_without_a_cross_calibrator_is_flagged_as_optimistic(
    store: Store, tmp_path: Path
) -> None:
    from looplab.govern import card

    with store.write() as session:
        add_text_project(session)
    train(store, tmp_path)
    forget_cross_calibrator(store)
    with store.read() as session:
        project = projects.get_project(session, "news")
        row = registry.get_version(session, project, "v1")
        report = promotion.run_gate(session, project, row)
        text = card.model_card(session, project, row)
    assert any(
        "v1 was trained before calibrators were cross-fitted" in n for n in report.result.notes
    )
    assert "so they are optimistic" in text


def test_the_test_split_goes_through_the_pipeline_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.write() as session:
        add_text_project(session)
        project = projects.get_project(session, "news")
        test = dataset.labeled_set(session, project).subset("test")
    first = test.payloads[0]
    seen: list[int] = []
    transform = FunctionTransformer.transform

    def counting(self: FunctionTransformer, X: Any) -> Any:
        # The pipeline's first step receives the records themselves: count passes over the split.
        if isinstance(X, list) and len(X) == len(test) and X[0] == first:
            seen.append(len(X))
        return transform(self, X)

    monkeypatch.setattr(FunctionTransformer, "transform", counting)
    result = train(store, tmp_path)
    assert result["calibration"] == "temperature"  # calibrated: the old code scored twice here
    assert seen == [len(test)]
