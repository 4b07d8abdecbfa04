"""Read source files as rows: CSV, JSONL, Parquet and Label Studio JSON, each streamed.

A reader turns one file into :data:`Row` tuples ``(line, inputs, labels, meta)`` and knows
nothing of the store; :mod:`looplab.collect.ingest` normalises, hashes and writes them.

* **Format and mapping.** :func:`resolve_spec` picks the format (from the extension, or the one
  named), checks the encoding and the column mapping against the project, and returns a
  :class:`Spec`: which columns feed the record, validated once and trusted by the readers.
  :func:`open_source` makes the reader of a format. Each checks that the mapped columns exist:
  CSV and Parquet in the header or schema when opened, JSONL in its first object, Label Studio in
  every task.
* **Streaming.** Rows are read one at a time: ``csv`` over decoded lines, JSONL line by line,
  Parquet with ``iter_batches``, Label Studio through
  :class:`looplab.collect.labelstudio.TaskSource`.
  Reading lines ourselves (:class:`Lines`), rather than through a text-mode file, gives exact
  physical line numbers for provenance and errors, including the line of a bad byte.
* **Values as found.** Readers pass values on as the file holds them (CSV cells stay strings);
  :mod:`looplab.collect.ingest` decides what is stored
  (:func:`looplab.collect.ingest.normalise_value`).

* **What is refused.** Besides broken rows: a JSON object naming a key twice (at any depth,
  :mod:`looplab.collect.strictjson`), a column named twice in the mapping or in a CSV header, and a
  value longer than the field limit (:data:`MAX_FIELD_CHARS` characters unless the caller passes
  another; ``LOOPLAB_MAX_FIELD_CHARS`` or ``--max-field-chars`` on the command line). The
  limit applies to every column the import keeps (inputs, label, meta); CSV applies it to every
  cell, as its parser must.

Errors are :class:`~looplab.core.errors.Invalid` with ``details={"file", "line", "field"}`` and a
message that names all three and says how to fix it (a decoding error names the column of the bad
byte when it can).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from looplab.collect import labelstudio, lsflat, lstasks
from looplab.collect.rows import MAX_FIELD_CHARS, Row, Source, Spec
from looplab.collect.strictjson import DECODER, DuplicateKey
from looplab.core.errors import Invalid, did_you_mean

if TYPE_CHECKING:
    from looplab.core.tables import Project

FORMATS = ("csv", "jsonl", "parquet", "label-studio")
EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "label-studio",
}


def resolve_spec(
    project: Project,
    path: Path,
    fmt: str | None,
    text: str | None,
    fields: list[str] | None,
    label: str | None,
    meta: list[str] | None,
    encoding: str,
    max_field: int = MAX_FIELD_CHARS,
) -> tuple[str, Spec, bool]:
    """Check the format and mapping against the project; returns (format, spec, sets_fields)."""
    file = str(path)

    def fail(field: str | None, problem: str, **extra: Any) -> Invalid:
        at = f"{file}: " + (f"field {field!r}: " if field else "")
        return Invalid(at + problem, details={"file": file, "line": None, "field": field, **extra})

    if fmt is None:
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise fail(
                None,
                f"cannot tell the format from the extension {path.suffix or '(none)'!r}; use one"
                f" of {', '.join(EXTENSIONS)} or pass --format ({', '.join(FORMATS)})",
            )
    elif fmt not in FORMATS:
        raise fail("format", f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise fail(
            "encoding", f"unknown encoding {encoding!r}; try utf-8, latin-1 or cp1252"
        ) from None
    sets_fields = False
    if project.task == "text":
        if fields:
            raise fail(
                "fields",
                f"project {project.name!r} is a text project: name the text column with --text,"
                " not --fields",
            )
        inputs, keys = [text or "text"], ["text"]
    else:
        if text:
            raise fail(
                "text",
                f"project {project.name!r} is tabular: name its input columns with --fields,"
                " not --text",
            )
        known = list(project.fields or [])
        if not fields and not known:
            raise fail(
                "fields",
                f"project {project.name!r} has no input fields yet: name them with --fields",
            )
        if fields and len(set(fields)) != len(fields):
            raise fail("fields", "--fields names a column twice")
        if fields and known and sorted(fields) != sorted(known):
            raise fail(
                "fields",
                f"project {project.name!r} takes the fields {', '.join(known)}; this import names"
                f" {', '.join(fields)}. Every import must name the same fields",
                expected=known,
            )
        sets_fields = not known
        inputs = list(known or fields or [])
        keys = inputs
    if label is not None and label in inputs:
        raise fail(label, "the label column is also an input column; pick another --label")
    twice = [c for i, c in enumerate(meta or []) if c in (meta or [])[:i]]
    if twice:
        raise fail("meta", f"--meta names the column {twice[0]!r} twice")
    if isinstance(max_field, bool) or not isinstance(max_field, int) or max_field < 1:
        raise fail(
            "max_field_chars", f"the field limit must be a positive integer, not {max_field!r}"
        )
    spec = Spec(file, project.task, inputs, keys, label or None, meta, encoding, fmt, max_field)
    return fmt, spec, sets_fields


def open_source(
    fmt: str,
    path: Path,
    handle: BinaryIO,
    spec: Spec,
    size: int,
    *,
    batch_rows: int,
    from_name: str | None = None,
    labels: list[str] | None = None,
) -> Source:
    """The reader of ``fmt`` over ``handle`` (Parquet reads ``path``, ``batch_rows`` at a time).

    A CSV whose header is a Label Studio CSV export's is read as one (its answers grouped by
    task); ``from_name`` names the Label Studio control, ``labels`` are the project's (to find
    the label column of a JSON_MIN or CSV export).
    """
    if fmt == "csv":
        if _is_label_studio_csv(handle, spec):
            return LabelStudioCsvSource(handle, spec, size, from_name=from_name, labels=labels)
        return CsvSource(handle, spec, size)
    if fmt == "jsonl":
        return JsonlSource(handle, spec, size)
    if fmt == "parquet":
        return ParquetSource(path, spec, batch_rows)
    return labelstudio.TaskSource(handle, spec, size, from_name=from_name, labels=labels)


def _is_label_studio_csv(handle: BinaryIO, spec: Spec) -> bool:
    """Peek at the header: Label Studio's CSV export has its own columns (``annotation_id``...)."""
    start = handle.tell()
    first = handle.readline(1 << 16)
    handle.seek(start)
    try:
        text = first.decode(spec.encoding).removeprefix("\ufeff")
        header = next(csv.reader([text]), [])
    except (UnicodeDecodeError, csv.Error):
        return False  # CsvSource reports it properly
    return lsflat.is_flat_header([name.strip() for name in header])


