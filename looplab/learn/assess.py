"""What a freshly trained version is judged on: calibration, held-out metrics and slices.

Called by the training job (:func:`looplab.learn.training.train_project`) with the fitted pipeline
and the held-out test split (:mod:`looplab.learn.dataset`; no record of it, nor a near duplicate,
was trained on):

1. :func:`held_out_proba` runs the pipeline over the test records once; everything below works on
   those probabilities, so the features of the test split are computed once per version.
2. :func:`calibrate` cuts the test split in two fixed halves (by a hash of the record id), fits
   temperature and isotonic calibration on one half (the *fit half*), and keeps one only when it
   lowers ECE on the other half by at least 0.005 without raising the Brier score
   (:func:`looplab.learn.calibration.choose_calibration`). A kept calibrator replaces the
   pipeline's last step with a :class:`~looplab.learn.calibration.CalibratedClassifier`, so it is
   saved inside the artifact and every consumer of the model sees calibrated probabilities. It also
   returns
   *cross-fitted* probabilities for the whole test split (:func:`cross_fitted`): no record's
   probabilities come from a calibrator that was fitted on it.
3. :func:`held_out_metrics` computes, from those cross-fitted probabilities, accuracy and macro-F1
   with bootstrap CIs, per-class precision/recall, confusion matrix, ECE, Brier and the
   reliability curve (:func:`looplab.learn.evaluate.classification_metrics`), plus the accuracy of
   each metadata slice with a Wilson CI and a flag when it is significantly below the rest
   (:func:`looplab.learn.slices.slice_metrics`).

The gate (:mod:`looplab.learn.promotion`) scores a stored version the same way (:func:`gate_proba`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from looplab.learn.calibration import (
    FITTERS,
    METHODS,
    CalibratedClassifier,
    Calibrator,
    choose_calibration,
)
from looplab.learn.dataset import LabeledSet
from looplab.learn.evaluate import classification_metrics, predicted_labels
from looplab.learn.slices import slice_metrics

#: Values of the project setting ``calibration``: ``auto`` tries both methods.
CALIBRATION_SETTINGS = ("auto", *METHODS)
#: Fewest records in a slice for it to be reported.
MIN_SLICE_SIZE = 30


def _half(record_id: int) -> int:
    return hashlib.blake2b(str(record_id).encode(), digest_size=1).digest()[0] % 2


def fit_half(record_ids: Sequence[int]) -> NDArray[np.bool_]:
    """True for the records of the half a kept calibrator is fitted on (a pure function of the id).

    The other half judges it. The cut depends on the record id alone, so the gate can tell, long
    after training, which test records a version's calibrator saw.
    """
    return np.array([_half(r) == 0 for r in record_ids], dtype=bool)


def held_out_proba(model: Pipeline, test: LabeledSet) -> NDArray[np.float64]:
    """``model``'s probabilities on the test records (columns follow ``model.classes_``)."""
    if len(test) == 0:
        return np.zeros((0, len(model.classes_)))
    return np.asarray(model.predict_proba(test.payloads), dtype=float)


def cross_fitted(
    proba: NDArray[np.float64], in_fit_half: NDArray[np.bool_], kept: Calibrator, cross: Calibrator
) -> NDArray[np.float64]:
    """Calibrated probabilities in which no record went through a calibrator fitted on it.

    Records of the fit half go through ``cross`` (the same method fitted on the other half); the
    others through ``kept`` (fitted on the fit half: the calibrator the artifact carries).

    Why cross-fitting rather than scoring only the half ``kept`` never saw: that half alone would
    halve the records behind every stored figure (wider accuracy intervals, slices that drop below
    their minimum size, an ECE over 10 bins that swings more) while the calibration reason already
    reports ``kept`` on exactly that half. Pooling both out-of-fold halves keeps every test record
    and every figure honest; what it measures is "this method, fitted on half the test split", of
    which the shipped calibrator is one draw. (The method itself was chosen on the judging half,
    a choice among at most three that flatters those figures by an amount not measured; the fit
    half's figures come from a calibrator fitted on, and a choice made on, other records.)
    Temperature scaling never changes the predicted class, so accuracy, macro-F1 and slices stay
    the raw model's.
    """
    out = kept.apply(proba)
    if in_fit_half.any():
        out[in_fit_half] = cross.apply(proba[in_fit_half])
    return out


