"""Whether the labeling page may show a version's suggestion, and how sure it is, in words.

The scoring job stores each open record's predicted label and confidence (``Record.pred_*``);
the queue hands them out through :func:`suggestion_for`, which applies the project's floor at
the moment of serving, so a change of the floor settings takes effect at once:

- ``suggest_min_test`` (30): fewest held-out test records the version was scored on. Ten test
  records say almost nothing about a 39-label model.
- ``suggest_min_accuracy`` (0.5): the lower end of the 95% interval of its held-out accuracy
  must reach this; the default means "right more often than wrong, with 95% confidence".

Below the floor the queue answers no suggestion and says why (:class:`Verdict`). Above it, the
suggestion carries the held-out accuracy of records on which the version was about as confident
(the reliability bin of the record's confidence, cross-fitted as every stored figure is; see
:mod:`looplab.learn.assess`), or of the whole test split when too few test records fell in that bin,
and :func:`words` turns it into a sentence a person reads ("right about 8 in 10 times").
The figures are measured on test records, so they hold for records like those: the assumption
a person cannot check from the page is that the records being labeled resemble the test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core.projects import setting
from looplab.core.tables import ImportBatch, ModelVersion, Project, Record, version_name
from looplab.learn.intervals import wilson_interval

#: Fewest test records in a confidence bin for its accuracy to describe "records like this".
MIN_BIN = 20


@dataclass(frozen=True)
class Verdict:
    """Whether a version's suggestions may be shown; ``reason`` says why not (or ``""``)."""

    shown: bool
    reason: str = ""


@dataclass(frozen=True)
class Sureness:
    """How often the version was right on held-out records like this one.

    ``scope`` is ``"similar"`` (test records in the same confidence bin) or ``"all"`` (the whole
    test split, when the bin held fewer than :data:`MIN_BIN`); ``n`` counts those records and
    ``low``/``high`` bound ``accuracy`` at 95%.
    """

    accuracy: float
    low: float
    high: float
    n: int
    scope: str


def _accuracy_interval(metrics: dict[str, Any], n: int) -> tuple[float, float] | None:
    accuracy = metrics.get("accuracy")
    if accuracy is None or n <= 0:
        return None
    ci = metrics.get("accuracy_ci")
    if ci and len(ci) == 2:
        return float(ci[0]), float(ci[1])
    return wilson_interval(round(float(accuracy) * n), n)


def floor(metrics: dict[str, Any], n_test: int, *, min_test: int, min_accuracy: float) -> Verdict:
    """Does a version with these held-out ``metrics`` on ``n_test`` records pass the floor?

    Examples
    --------
    >>> print(floor({"accuracy": 0.3}, 10, min_test=30, min_accuracy=0.5).reason)
    ... # doctest: +NORMALIZE_WHITESPACE
    its suggestions are hidden until a version is tested on at least 30 records;
    it was tested on 10
    >>> floor({"accuracy": 0.9, "accuracy_ci": [0.8, 0.96]}, 50, min_test=30, min_accuracy=0.5)
    Verdict(shown=True, reason='')
    """
    if n_test < min_test:
        return Verdict(
            False,
            f"its suggestions are hidden until a version is tested on at least {min_test} "
            f"records; it was tested on {n_test}",
        )
    interval = _accuracy_interval(metrics, n_test)
    if interval is None:
        return Verdict(False, "it has no held-out accuracy")
    low, high = interval
    if low < min_accuracy:
        return Verdict(
            False,
            f"its held-out accuracy is {float(metrics['accuracy']):.0%} on {n_test} test records "
            f"(95% interval {low:.0%} to {high:.0%}); suggestions are shown once the interval's "
            f"lower end reaches {min_accuracy:.0%}",
        )
    return Verdict(True)


