"""Label Studio's exports, both ways: read JSON, JSON_MIN and CSV exports, build tasks for export.

A Label Studio task (https://labelstud.io/guide/task_format) looks like::

    {"id": 1,
     "data": {"text": "Rain stops play", "source": "bbc"},
     "annotations": [{"id": 9, "completed_by": {"id": 2, "email": "alice@example.com"},
                      "result": [{"from_name": "topic", "to_name": "text", "type": "choices",
                                  "value": {"choices": ["sport"]}}],
                      "was_cancelled": false, "ground_truth": false, "lead_time": 4.2,
                      "created_at": "2021-03-09T22:16:08.728353Z"}],
     "predictions": [{"id": 3, "model_version": "v3", "score": 0.91, "result": [...]}]}

Reading keeps every answer (:class:`~looplab.collect.lstasks.Answer`): its annotator's e-mail,
time, lead time, Label Studio id (the key that makes a re-import add nothing) and
``ground_truth``; cancelled answers are kept as skips. Predictions are kept with their model
version and score (:class:`~looplab.collect.lstasks.Guess`). ``data[text]`` (or the ``fields``
keys) is the input, every other ``data`` key is meta unless ``meta`` lists the ones to keep. The
answers, predictions and meta of a file are held in memory until the records are written
(:attr:`TaskSource.tasks`); the inputs are hashed as read and dropped. Measured: 50,000 tasks
with 75,000 answers peaked at 485 MB RSS, against 129 MB for the same tasks without answers.

Which control: the one named ``from_name`` (``--from-name``), else the only Choices control the
file answers. A result looplab cannot hold (several choices in a single-label project, spans,
ratings, text) is refused with the task, the line, the control and the result type; never cut
down. Results of other controls are left out, and counted, only when a control was named.

JSON_MIN and CSV exports hold one row per answer (the data keys, the task ``id``, ``annotator``
(an e-mail), ``annotation_id``, ``created_at``, ``updated_at``, ``lead_time`` and one column per
control). Rows of one task follow each other and are grouped back into a task
(:mod:`looplab.collect.lsflat`). They leave out cancelled answers, ``ground_truth`` and
predictions, and CSV holds every value as text: the JSON export is the lossless one.

A task without a ``data`` key and without ``annotation_id`` is taken as flat data, which covers
plain ``[{"text": ...}]`` imports.

Files are parsed one task at a time (a top-level array streamed through
``json.JSONDecoder.raw_decode``), and every task knows the line it starts on for provenance and
error messages. A task naming a key twice, a blank choice and a kept value over the field limit
are refused with that line.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from contextlib import suppress
from typing import TYPE_CHECKING, Any, BinaryIO

from looplab.collect.lsflat import FlatSource
from looplab.collect.lstasks import (
    Answer,
    Controls,
    Guess,
    Hasher,
    Task,
    check_inputs,
    keep,
    lead_seconds,
    parse_id,
    parse_time,
    where,
)
from looplab.collect.strictjson import DECODER, DuplicateKey
from looplab.core.errors import Invalid

if TYPE_CHECKING:
    from looplab.collect.rows import Row, Spec

#: Bytes read at a time; a task larger than this just takes a few more reads.
CHUNK = 1 << 20
_WHITESPACE = " \t\r\n"
#: Top-level task keys that are never data (used when a task has no ``data`` wrapper).
_TASK_KEYS = ("id", "annotations", "predictions", "drafts", "data")


class TaskSource:
    """A :class:`looplab.collect.rows.Source` over a Label Studio JSON (or JSON_MIN) export.

    Rows carry no labels: the answers of each task go to :attr:`tasks`, which
    :func:`looplab.collect.lsimport.write_answers` writes once the records are in.
    """

    format = "label-studio"

    def __init__(
        self,
        handle: BinaryIO,
        spec: Spec,
        size: int,
        *,
        from_name: str | None = None,
        labels: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.total = size
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder(spec.encoding)()  # checked by the caller
        self.controls = Controls(chosen=from_name, explicit=from_name is not None)
        self.labels = labels or []
        self.tasks: list[Task] = []
        #: Set by the importer: each task is hashed as it is read (see :func:`keep`).
        self.hasher: Hasher | None = None

    def position(self) -> int:
        return self.handle.tell()

    def rows(self) -> Iterator[Row]:
        count = 0
        flat: FlatSource | None = None
        for line, task in iter_array(self.handle, self.decoder, self.spec):
            count += 1
            # JSON_MIN: one flat row per answer, each with its annotation_id.
            if (
                flat is None
                and isinstance(task, dict)
                and "data" not in task
                and ("annotation_id" in task)
            ):
                flat = FlatSource(
                    self.spec, self.controls, self.labels, self.tasks, "json-min", self.hasher
                )
            if flat is not None:
                yield from flat.feed(line, task)
                continue
            yield task_row(self.spec, task, line, self.controls, self.tasks, self.hasher)
        if flat is not None:
            yield from flat.close()
        if count == 0:
            raise self.spec.invalid(None, None, "the file holds no tasks (an empty list)")


def iter_array(
    handle: BinaryIO, decoder: codecs.IncrementalDecoder, spec: Spec
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, value)`` for each element of the top-level JSON array in ``handle``."""
    parser = DECODER
    buf, pos, line, eof = "", 0, 1, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        raw = handle.read(CHUNK)
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            bad = line + buf.count("\n", pos) + raw.count(b"\n", 0, max(exc.start, 0))
            raise spec.invalid(
                bad,
                None,
                f"not valid {spec.encoding}; if the file uses another encoding, pass it with"
                " --encoding (for example --encoding latin-1)",
            ) from None
        eof = not raw
        buf, pos = buf[pos:] + text, 0
        return bool(raw)

    def skip() -> str:
        """Skip whitespace; return the next character ('' at the end of the file)."""
        nonlocal pos, line
        while True:
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    first = skip()
    if first != "[":
        raise spec.invalid(
            line,
            None,
            "a Label Studio file must be a JSON list of tasks ([{...}, ...])"
            + (", found an empty file" if not first else f", found {first!r} first"),
        )
    pos += 1
    expect_value = True
    while True:
        char = skip()
        if char == "":
            raise spec.invalid(line, None, "the file ends inside the list of tasks (truncated?)")
        if char == "]" and (expect_value is False or _empty_so_far(buf, pos)):
            pos += 1
            break
        if not expect_value:
            if char != ",":
                raise spec.invalid(line, None, f"expected ',' or ']' between tasks, found {char!r}")
            pos += 1
            expect_value = True
            continue
        while True:
            try:
                value, end = parser.raw_decode(buf, pos)
            except DuplicateKey as exc:  # an object that closed: a duplicate however it ends
                raise spec.invalid(
                    line,
                    exc.key,
                    "the task names this key twice (JSON parsers would keep only the last"
                    " value); remove one",
                ) from None
            except json.JSONDecodeError as exc:
                if more():
                    continue
                raise spec.invalid(
                    line + buf.count("\n", pos, exc.pos), None, f"not valid JSON ({exc.msg})"
                ) from None
            except (ValueError, RecursionError) as exc:  # a 5,000-digit number; nesting too deep
                raise spec.invalid(line, None, f"not valid JSON ({exc})") from None
            if end < len(buf) or eof or not more():
                break  # a number at the very end of the buffer might continue in the next read
        start = line
        line += buf.count("\n", pos, end)
        pos = end
        expect_value = False
        yield start, value
    if skip() != "":
        raise spec.invalid(line, None, "unexpected text after the list of tasks")


