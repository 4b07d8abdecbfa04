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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest

from looplab.learn.evaluate import (
    METRIC_LABELS,
    METRICS,
    RngLike,
    bootstrap_metric,
    check_proba,
    class_balance,
    confidence_bins,
    expected_calibration_error,
    label_counts,
    majority_baseline,
    majority_label,
    metric_value,
    predicted_labels,
    resample_weights,
)
from looplab.learn.slices import slice_masks

TESTS = ("bootstrap", "mcnemar")
#: Values of ``gate_metric``: ``auto`` picks one from the class balance (:func:`resolve_metric`).
GATE_METRICS = ("auto", *METRICS)
_LABELS = METRIC_LABELS


def resolve_metric(setting: str, labels: ArrayLike | Mapping[str, int]) -> str:
    """The metric ``gate_metric=setting`` means for these test labels (or label counts).

    ``auto`` is macro-F1 when the labels are imbalanced (the rarest class holds less than half
    of an equal share: :func:`looplab.learn.evaluate.class_balance`), else accuracy. On a table
    with 3% positives a constant model scores 0.97 accuracy, within any tolerance of a model
    that catches 40% of them; its macro-F1 is 0.49 against about 0.7, so only the second tells
    them apart. Macro-F1 rather than balanced accuracy because it also counts false alarms: a
    model that flags every fourth record as the rare class has a fine balanced accuracy.

    Examples
    --------
    >>> resolve_metric("auto", {"no": 97, "yes": 3}), resolve_metric("auto", {"a": 5, "b": 5})
    ('macro_f1', 'accuracy')
    """
    if setting not in GATE_METRICS:
        raise ValueError(f"unknown metric {setting!r}; valid metrics: {', '.join(GATE_METRICS)}")
    if setting != "auto":
        return setting
    counts = (
        {str(k): int(v) for k, v in labels.items()}
        if isinstance(labels, Mapping)
        else label_counts(labels)
    )
    return "macro_f1" if class_balance(counts)["imbalanced"] else "accuracy"


def headline(metrics: dict[str, Any], gate_metric: str) -> dict[str, Any]:
    """The figures a training result leads with: the metric the project gates on (``auto``
    resolved on the test labels), its value and the majority baseline's, then the others.
    """
    out: dict[str, Any] = {
        key: metrics.get(key) for key in ("accuracy", "balanced_accuracy", "macro_f1")
    }
    per_class = metrics.get("per_class") or {}
    counts = {k: int(v["support"]) for k, v in per_class.items() if v.get("support")}
    lead = resolve_metric(gate_metric, counts) if counts else "accuracy"
    baseline = metrics.get("baseline") or {}
    return {
        "metric": lead,
        "value": metrics.get(lead),
        "baseline": baseline.get(lead),
        "baseline_label": baseline.get("label"),
        **out,
    }


