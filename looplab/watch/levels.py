"""What a window's signals mean together: the estimate's status, and the window's alarm level.

Pure functions of one window's stored report and its labels as of now (and those of the
windows just before it, for the pooled tests), so the monitor, the views people read, the
triggers and ``bench/watch.py`` judge a window the same way.

**Pooling.** A window of 10,000 predictions with labels on 1% has about 100: its accuracy is
known to about 4 points, so a drop of a few points is inside one window's sampling error. Drifts
that matter last, so every label test is run on the window alone and on the labels of the last
2, 4 and 8 consecutive windows of the same model version ending at it (:data:`POOLS`), each
pool a test of its own. The window alone is tested at the full level; the pooled tests share a
second budget of the same size (Bonferroni), so a window's false-alarm rate is at most twice
the level. A pool counts only when the window itself has labels from the same source and its
own accuracy leans the same way, so a window never alarms on its predecessors' labels alone.

**The estimate's status.** The label-free estimate (CBPE, :mod:`looplab.watch.performance`)
assumes :data:`ASSUMES`: the inputs may change, the relation between inputs and labels may not.
Nothing without labels can check that, so when there are labels (an audit sample, else
volunteered feedback) two tests put the assumption to them, each at half the level:

* the labelled accuracy against what the estimate expects of those labels (each window's
  estimate weighted by its labels), a two-sided score test with both uncertainties;
* the observed label rates against the mean predicted probabilities, a chi-square
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
  (a one-sided score test at ``alarm_alpha``, 1%: a monitor judges a window every period, and at
  5% one unchanged window in twenty would alarm), or a trusted estimate more than ``margin``
  below the reference's mean confidence.

Only ``performance`` is an alarm: inputs and predictions change for harmless reasons (a mix
moving towards easy cases), so they are warnings. An estimate that rose is never a warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
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
#: Fewest labels a test needs (one window's, or a pool's).
MIN_LABELS = 30
#: One-sided level of the test "accuracy on labels is below the reference's" (the alarm).
ALARM_ALPHA = 0.01
#: Level of the tests of the estimate against labels (``contradicted``), both checks together.
STATUS_ALPHA = 0.02
#: How many consecutive windows of one version each label test pools, the window judged last.
POOLS = (1, 2, 4, 8)

#: One window as the tests read it: its stored report, its feedback and its audit labels.
Window = tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]


@dataclass(frozen=True)
class Pool:
    """The labels of ``windows`` consecutive windows from one source, and what they expect."""

    windows: int
    source: str  # "audit" or "feedback"
    n: int
    accepted: int
    labels: dict[str, int]
    own: tuple[int, int]  # (n, accepted) of the window judged itself
    #: The estimate's expectation of these labels' accuracy (each window's estimate weighted
    #: by its labels) and its standard error; None where a window has no estimate.
    expected: float | None = None
    expected_se: float | None = None
    mean_proba: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.accepted / self.n

    @property
    def own_accuracy(self) -> float | None:
        return self.own[1] / self.own[0] if self.own[0] else None

    def said(self) -> str:
        what = "audit sample" if self.source == "audit" else "volunteered feedback"
        if self.windows > 1:
            what = f"{what} of the last {self.windows} windows"
        return what


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


def _source_labels(window: Window, source: str) -> dict[str, Any]:
    got = window[2] if source == "audit" else window[1]
    return got or {}


def pool(part: Sequence[Window], source: str) -> Pool:
    """Pool ``part`` (the window judged first) on one source's labels."""
    n = accepted = 0
    labels: dict[str, int] = {}
    weighted = variance = 0.0
    proba: dict[str, float] = {}
    estimated = True
    for window in part:
        got = _source_labels(window, source)
        m = int(got.get("n") or 0)
        if not m:
            continue
        n += m
        accepted += int(got.get("accepted") or 0)
        for label, count in (got.get("labels") or {}).items():
            labels[label] = labels.get(label, 0) + int(count)
        estimate = window[0].get("estimate") or {}
        if estimate.get("n") and estimate.get("accuracy") is not None:
            weighted += m * float(estimate["accuracy"])
            variance += (m * estimate_se(estimate)) ** 2
        else:
            estimated = False
        for label, p in (window[0].get("mean_proba") or {}).items():
            proba[label] = proba.get(label, 0.0) + m * float(p)
    own = _source_labels(part[0], source)
    return Pool(
        windows=len(part),
        source=source,
        n=n,
        accepted=accepted,
        labels=labels,
        own=(int(own.get("n") or 0), int(own.get("accepted") or 0)),
        expected=weighted / n if estimated and n else None,
        expected_se=math.sqrt(variance) / n if estimated and n else None,
        mean_proba={label: p / n for label, p in proba.items()} if n else {},
    )


