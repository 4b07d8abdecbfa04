"""What a freshly trained version is judged on: calibration, held-out metrics and slices.

Called by the training job (:func:`looplab.tasks.train_project`) with the fitted pipeline and the
held-out test split (:mod:`looplab.dataset`; no record of it, nor a near duplicate, was trained on):

1. :func:`calibrate` cuts the test split in two fixed halves (by a hash of the record id), fits
   temperature and isotonic calibration on one half, and keeps one only when it lowers ECE on the
   other half by at least 0.005 without raising the Brier score
   (:func:`looplab.calibration.choose_calibration`). A kept calibrator replaces the pipeline's last
   step with a :class:`~looplab.calibration.CalibratedClassifier`, so it is saved inside the
   artifact and every consumer of the model sees calibrated probabilities.
2. :func:`held_out_metrics` scores the (possibly calibrated) model on the whole test split:
   accuracy and macro-F1 with bootstrap CIs, per-class precision/recall, confusion matrix, ECE,
   Brier and the reliability curve (:func:`looplab.evaluate.classification_metrics`), plus the
   accuracy of each metadata slice with a Wilson CI and a flag when it is significantly below the
   rest (:func:`looplab.slices.slice_metrics`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from looplab.calibration import METHODS, CalibratedClassifier, choose_calibration
from looplab.dataset import LabeledSet
from looplab.evaluate import classification_metrics, predicted_labels
from looplab.slices import slice_metrics

#: Values of the project setting ``calibration``: ``auto`` tries both methods.
CALIBRATION_SETTINGS = ("auto", *METHODS)
#: Fewest records in a slice for it to be reported.
MIN_SLICE_SIZE = 30


def _half(record_id: int) -> int:
    return hashlib.blake2b(str(record_id).encode(), digest_size=1).digest()[0] % 2


def calibrate(
    model: Pipeline, test: LabeledSet, setting: str = "auto"
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit calibration on one half of ``test``, keep it if it helps on the other half.

    Returns the model (with a :class:`CalibratedClassifier` last step when a method was kept) and
    :meth:`~looplab.calibration.CalibrationChoice.to_dict` of the decision, or ``{"method":
    "none", "reason": ...}`` when calibration is off or there is no test data.
    """
    if setting not in CALIBRATION_SETTINGS:
        raise ValueError(
            f"unknown calibration {setting!r}; valid: {', '.join(CALIBRATION_SETTINGS)}"
        )
    if setting == "none":
        return model, {"method": "none", "reason": "calibration is off (setting calibration=none)"}
    if len(test) == 0:
        return model, {"method": "none", "reason": "no test records to calibrate on"}
    classes = [str(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(test.payloads), dtype=float)
    y = np.asarray(test.labels)
    half = np.array([_half(r) for r in test.record_ids], dtype=bool)
    methods = ("temperature", "isotonic") if setting == "auto" else (setting,)
    choice = choose_calibration(
        y[~half], proba[~half], classes, y[half], proba[half], methods=methods
    )
    info = choice.to_dict()
    if choice.method == "none":
        return model, info
    steps = list(model.steps)
    name, fitted = steps[-1]
    steps[-1] = (name, CalibratedClassifier.wrap(fitted, choice.calibrator))
    return Pipeline(steps), info


def held_out_metrics(
    model: Pipeline, test: LabeledSet, *, min_slice_size: int = MIN_SLICE_SIZE
) -> dict[str, Any]:
    """Metrics of ``model`` on the test split (see the module docstring); ``{"n": 0}`` if empty."""
    if len(test) == 0:
        return {"n": 0}
    classes = [str(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(test.payloads), dtype=float)
    metrics = classification_metrics(test.labels, proba, classes)
    predicted = predicted_labels(proba, classes)
    metrics["slices"] = [
        row.to_dict()
        for row in slice_metrics(test.labels, predicted, test.meta, min_size=min_slice_size)
    ]
    return metrics


def label_counts(labels: list[str]) -> dict[str, int]:
    """How many training records of each label a version saw."""
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}
