"""Alarm levels on real windows: what each signal can see, end to end through the monitor job.

Project "shop" (``tests/watch/replay.py``): the label is ``hi`` when ``x0 + x1 > 0``; ``x2`` and
``color`` play no part. Windows close every 500 predictions; feedback is volunteered on 20%.
"""

from __future__ import annotations

import numpy as np

from looplab.core.store import Store
from looplab.watch import levels
from tests.watch import replay


def test_a_replay_of_the_training_rows_is_quiet(store: Store, tmp_path) -> None:
    data = replay.served(store, tmp_path)
    replay.replay(store, data[:500], feedback=0.2)
    result = replay.run(store, tmp_path)
    latest = replay.state(store)["latest"]
    assert result["n"] == 500 and latest["feedback"]["n"] > 50
    assert latest["level"] == "none" and latest["alarm"] is False, latest["level_reasons"]
    assert latest["input_drift"] is False
    # In-sample, a calibrated model is right more often than its confidence says: labels may
    # contradict the estimate, upwards only, which is no risk.
    if latest["estimate"]["status"] == "contradicted":
        assert latest["feedback"]["accuracy"] > latest["estimate"]["accuracy"]


def test_a_concept_shift_with_feedback_is_contradicted_and_alarms(store: Store, tmp_path) -> None:
    """Same inputs, new labels where x0 > 0.5: the estimate cannot see it, feedback can."""
    replay.served(store, tmp_path)
    rng = np.random.default_rng(1)

    def shifted(row: dict) -> str:
        return (
            ("lo" if replay.truth(row) == "hi" else "hi") if row["x0"] > 0.5 else replay.truth(row)
        )

    replay.replay(store, replay.rows(rng, 500), label=shifted, feedback=0.2, rng=rng)
    replay.run(store, tmp_path)
    latest = replay.state(store)["latest"]
    assert latest["input_drift"] is False  # the inputs did not change
    assert latest["estimate"]["status"] == "contradicted"
    reason = latest["estimate"]["reason"]
    assert f"{latest['feedback']['accuracy']:.1%}" in reason
    assert f"{latest['estimate']['accuracy']:.1%}" in reason
    assert latest["level"] == "performance" and latest["alarm"] is True
    assert latest["alarm_source"] == "feedback" and latest["labels_used"] == "feedback"


def test_a_covariate_shift_that_does_not_hurt_accuracy_stays_at_inputs(
    store: Store, tmp_path
) -> None:
    """x2 moves by 1.5 sd: the inputs changed, the answers and their accuracy did not."""
    replay.served(store, tmp_path)
    rng = np.random.default_rng(2)
    replay.replay(store, replay.rows(rng, 500, shift={"x2": 1.5}), feedback=0.2, rng=rng)
    replay.run(store, tmp_path)
    latest = replay.state(store)["latest"]
    assert latest["input_drift"] is True and "x2" in latest["blamed"]
    assert latest["level"] == "inputs" and latest["alarm"] is False, latest["level_reasons"]
    assert latest["estimate"]["status"] != "contradicted"


def _report(estimate: float, trusted: bool = True, **extra: object) -> dict:
    se = 0.004
    return {
        "estimate": {"accuracy": estimate, "ci_low": estimate - 1.96 * se,
                     "ci_high": estimate + 1.96 * se, "se": se, "n": 10_000,
                     "trusted": trusted, "reason": "calibrated on the reference"},
        "reference": {"accuracy": 0.80, "mean_confidence": 0.80, "n": 2000},
        "mean_proba": {"yes": 0.2, "no": 0.8},
        "drift": {"alarm": False},
        **extra,
    }  # fmt: skip