def pools(window: Window, earlier: Sequence[Window] = (), min_n: int = MIN_LABELS) -> list[Pool]:
    """The label pools the window is tested on: itself, then 2, 4, 8 windows ending at it.

    ``earlier`` are the same model version's windows before it, newest first. Each pool takes
    the audit sample when it has ``min_n`` labels, else feedback; a pool of several windows
    counts only when the window itself has labels from that source and adds a window.
    """
    seq = [window, *earlier]
    out: list[Pool] = []
    for size in POOLS:
        if size > len(seq):
            break
        for source in ("audit", "feedback"):
            got = pool(seq[:size], source)
            if got.n < min_n:
                continue
            before = max((p.n for p in out if p.source == source), default=-1)
            # A pool adding no labels to a smaller one repeats its test.
            if size == 1 or (got.own[0] and got.n > before):
                out.append(got)
            break
    return out


def _z(p: float) -> float:
    return NormalDist().inv_cdf(p)


def _p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def _p_lower(z: float) -> float:
    """P(Z <= z)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _shrunk(p: float, n: int) -> float:
    """``(p n + 1) / (n + 2)``: a rate off 0 and 1, so its binomial variance is never zero."""
    return (p * n + 1) / (n + 2)


def _levels(tested: Sequence[Pool], alpha: float) -> list[float]:
    """Each pool's level: the window alone at ``alpha``; the pooled tests share another."""
    pooled = sum(1 for p in tested if p.windows > 1)
    return [alpha if p.windows == 1 else alpha / pooled for p in tested]


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


def _contradictions(p: Pool, level: float, window_estimate: dict[str, Any]) -> tuple[dict, list]:
    """Both checks of the estimate against one pool: ``(checks, reasons)`` at ``level``."""
    check: dict[str, Any] = {"windows": p.windows, "labels": p.source, "n": p.n,
                             "accuracy": p.accuracy, "level": level}  # fmt: skip
    reasons = []
    said = p.said() + (" (possibly selective)" if p.source == "feedback" else "")
    if p.expected is not None and p.expected_se is not None:
        e = p.expected
        # A score test: the labels' variance is the one the estimate expects, not the observed.
        v = _shrunk(e, p.n) * (1 - _shrunk(e, p.n))
        se = math.sqrt(v / p.n + p.expected_se**2)
        p_acc = _p_two_sided((p.accuracy - e) / se) if se > 0 else 1.0
        check["estimate"], check["p_accuracy"] = e, p_acc
        own = p.own_accuracy
        leans = p.windows == 1 or (own is not None and (own - e) * (p.accuracy - e) > 0)
        if p_acc < level / 2 and leans:
            low, high = wilson_interval(p.accepted, p.n)
            if p.windows == 1:
                e_low, e_high = window_estimate["ci_low"], window_estimate["ci_high"]
            else:
                e_low, e_high = e - 1.959964 * p.expected_se, e + 1.959964 * p.expected_se
            reasons.append(
                f"{said}: accuracy {p.accuracy:.1%} [{low:.1%}, {high:.1%}] on {p.n:,} labels, "
                f"estimate {e:.1%} [{e_low:.1%}, {e_high:.1%}] (z test p {p_acc:.2g})"
            )
    tested = label_rate_test(p.labels, p.mean_proba) if p.labels and p.mean_proba else None
    if tested is not None:
        p_rate, what = tested
        check["p_label_rates"] = p_rate
        if p_rate < level / 2:
            reasons.append(f"{said}: {what} (chi-square p {p_rate:.2g})")
    return check, reasons


def estimate_status(
    report: dict[str, Any], tested: Sequence[Pool] = (), *, alpha: float = STATUS_ALPHA
) -> dict[str, Any]:
    """``{"status", "reason", "assumes", "checks"}`` of a window's label-free estimate.

    ``tested`` are the window's label pools (:func:`pools`); none without labels.
    """
    estimate = report.get("estimate") or {}
    checks: dict[str, Any] = {}
    base = {"assumes": ASSUMES, "checks": checks}
    if not estimate or not estimate.get("n") or estimate.get("accuracy") is None:
        return {**base, "status": "untrusted", "reason": "empty window"}
    reasons: list[str] = []
    pooled = []
    for p, level in zip(tested, _levels(tested, alpha), strict=True):
        check, found = _contradictions(p, level, estimate)
        pooled.append(check)
        reasons += found
    if pooled:
        first = pooled[0]
        checks["accuracy"] = {"p_value": first.get("p_accuracy"), "labels": first["labels"],
                              "n": first["n"], "accuracy": first["accuracy"]}  # fmt: skip
        if "p_label_rates" in first:
            checks["label_rates"] = {"p_value": first["p_label_rates"],
                                     "labels": first["labels"], "n": first["n"]}  # fmt: skip
        checks["pools"] = pooled
    if reasons:
        return {
            **base,
            "status": "contradicted",
            "reason": "labels contradict the estimate: " + "; ".join(reasons),
        }
    if estimate.get("trusted"):
        reason = str(estimate.get("reason") or "calibrated on the reference")
        if tested:
            reason += f"; agrees with {tested[-1].n:,} {tested[-1].said()} labels"
        return {**base, "status": "trusted", "reason": reason}
    return {**base, "status": "untrusted", "reason": str(estimate.get("reason") or "not checked")}