class LabelStudioCsvSource:
    """Label Studio's CSV export: one row per answer, grouped back into tasks with their answers.

    Its answers go to :attr:`tasks` as with :class:`looplab.collect.labelstudio.TaskSource`.
    """

    format = "csv"

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
        self.lines = Lines(handle, spec)
        csv.field_size_limit(spec.max_field)
        self.reader = csv.reader(self.lines, strict=True)
        self.controls = lstasks.Controls(chosen=from_name, explicit=from_name is not None)
        self.labels = labels or []
        self.tasks: list[lstasks.Task] = []
        self.hasher: lstasks.Hasher | None = None

    def position(self) -> int:
        return self.lines.position()

    def _dicts(self) -> Iterator[tuple[int, dict[str, Any]]]:
        reader, spec = self.reader, self.spec
        try:
            header = [name.strip() for name in next(reader)]
            missing_columns(spec, header, 1, inputs_only=True)
            prev = reader.line_num
            for row in reader:
                line, prev = prev + 1, reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise spec.invalid(
                        line,
                        None,
                        f"expected {len(header)} fields as in the header, found {len(row)}",
                    )
                yield line, dict(zip(header, row, strict=True))
        except csv.Error as exc:
            raise _csv_error(spec, exc, reader.line_num) from None

    def rows(self) -> Iterator[Row]:
        yield from lsflat.read_flat_csv(
            self._dicts(), self.spec, self.controls, self.labels, self.tasks, self.hasher
        )


