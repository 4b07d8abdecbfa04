"""Trigger rules as pure decisions over a window history."""

from __future__ import annotations

import pytest

from looplab.errors import Invalid
from looplab.triggers import decide, parse_rules


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
    assert "needs 20 observations, has 10" in decide(rule, [], reports[:2], 0)[1]


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