def _empty_so_far(buf: str, pos: int) -> bool:
    """True when ``]`` closes a list that has no element yet (``[]``)."""
    back = pos - 1
    while back >= 0 and buf[back] in _WHITESPACE:
        back -= 1
    return back >= 0 and buf[back] == "["


def task_row(
    spec: Spec,
    task: Any,
    line: int,
    controls: Controls | None = None,
    out: list[Task] | None = None,
    hasher: Hasher | None = None,
) -> Row:
    """One task as an import row (inputs and meta); its answers and predictions go to ``out``."""
    if not isinstance(task, dict):
        raise spec.invalid(line, None, f"a task must be a JSON object, found {type(task).__name__}")
    data = task.get("data")
    if data is None:
        data = {k: v for k, v in task.items() if k not in _TASK_KEYS}
    elif not isinstance(data, dict):
        raise spec.invalid(line, "data", "a task's 'data' must be an object")
    check_inputs(spec, data, line)
    labels: list[tuple[Any, float | None]] = []
    if spec.label is not None and data.get(spec.label) is not None:
        labels.append((data[spec.label], None))
    taken = {*spec.inputs, *([spec.label] if spec.label else [])}
    if spec.meta is None:
        meta = {k: v for k, v in data.items() if k not in taken}
    else:
        meta = {k: data.get(k) for k in spec.meta}
    spec.check_sizes(line, ((c, data[c]) for c in spec.inputs))
    spec.check_sizes(line, ((spec.label or "annotations", value) for value, _ in labels))
    spec.check_sizes(line, meta.items())
    inputs = [data[c] for c in spec.inputs]
    controls = controls if controls is not None else Controls()
    record = Task(line, parse_id(task.get("id")), inputs, meta)
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise spec.invalid(line, "annotations", "'annotations' must be a list")
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise spec.invalid(line, "annotations", "each annotation must be a JSON object")
        record.answers.append(_answer(spec, controls, record, annotation))
    predictions = task.get("predictions") or []
    if not isinstance(predictions, list):
        raise spec.invalid(line, "predictions", "'predictions' must be a list")
    for prediction in predictions:
        if isinstance(prediction, dict):
            _guess(spec, controls, record, prediction)
    if out is not None and (record.answers or record.guesses or record.task_id is not None):
        keep(out, record, hasher)
    return line, inputs, labels or None, meta or None


