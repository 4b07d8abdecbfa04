"""Project settings, checked once for every way in: ``looplab config``, ``PATCH .../settings``
and code. It sits above the stages, as the worker does, because some values only a stage can
judge: a query strategy's name (:mod:`looplab.ask.strategies`), an estimator's dotted path
(:mod:`looplab.learn.train`), trigger rules (:mod:`looplab.watch.triggers`) and the gate's
thresholds (:mod:`looplab.learn.promotion`). The settings themselves, their defaults and their plain
types live in the core (:mod:`looplab.core.projects`), which every stage reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from looplab.ask import strategies
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.tables import Project
from looplab.learn import promotion, train
from looplab.trust import labels as trust_labels
from looplab.watch import periods, triggers


def check_settings(changes: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise :class:`Invalid` naming the first bad value of ``changes``.

    ``current`` holds the project's settings before the change (pairs such as the gate's metric
    and test are checked as they will be stored). Checked here, a bad value fails when it is
    set, not in a training job an hour later.
    """
    projects.check_known(changes)
    projects.check_types(changes)
    if changes.get("strategy") is not None:
        try:
            strategies.get_strategy(changes["strategy"])
        except ValueError as exc:
            raise Invalid(str(exc), details={"field": "strategy"}) from None
    if changes.get("estimator"):
        try:
            train.resolve_estimator(changes["estimator"])
        except ValueError as exc:
            raise Invalid(str(exc), details={"field": "estimator"}) from None
    for key, low in (("overlap", 1), ("retrain_every", 1), ("suggest_min_test", 1)):
        if key in changes and (not isinstance(changes[key], int) or changes[key] < low):
            raise Invalid(f"{key} must be an integer >= {low}", details={"field": key})
    if "consensus" in changes:
        try:
            trust_labels.check_method(changes["consensus"])
        except ValueError as exc:
            raise Invalid(str(exc), details={"field": "consensus"}) from None
    if "triggers" in changes:
        triggers.parse_rules(changes["triggers"])
    _check_watch(changes)
    promotion.check_settings(changes, current)
    floor = changes.get("suggest_min_accuracy")
    if "suggest_min_accuracy" in changes and not (
        isinstance(floor, int | float) and not isinstance(floor, bool) and 0 <= floor <= 1
    ):
        raise Invalid(
            "suggest_min_accuracy must be a number from 0 to 1",
            details={"field": "suggest_min_accuracy"},
        )
    fraction = changes.get("overlap_fraction")
    if fraction is not None and not (0 <= float(fraction) <= 1):
        raise Invalid(
            "overlap_fraction must be between 0 and 1", details={"field": "overlap_fraction"}
        )


def _check_watch(changes: dict[str, Any]) -> None:
    """The watch settings: window, window_time_field, audit_rate, alarm_margin."""
    if "window" in changes:
        periods.check(changes["window"])
    field = changes.get("window_time_field")
    if field is not None and (not isinstance(field, str) or not field.strip()):
        raise Invalid(
            "window_time_field must be an input field's name or null",
            details={"field": "window_time_field"},
        )
    for key, high in (("audit_rate", 1.0), ("alarm_margin", 1.0)):
        value = changes.get(key, 0.0)
        if not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= high
        ):
            raise Invalid(f"{key} must be a number from 0 to {high:g}", details={"field": key})


def update_settings(
    session: Session, project: Project, changes: dict[str, Any], *, actor: str
) -> Project:
    """Check ``changes`` and store them in ``project``'s settings, audited, in one transaction."""
    check_settings(changes, projects.current_settings(project))
    return projects.write_settings(session, project, changes, actor=actor)
