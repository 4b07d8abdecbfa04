"""Label Studio's JSON task format, both ways: read an export for import, build tasks for export.

A Label Studio task (https://labelstud.io/guide/task_format) looks like::

    {"id": 1,
     "data": {"text": "Rain stops play", "source": "bbc"},
     "annotations": [{"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                  "value": {"choices": ["sport"]}}],
                      "was_cancelled": false, "lead_time": 4.2, "completed_by": 10,
                      "created_at": "2021-03-09T22:16:08.728353Z"}],
     "predictions": [{"model_version": "v3", "score": 0.91, "result": [...]}]}

Reading: ``data[text]`` (or the ``fields`` keys) is the input, every other ``data`` key is meta
unless ``meta`` lists the ones to keep, and each annotation that was not cancelled contributes its
first ``choices`` answer as an imported label (with its ``lead_time`` as seconds). A task without a
``data`` key is taken as flat data, which covers Label Studio's "JSON-MIN" export and plain
``[{"text": ...}]`` imports. Predictions are not imported: a model registry owns those.

Files are parsed one task at a time (a top-level array streamed through
``json.JSONDecoder.raw_decode``), so memory holds one task, not the file, and every task knows the
line it starts on for provenance and error messages. A task naming a key twice, a blank choice and
a kept value over the field limit are refused with that line.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from looplab.collect.strictjson import DECODER, DuplicateKey
from looplab.core.errors import did_you_mean

if TYPE_CHECKING:
    from looplab.collect.rows import Row, Spec

#: Bytes read at a time; a task larger than this just takes a few more reads.
CHUNK = 1 << 20
_WHITESPACE = " \t\r\n"
#: Top-level task keys that are never data (used when a task has no ``data`` wrapper).
_TASK_KEYS = ("id", "annotations", "predictions", "drafts", "data")


class TaskSource:
    """A :class:`looplab.collect.rows.Source` over a Label Studio JSON export."""

    format = "label-studio"

    def __init__(self, handle: BinaryIO, spec: Spec, size: int) -> None:
        self.spec = spec
        self.total = size
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder(spec.encoding)()  # checked by the caller

    def position(self) -> int:
        return self.handle.tell()

    def rows(self) -> Iterator[Row]:
        count = 0
        for line, task in iter_array(self.handle, self.decoder, self.spec):
            count += 1
            yield task_row(self.spec, task, line)
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


def task_row(spec: Spec, task: Any, line: int) -> Row:
    """One task as an import row: inputs, labels (with lead times) and meta."""
    if not isinstance(task, dict):
        raise spec.invalid(line, None, f"a task must be a JSON object, found {type(task).__name__}")
    data = task.get("data")
    if data is None:
        data = {k: v for k, v in task.items() if k not in _TASK_KEYS}
    elif not isinstance(data, dict):
        raise spec.invalid(line, "data", "a task's 'data' must be an object")
    missing = [c for c in spec.inputs if c not in data]
    if missing:
        raise spec.invalid(
            line,
            missing[0],
            f"the task's data has no key {missing[0]!r}{did_you_mean(missing[0], data)}; it has: "
            f"{', '.join(repr(k) for k in data) or '(nothing)'}. Map it with --text/--fields",
        )
    labels: list[tuple[Any, float | None]] = []
    if spec.label is not None and data.get(spec.label) is not None:
        labels.append((data[spec.label], None))
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise spec.invalid(line, "annotations", "'annotations' must be a list")
    for annotation in annotations:
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        choice = first_choice(annotation.get("result"))
        if choice is not None:
            labels.append((choice, _seconds(annotation.get("lead_time"))))
    taken = {*spec.inputs, *([spec.label] if spec.label else [])}
    if spec.meta is None:
        meta = {k: v for k, v in data.items() if k not in taken}
    else:
        meta = {k: data.get(k) for k in spec.meta}
    spec.check_sizes(line, ((c, data[c]) for c in spec.inputs))
    spec.check_sizes(line, ((spec.label or "annotations", value) for value, _ in labels))
    spec.check_sizes(line, meta.items())
    return line, [data[c] for c in spec.inputs], labels or None, meta or None


def _seconds(value: Any) -> float | None:
    """A lead time we can trust: a finite, non-negative number of seconds under a day."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if 0 <= seconds < 86_400 else None  # also drops NaN


def first_choice(result: Any) -> Any:
    """The first answer of the first ``choices`` result, or None."""
    if not isinstance(result, list):
        return None
    for item in result:
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
            return value["choices"][0]
    return None


def result(label: str, to_name: str) -> list[dict[str, Any]]:
    """A single-choice answer in Label Studio's result shape."""
    return [
        {
            "from_name": "label",
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