def _accuracy_alarm(
    tested: Sequence[Pool], reference: dict[str, Any], alarm_alpha: float
) -> Pool | None:
    """The first pool whose accuracy is significantly below the reference's, or None."""
    ref_acc, ref_n = reference.get("accuracy"), int(reference.get("n") or 0)
    if ref_acc is None or not ref_n:
        return None
    r = float(ref_acc)
    for p, level in zip(tested, _levels(tested, alarm_alpha), strict=True):
        # The two-proportion score test: the reference's accuracy is a sample too, and under
        # "no change" both share one rate (a perfect reference of 120 rows says little).
        shared = (r * ref_n + p.accepted) / (ref_n + p.n)
        se = math.sqrt(shared * (1 - shared) * (1 / p.n + 1 / ref_n))
        z = (p.accuracy - r) / se if se > 0 else 0.0
        own = p.own_accuracy
        if _p_lower(z) < level and (p.windows == 1 or (own is not None and own < r)):
            return p
    return None


def _estimate_reasons(
    report: dict[str, Any], status: str, margin: float, alpha: float
) -> tuple[list[str], list[str]]:
    """What the estimate says against the reference: ``(predictions, performance)`` reasons."""
    reference = report.get("reference") or {}
    estimate = report.get("estimate") or {}
    ref_conf = reference.get("mean_confidence")
    ref_n = int(reference.get("n") or 0)
    est = estimate.get("accuracy") if estimate.get("n") else None
    predictions: list[str] = []
    performance: list[str] = []
    if ref_conf is None or est is None or not ref_n:
        return predictions, performance
    drop = float(ref_conf) - float(est)
    se = math.sqrt(estimate_se(estimate) ** 2 + ref_conf * (1 - ref_conf) / ref_n)
    if drop > 0.01 and drop > _z(1 - alpha) * se:
        predictions.append(f"estimate fell to {est:.1%} from the reference's {ref_conf:.1%}")
    if status == "trusted" and drop > margin:
        performance.append(
            f"trusted estimate {est:.1%} is {drop:.1%} below the reference's {ref_conf:.1%} "
            f"(margin {margin:.0%})"
        )
    return predictions, performance


def assess_window(
    report: dict[str, Any],
    feedback: dict[str, Any] | None,
    audit: dict[str, Any] | None,
    *,
    earlier: Sequence[Window] = (),
    margin: float = 0.03,
    alpha: float = 0.05,
    status_alpha: float = STATUS_ALPHA,
    alarm_alpha: float = ALARM_ALPHA,
    min_n: int = MIN_LABELS,
) -> dict[str, Any]:
    """The window's level, alarm, the estimate's status and every reason, as of its labels now.

    ``report`` is what the monitor stored when the window closed; ``feedback`` and ``audit``
    are its labels counted when read (``n``, ``accepted`` and ``labels``, the true label counts);
    ``earlier`` the same version's windows before it, newest first, as ``(report, feedback,
    audit)`` (:data:`POOLS` says how many are read). ``alpha`` is the level of the estimate's
    fall below the reference (a warning).
    """
    tested = pools((report, feedback, audit), earlier, min_n)
    status = estimate_status(report, tested, alpha=status_alpha)
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
    fell, risk = _estimate_reasons(report, status["status"], margin, alpha)
    reasons["predictions"] += fell
    reasons["performance"] += risk
    alarm_source = "estimate" if reasons["performance"] else None
    alarmed = _accuracy_alarm(tested, report.get("reference") or {}, alarm_alpha)
    if alarmed is not None:
        ref_acc = float((report.get("reference") or {})["accuracy"])
        reasons["performance"].insert(
            0,
            f"accuracy on the {alarmed.said()} {alarmed.accuracy:.1%} (n={alarmed.n:,}) is "
            f"below the reference's {ref_acc:.1%}",
        )
        alarm_source = alarmed.source
    level = next((lv for lv in reversed(LEVELS[1:]) if reasons[lv]), "none")
    return {
        "level": level,
        "alarm": level == "performance",
        "alarm_source": alarm_source,
        "alarm_windows": alarmed.windows if alarmed is not None else None,
        "labels_used": tested[0].source if tested else None,
        "reasons": [r for lv in LEVELS[1:] for r in reasons[lv]],
        "estimate": {**(report.get("estimate") or {}), **status},
    }
