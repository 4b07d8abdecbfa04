"""The drift reference of a version: its calibration is checked on records no calibrator saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, ModelVersion
from looplab.learn import dataset, promotion, registry, training
from looplab.learn.calibration import CalibratedClassifier, Calibrator
from looplab.watch import reference
from looplab.watch.performance import check_calibration
from tests.calibrated import cross_fitted as cross_fitted_proba
from tests.calibrated import forget_cross_calibrator
from tests.textdata import add_text_project


def trained(store: Store, tmp_path: Path) -> None:
    with store.write() as session:
        project_id = add_text_project(session).id
    job = Job(kind="train", project_id=project_id, params={"actor": "test"})
    training.train_project(store, Settings(home=tmp_path), job)


def reference_ece(session: Any, row: ModelVersion, *, cross_fitted: bool) -> float:
    """ECE of the version on its test records, as the reference's check bins it."""
    project = projects.get_project(session, "news")
    test = dataset.labeled_set(session, project).subset("test")
    order = np.argsort(test.record_ids)  # the reference reads its records in id order
    ids = np.asarray(test.record_ids)[order]
    payloads = [test.payloads[i] for i in order]
    y = np.asarray(test.labels)[order]
    artifact = promotion.load_version(session, row)
    last = artifact[-1]
    assert isinstance(last, CalibratedClassifier)
    raw = last.estimator_.predict_proba(artifact[:-1].transform(payloads))
    if cross_fitted:
        proba = cross_fitted_proba(row, last.calibration, raw, y, ids.tolist())
    else:
        proba = Calibrator.from_dict(last.calibration).apply(raw)
    return check_calibration(proba, y, classes=row.config["classes"]).ece


def test_reference_calibration_leaves_out_what_the_calibrator_saw(
    store: Store, tmp_path: Path
) -> None:
    trained(store, tmp_path)
    with store.read() as session:
        project = projects.get_project(session, "news")
        row = registry.get_version(session, project, "v1")
        assert row.config["calibration"]["method"] == "temperature"
        ref = reference.build_reference(session, project, row)
        honest = reference_ece(session, row, cross_fitted=True)
        in_sample = reference_ece(session, row, cross_fitted=False)
    assert ref["n_test"] == ref["calibration"]["n"]
    assert ref["calibration"]["ece"] == pytest.approx(honest, abs=1e-12)
    assert honest != pytest.approx(in_sample, abs=1e-9)
    assert ref["calibration_note"] is None


def test_a_reference_without_a_cross_calibrator_is_flagged_as_optimistic(
    store: Store, tmp_path: Path
) -> None:
    trained(store, tmp_path)
    forget_cross_calibrator(store)
    with store.read() as session:
        project = projects.get_project(session, "news")
        row = registry.get_version(session, project, "v1")
        ref = reference.build_reference(session, project, row)
        in_sample = reference_ece(session, row, cross_fitted=False)
    assert ref["calibration"]["ece"] == pytest.approx(in_sample, abs=1e-12)
    assert "v1 was trained before calibrators were cross-fitted" in ref["calibration_note"]