class Lines:
    """Decoded physical lines of a text file, with exact line numbers and bytes read.

    ASCII-compatible encodings are split on ``b"\\n"`` and decoded line by line, so a bad byte is
    reported on its own line; UTF-16/32 go through a text wrapper (their lines are approximate).
    """

    def __init__(self, handle: BinaryIO, spec: Spec) -> None:
        self.handle = handle
        self.spec = spec
        self.line = 0
        self.done = 0
        info = codecs.lookup(spec.encoding)  # checked in resolve_spec
        self.encoding = info.name
        self.ascii_compatible = "a\n".encode(info.name) == b"a\n"

    def __iter__(self) -> Iterator[str]:
        if not self.ascii_compatible:
            yield from self._wrapped()
            return
        encoding = self.encoding
        handle = self.handle
        first = handle.readline()
        if not first:
            return
        self.line = 1
        try:
            text = first.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from None
        yield text.removeprefix("\ufeff") if encoding == "utf-8" else text
        line = 1
        try:  # the hot loop: locals only; one try around it costs nothing per line
            for raw in handle:
                line += 1
                yield raw.decode(encoding)
        except UnicodeDecodeError as exc:
            self.line = line
            raise self._decode_error(exc) from None
        self.line = line

    def position(self) -> int:
        """Bytes read so far."""
        return self.handle.tell() if self.ascii_compatible else self.done

    def _wrapped(self) -> Iterator[str]:
        wrapper = io.TextIOWrapper(self.handle, encoding=self.encoding, newline="")  # type: ignore[arg-type]
        try:
            for text in wrapper:
                self.line += 1
                self.done = self.handle.tell()
                yield text.removeprefix("\ufeff") if self.line == 1 else text
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc, approximate=True) from None
        finally:
            wrapper.detach()

    def _decode_error(self, exc: UnicodeDecodeError, *, approximate: bool = False) -> Invalid:
        line = self.line + (1 if approximate else 0)
        bad = exc.object[exc.start : exc.start + 1].hex()
        self.problem = (
            f"not valid {self.spec.encoding} (byte 0x{bad} at byte {exc.start + 1} of the line"
            + (", counted from the last good line" if approximate else "")
            + "); if the file uses another encoding, pass it with --encoding "
            "(for example --encoding latin-1 or --encoding cp1252)"
        )
        self.bad_line = None if approximate else bytes(exc.object)
        return self.spec.invalid(line, None, self.problem)

    def bad_text(self) -> str | None:
        """The line that failed to decode, with the bad bytes replaced (to find its field)."""
        bad = getattr(self, "bad_line", None)
        return None if bad is None else bad.decode(self.encoding, "replace")


def missing_columns(
    spec: Spec,
    found: list[str],
    line: int | None,
    what: str = "column",
    *,
    inputs_only: bool = False,
) -> None:
    """Raise if a mapped column is absent, listing what the file has."""
    wanted = list(spec.inputs)
    if not inputs_only:
        wanted += [*([spec.label] if spec.label else []), *(spec.meta or [])]
    missing = [c for c in dict.fromkeys(wanted) if c not in found]
    if missing:
        shown = ", ".join(repr(c) for c in found[:50]) + (" ..." if len(found) > 50 else "")
        raise Invalid(
            f"{spec.file}: "
            + (f"line {line}: " if line is not None else "")
            + f"{what} {', '.join(repr(c) for c in missing)} not found"
            + did_you_mean(missing[0], found)
            + f"; the file has: {shown or '(nothing)'}. Map columns with --text/--fields/--label/"
            "--meta",
            details={**spec.where(line, missing[0]), "columns": found},
        )