def test_a_base_rate_change_shows_in_label_rates_before_accuracy() -> None:
    """Accuracy on the audit sample matches the estimate; the label rates do not."""
    audit = {"n": 400, "accepted": 320, "labels": {"yes": 140, "no": 260}}
    judged = levels.assess_window(_report(0.80), None, audit)
    status = judged["estimate"]
    assert status["status"] == "contradicted" and "label_rates" in status["checks"]
    assert "label 'no' observed 65.0%, predicted 80.0%" in status["reason"]
    assert "audit sample" in status["reason"] and judged["labels_used"] == "audit"
    assert judged["level"] == "none"  # accuracy itself did not fall
    agreeing = {"n": 400, "accepted": 320, "labels": {"yes": 82, "no": 318}}
    assert levels.assess_window(_report(0.80), None, agreeing)["estimate"]["status"] == "trusted"


def test_a_trusted_estimate_that_falls_alarms_one_that_rises_does_not_warn() -> None:
    fell = levels.assess_window(_report(0.75), None, None)
    assert fell["level"] == "performance" and fell["alarm_source"] == "estimate"
    untrusted = levels.assess_window(_report(0.75, trusted=False), None, None)
    assert untrusted["level"] == "predictions" and untrusted["alarm"] is False
    assert levels.assess_window(_report(0.86), None, None)["level"] == "none"


def test_too_few_labels_are_not_tested_and_volunteered_ones_are_named_selective() -> None:
    few = {"n": 20, "accepted": 5, "labels": {"yes": 15, "no": 5}}
    assert levels.assess_window(_report(0.80), few, None)["labels_used"] is None
    wrong = {"n": 200, "accepted": 110, "labels": {"yes": 40, "no": 160}}
    judged = levels.assess_window(_report(0.80), wrong, None)
    assert judged["alarm"] and judged["alarm_source"] == "feedback"
    assert "volunteered feedback (possibly selective)" in judged["estimate"]["reason"]


def _labels(n: int, accepted: int) -> dict:
    return {"n": n, "accepted": accepted, "labels": {"yes": n // 5, "no": n - n // 5}}


def test_a_drop_inside_one_windows_noise_alarms_on_the_pooled_windows() -> None:
    """100 labels a window at 72% against 80%: no window alone shows it, four together do."""
    report = _report(0.80, trusted=False)
    alone = levels.assess_window(report, None, _labels(100, 72))
    assert alone["level"] != "performance"
    earlier = [(report, None, _labels(100, 72))] * 3
    pooled = levels.assess_window(report, None, _labels(100, 72), earlier=earlier)
    k = pooled["alarm_windows"]
    assert pooled["alarm"] and k in (2, 4)
    assert f"audit sample of the last {k} windows 72.0% (n={100 * k})" in pooled["reasons"][0]


def test_a_window_never_alarms_on_its_predecessors_labels_alone() -> None:
    report = _report(0.80, trusted=False)
    bad = [(report, None, _labels(100, 60))] * 7
    assert not levels.assess_window(report, None, None, earlier=bad)["alarm"]  # no labels
    recovered = levels.assess_window(report, None, _labels(100, 85), earlier=bad)
    assert not recovered["alarm"]  # its own labels are above the reference


def test_pooling_keeps_false_alarms_on_unchanged_windows_rare() -> None:
    """Seeded: 400 streams of 8 unchanged windows, 100 labels each at the reference's 80%."""
    rng = np.random.default_rng(7)
    report = _report(0.80, trusted=False)
    report["reference"]["n"] = 5000
    alarms = contradicted = 0
    for _ in range(400):
        stream = [(report, None, _labels(100, int(rng.binomial(100, 0.8)))) for _ in range(8)]
        judged = levels.assess_window(*stream[-1], earlier=stream[-2::-1])
        alarms += judged["alarm"]
        contradicted += judged["estimate"]["status"] == "contradicted"
    # At most twice each level (the window alone, and the pooled tests sharing a second budget).
    assert alarms / 400 <= 2 * levels.ALARM_ALPHA + 0.01
    assert contradicted / 400 <= 2 * levels.STATUS_ALPHA + 0.015