def calibrate(
    model: Pipeline, test: LabeledSet, proba: NDArray[np.float64], setting: str = "auto"
) -> tuple[Pipeline, dict[str, Any], NDArray[np.float64]]:
    """Fit calibration on one half of ``test``, keep it if it helps on the other half.

    Parameters
    ----------
    model : Pipeline
        The fitted, uncalibrated pipeline.
    test : LabeledSet
        The held-out test split.
    proba : ndarray of shape (len(test), n_classes)
        ``model``'s probabilities on ``test`` (:func:`held_out_proba`), computed once by the caller.
    setting : {"auto", "none", "temperature", "isotonic"}
        The project setting ``calibration``.

    Returns
    -------
    model : Pipeline
        With a :class:`CalibratedClassifier` last step when a method was kept.
    info : dict
        :meth:`~looplab.learn.calibration.CalibrationChoice.to_dict` of the decision plus, when a
        method was kept, ``cross_calibrator`` (the same method fitted on the judging half, so the
        gate can cross-fit too); or ``{"method": "none", "reason": ...}`` when calibration is off or
        there is no test data.
    proba : ndarray
        Probabilities for every test record that no calibrator was fitted on (:func:`cross_fitted`);
        ``proba`` itself when nothing was kept.
    """
    if setting not in CALIBRATION_SETTINGS:
        raise ValueError(
            f"unknown calibration {setting!r}; valid: {', '.join(CALIBRATION_SETTINGS)}"
        )
    if setting == "none":
        off = {"method": "none", "reason": "calibration is off (setting calibration=none)"}
        return model, off, proba
    if len(test) == 0:
        return model, {"method": "none", "reason": "no test records to calibrate on"}, proba
    classes = [str(c) for c in model.classes_]
    y = np.asarray(test.labels)
    fit = fit_half(test.record_ids)
    methods = ("temperature", "isotonic") if setting == "auto" else (setting,)
    choice = choose_calibration(y[fit], proba[fit], classes, y[~fit], proba[~fit], methods=methods)
    info = choice.to_dict()
    if choice.method == "none":
        return model, info, proba
    cross = FITTERS[choice.method](y[~fit], proba[~fit], classes)
    info["cross_calibrator"] = cross.to_dict()
    steps = list(model.steps)
    name, fitted = steps[-1]
    steps[-1] = (name, CalibratedClassifier.wrap(fitted, choice.calibrator))
    return Pipeline(steps), info, cross_fitted(proba, fit, choice.calibrator, cross)


def gate_proba(
    model: Pipeline,
    payloads: list[dict[str, Any]],
    record_ids: Sequence[int],
    calibration: Mapping[str, Any] | None,
) -> tuple[NDArray[np.float64], bool]:
    """A stored version's probabilities on test records, scored as its held-out metrics were.

    A version with a calibrator inside its artifact is cross-fitted (:func:`cross_fitted`) with the
    ``cross_calibrator`` kept in its ``calibration`` config: records of the fit half, which its
    calibrator may have been fitted on, get the calibrator fitted on the other half. The features
    are computed once either way.

    Returns the probabilities and whether they are honest: False for a calibrated version trained
    before cross calibrators were stored, whose artifact's own probabilities are returned.
    """
    last = model.steps[-1][1]
    if not isinstance(last, CalibratedClassifier) or not last.calibration:
        return np.asarray(model.predict_proba(payloads), dtype=float), True
    kept = Calibrator.from_dict(last.calibration)
    raw = np.asarray(last.estimator_.predict_proba(model[:-1].transform(payloads)), dtype=float)
    cross = (calibration or {}).get("cross_calibrator")
    if not cross:
        return kept.apply(raw), False
    return cross_fitted(raw, fit_half(record_ids), kept, Calibrator.from_dict(cross)), True


def held_out_metrics(
    test: LabeledSet,
    proba: NDArray[np.float64],
    classes: list[str],
    *,
    majority: str | None = None,
    calibration: str = "none",
    min_slice_size: int = MIN_SLICE_SIZE,
) -> dict[str, Any]:
    """Metrics of ``proba`` (one row per record of ``test``; see the module docstring).

    Pass the cross-fitted probabilities :func:`calibrate` returns, never the calibrated model's
    own probabilities on ``test``: those include the half its calibrator was fitted on. The
    majority baseline answers ``majority`` (the training majority, as a ``DummyClassifier``
    trained on those labels would), or the test labels' majority without it. ``calibration``
    is the method :func:`calibrate` kept; ``figures`` says whether the figures are before or
    after it (an isotonic map may change predicted classes, hence accuracy). ``{"n": 0}`` when
    ``test`` is empty.
    """
    if len(test) == 0:
        return {"n": 0}
    metrics = classification_metrics(test.labels, proba, classes, majority=majority)
    metrics["figures"] = (
        "before calibration (none kept)"
        if calibration == "none"
        else f"after {calibration} calibration (cross-fitted)"
    )
    predicted = predicted_labels(proba, classes)
    metrics["slices"] = [
        row.to_dict()
        for row in slice_metrics(test.labels, predicted, test.meta, min_size=min_slice_size)
    ]
    return metrics


def label_counts(labels: list[str], weights: list[int] | None = None) -> dict[str, int]:
    """How many training rows of each label a version saw (records, without ``weights``)."""
    values, index = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    counts = np.bincount(index, weights=weights, minlength=len(values))
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}
