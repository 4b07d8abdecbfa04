"""Checks on a trained version's calibration, spelled out here independently of looplab.

``cross_fitted`` recomputes the honest probabilities of test records: each one calibrated by the
calibrator that never saw it. ``forget_cross_calibrator`` makes a version look as if it was trained
before cross-fitted calibrators were stored.
"""

from __future__ import annotations

import hashlib

import numpy as np

from looplab.core import projects
from looplab.core.store import Store
from looplab.core.tables import ModelVersion
from looplab.learn import registry
from looplab.learn.calibration import FITTERS, Calibrator


def in_fit_half(record_id: int) -> bool:
    """The half a kept calibrator is fitted on."""
    return hashlib.blake2b(str(record_id).encode(), digest_size=1).digest()[0] % 2 == 0


def cross_fitted(
    row: ModelVersion, calibration: dict, raw: np.ndarray, y: np.ndarray, record_ids: list[int]
) -> np.ndarray:
    """Raw probabilities through the kept ``calibration``, except on the half it was fitted on,
    which goes through a calibrator fitted on the other half."""
    fit = np.array([in_fit_half(int(r)) for r in record_ids])
    classes = row.config["classes"]
    method = row.config["calibration"]["method"]
    proba = Calibrator.from_dict(calibration).apply(raw)
    proba[fit] = FITTERS[method](y[~fit], raw[~fit], classes).apply(raw[fit])
    return proba


def forget_cross_calibrator(store: Store, project: str = "news", version: str = "v1") -> None:
    """Drop the version's stored cross calibrator, as a version trained before it was stored."""
    with store.write() as session:
        row = registry.get_version(session, projects.get_project(session, project), version)
        calibration = dict(row.config["calibration"])
        del calibration["cross_calibrator"]
        row.config = {**row.config, "calibration": calibration}
