"""Trigger rules as pure decisions over a window history."""

from __future__ import annotations

import pytest

from looplab.core.errors import Invalid
from looplab.watch.triggers import decide, judged, parse_rules


def test_persistent_drift_fires_once_and_not_on_one_noisy_window() -> None:
    [rule] = parse_rules([{"name": "d", "when": "drift", "windows": 3, "actions": ["label"]}])
    history = [False, True, False, True, True, True, True, True, False, True]
    fired = [decide(rule, history[: i + 1], [], 0)[0] for i in range(len(history))]
    assert fired == [False, False, False, False, False, True, False, False, False, False]


def test_accuracy_below_fires_once_per_crossing_with_enough_feedback() -> None:
    [rule] = parse_rules([{"when": "accuracy_below", "threshold": 0.8, "min_n": 20}])

    def rep(acc: float, n: int) -> dict:
        return {"feedback": {"accuracy": acc, "n": n}}

    reports = [rep(0.9, 50), rep(0.7, 10), rep(0.7, 50), rep(0.6, 50), rep(0.9, 50), rep(0.7, 40)]
    fired = [decide(rule, [], reports[: i + 1], 0)[0] for i in range(len(reports))]
    assert fired == [False, False, True, False, False, True]
    assert decide(rule, [], reports[1:2], 0)[1] == (
        "feedback accuracy needs 20 observations in a window, has 10"
    )


def test_accuracy_below_judges_the_latest_window_with_enough_late_feedback() -> None:
    """Labels arrive late: when a window closes, an earlier one may have just got enough."""
    [rule] = parse_rules([{"when": "accuracy_below", "threshold": 0.8, "min_n": 20}])

    def rep(window: int, acc: float | None, n: int) -> dict:
        return {"window": window, "feedback": {"accuracy": acc, "n": n}}

    # Window 1 now has 30 answers at 60%; windows 2 and 3 have few answers so far.
    reports = [rep(1, 0.6, 30), rep(2, 0.9, 5), rep(3, None, 0)]
    assert judged(rule, reports) == 0
    assert decide(rule, [], reports, 0) == (
        True,
        "feedback accuracy 0.600 < 0.8 (n=30) in window #1",
    )
    # Once fired on window 1, later closes that still judge window 1 do not fire again.
    assert decide(rule, [], [*reports, rep(4, None, 0)], 0, last_fired_window=1) == (
        False,
        "feedback accuracy 0.600 < 0.8 in window #1: already fired on it",
    )
    # Window 2 then fills up, also below: the same drop, still below, no second alert.
    later = [rep(1, 0.6, 30), rep(2, 0.7, 25), rep(3, 0.9, 5), rep(4, None, 0)]
    assert judged(rule, later) == 1
    assert decide(rule, [], later, 0, last_fired_window=1) == (
        False,
        "feedback accuracy 0.700 (n=25) in window #2 still below 0.8",
    )
    assert judged(rule, [rep(1, 0.9, 5)]) is None


def test_corrections_rule() -> None:
    [rule] = parse_rules([{"when": "corrections", "count": 25, "actions": ["retrain"]}])
    assert decide(rule, [], [], 24) == (False, "24 of 25 corrections")
    assert decide(rule, [], [], 25)[0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"when": "weather"}, "triggers[0].when must be one of"),
        ({"when": "drift", "actions": ["email"]}, "triggers[0].actions must be some of"),
        ({"when": "drift", "windows": 0}, "triggers[0].windows must be a int >= 1"),
        ({"when": "accuracy_below"}, "triggers[0].threshold must be a float"),
        ({"when": "accuracy_below", "threshold": 0.8, "source": "oracle"}, "source must be"),
        ({"when": "corrections", "count": "many"}, "triggers[0].count must be a int"),
    ],
)
def test_bad_rules_name_the_entry(raw: dict, message: str) -> None:
    with pytest.raises(Invalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_rules([raw])


def test_drift_reads_only_the_last_k_plus_one_alarms() -> None:
    """A caller may pass only the last k + 1 windows: the decision is the same."""
    [rule] = parse_rules([{"name": "d", "when": "drift", "windows": 3, "actions": ["label"]}])
    long_streak = [False] + [True] * 40
    assert decide(rule, long_streak, [], 0) == decide(rule, long_streak[-4:], [], 0)
    assert decide(rule, long_streak, [], 0) == (
        False,
        "drift persists (more than 3 windows); already fired at 3",
    )
    assert decide(rule, [True, False, True, True, True], [], 0)[0] is True
