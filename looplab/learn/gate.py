"""The promotion gate: may a candidate model replace the production model?

Both models are scored on the **same** test records, so they are compared with paired tests, which
see through the noise shared by the two (a hard record is hard for both). The checks, each a row of
:attr:`GateResult.checks` with ``name``, ``value``, ``threshold``, ``passed`` and ``message``:

``metric`` (with a production model)
    ``value`` is candidate minus production (accuracy or macro-F1), ``threshold`` is
    ``-tolerance``. Fails when the candidate is *significantly* worse **and** the observed drop
    is larger than ``tolerance``. Significantly worse means: with ``test="bootstrap"``, the paired
    bootstrap ``1 - alpha`` CI of the difference lies entirely below 0; with ``test="mcnemar"``
    (accuracy only), McNemar's exact two-sided test on the records exactly one model gets right
    has ``p < alpha`` and production is the one right more often. A drop within tolerance, or
    one the test cannot tell from noise, passes.
``min_gain`` (with a production model, only when ``min_gain > 0``)
    Passes when the observed gain is at least ``min_gain`` **and** the candidate is significantly
    better (the CI lies entirely above 0, or McNemar's ``p < alpha`` in its favour). So the
    gain must be both large enough to matter and real; the CI lower bound itself need only clear
    0, not ``min_gain``, which would demand far more test records than a project usually has.
``slice:<field>=<value>`` (with a production model and ``slice_keys``)
    One per metadata slice of at least ``min_slice_size`` records (:func:`looplab.learn.slices.
    slice_masks`). ``value`` is production's accuracy minus the candidate's on the slice, in
    accuracy units (0.05 = 5 points). Fails when the drop exceeds ``slice_tolerance`` **and**
    McNemar's exact test on the slice has ``p < alpha``. Without the significance condition, two
    equally good models would fail on some small slice by chance most of the time; no
    multiplicity correction is applied, which errs on the side of blocking.
``ece``
    Fails when the candidate's top-label ECE exceeds ``max_ece`` significantly: when the
    one-sided ``1 - alpha`` bootstrap lower bound of its ECE is above it (a point threshold would
    refuse small test sets for noise).
``ece_increase`` (with a production model, only when ``max_ece_increase`` is set)
    Fails when the candidate's ECE exceeds production's by more than ``max_ece_increase``.
``min_accuracy`` (only when set)
    Fails when the candidate's accuracy is below the floor.

Without a production model only the absolute floors (``ece``, ``min_accuracy``) are checked, and
:attr:`GateResult.notes` says so. Bootstrap draws come from ``rng``, so a seed gives the same
verdict every time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest

from looplab.learn.evaluate import (
    METRICS,
    RngLike,
    bootstrap_metric,
    check_proba,
    confidence_bins,
    expected_calibration_error,
    metric_value,
    predicted_labels,
    resample_weights,
)
from looplab.learn.slices import slice_masks

TESTS = ("bootstrap", "mcnemar")
_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


@dataclass(frozen=True)
class GateResult:
    """The verdict, every failed check as a sentence, and every check as a row."""

    passed: bool
    reasons: list[str]
    checks: list[dict[str, Any]]
    notes: list[str]
    candidate: dict[str, float]
    production: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the registry, the API and
        :func:`looplab.govern.report.render_html`).
        """
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "checks": [dict(c) for c in self.checks],
            "notes": list(self.notes),
            "candidate": dict(self.candidate),
            "production": None if self.production is None else dict(self.production),
        }


def _pts(x: float) -> str:
    return f"{100 * abs(x):.1f}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _mcnemar(right_c: NDArray[np.bool_], right_p: NDArray[np.bool_]) -> tuple[int, int, float]:
    """Records only the candidate gets right, only production gets right, exact two-sided p."""
    only_c = int(np.sum(right_c & ~right_p))
    only_p = int(np.sum(~right_c & right_p))
    p = binomtest(only_c, only_c + only_p, 0.5).pvalue if only_c + only_p else 1.0
    return only_c, only_p, float(p)


def _check(name: str, value: float, threshold: float, passed: bool, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": float(value),
        "threshold": float(threshold),
        "passed": bool(passed),
        "message": message,
    }


