"""What a window's signals mean together: the estimate's status, and the window's alarm level.

Pure functions of one window's stored report and its labels as of now, so the monitor, the
views people read, the triggers and ``bench/watch.py`` judge a window the same way.

**The estimate's status.** The label-free estimate (CBPE, :mod:`looplab.watch.performance`)
assumes :data:`ASSUMES`: the inputs may change, the relation between inputs and labels may not.
Nothing without labels can check that, so when a window has labels (an audit sample, else
volunteered feedback) two tests put the assumption to them, each at ``alpha / 2`` (Bonferroni):

* the labelled accuracy against the estimate, a two-sided z test with both uncertainties (the
  labels' binomial variance and the estimate's Poisson-binomial one);
* the observed label rates against the window's mean predicted probabilities, a chi-square
  goodness-of-fit test. A change of the base rate shows here first: a calibrated model's mean
  probability of a class is the rate it expects.

Either one rejecting makes the status ``contradicted``, with both figures in the reason;
otherwise ``trusted`` when the reference's calibration check passed, else ``untrusted`` with
that check's reason.

**The level** is the highest that applies, lowest first:

* ``inputs``: the input drift alarm (Holm over the features, with effect floors);
* ``predictions``: the predicted-label mix changed, or the estimate fell significantly below
  the reference's mean confidence;
* ``performance``: accuracy on labels significantly below the reference's held-out accuracy
  (one-sided z test at ``alarm_alpha``, 1%: a monitor judges a window every period, and at 5% one
  unchanged window in twenty would alarm), or a trusted estimate more than ``margin`` below the
  reference's mean confidence.

Only ``performance`` is an alarm: inputs and predictions change for harmless reasons (a mix
moving towards easy cases), so they are warnings. An estimate that rose is never a warning.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

from looplab.learn.intervals import wilson_interval

#: What the label-free estimate cannot check; shown wherever it appears.
ASSUMES = (
    "assumes the inputs may change but the relation between inputs and labels, P(y|x), may "
    "not: a model calibrated on the reference stays calibrated. A change of P(y|x) (new "
    "behaviour, a new base rate for the same inputs) is invisible to it; labels can see it."
)
LEVELS = ("none", "inputs", "predictions", "performance")
#: Fewest labels a window needs before its labelled accuracy is tested.
MIN_LABELS = 30
#: One-sided level of the test "accuracy on labels is below the reference's" (the alarm).
ALARM_ALPHA = 0.01


def labels_used(
    feedback: dict[str, Any] | None, audit: dict[str, Any] | None, min_n: int = MIN_LABELS
) -> tuple[str | None, dict[str, Any] | None]:
    """Which labels judge the window: the audit sample when it has ``min_n``, else feedback.

    The audit sample is drawn at random from served predictions, so its accuracy is unbiased;
    volunteered feedback comes mostly when an answer looked wrong, so it is used only when
    there is no audit sample large enough, and the reasons say it may be selective.
    """
    if audit and int(audit.get("n") or 0) >= min_n:
        return "audit", audit
    if feedback and int(feedback.get("n") or 0) >= min_n:
        return "feedback", feedback
    return None, None


def _z(p: float) -> float:
    return NormalDist().inv_cdf(p)


def _p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def _p_lower(z: float) -> float:
    """P(Z <= z)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _binomial_var(k: int, n: int) -> float:
    # (k + 1) / (n + 2): no zero variance at 0 or n right answers.
    p = (k + 1) / (n + 2)
    return p * (1 - p) / n


def estimate_se(estimate: dict[str, Any]) -> float:
    """The estimate's standard error: stored, else read off its 95% interval."""
    if estimate.get("se") is not None:
        return float(estimate["se"])
    return max(0.0, float(estimate["ci_high"]) - float(estimate["ci_low"])) / (2 * 1.959964)


def label_rate_test(
    labels: dict[str, int], mean_proba: dict[str, float]
) -> tuple[float, str] | None:
    """Chi-square goodness of fit of observed label counts to the mean predicted probabilities.

    Classes expected fewer than 5 times are pooled (the chi-square approximation needs it).
    Returns ``(p, description)`` or None when fewer than two cells remain.
    """
    from scipy import stats

    m = sum(labels.values())
    classes = sorted(set(mean_proba) | set(labels))
    total = sum(mean_proba.get(c, 0.0) for c in classes) or 1.0
    rows = [(c, labels.get(c, 0), m * mean_proba.get(c, 0.0) / total) for c in classes]
    big = [r for r in rows if r[2] >= 5]
    small = [r for r in rows if r[2] < 5]
    cells = [(o, e) for _, o, e in big]
    if small:
        cells.append((sum(o for _, o, _ in small), sum(e for _, _, e in small)))
    cells = [(o, e) for o, e in cells if e > 0]
    if len(cells) < 2:
        return None
    observed = [o for o, _ in cells]
    expected = [e for _, e in cells]
    scale = sum(observed) / sum(expected)
    p = float(stats.chisquare(observed, [e * scale for e in expected]).pvalue)
    worst = max(rows, key=lambda r: abs(r[1] - r[2]))
    what = f"label {worst[0]!r} observed {worst[1] / m:.1%}, predicted {worst[2] / m:.1%}"
    return p, what


