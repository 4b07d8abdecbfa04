"""What looplab reads from a Label Studio export: tasks, answers, predictions, the chosen control.

:mod:`looplab.collect.labelstudio` (JSON) and :mod:`looplab.collect.lsflat` (JSON_MIN, CSV) fill
these; :mod:`looplab.collect.lsimport` writes them once the records are in.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from looplab.core.errors import did_you_mean

if TYPE_CHECKING:
    from looplab.collect.rows import Spec

#: The keys Label Studio's JSON_MIN and CSV exports add to the data keys of each answer row.
FLAT_KEYS = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time")
#: What looplab calls the formats it reads Label Studio answers from (summary, batch mapping).
KINDS = {"json": "JSON", "json-min": "JSON_MIN", "csv": "CSV"}


@dataclass
class Answer:
    """One Label Studio annotation."""

    id: str | None
    email: str | None
    user_id: str | None  # Label Studio's user id, for an export that has no e-mail
    label: str | None  # None for a cancelled or empty answer
    cancelled: bool
    ground_truth: bool
    seconds: float | None
    created_at: dt.datetime | None


@dataclass
class Guess:
    """One Label Studio prediction of the chosen control."""

    id: str | None
    model_version: str
    label: str
    score: float | None
    result: list[Any]


@dataclass
class Task:
    """A task's answers and predictions, written after its record (:mod:`.lsimport`)."""

    line: int
    task_id: str | None
    inputs: list[Any]
    meta: dict[str, Any]
    answers: list[Answer] = field(default_factory=list)
    guesses: list[Guess] = field(default_factory=list)
    #: The record's content hash, set (and ``inputs`` dropped) as the task is read when the
    #: importer gave its source a hasher: memory then holds answers and meta, not every text.
    digest: bytes | None = None


Hasher = Callable[[Task], bytes]


def keep(out: list[Task], task: Task, hasher: Hasher | None) -> None:
    """Append ``task`` to ``out``, hashed and without its inputs where a hasher is given."""
    if hasher is not None:
        task.digest = hasher(task)
        task.inputs = []
    out.append(task)


@dataclass
class Controls:
    """The control whose answers are imported, and everything else the file held."""

    chosen: str | None = None
    explicit: bool = False
    to_name: str | None = None
    kind: str = "json"
    #: control -> result type, for messages and the summary.
    seen: dict[str, str] = field(default_factory=dict)
    #: "control (type)" -> results left out because another control was named.
    left_out: Counter[str] = field(default_factory=Counter)
    #: model version -> predictions looplab cannot hold (not the chosen control's one choice).
    guesses_not_held: Counter[str] = field(default_factory=Counter)
    empty_answers: int = 0
    #: Answers that arrived without an id (a hand-made file): a re-import would add them again.
    without_id: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "format": KINDS.get(self.kind, self.kind),
            "from_name": self.chosen,
            "to_name": self.to_name,
            "controls": dict(self.seen),
            "left_out": dict(self.left_out),
            "predictions_not_held": dict(self.guesses_not_held),
            "empty_answers": self.empty_answers,
            "answers_without_id": self.without_id,
        }


def check_inputs(spec: Spec, data: dict[str, Any], line: int) -> None:
    missing = [c for c in spec.inputs if c not in data]
    if missing:
        raise spec.invalid(
            line,
            missing[0],
            f"the task's data has no key {missing[0]!r}{did_you_mean(missing[0], data)}; it has: "
            f"{', '.join(repr(k) for k in data) or '(nothing)'}. Map it with --text/--fields",
        )


def parse_id(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value)


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def where(task: Task, what: str) -> str:
    name = f"task {task.task_id}" if task.task_id is not None else "the task"
    return f"{name}, {what}"


def lead_seconds(value: Any) -> float | None:
    """A lead time we can trust: a finite, non-negative number of seconds under a day."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if 0 <= seconds < 86_400 else None  # also drops NaN