def _summary(
    y: NDArray[Any], proba: NDArray[np.float64], pred: NDArray[Any], classes: list[str]
) -> dict[str, float]:
    return {
        "n": len(y),
        "accuracy": metric_value(y, pred, "accuracy"),
        "macro_f1": metric_value(y, pred, "macro_f1"),
        "ece": expected_calibration_error(y, proba, classes),
        "mean_confidence": float(proba.max(axis=1).mean()),
    }


def gate(
    y_true: ArrayLike,
    proba_candidate: ArrayLike,
    proba_production: ArrayLike | None,
    classes_candidate: list[str],
    classes_production: list[str] | None = None,
    *,
    metric: str = "accuracy",
    min_gain: float = 0.0,
    tolerance: float = 0.01,
    test: str = "bootstrap",
    alpha: float = 0.05,
    n_boot: int = 2000,
    slice_keys: Sequence[Mapping[str, Any]] | None = None,
    slice_tolerance: float = 0.05,
    min_slice_size: int = 30,
    max_ece: float | None = 0.1,
    max_ece_increase: float | None = None,
    min_accuracy: float | None = None,
    rng: RngLike = 0,
) -> GateResult:
    """Decide whether a candidate may be promoted over production; see the module docstring.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels of the test records.
    proba_candidate : array-like of shape (n, len(classes_candidate))
        The candidate's probabilities on those records.
    proba_production : array-like of shape (n, len(classes_production)) or None
        Production's probabilities on the *same* records, in the same order; None when nothing is
        in production yet.
    classes_candidate, classes_production : list of str
        Each model's ``classes_`` (they may differ, e.g. after a new label was added).
    metric : {"accuracy", "macro_f1"}
        The headline metric compared with production.
    min_gain : float
        Required gain over production (0.01 = 1 point); 0 only requires "not worse".
    tolerance : float
        Largest drop of ``metric`` that is accepted even when significant.
    test : {"bootstrap", "mcnemar"}
        Paired test of the headline metric; McNemar applies to accuracy only.
    alpha : float
        Significance level; the bootstrap CI covers ``1 - alpha``.
    n_boot : int
        Bootstrap resamples.
    slice_keys : sequence of dict, optional
        Metadata of each test record, for the per-slice check.
    slice_tolerance : float
        Largest accepted accuracy drop on a slice.
    min_slice_size : int
        Fewest records for a slice to be checked.
    max_ece : float or None
        Highest accepted ECE of the candidate (None: not checked).
    max_ece_increase : float or None
        Highest accepted ECE rise over production (None: not checked).
    min_accuracy : float or None
        Accuracy floor of the candidate (None: not checked).
    rng : numpy Generator, int seed or None

    Returns
    -------
    GateResult

    Examples
    --------
    >>> y = np.array(["a", "b"] * 100)
    >>> sure = lambda labels: np.where((labels == "a")[:, None], [0.9, 0.1], [0.1, 0.9])
    >>> worse = np.where(np.arange(200) < 40, np.where(y == "a", "b", "a"), y)
    >>> result = gate(y, sure(worse), sure(y), ["a", "b"], ["a", "b"], max_ece=None)
    >>> result.passed
    False
    >>> result.reasons[0][:56]
    'accuracy 0.800 vs production 1.000: worse by 20.0 points'
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; valid tests: {', '.join(TESTS)}")
    if test == "mcnemar" and metric != "accuracy":
        raise ValueError("McNemar's test compares accuracy; use test='bootstrap' for macro_f1")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    y, pc = check_proba(y_true, proba_candidate, classes_candidate)
    if len(y) == 0:
        raise ValueError("the gate needs at least one test record")
    if slice_keys is not None and len(slice_keys) != len(y):
        raise ValueError(f"slice_keys has {len(slice_keys)} entries for {len(y)} records")
    pred_c = predicted_labels(pc, classes_candidate)
    cand = _summary(y, pc, pred_c, classes_candidate)
    checks: list[dict[str, Any]] = []
    notes: list[str] = []
    prod: dict[str, float] | None = None

    if proba_production is not None:
        if classes_production is None:
            raise ValueError("pass classes_production (production's classes_) with its proba")
        _, pp = check_proba(y, proba_production, classes_production)
        pred_p = predicted_labels(pp, classes_production)
        prod = _summary(y, pp, pred_p, classes_production)
        checks += _metric_checks(
            y, pred_c, pred_p, metric, test, alpha, n_boot, tolerance, min_gain, rng
        )
        if slice_keys is not None:
            slice_checks = _slice_checks(
                y, pred_c, pred_p, slice_keys, min_slice_size, slice_tolerance, alpha
            )
            if not slice_checks:
                notes.append(
                    f"No metadata slice has {min_slice_size} or more test records (and a "
                    "non-empty rest), so no slice was compared."
                )
            checks += slice_checks
        if max_ece_increase is not None:
            rise = cand["ece"] - prod["ece"]
            ok = rise <= max_ece_increase
            checks.append(
                _check(
                    "ece_increase",
                    rise,
                    max_ece_increase,
                    ok,
                    f"ECE {cand['ece']:.3f} vs production {prod['ece']:.3f}: "
                    f"{'up' if rise > 0 else 'down'} {abs(rise):.3f}, "
                    f"{'within' if ok else 'more than'} the allowed increase of "
                    f"{max_ece_increase:.3f}.",
                )
            )
    else:
        floors = [f"ECE at most {max_ece:.3f}"] if max_ece is not None else []
        if min_accuracy is not None:
            floors.append(f"accuracy at least {min_accuracy:.3f}")
        what = "; ".join(floors) if floors else "none is set, so nothing was checked"
        notes.append(
            f"No production model to compare with: only absolute floors were checked ({what})."
        )

    if max_ece is not None:
        lower = _ece_lower_bound(y, pc, pred_c, alpha, n_boot, np.random.default_rng(rng))
        checks.append(_ece_check(cand, max_ece, lower, alpha))
    if min_accuracy is not None:
        ok = cand["accuracy"] >= min_accuracy
        checks.append(
            _check(
                "min_accuracy",
                cand["accuracy"],
                min_accuracy,
                ok,
                f"accuracy {cand['accuracy']:.3f} on {len(y)} test records is "
                f"{'at or above' if ok else 'below'} the {min_accuracy:.3f} floor.",
            )
        )
    reasons = [c["message"] for c in checks if not c["passed"]]
    return GateResult(
        passed=not reasons,
        reasons=reasons,
        checks=checks,
        notes=notes,
        candidate=cand,
        production=prod,
    )


def _metric_checks(
    y: NDArray[Any],
    pred_c: NDArray[Any],
    pred_p: NDArray[Any],
    metric: str,
    test: str,
    alpha: float,
    n_boot: int,
    tolerance: float,
    min_gain: float,
    rng: RngLike,
) -> list[dict[str, Any]]:
    label = _LABELS[metric]
    mc, mp = metric_value(y, pred_c, metric), metric_value(y, pred_p, metric)
    diff = mc - mp
    if test == "bootstrap":
        dist = bootstrap_metric(y, pred_c, pred_p, metric=metric, n_boot=n_boot, rng=rng)
        lo, hi = np.percentile(dist[:, 0] - dist[:, 1], [50 * alpha, 100 - 50 * alpha])
        worse, better = hi < 0, lo > 0
        evidence = (
            f"paired bootstrap {100 * (1 - alpha):g}% CI of the difference "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}]"
        )
    else:
        only_c, only_p, p = _mcnemar(pred_c == y, pred_p == y)
        worse, better = p < alpha and only_p > only_c, p < alpha and only_c > only_p
        evidence = (
            f"McNemar exact test: candidate alone right on {only_c} records, "
            f"production alone on {only_p}, {_p(p)}"
        )
    if diff < 0:
        head = f"{label} {mc:.3f} vs production {mp:.3f}: worse by {_pts(diff)} points"
    elif diff > 0:
        head = f"{label} {mc:.3f} vs production {mp:.3f}: better by {_pts(diff)} points"
    else:
        head = f"{label} {mc:.3f} vs production {mp:.3f}: no difference"
    failed = worse and diff < -tolerance
    if failed:
        verdict = f", beyond the {_pts(tolerance)}-point tolerance."
    elif worse:
        verdict = f"; significant, but within the {_pts(tolerance)}-point tolerance."
    else:
        verdict = "; not significantly worse."
    checks = [_check("metric", diff, -tolerance, not failed, f"{head} ({evidence}){verdict}")]
    if min_gain > 0:
        ok = diff >= min_gain and better
        if diff < min_gain:
            why = f"below the required gain of {_pts(min_gain)} points"
        elif not better:
            why = f"at least the required {_pts(min_gain)} points, but not significant"
        else:
            why = f"at least the required {_pts(min_gain)} points, and significant"
        message = (
            f"{label} {mc:.3f} vs production {mp:.3f}: a change of {100 * diff:+.1f} points "
            f"({evidence}), {why}."
        )
        checks.append(_check("min_gain", diff, min_gain, ok, message))
    return checks


def _slice_checks(
    y: NDArray[Any],
    pred_c: NDArray[Any],
    pred_p: NDArray[Any],
    meta: Sequence[Mapping[str, Any]],
    min_size: int,
    slice_tolerance: float,
    alpha: float,
) -> list[dict[str, Any]]:
    right_c, right_p = pred_c == y, pred_p == y
    out = []
    for name, value, mask in slice_masks(meta, min_size=min_size):
        n = int(mask.sum())
        acc_c, acc_p = float(right_c[mask].mean()), float(right_p[mask].mean())
        drop = acc_p - acc_c
        _, _, p = _mcnemar(right_c[mask], right_p[mask])
        failed = drop > slice_tolerance and p < alpha
        head = (
            f"slice {name}={value} (n={n}): accuracy {acc_c:.3f} vs production {acc_p:.3f}, "
            f"{'down' if drop > 0 else 'up'} {_pts(drop)} points (McNemar {_p(p)})"
        )
        if failed:
            verdict = f", beyond the {_pts(slice_tolerance)}-point slice tolerance."
        elif drop > slice_tolerance:
            verdict = (
                f"; more than the {_pts(slice_tolerance)}-point tolerance, but not significant."
            )
        else:
            verdict = f"; within the {_pts(slice_tolerance)}-point slice tolerance."
        check = _check(f"slice:{name}={value}", drop, slice_tolerance, not failed, head + verdict)
        check["n"] = n
        out.append(check)
    return out


def _ece_lower_bound(
    y: NDArray[Any],
    proba: NDArray[np.float64],
    pred: NDArray[Any],
    alpha: float,
    n_boot: int,
    rng: np.random.Generator,
    n_bins: int = 10,
) -> float:
    """One-sided ``1 - alpha`` lower bound of the ECE, from a bootstrap over the test records.

    ECE on a few dozen records is large by chance alone (each bin's gap is noisy and the absolute
    value turns noise into error), so a point threshold would refuse a young project's first
    model for noise; the bound only rises above ``max_ece`` when the data show miscalibration.
    """
    n = len(y)
    confidence = proba.max(axis=1)
    gaps = np.zeros((n, n_bins))  # each record's confidence-minus-correct, in its bin's column
    gaps[np.arange(n), confidence_bins(confidence, n_bins)] = confidence - (pred == y)
    eces = [np.abs(w @ gaps).sum(axis=1) / n for w in resample_weights(n, n_boot, rng)]
    return float(np.quantile(np.concatenate(eces), alpha))


def _ece_check(
    cand: dict[str, float], max_ece: float, lower: float, alpha: float
) -> dict[str, Any]:
    ece, conf, acc = cand["ece"], cand["mean_confidence"], cand["accuracy"]
    ok = lower <= max_ece
    bound = f"{100 * (1 - alpha):.0f}% lower bound {lower:.3f}"
    if ok and ece <= max_ece:
        message = f"ECE {ece:.3f} is within the {max_ece:.3f} maximum."
    elif ok:
        message = (
            f"ECE {ece:.3f} is above the {max_ece:.3f} maximum, but not significantly on these"
            f" records ({bound}): accepted."
        )
    else:
        how = "over-confident" if conf > acc else "under-confident"
        message = (
            f"ECE {ece:.3f} exceeds the {max_ece:.3f} maximum ({bound}): mean confidence "
            f"{conf:.3f} vs accuracy {acc:.3f}, the candidate is {how} (consider calibration)."
        )
    return _check("ece", ece, max_ece, ok, message)
