"""Trigger rules: when monitoring says so, call people in, retrain, alert.

Rules live in the project settings under ``triggers``, a list of objects::

    {"name": "persistent-drift", "when": "drift", "windows": 3, "actions": ["label", "alert"]}
    {"name": "feedback-accuracy", "when": "accuracy_below", "threshold": 0.85,
     "source": "feedback", "min_n": 50, "actions": ["retrain", "alert"]}
    {"name": "corrections", "when": "corrections", "count": 100, "actions": ["retrain"]}

``drift`` fires once when the last ``windows`` monitor windows all alarmed (so one noisy window
never fires it, and a long drift fires it once, not every window); ``accuracy_below`` fires when a
window's accuracy (from ``feedback``, or the label-free ``estimate``) falls below ``threshold``
with at least ``min_n`` observations, once per crossing; ``corrections`` fires each time ``count``
new corrections have arrived since it last fired. Every decision, fired or not, is stored and
audited.

``accuracy_below`` judges the latest window with ``min_n`` observations, which is not always the
window just closed: feedback counts in the window of the prediction it judges and arrives late,
so when a window closes its own labels are mostly still to come, and the earlier window they
completed is the newest one to have a reliable figure. It fires when that window is below the
threshold and the window with enough observations before it was not, and never twice on one
window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from looplab.errors import Invalid

WHEN = ("drift", "accuracy_below", "corrections")
ACTIONS = ("label", "retrain", "alert")


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    actions: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


def parse_rules(raw: Any) -> list[Rule]:
    """Validate the ``triggers`` setting; raise :class:`Invalid` naming the bad entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Invalid("triggers must be a list of rule objects", details={"field": "triggers"})
    rules, names = [], set()
    for i, item in enumerate(raw):
        where = {"field": f"triggers[{i}]"}
        if not isinstance(item, dict):
            raise Invalid(f"triggers[{i}] must be an object", details=where)
        name, when = str(item.get("name") or f"rule{i}"), item.get("when")
        if when not in WHEN:
            raise Invalid(f"triggers[{i}].when must be one of {', '.join(WHEN)}", details=where)
        actions = item.get("actions", ["alert"])
        bad = [a for a in actions if a not in ACTIONS]
        if bad or not actions:
            raise Invalid(
                f"triggers[{i}].actions must be some of {', '.join(ACTIONS)}", details=where
            )
        if name in names:
            raise Invalid(f"two triggers are named {name!r}", details=where)
        names.add(name)
        params = {k: v for k, v in item.items() if k not in ("name", "when", "actions")}
        _check_params(when, params, i)
        rules.append(Rule(name, when, tuple(actions), params))
    return rules


def _check_params(when: str, params: dict[str, Any], i: int) -> None:
    def need(key: str, kind: type, low: float) -> None:
        value: Any = params.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or cast(float, value) < low:
            raise Invalid(
                f"triggers[{i}].{key} must be a {kind.__name__} >= {low}",
                details={"field": f"triggers[{i}].{key}"},
            )

    if when == "drift":
        params.setdefault("windows", 3)
        need("windows", int, 1)
    elif when == "accuracy_below":
        need("threshold", float, 0.0)
        params.setdefault("min_n", 30)
        params.setdefault("source", "feedback")
        need("min_n", int, 1)
        if params["source"] not in ("feedback", "estimate"):
            raise Invalid(
                f"triggers[{i}].source must be feedback or estimate",
                details={"field": f"triggers[{i}].source"},
            )
    else:
        need("count", int, 1)


def window_accuracy(report: dict[str, Any], source: str) -> tuple[float | None, int]:
    part = report.get("feedback" if source == "feedback" else "estimate") or {}
    return part.get("accuracy"), int(part.get("n") or 0)


def judged(rule: Rule, reports: list[dict[str, Any]]) -> int | None:
    """Index of the window ``accuracy_below`` judges: the latest with ``min_n`` observations.

    None for the other rules (they judge the window just closed, the last one) and when no
    window has enough observations yet.
    """
    if rule.when != "accuracy_below":
        return None
    source, min_n = rule.params["source"], int(rule.params["min_n"])
    for i in range(len(reports) - 1, -1, -1):
        if window_accuracy(reports[i], source)[1] >= min_n:
            return i
    return None


def decide(
    rule: Rule,
    alarms: list[bool],
    reports: list[dict[str, Any]],
    corrections_since_fired: int,
    *,
    last_fired_window: int | None = None,
) -> tuple[bool, str]:
    """Whether ``rule`` fires now, and why, given the windows so far (oldest first).

    ``reports`` may carry their window's id under ``"window"``; ``last_fired_window`` is the id
    of the window the rule last fired on, which ``accuracy_below`` never fires on again.

    Only some windows matter, so callers may pass just those, in order: ``drift`` with
    ``windows`` k reads the last k + 1 alarms; ``accuracy_below`` the two latest reports with
    ``min_n`` observations or, when none has, the one with the most.
    """
    if rule.when == "drift":
        k = int(rule.params["windows"])
        streak = 0
        for alarm in reversed(alarms[-(k + 1) :]):  # only the last k + 1 decide
            if not alarm:
                break
            streak += 1
        if streak == k:
            return True, f"drift alarm in each of the last {k} windows"
        if streak > k:
            return False, f"drift persists (more than {k} windows); already fired at {k}"
        return False, f"{streak} of {k} consecutive drift windows"
    if rule.when == "accuracy_below":
        threshold, source = float(rule.params["threshold"]), rule.params["source"]
        min_n = int(rule.params["min_n"])

        def below(report: dict[str, Any]) -> bool:
            acc, n = window_accuracy(report, source)
            return acc is not None and n >= min_n and acc < threshold

        if not reports:
            return False, "no window yet"
        i = judged(rule, reports)
        if i is None:
            most = max(window_accuracy(r, source)[1] for r in reports)
            return False, f"{source} accuracy needs {min_n} observations in a window, has {most}"
        acc, n = window_accuracy(reports[i], source)
        window = reports[i].get("window")
        where = f" in window #{window}" if window is not None else ""
        if not below(reports[i]):
            return False, f"{source} accuracy {acc:.3f} (n={n}){where}, threshold {threshold}"
        before = next((r for r in reversed(reports[:i]) if _enough(r, rule)), None)
        if before is not None and below(before):
            return False, f"{source} accuracy {acc:.3f} (n={n}){where} still below {threshold}"
        if window is not None and window == last_fired_window:
            return False, f"{source} accuracy {acc:.3f} < {threshold}{where}: already fired on it"
        return True, f"{source} accuracy {acc:.3f} < {threshold} (n={n}){where}"
    count = int(rule.params["count"])
    if corrections_since_fired >= count:
        return True, f"{corrections_since_fired} corrections since last fired (>= {count})"
    return False, f"{corrections_since_fired} of {count} corrections"


def _enough(report: dict[str, Any], rule: Rule) -> bool:
    return window_accuracy(report, rule.params["source"])[1] >= int(rule.params["min_n"])