@dataclass(frozen=True)
class GateOptions:
    """The gate's thresholds (the project's ``gate_*`` settings without the prefix).

    metric : {"auto", "accuracy", "macro_f1", "balanced_accuracy"}
        The headline metric compared with production and with the majority baseline.
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
    slice_tolerance, min_slice_size : float, int
        Largest accepted accuracy drop on a metadata slice; fewest records to check one.
    max_ece, max_ece_increase : float or None
        Highest accepted ECE of the candidate, and rise over production (None: not checked).
    min_accuracy : float or None
        Accuracy floor of the candidate (None: not checked).
    min_class_recall : float or None
        Recall floor on every class production catches (recall at least twice the floor);
        None: not checked.
    """

    metric: str = "auto"
    min_gain: float = 0.0
    tolerance: float = 0.01
    test: str = "bootstrap"
    alpha: float = 0.05
    n_boot: int = 2000
    slice_tolerance: float = 0.05
    min_slice_size: int = 30
    max_ece: float | None = 0.1
    max_ece_increase: float | None = None
    min_accuracy: float | None = None
    min_class_recall: float | None = 0.1

    def __post_init__(self) -> None:
        if self.metric not in GATE_METRICS:
            valid = ", ".join(GATE_METRICS)
            raise ValueError(f"unknown metric {self.metric!r}; valid metrics: {valid}")
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; valid tests: {', '.join(TESTS)}")
        if self.test == "mcnemar" and self.metric not in ("accuracy", "auto"):
            raise ValueError(
                "McNemar's test compares accuracy; use test='bootstrap' for " + self.metric
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")


@dataclass(frozen=True)
class GateResult:
    """The verdict, every failed check as a sentence, and every check as a row.

    ``metric`` is the headline metric the gate compared (``auto`` resolved) and ``baseline``
    every metric of always answering the training majority
    (:func:`looplab.learn.evaluate.majority_baseline`).
    """

    passed: bool
    reasons: list[str]
    checks: list[dict[str, Any]]
    notes: list[str]
    candidate: dict[str, float]
    production: dict[str, float] | None
    metric: str = "accuracy"
    baseline: dict[str, Any] | None = None

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
            "metric": self.metric,
            "baseline": None if self.baseline is None else dict(self.baseline),
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
        **{metric: metric_value(y, pred, metric) for metric in METRICS},
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
    slice_keys: Sequence[Mapping[str, Any]] | None = None,
    majority: str | None = None,
    rng: RngLike = 0,
    **options: Any,
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
    slice_keys : sequence of dict, optional
        Metadata of each test record, for the per-slice check.
    majority : str, optional
        The candidate's training majority label, for the baseline (default: the test majority).
    rng : numpy Generator, int seed or None
    **options
        Fields of :class:`GateOptions` (``metric``, ``tolerance``, ...).

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
    opts = GateOptions(**options)
    y, pc = check_proba(y_true, proba_candidate, classes_candidate)
    if len(y) == 0:
        raise ValueError("the gate needs at least one test record")
    if slice_keys is not None and len(slice_keys) != len(y):
        raise ValueError(f"slice_keys has {len(slice_keys)} entries for {len(y)} records")
    opts, metric_notes = _resolved(opts, y)
    notes: list[str] = []
    pred_c = predicted_labels(pc, classes_candidate)
    cand = _summary(y, pc, pred_c, classes_candidate)
    baseline = majority_baseline(y, majority if majority is not None else majority_label(y))
    checks = [_baseline_check(cand, baseline, opts.metric)]
    prod: dict[str, float] | None = None
    if proba_production is not None:
        if classes_production is None:
            raise ValueError("pass classes_production (production's classes_) with its proba")
        _, pp = check_proba(y, proba_production, classes_production)
        pred_p = predicted_labels(pp, classes_production)
        prod = _summary(y, pp, pred_p, classes_production)
        checks += _production_checks(y, pred_c, pred_p, cand, prod, opts, slice_keys, notes, rng)
    else:
        notes.append(_alone_note(opts))
    checks += _floor_checks(y, pc, pred_c, cand, opts, rng)
    reasons = [c["message"] for c in checks if not c["passed"]]
    return GateResult(
        passed=not reasons,
        reasons=reasons,
        checks=checks,
        notes=[*notes, *metric_notes],
        candidate=cand,
        production=prod,
        metric=opts.metric,
        baseline=baseline,
    )


def _resolved(opts: GateOptions, y: NDArray[Any]) -> tuple[GateOptions, list[str]]:
    """``opts`` with ``metric=auto`` resolved on the test labels, and a note saying how."""
    if opts.metric != "auto":
        return opts, []
    metric = resolve_metric("auto", y)
    share = class_balance(label_counts(y))
    rare = share["minority_share"]
    note = (
        f"gate_metric=auto compared {_LABELS[metric]}: the rarest test class"
        + (f" ({share['minority']!r}) holds {100 * rare:.1f}% of the records" if rare else "")
        + (
            ", too few for accuracy to tell a model from a constant."
            if metric != "accuracy"
            else ", enough for accuracy."
        )
    )
    test = opts.test
    if test == "mcnemar" and metric != "accuracy":
        test = "bootstrap"
        note += " McNemar's test compares accuracy only, so the paired bootstrap was used."
    return replace(opts, metric=metric, test=test), [note]


def _baseline_check(
    cand: Mapping[str, float], baseline: Mapping[str, Any], metric: str
) -> dict[str, Any]:
    """Fails a candidate that does not beat always answering the training majority."""
    label = _LABELS[metric]
    mine, constant = float(cand[metric]), float(baseline[metric])
    ok = mine > constant + 1e-9
    head = (
        f"{label} {mine:.3f} vs {constant:.3f} for always answering {baseline['label']!r} "
        "(the majority baseline)"
    )
    tail = (
        f": better by {_pts(mine - constant)} points."
        if ok
        else ": the candidate does not beat a constant model, whatever the tolerance."
    )
    return _check("baseline", mine - constant, 0.0, ok, head + tail)


def _alone_note(opts: GateOptions) -> str:
    floors = [f"ECE at most {opts.max_ece:.3f}"] if opts.max_ece is not None else []
    if opts.min_accuracy is not None:
        floors.append(f"accuracy at least {opts.min_accuracy:.3f}")
    floors.append(f"{_LABELS[opts.metric]} above the majority baseline")
    return (
        "No production model to compare with: only absolute floors were checked "
        f"({'; '.join(floors)})."
    )


def _production_checks(
    y: NDArray[Any],
    pred_c: NDArray[Any],
    pred_p: NDArray[Any],
    cand: Mapping[str, float],
    prod: Mapping[str, float],
    opts: GateOptions,
    slice_keys: Sequence[Mapping[str, Any]] | None,
    notes: list[str],
    rng: RngLike,
) -> list[dict[str, Any]]:
    """The checks against production: metric, min_gain, per-class recall, slices, ECE rise."""
    checks = _metric_checks(
        y,
        pred_c,
        pred_p,
        opts.metric,
        opts.test,
        opts.alpha,
        opts.n_boot,
        opts.tolerance,
        opts.min_gain,
        rng,
    )
    if opts.min_class_recall is not None:
        checks += _recall_checks(y, pred_c, pred_p, opts.min_class_recall, opts.alpha)
    if slice_keys is not None:
        slice_checks = _slice_checks(
            y, pred_c, pred_p, slice_keys, opts.min_slice_size, opts.slice_tolerance, opts.alpha
        )
        if not slice_checks:
            notes.append(
                f"No metadata slice has {opts.min_slice_size} or more test records (and a "
                "non-empty rest), so no slice was compared."
            )
        checks += slice_checks
    if opts.max_ece_increase is not None:
        rise = cand["ece"] - prod["ece"]
        ok = rise <= opts.max_ece_increase
        checks.append(
            _check(
                "ece_increase",
                rise,
                opts.max_ece_increase,
                ok,
                f"ECE {cand['ece']:.3f} vs production {prod['ece']:.3f}: "
                f"{'up' if rise > 0 else 'down'} {abs(rise):.3f}, "
                f"{'within' if ok else 'more than'} the allowed increase of "
                f"{opts.max_ece_increase:.3f}.",
            )
        )
    return checks


def _floor_checks(
    y: NDArray[Any],
    pc: NDArray[np.float64],
    pred_c: NDArray[Any],
    cand: Mapping[str, float],
    opts: GateOptions,
    rng: RngLike,
) -> list[dict[str, Any]]:
    """The absolute floors, checked with or without production: ECE and accuracy."""
    checks = []
    if opts.max_ece is not None:
        generator = np.random.default_rng(rng)
        lower = _ece_lower_bound(y, pc, pred_c, opts.alpha, opts.n_boot, generator)
        checks.append(_ece_check(dict(cand), opts.max_ece, lower, opts.alpha))
    if opts.min_accuracy is not None:
        ok = cand["accuracy"] >= opts.min_accuracy
        checks.append(
            _check(
                "min_accuracy",
                cand["accuracy"],
                opts.min_accuracy,
                ok,
                f"accuracy {cand['accuracy']:.3f} on {len(y)} test records is "
                f"{'at or above' if ok else 'below'} the {opts.min_accuracy:.3f} floor.",
            )
        )
    return checks


def _recall_checks(
    y: NDArray[Any], pred_c: NDArray[Any], pred_p: NDArray[Any], floor: float, alpha: float
) -> list[dict[str, Any]]:
    """One ``recall:<label>`` check per class production catches (recall >= 2 x ``floor``).

    Fails when the candidate's recall on that class is below ``floor`` **and** McNemar's exact
    test on the class's records says production's hits are not chance (``p < alpha``): losing a
    class production caught is refused whatever the tolerance of the headline metric, which an
    imbalanced test set barely moves; the test keeps a class with three records from failing a
    candidate for one miss.
    """
    out = []
    for label in sorted(set(y.tolist())):
        mask = y == label
        recall_c, recall_p = (
            float(np.mean(pred_c[mask] == label)),
            float(np.mean(pred_p[mask] == label)),
        )
        if recall_p < 2 * floor:
            continue
        _, _, p = _mcnemar(pred_c[mask] == label, pred_p[mask] == label)
        failed = recall_c < floor and p < alpha
        head = (
            f"recall on {label!r} (n={int(mask.sum())}): {recall_c:.3f} vs production "
            f"{recall_p:.3f} (McNemar {_p(p)})"
        )
        if failed:
            verdict = (
                f": below the {floor:.2f} floor on a class production catches, whatever the "
                "tolerance."
            )
        elif recall_c < floor:
            verdict = f"; below the {floor:.2f} floor, but not significantly worse."
        else:
            verdict = f"; at or above the {floor:.2f} floor."
        check = _check(f"recall:{label}", recall_c, floor, not failed, head + verdict)
        check["n"] = int(mask.sum())
        out.append(check)
    return out


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