def estimate_status(
    report: dict[str, Any],
    source: str | None,
    judged: dict[str, Any] | None,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """``{"status", "reason", "assumes", "checks"}`` of a window's label-free estimate."""
    estimate = report.get("estimate") or {}
    checks: dict[str, Any] = {}
    base = {"assumes": ASSUMES, "checks": checks}
    if not estimate or not estimate.get("n") or estimate.get("accuracy") is None:
        return {**base, "status": "untrusted", "reason": "empty window"}
    acc = float(estimate["accuracy"])
    if judged is not None and source is not None:
        k, m = int(judged["accepted"]), int(judged["n"])
        observed = k / m
        se = math.sqrt(_binomial_var(k, m) + estimate_se(estimate) ** 2)
        p_acc = _p_two_sided((observed - acc) / se) if se > 0 else 1.0
        low, high = wilson_interval(k, m)
        said = "audit sample" if source == "audit" else "volunteered feedback (possibly selective)"
        checks["accuracy"] = {"p_value": p_acc, "labels": source, "n": m, "accuracy": observed}
        reasons = []
        if p_acc < alpha / 2:
            reasons.append(
                f"{said}: accuracy {observed:.1%} [{low:.1%}, {high:.1%}] on {m:,} labels, "
                f"estimate {acc:.1%} [{estimate['ci_low']:.1%}, {estimate['ci_high']:.1%}] "
                f"(z test p {p_acc:.2g})"
            )
        rates = judged.get("labels") or {}
        mean_proba = report.get("mean_proba") or {}
        tested = label_rate_test(rates, mean_proba) if rates and mean_proba else None
        if tested is not None:
            p_rate, what = tested
            checks["label_rates"] = {"p_value": p_rate, "labels": source, "n": m}
            if p_rate < alpha / 2:
                reasons.append(f"{said}: {what} (chi-square p {p_rate:.2g})")
        if reasons:
            return {
                **base,
                "status": "contradicted",
                "reason": "labels contradict the estimate: " + "; ".join(reasons),
            }
    if estimate.get("trusted"):
        reason = str(estimate.get("reason") or "calibrated on the reference")
        if checks:
            reason += f"; agrees with {checks['accuracy']['n']:,} {source} labels"
        return {**base, "status": "trusted", "reason": reason}
    return {**base, "status": "untrusted", "reason": str(estimate.get("reason") or "not checked")}


def assess_window(
    report: dict[str, Any],
    feedback: dict[str, Any] | None,
    audit: dict[str, Any] | None,
    *,
    margin: float = 0.03,
    alpha: float = 0.05,
    alarm_alpha: float = ALARM_ALPHA,
    min_n: int = MIN_LABELS,
) -> dict[str, Any]:
    """The window's level, alarm, the estimate's status and every reason, as of its labels now.

    ``report`` is what the monitor stored when the window closed; ``feedback`` and ``audit``
    are its labels counted when read (``n``, ``accepted`` and ``labels``, the true label counts).
    """
    source, judged = labels_used(feedback, audit, min_n)
    status = estimate_status(report, source, judged, alpha=alpha)
    reference = report.get("reference") or {}
    estimate = report.get("estimate") or {}
    drift = report.get("drift") or {}
    reasons: dict[str, list[str]] = {"inputs": [], "predictions": [], "performance": []}

    if drift.get("alarm"):
        blamed = ", ".join(drift.get("blamed") or []) or "jointly"
        reasons["inputs"].append(f"inputs changed ({blamed})")
    prediction = drift.get("prediction") or {}
    if prediction.get("drift"):
        reasons["predictions"].append(
            f"predicted-label mix changed (chi-square p {prediction.get('p_value', 0):.2g})"
        )
    ref_conf = reference.get("mean_confidence")
    ref_n = int(reference.get("n") or 0)
    est = estimate.get("accuracy") if estimate.get("n") else None
    if ref_conf is not None and est is not None and ref_n:
        drop = float(ref_conf) - float(est)
        se = math.sqrt(estimate_se(estimate) ** 2 + ref_conf * (1 - ref_conf) / ref_n)
        if drop > 0.01 and drop > _z(1 - alpha) * se:
            reasons["predictions"].append(
                f"estimate fell to {est:.1%} from the reference's {ref_conf:.1%}"
            )
        if status["status"] == "trusted" and drop > margin:
            reasons["performance"].append(
                f"trusted estimate {est:.1%} is {drop:.1%} below the reference's {ref_conf:.1%} "
                f"(margin {margin:.0%})"
            )
    alarm_source = "estimate" if reasons["performance"] else None
    ref_acc = reference.get("accuracy")
    if judged is not None and ref_acc is not None and ref_n:
        k, m = int(judged["accepted"]), int(judged["n"])
        observed = k / m
        se = math.sqrt(_binomial_var(k, m) + ref_acc * (1 - ref_acc) / ref_n)
        p = _p_lower((observed - float(ref_acc)) / se) if se > 0 else 1.0
        if p < alarm_alpha:
            said = "audit sample" if source == "audit" else "volunteered feedback"
            reasons["performance"].insert(
                0,
                f"accuracy on the {said} {observed:.1%} (n={m:,}) is below the reference's "
                f"{ref_acc:.1%} (one-sided p {p:.2g})",
            )
            alarm_source = source
    level = next((lv for lv in reversed(LEVELS[1:]) if reasons[lv]), "none")
    return {
        "level": level,
        "alarm": level == "performance",
        "alarm_source": alarm_source,
        "labels_used": source,
        "reasons": [r for lv in LEVELS[1:] for r in reasons[lv]],
        "estimate": {**estimate, **status},
    }