class CsvSource:
    format = "csv"

    def __init__(self, handle: BinaryIO, spec: Spec, size: int) -> None:
        self.spec = spec
        self.total = size
        self.lines = Lines(handle, spec)
        # The limit is process-wide and read as each cell is parsed: column names are held to
        # the csv module's default (128 Ki characters), values to the import's own limit.
        csv.field_size_limit(max(spec.max_field, 131_072))
        self.reader = csv.reader(self.lines, strict=True)
        try:
            header = next(self.reader)
        except StopIteration:
            raise spec.invalid(1, None, "the file is empty: no header line") from None
        except csv.Error as exc:
            if _LIMIT in str(exc):
                raise self._too_long(1) from None
            raise _csv_error(spec, exc, 1) from None
        csv.field_size_limit(spec.max_field)
        self.header = [name.strip() for name in header]
        missing_columns(spec, self.header, 1)
        kept = [*spec.inputs, *([spec.label] if spec.label else []), *(spec.meta or [])]
        for column in dict.fromkeys(kept):
            if self.header.count(column) > 1:
                raise spec.invalid(1, column, "the header names this column twice")

    def position(self) -> int:
        return self.lines.position()

    def rows(self) -> Iterator[Row]:
        spec, header, reader = self.spec, self.header, self.reader
        width = len(header)
        inputs = [header.index(c) for c in spec.inputs]
        label = header.index(spec.label) if spec.label else None
        meta = [(c, header.index(c)) for c in spec.meta or []]
        single = inputs[0] if len(inputs) == 1 else None
        csv.field_size_limit(spec.max_field)  # again: another import may have set its own
        prev = reader.line_num
        try:
            for row in reader:
                line = prev + 1
                prev = reader.line_num
                if len(row) != width:
                    if not row:  # a blank line
                        continue
                    field = header[len(row)] if len(row) < width else None
                    raise spec.invalid(
                        line,
                        field,
                        f"expected {width} fields as in the header, found {len(row)}"
                        " (a stray comma, or a quote that is not closed?)",
                    )
                values = [row[single]] if single is not None else [row[i] for i in inputs]
                labels: list[tuple[Any, float | None]] | None = None
                if label is not None and row[label]:
                    labels = [(row[label], None)]
                yield (
                    line,
                    values,
                    labels,
                    {name: row[i] for name, i in meta} if meta else None,
                )
        except Invalid as error:
            raise self._with_field(error) from None
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise spec.invalid(
                    prev + 1, None, "a quoted field that starts on this line is never closed"
                ) from None
            if _LIMIT in str(exc):
                raise self._too_long(prev + 1) from None
            raise _csv_error(spec, exc, reader.line_num) from None

    def _too_long(self, line: int) -> Invalid:
        """Name the cell over the limit: read the file again, without it, up to that row.

        The csv module stops at an oversized cell without saying which one; the error path can
        afford a second pass, the hot loop cannot afford a length check per cell.
        """
        spec, handle = self.spec, self.lines.handle
        previous = csv.field_size_limit(2**31 - 1)
        try:
            handle.seek(0)
            reader = csv.reader(Lines(handle, spec), strict=True)
            header: list[str] | None = None
            last = 0
            for row in reader:
                start, last = last + 1, reader.line_num
                names = header or [f"column {i + 1}" for i in range(len(row))]
                if start == line:
                    for name, cell in zip(names, row, strict=False):
                        if len(cell) > spec.max_field:
                            return spec.too_long(line, name.strip(), len(cell))
                    break
                header = header or row
        except (csv.Error, Invalid, OSError):
            pass
        finally:
            csv.field_size_limit(previous)
        return spec.invalid(
            line,
            None,
            f"a value is longer than the limit of {spec.max_field:,} characters; raise it with"
            " --max-field-chars (or LOOPLAB_MAX_FIELD_CHARS) if that is meant",
        )

    def _with_field(self, error: Invalid) -> Invalid:
        """Name the column of a decoding error when the bad line is one whole row."""
        text = self.lines.bad_text()
        if text is None or error.details.get("field") is not None:
            return error
        try:
            cells = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            return error
        for name, cell in zip(self.header, cells, strict=False):
            if "\ufffd" in cell:
                return self.spec.invalid(error.details["line"], name, self.lines.problem)
        return error


_LIMIT = "field larger than field limit"


def _csv_error(spec: Spec, exc: csv.Error, line: int) -> Invalid:
    if "new-line character" in str(exc):
        return spec.invalid(
            line,
            None,
            "a carriage return (\\r) outside quotes: the file seems to use old Mac line endings;"
            " convert them to \\n or \\r\\n",
        )
    return spec.invalid(line, None, f"not valid CSV ({exc})")


