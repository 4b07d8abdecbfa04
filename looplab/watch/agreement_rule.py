"""The ``agreement_below`` trigger rule: people stopped agreeing, as pure functions.

A rule such as::

    {"name": "crowd", "when": "agreement_below", "alpha": 0.6, "drop": 0.15,
     "min_items": 30, "by": "week", "actions": ["alert"]}

judges the latest time batch (``by``: day, week or month of each record's first answer, as
``looplab agreement --by`` reads them) with at least ``min_items`` records answered by two or
more people. It fires when that batch's Krippendorff's alpha is below ``alpha`` while the
judged batch before it was not (once per crossing, like ``accuracy_below``), or when it fell by
more than ``drop`` from that batch; never twice on one batch. Either of ``alpha`` and ``drop``
may be left out, not both. Batches on fewer records are skipped, not judged: alpha on few
records is noisy (a steady crowd of three careful people ranged 0.80 to 0.95 week to week on 40
records in ``tests/watch/test_agreement_trigger.py``).

The only action is ``alert``: a retrain would learn from the very labels people disagree on,
and ``label`` sends a monitor window's predictions to people, which says nothing about them.
The data (each batch's alpha) comes from :func:`looplab.trust.agreement_report.per_batch`;
:mod:`looplab.watch.trust_triggers` runs the rule after each reliability check.
"""

from __future__ import annotations

from typing import Any

from looplab.core.errors import Invalid

WHEN = "agreement_below"
BATCHES = ("day", "week", "month")
ACTIONS = ("alert",)


def _bad(i: int, key: str, message: str) -> Invalid:
    return Invalid(f"triggers[{i}].{key} {message}", details={"field": f"triggers[{i}].{key}"})


def _number(params: dict[str, Any], key: str) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(key)
    return float(value)


def check_params(params: dict[str, Any], actions: tuple[str, ...], i: int) -> None:
    """Validate (and fill the defaults of) an ``agreement_below`` rule's parameters in place."""
    bad_actions = [a for a in actions if a not in ACTIONS]
    if bad_actions:
        raise Invalid(
            f"triggers[{i}].actions: agreement_below can only alert, not "
            f"{', '.join(bad_actions)} (a retrain would learn from the labels people disagree "
            "on; label targets a monitor window)",
            details={"field": f"triggers[{i}].actions"},
        )
    unknown = sorted(set(params) - {"alpha", "drop", "min_items", "by"})
    if unknown:
        raise _bad(
            i, unknown[0], "is not a parameter of agreement_below (alpha, drop, min_items, by)"
        )
    try:
        alpha, drop = _number(params, "alpha"), _number(params, "drop")
    except TypeError as exc:
        raise _bad(i, str(exc), "must be a number") from None
    if alpha is None and drop is None:
        raise _bad(i, "alpha", f"or triggers[{i}].drop is needed: the level or the fall that fires")
    if alpha is not None and not -1.0 < alpha <= 1.0:
        raise _bad(
            i, "alpha", f"must be above -1 and at most 1 (Krippendorff's alpha); got {alpha}"
        )
    if drop is not None and not 0.0 < drop <= 2.0:
        raise _bad(i, "drop", f"must be above 0 and at most 2 (a fall of alpha); got {drop}")
    params.setdefault("min_items", 30)
    params.setdefault("by", "week")
    min_items = params["min_items"]
    if not isinstance(min_items, int) or isinstance(min_items, bool) or min_items < 2:
        raise _bad(i, "min_items", "must be a int >= 2 (records answered by two or more people)")
    if params["by"] not in BATCHES:
        raise _bad(i, "by", f"must be one of {', '.join(BATCHES)}")


def _describe(batch: dict[str, Any], by: str) -> str:
    interval = ""
    if batch.get("low") is not None and batch.get("high") is not None:
        interval = f" (95% {batch['low']:.2f} to {batch['high']:.2f})"
    return (
        f"alpha {batch['alpha']:.3f}{interval} on {batch['n_records']} records "
        f"in the {by} of {batch['batch']}"
    )


def decide(
    params: dict[str, Any], batches: list[dict[str, Any]], *, last_fired_batch: str | None = None
) -> tuple[bool, str, str | None]:
    """Whether the rule fires, why, and the batch it judged (None when none has enough records).

    ``batches`` are ``{"batch", "alpha", "low", "high", "n_records"}``, oldest first, as
    :func:`looplab.trust.agreement_report.per_batch` returns them; ``last_fired_batch`` is the
    batch the rule last fired on.
    """
    min_items, by = int(params["min_items"]), str(params["by"])
    alpha, drop = params.get("alpha"), params.get("drop")
    judged = [b for b in batches if b["alpha"] is not None and b["n_records"] >= min_items]
    if not judged:
        most = max((int(b["n_records"]) for b in batches), default=0)
        return (
            False,
            f"no {by} has {min_items} records answered by two or more people yet (most: {most})",
            None,
        )
    latest = judged[-1]
    before = judged[-2] if len(judged) > 1 else None
    here = _describe(latest, by)
    fell = None
    if drop is not None and before is not None and before["alpha"] - latest["alpha"] > drop:
        fell = (
            f"{here}: down {before['alpha'] - latest['alpha']:.3f} from {before['alpha']:.3f} "
            f"in {before['batch']} (more than {drop})"
        )
    low = alpha is not None and latest["alpha"] < alpha
    if not (low or fell):
        limits = [f"threshold {alpha}"] if alpha is not None else []
        limits += [f"drop {drop}"] if drop is not None else []
        return False, f"{here}; {' and '.join(limits)}", latest["batch"]
    if latest["batch"] == last_fired_batch:
        return False, f"{here}: already fired on this {by}", latest["batch"]
    if fell:
        return True, fell, latest["batch"]
    # Not a fall, so a crossing of ``alpha``; already under it the batch before: still below.
    if alpha is not None and before is not None and before["alpha"] < alpha:
        return False, f"{here} still below {alpha} (as in {before['batch']})", latest["batch"]
    return True, f"{here} < {alpha}", latest["batch"]
