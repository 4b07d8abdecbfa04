"""What a reader hands the importer: the column mapping (:class:`Spec`), the rows it yields
(:data:`Row`) and the reader protocol (:class:`Source`).

Both the file readers (:mod:`looplab.collect.readers`) and the Label Studio reader
(:mod:`looplab.collect.labelstudio`) build on these, so they live below both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from looplab.core.errors import Invalid

#: The longest value an import keeps, in characters (about 1 MB of English text): a record is
#: something a person reads. Larger values are refused with the line and the column.
MAX_FIELD_CHARS = 1_000_000
#: What a reader yields: (line, input values, [(label, seconds)] or None, meta dict or None).
Row = tuple[int, list[Any], list[tuple[Any, float | None]] | None, dict[str, Any] | None]


@dataclass(frozen=True)
class Spec:
    """Which source columns feed the record: validated once, trusted by the readers."""

    file: str
    task: str
    inputs: list[str]  # source columns, in payload order
    keys: list[str]  # payload keys ("text" for text tasks, else the field names)
    label: str | None
    meta: list[str] | None  # None: every other column (Label Studio only); else these
    encoding: str
    format: str = ""
    max_field: int = MAX_FIELD_CHARS  # characters per kept value

    def too_long(self, line: int | None, field: str | None, length: int) -> Invalid:
        """The error for a value of ``length`` characters over :attr:`max_field`."""
        return self.invalid(
            line,
            field,
            f"the value has {length:,} characters, more than the limit of {self.max_field:,};"
            " raise it with --max-field-chars (or LOOPLAB_MAX_FIELD_CHARS) if that is meant",
        )

    def check_sizes(self, line: int, items: Iterable[tuple[str, Any]]) -> None:
        """Raise :meth:`too_long` for the first value over the limit (nested values as JSON)."""
        limit = self.max_field
        for name, value in items:
            if isinstance(value, str):
                length = len(value)
            elif isinstance(value, dict | list):
                length = len(json.dumps(value, ensure_ascii=False, default=str))
            else:
                continue
            if length > limit:
                raise self.too_long(line, name, length)

    def where(self, line: int | None, field: str | None = None) -> dict[str, Any]:
        return {"file": self.file, "line": line, "field": field}

    def invalid(self, line: int | None, field: str | None, problem: str) -> Invalid:
        at = f"{self.file}: " + (f"line {line}" if line is not None else "")
        if field is not None:
            at += (", " if line is not None else "") + f"field {field!r}"
        return Invalid(f"{at.rstrip(': ')}: {problem}", details=self.where(line, field))


class Source(Protocol):
    """A reader: checks the mapped columns (when made or per row), yields :data:`Row` tuples."""

    @property
    def format(self) -> str: ...

    @property
    def total(self) -> int | None:
        """The file's size in bytes, or its number of rows (Parquet)."""
        ...

    def rows(self) -> Iterator[Row]: ...

    def position(self) -> int:
        """How far reading has come, in the unit of ``total`` (bytes or rows)."""
        ...
