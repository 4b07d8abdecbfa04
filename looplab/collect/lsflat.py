"""Label Studio's JSON_MIN and CSV exports: one row per answer, grouped back into tasks.

Each row holds the task's data keys, its ``id``, ``annotator`` (an e-mail), ``annotation_id``,
``created_at``, ``updated_at``, ``lead_time`` and one column per control; the rows of one task
follow each other. The label column is the named control (``--from-name``), else the one column
whose values are the project's labels. Cancelled answers, ground truth and predictions are not
in these exports, and CSV holds every value as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from looplab.collect.lstasks import (
    FLAT_KEYS,
    KINDS,
    Answer,
    Controls,
    Hasher,
    Task,
    check_inputs,
    keep,
    lead_seconds,
    parse_id,
    parse_time,
    where,
)
from looplab.core.errors import did_you_mean

if TYPE_CHECKING:
    from looplab.collect.rows import Row, Spec


class FlatSource:
    """Rows of a JSON_MIN or CSV export (one per answer) grouped back into tasks.

    ``feed`` takes one row and yields the previous task's row when a new task id starts.
    """

    def __init__(
        self,
        spec: Spec,
        controls: Controls,
        labels: list[str],
        out: list[Task],
        kind: str,
        hasher: Hasher | None = None,
    ) -> None:
        self.spec, self.controls, self.labels, self.out = spec, controls, labels, out
        self.hasher = hasher
        controls.kind = kind
        self.current: Task | None = None
        self.current_id: Any = object()

    def _column(self, row: dict[str, Any], line: int) -> str:
        """The label column: the named control, else the only column holding project labels."""
        if self.controls.chosen is not None:
            if self.controls.chosen not in row:
                raise self.spec.invalid(
                    line,
                    self.controls.chosen,
                    f"the export has no column {self.controls.chosen!r}"
                    f"{did_you_mean(self.controls.chosen, row)}; name the control with"
                    " --from-name",
                )
            return self.controls.chosen
        skip = {*FLAT_KEYS, *self.spec.inputs}
        found = [
            k
            for k, v in row.items()
            if k not in skip
            and _flat_label(v) is not None
            and all(c in self.labels for c in _flat_label(v) or [])
        ]
        if len(found) != 1:
            raise self.spec.invalid(
                line,
                "from_name",
                f"a Label Studio {KINDS[self.controls.kind]} export: name its label column (the"
                " control) with --from-name; columns: "
                f"{', '.join(k for k in row if k not in FLAT_KEYS)}. (Label Studio's JSON export"
                " keeps cancelled answers, ground truth and predictions too)",
            )
        self.controls.chosen = found[0]
        return found[0]

    def feed(self, line: int, row: Any) -> Iterator[Row]:
        spec = self.spec
        if not isinstance(row, dict):
            raise spec.invalid(
                line, None, f"a row must be a JSON object, found {type(row).__name__}"
            )
        task_id = row.get("id")
        if self.current is None or task_id != self.current_id:
            if self.current is not None:
                yield self._row(self.current)
            check_inputs(spec, row, line)
            column = (
                self._column(row, line)
                if row.get("annotation_id") not in (None, "")
                else (self.controls.chosen)
            )
            keep = {k: v for k, v in row.items() if k not in FLAT_KEYS and k != column}
            if column is None:  # an unanswered task before any answer named the label column:
                # its empty cells are missing values, and one of them is that column
                keep = {k: v for k, v in keep.items() if v not in (None, "")}
            if spec.meta is None:
                meta = {k: v for k, v in keep.items() if k not in spec.inputs and k != spec.label}
            else:
                meta = {k: row.get(k) for k in spec.meta}
            spec.check_sizes(line, ((c, row[c]) for c in spec.inputs))
            spec.check_sizes(line, meta.items())
            self.current = Task(line, parse_id(task_id), [row[c] for c in spec.inputs], meta)
            self.current_id = task_id
        if row.get("annotation_id") in (None, ""):
            return
        column = self._column(row, line)
        self.controls.seen.setdefault(column, "choices")
        choices = _flat_label(row.get(column))
        task = self.current
        what = f"annotation {row.get('annotation_id')} by {row.get('annotator')}"
        if choices is None and row.get(column) not in (None, ""):
            raise spec.invalid(
                line,
                column,
                f"{where(task, what)}: {row.get(column)!r} is not a choice (spans, ratings and"
                " text are not imported)",
            )
        if choices is not None and len(choices) > 1:
            raise spec.invalid(
                line,
                column,
                f"{where(task, what)}: {len(choices)} choices {choices} in control {column!r};"
                " the project holds one label per answer (single-label), and looplab does not"
                " cut an answer down to its first choice",
            )
        label = choices[0] if choices else None
        if label is None:
            self.controls.empty_answers += 1
        email = row.get("annotator")
        task.answers.append(
            Answer(
                id=parse_id(row.get("annotation_id")),
                email=str(email) if isinstance(email, str) and "@" in email else None,
                user_id=None if isinstance(email, str) and "@" in email else parse_id(email),
                label=label,
                cancelled=False,
                ground_truth=False,
                seconds=lead_seconds(_number(row.get("lead_time"))),
                created_at=parse_time(row.get("created_at")),
            )
        )

    def close(self) -> Iterator[Row]:
        if self.current is not None:
            yield self._row(self.current)
            self.current = None

    def _row(self, task: Task) -> Row:
        row = task.line, task.inputs, None, task.meta or None
        keep(self.out, task, self.hasher)
        return row


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _flat_label(value: Any) -> list[str] | None:
    """A JSON_MIN/CSV label cell as its choices: ``"sport"``, ``{"choices": [...]}`` (multiple),
    or the same as JSON text in CSV. None for anything else (spans, ratings, empty)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] in "[{":
            try:
                value = json.loads(text)
            except ValueError:
                return [value]
        else:
            return [value]
    if isinstance(value, dict) and isinstance(value.get("choices"), list):
        return [str(c) for c in value["choices"]]
    return None


def read_flat_csv(
    rows: Iterator[tuple[int, dict[str, Any]]],
    spec: Spec,
    controls: Controls,
    labels: list[str],
    out: list[Task],
    hasher: Hasher | None = None,
) -> Iterator[Row]:
    """Rows of a Label Studio CSV export (``(line, {column: cell})``) grouped into tasks."""
    flat = FlatSource(spec, controls, labels, out, "csv", hasher)
    for line, row in rows:
        yield from flat.feed(
            line, {k: (None if v == "" and k in FLAT_KEYS else v) for k, v in row.items()}
        )
    yield from flat.close()


def is_flat_header(header: list[str]) -> bool:
    return {"annotation_id", "annotator", "lead_time"} <= set(header)