def sureness(metrics: dict[str, Any], n_test: int, confidence: float) -> Sureness | None:
    """Held-out accuracy on test records about as confident as ``confidence`` (see module doc).

    Examples
    --------
    >>> curve = {"edges": [0, 0.5, 1], "accuracy": [0.4, 0.8], "confidence": [0.4, 0.8],
    ...          "counts": [5, 40]}
    >>> s = sureness({"accuracy": 0.75, "reliability": curve}, 45, 0.83)
    >>> s.scope, s.n, s.accuracy
    ('similar', 40, 0.8)
    >>> sureness({"accuracy": 0.75, "reliability": curve}, 45, 0.3).scope
    'all'
    """
    curve = metrics.get("reliability") or {}
    edges, accuracy, counts = curve.get("edges"), curve.get("accuracy"), curve.get("counts")
    if edges and accuracy and counts:
        bins = len(counts)
        i = min(max(int(confidence * bins), 0), bins - 1)
        n, acc = int(counts[i]), accuracy[i]
        if n >= MIN_BIN and acc is not None:
            low, high = wilson_interval(round(float(acc) * n), n)
            return Sureness(float(acc), low, high, n, "similar")
    interval = _accuracy_interval(metrics, n_test)
    if interval is None:
        return None
    return Sureness(float(metrics["accuracy"]), *interval, n_test, "all")


def _in_10(x: float) -> int:
    return int(min(10, max(0, round(10 * x))))


def words(label: str, sure: Sureness | None) -> str:
    """The suggestion as a sentence, with only what the held-out figures support.

    Examples
    --------
    >>> print(words("sport", Sureness(0.8, 0.66, 0.9, 40, "similar")))
    ... # doctest: +NORMALIZE_WHITESPACE
    The model guesses sport. On test records where it was this sure, it was right about
    8 in 10 times (between 7 and 9 in 10; 40 records).
    >>> words("sport", None)
    'The model guesses sport.'
    """
    if sure is None:
        return f"The model guesses {label}."
    similar = sure.scope == "similar"
    where = "On test records where it was this sure" if similar else "On its test records"
    low, high = _in_10(sure.low), _in_10(sure.high)
    spread = f"between {low} and {high} in 10" if low != high else f"{low} in 10"
    return (
        f"The model guesses {label}. {where}, it was right about {_in_10(sure.accuracy)} in 10 "
        f"times ({spread}; {sure.n} records)."
    )


def _version(session: Session, project: Project, version: int) -> tuple[dict[str, Any], int]:
    row = session.execute(
        select(ModelVersion.metrics, ModelVersion.n_test).where(
            ModelVersion.project_id == project.id, ModelVersion.version == version
        )
    ).first()
    if row is None:
        return {}, 0
    return dict(row[0] or {}), int(row[1] or 0)


def suggestion_for(
    session: Session, project: Project, record: Record
) -> tuple[dict[str, Any] | None, str]:
    """The suggestion to show with ``record`` and ``""``, or ``None`` and why none is shown.

    The suggestion is a dict: ``label``, ``confidence``, ``model_version``, ``right_rate``,
    ``right_low``, ``right_high``, ``right_n``, ``right_scope`` and ``words``.
    """
    if record.pred_label is None or record.pred_model is None:
        return None, ""
    if not setting(project, "show_suggestions"):
        return None, "suggestions are turned off for this project (show_suggestions)"
    name = version_name(record.pred_model)
    metrics, n_test = _version(session, project, record.pred_model)
    verdict = floor(
        metrics,
        n_test,
        min_test=int(setting(project, "suggest_min_test")),
        min_accuracy=float(setting(project, "suggest_min_accuracy")),
    )
    if not verdict.shown:
        return None, f"The model ({name}) makes no suggestion yet: {verdict.reason}."
    confidence = float(record.pred_confidence or 0.0)
    sure = sureness(metrics, n_test, confidence)
    return {
        "label": record.pred_label,
        "confidence": confidence,
        "model_version": name,
        "right_rate": sure.accuracy if sure else None,
        "right_low": sure.low if sure else None,
        "right_high": sure.high if sure else None,
        "right_n": sure.n if sure else None,
        "right_scope": sure.scope if sure else None,
        "words": words(record.pred_label, sure),
    }, ""


def source_of(session: Session, record: Record) -> str | None:
    """The name of the file ``record`` was imported from (``news.csv``; its line is the record's
    ``source_line``): what a person recognises a record by, unlike its id."""
    if record.batch_id is None:
        return None
    path = session.scalar(select(ImportBatch.source).where(ImportBatch.id == record.batch_id))
    return str(path).replace("\\", "/").rsplit("/", 1)[-1] if path else None