def _choice(
    spec: Spec, controls: Controls, task: Task, result: Any, what: str
) -> tuple[str | None, bool]:
    """The chosen control's single choice in ``result``: (label or None, any result at all)."""
    if not isinstance(result, list):
        return None, False
    found: str | None = None
    for item in result:
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        kind = item.get("type") or (
            "choices" if isinstance(value, dict) and "choices" in value else None
        )
        name = item.get("from_name") or ""
        if name not in controls.seen:
            controls.seen[name] = str(kind)
        if controls.chosen is None and kind == "choices":
            controls.chosen = name
        if name != controls.chosen:
            if controls.explicit:
                controls.left_out[f"{name} ({kind})"] += 1
                continue
            others = [n for n, k in controls.seen.items() if k == "choices"]
            if kind == "choices" and len(others) > 1:
                raise spec.invalid(
                    task.line,
                    "from_name",
                    f"{where(task, what)}: this export answers several Choices controls"
                    f" ({', '.join(repr(n) for n in others)}); pick one with --from-name",
                )
            raise spec.invalid(
                task.line,
                "annotations",
                f"{where(task, what)}: a {kind!r} result of control {name!r}: looplab holds one"
                " label per answer, from a Choices control, and cannot hold this (spans,"
                " ratings and text are not imported)"
                + (
                    f"; pass --from-name {controls.chosen} to import that control and leave"
                    " the others out (they are counted in the summary)"
                    if controls.chosen is not None
                    else ""
                ),
            )
        if kind != "choices":
            raise spec.invalid(
                task.line,
                "annotations",
                f"{where(task, what)}: control {name!r} holds a {kind!r} result, not choices;"
                " looplab imports the single choice of a Choices control",
            )
        controls.to_name = controls.to_name or item.get("to_name")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not choices:
            continue
        if len(choices) > 1 or found is not None:
            picked = choices if len(choices) > 1 else [found, *choices]
            raise spec.invalid(
                task.line,
                "annotations",
                f"{where(task, what)}: {len(picked)} choices {picked} in control {name!r}; the"
                " project holds one label per answer (single-label), and looplab does not cut"
                " an answer down to its first choice. Import a single-choice control instead",
            )
        found = choices[0]
    return found, True


def _answer(spec: Spec, controls: Controls, task: Task, annotation: dict[str, Any]) -> Answer:
    aid = parse_id(annotation.get("id"))
    who = annotation.get("completed_by")
    email = who.get("email") if isinstance(who, dict) else None
    user = parse_id(who.get("id")) if isinstance(who, dict) else parse_id(who)
    what = f"annotation {aid}" + (f" by {email}" if email else "")
    cancelled = bool(annotation.get("was_cancelled"))
    label, _ = (
        (None, False)
        if cancelled
        else _choice(spec, controls, task, annotation.get("result"), what)
    )
    if label is None and not cancelled:
        controls.empty_answers += 1
    if aid is None:
        controls.without_id += 1
    if label is not None:
        spec.check_sizes(task.line, (("annotations", label),))
    return Answer(
        id=aid,
        email=email if isinstance(email, str) and email else None,
        user_id=user,
        label=label,
        cancelled=cancelled,
        ground_truth=annotation.get("ground_truth") is True,
        seconds=lead_seconds(annotation.get("lead_time")),
        created_at=parse_time(annotation.get("created_at")),
    )


def _guess(spec: Spec, controls: Controls, task: Task, prediction: dict[str, Any]) -> None:
    version = str(prediction.get("model_version") or "(no model_version)")
    result = prediction.get("result")
    label = None
    # A prediction looplab cannot hold is counted, not fatal: it is not a person's answer.
    with suppress(Invalid):
        label, _ = _choice(spec, controls, task, result, "a prediction")
    score = prediction.get("score")
    if label is None or not isinstance(label, str):
        controls.guesses_not_held[version] += 1
        return
    task.guesses.append(
        Guess(
            id=parse_id(prediction.get("id")),
            model_version=version,
            label=label,
            score=float(score)
            if isinstance(score, int | float) and not isinstance(score, bool)
            else None,
            result=result if isinstance(result, list) else [],
        )
    )


def result(label: str, to_name: str, from_name: str = "label") -> list[dict[str, Any]]:
    """A single-choice answer in Label Studio's result shape."""
    return [
        {
            "from_name": from_name,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