class JsonlSource:
    format = "jsonl"

    def __init__(self, handle: BinaryIO, spec: Spec, size: int) -> None:
        self.spec = spec
        self.total = size
        self.lines = Lines(handle, spec)
        self.optional = [c for c in [spec.label, *(spec.meta or [])] if c]
        self.seen: set[str] = set()

    def position(self) -> int:
        return self.lines.position()

    def _object(self, text: str, line: int) -> dict[str, Any]:
        try:
            obj = DECODER.decode(text)
        except DuplicateKey as exc:
            raise self.spec.invalid(
                line,
                exc.key,
                "the object names this key twice (JSON parsers would keep only the last value);"
                " remove one",
            ) from None
        except json.JSONDecodeError as exc:
            raise self.spec.invalid(
                line, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; nesting too deep
            raise self.spec.invalid(line, None, f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise self.spec.invalid(
                line, None, f"each line must be a JSON object, found {type(obj).__name__}"
            )
        return obj

    def rows(self) -> Iterator[Row]:
        spec, lines = self.spec, self.lines
        inputs, label, meta = spec.inputs, spec.label, spec.meta or []
        try:
            yield from self._rows(spec, lines, inputs, label, meta)
        except Invalid as error:
            # A decoding error: name the key whose value holds the bad bytes, when we can.
            text = lines.bad_text()
            if text is None or error.details.get("field") is not None:
                raise
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError):
                raise error from None
            if not isinstance(obj, dict):
                raise
            keys = [k for k, v in obj.items() if "\ufffd" in json.dumps(v, ensure_ascii=False)]
            if not keys:
                raise
            raise spec.invalid(error.details["line"], keys[0], lines.problem) from None

    def _rows(
        self, spec: Spec, lines: Lines, inputs: list[str], label: str | None, meta: list[str]
    ) -> Iterator[Row]:
        first = True
        limit = spec.max_field
        kept = [*inputs, *([label] if label else []), *meta]
        for line, text in enumerate(lines, 1):
            if not text.strip():
                continue
            obj = self._object(text, line)
            if len(text) > limit:  # only a long line can hold a long value
                spec.check_sizes(line, ((c, obj.get(c)) for c in kept))
            if first:
                missing_columns(spec, list(obj), line, what="key", inputs_only=True)
                first = False
            try:
                values = [obj[c] for c in inputs]
            except KeyError as exc:
                key = exc.args[0]
                raise spec.invalid(
                    line, key, f"the object has no key {key!r}{did_you_mean(key, obj)}"
                ) from None
            labels: list[tuple[Any, float | None]] | None = None
            if label is not None and label in obj:
                self.seen.add(label)
                if obj[label] is not None:  # null means unlabeled; "" is refused as a label
                    labels = [(obj[label], None)]
            row_meta: dict[str, Any] | None = None
            if meta:
                row_meta = {}
                for c in meta:
                    if c in obj:
                        self.seen.add(c)
                    row_meta[c] = obj.get(c)
            yield line, values, labels, row_meta
        if first:
            raise spec.invalid(None, None, "the file has no records (no JSON objects)")
        never = [c for c in self.optional if c not in self.seen]
        if never:
            raise spec.invalid(
                None, never[0], "no object in the file has this key; check --label/--meta"
            )


class ParquetSource:
    format = "parquet"

    def __init__(self, path: Path, spec: Spec, batch_rows: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.spec = spec
        self.batch_rows = batch_rows
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise spec.invalid(None, None, f"not a readable Parquet file ({exc})") from None
        schema = self.file.schema_arrow
        missing_columns(spec, list(schema.names), None)
        if spec.task == "text":
            kind = schema.field(spec.inputs[0]).type
            if pa.types.is_dictionary(kind):  # pandas categoricals
                kind = kind.value_type
            if not (
                pa.types.is_string(kind)
                or pa.types.is_large_string(kind)
                or getattr(pa.types, "is_string_view", lambda _: False)(kind)
            ):
                raise spec.invalid(
                    None, spec.inputs[0], f"a text column must hold strings, this one is {kind}"
                )
        self.total = self.file.metadata.num_rows
        if not self.total:
            raise spec.invalid(None, None, "the file has no rows")
        self.columns = list(
            dict.fromkeys([*spec.inputs, *([spec.label] if spec.label else []), *(spec.meta or [])])
        )
        self.strings = [c for c in self.columns if _is_string(schema.field(c).type)]
        self.number = 0

    def position(self) -> int:
        return self.number

    def rows(self) -> Iterator[Row]:
        import pyarrow as pa

        spec = self.spec
        number = 0
        try:
            batches = self.file.iter_batches(batch_size=self.batch_rows, columns=self.columns)
            for batch in batches:
                self._check_sizes(batch, number)
                data = {c: batch.column(c).to_pylist() for c in self.columns}
                inputs = [data[c] for c in spec.inputs]
                labels = data[spec.label] if spec.label else None
                meta = [(c, data[c]) for c in spec.meta or []]
                for i in range(batch.num_rows):
                    number += 1
                    self.number = number
                    label = labels[i] if labels is not None else None
                    yield (
                        number,
                        [column[i] for column in inputs],
                        [(label, None)] if label is not None else None,
                        {c: values[i] for c, values in meta} if meta else None,
                    )
        except pa.ArrowException as exc:
            raise spec.invalid(number + 1, None, f"cannot read this row group ({exc})") from None

    def _check_sizes(self, batch: Any, before: int) -> None:
        """Refuse a string over the limit in a kept column, naming its row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        limit = self.spec.max_field
        for name in self.strings:
            column = batch.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            lengths = pc.utf8_length(column)
            longest = pc.max(lengths).as_py()
            if longest is not None and longest > limit:
                index = pc.index(pc.greater(lengths, limit), True).as_py()
                raise self.spec.too_long(before + index + 1, name, int(lengths[index].as_py()))


def _is_string(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or getattr(pa.types, "is_string_view", lambda _: False)(kind)
    )
