"""Export a project's records with their labels and provenance: JSONL, CSV, Parquet, Label Studio.

Rows stream in record id order: records are read with ``yield_per`` and each partition's
annotations with one range query, so memory holds one partition whatever the project's size.

One row per record, the same columns in JSONL, CSV and Parquet:

``id``
    The record id.
``<fields>``
    The payload: ``text`` for text projects, the project's fields for tabular ones.
``label``
    The final label: the majority of the record's *active* annotations (every origin counts one
    vote); a tie goes to the label answered first. A reviewer's decision overrides the vote
    (``None`` for a record marked ambiguous). ``None`` when nobody has answered.
``row_count``
    How many imported rows the record stands for (identical inputs are one record under
    ``dedupe=content``); each annotation carries its own ``row_count`` too (an imported label's
    rows; 1 for people).
``<meta keys>``
    Each ``Record.meta`` key as a column of its own, so ``looplab import --meta`` reads them back.
``annotations``
    Every annotation of the record (any status), oldest first: ``label``, ``annotator`` (user name,
    ``None`` for imported labels), ``origin``, ``status``, ``seconds``, ``created_at``. A JSON
    string in CSV, a list of structs in Parquet.
``batch_id``, ``source_line``
    Provenance: the import batch and the line (row, for Parquet) the record came from.

A payload field or meta key that collides with one of these names is written as ``data.<name>``
or ``meta.<name>``. CSV and Parquet need every column up front, so they read the meta keys (and,
for Parquet, the value types) in a first pass.

``label-studio`` writes Label Studio's JSON task list (see :mod:`looplab.collect.labelstudio`),
ready for Label Studio's import:

* ``data`` holds the payload (the text under the data key the project's Label Studio import used,
  else ``text``) and the meta keys.
* ``annotations``: every active answer and every skip (as ``was_cancelled: true``, empty result),
  each with ``completed_by: {"email": ...}`` from its annotator's e-mail (left out, and noted,
  where the annotator has none: Label Studio then credits the importing user), ``ground_truth``
  (false unless it was marked so), ``lead_time`` and ``created_at``. Superseded and quarantined
  answers are not exported.
* ``from_name``/``to_name``: the control and object names of the project's last Label Studio
  import (:class:`LabelStudioNames`), else ``label`` and ``text`` (``data`` for tabular projects);
  both can be overridden.
* ``predictions``: imported ones (their model version and score) and looplab's stored suggestion.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any, cast

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from looplab.collect import labelstudio
from looplab.collect import schema as column_schema
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import (
    Annotation,
    ExternalPrediction,
    ImportBatch,
    Project,
    Record,
    User,
    version_name,
)

FORMATS = ("jsonl", "csv", "parquet", "label-studio")
#: Records per partition: one annotation query each.
CHUNK = 2_000
_RESERVED = ("id", "label", "row_count", "annotations", "batch_id", "source_line")
#: Annotation keys only the Label Studio export writes (JSONL, CSV and Parquet keep their shape).
_LS_ONLY = ("annotator_id", "email", "ground_truth")

#: record_id -> (model_version, label, score), for Label Studio "predictions".
Predictions = Mapping[int, tuple[str, str, float]]


@dataclass
class Item:
    """One exported record."""

    id: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    batch_id: int | None
    source_line: int | None
    annotations: list[dict[str, Any]]
    label: str | None
    row_count: int = 1


def export(
    session: Session,
    project: Project,
    fmt: str,
    out: IO[bytes] | IO[str] | str | os.PathLike[str],
    *,
    include_unlabeled: bool = True,
    predictions: Predictions | None = None,
    names: LabelStudioNames | None = None,
    notes: list[str] | None = None,
) -> int:
    """Write every record of ``project`` to ``out`` in ``fmt``; return how many were written.

    Parameters
    ----------
    session
        A read session.
    project
        The project to export.
    fmt
        ``"jsonl"``, ``"csv"``, ``"parquet"`` or ``"label-studio"``.
    out
        A path, or an open binary or text stream (``sys.stdout.buffer`` works for every format,
        Parquet included; a text stream works for all but Parquet unless it has a ``.buffer``).
        Streams are written to and flushed, never closed.
    include_unlabeled
        False exports only records with at least one active labelled annotation.
    predictions
        Label Studio only: ``record_id -> (model_version, label, score)``. By default, the
        suggestion the latest scoring job stored on each record (what annotators were shown).
        Predictions imported from Label Studio are exported beside it.
    names
        Label Studio only: control, object and data key names (default: :func:`ls_names`).
    notes
        Label Studio only: where to append what a reader should know (answers exported without
        an annotator, for one).
    """
    if fmt not in FORMATS:
        raise Invalid(
            f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}",
            details={"field": "format"},
        )
    if fmt == "parquet":
        with _binary(out) as stream:
            return _parquet(session, project, stream, include_unlabeled)
    with _text(out) as stream:
        if fmt == "jsonl":
            return _jsonl(session, project, stream, include_unlabeled)
        if fmt == "csv":
            return _csv(session, project, stream, include_unlabeled)
        if predictions is None:
            predictions = stored_predictions(session, project)
        return _label_studio(
            session,
            project,
            stream,
            include_unlabeled,
            predictions,
            names or ls_names(session, project),
            notes if notes is not None else [],
        )


def stream(
    store: Store, project_id: int, fmt: str, *, chunk_bytes: int = 1 << 16
) -> Iterator[bytes]:
    """Yield the export of project ``project_id`` in chunks while a thread writes it.

    For HTTP downloads: memory holds a few chunks whatever the project's size, because the writer
    waits while the reader is behind. If the reader stops early (a client hung up, so the
    generator is closed), the writer stops at its next chunk. Check the format and the project
    first: an error raised here arrives after the first bytes.
    """
    pipe = _Pipe(chunk_bytes)

    def write() -> None:
        try:
            with store.read() as session:
                project = session.get(Project, project_id)
                if project is None:
                    raise Invalid(f"project {project_id} no longer exists")
                export(session, project, fmt, cast(IO[bytes], pipe))
            pipe.finish()
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the reader, which raises it
            pipe.fail(exc)

    thread = threading.Thread(target=write, name="looplab-export", daemon=True)
    thread.start()
    try:
        yield from pipe.chunks()
    finally:
        pipe.cancel()
        if thread is not threading.current_thread():  # closed by garbage collection there
            thread.join()


class _Cancelled(Exception):
    pass


class _Pipe(io.RawIOBase):
    """A binary stream a writer thread fills and a reader drains as ``chunk_bytes`` chunks."""

    _END = object()

    def __init__(self, chunk_bytes: int) -> None:
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=8)
        self._cancelled = threading.Event()
        self._written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self._written += len(view)
        if len(self._buffer) >= self._chunk:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(view)

    def _put(self, item: Any) -> None:
        while True:
            if self._cancelled.is_set():
                raise _Cancelled
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        self._put(self._END)

    def fail(self, exc: BaseException) -> None:
        with suppress(_Cancelled):
            self._put(exc)

    def cancel(self) -> None:
        self._cancelled.set()

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def stored_predictions(session: Session, project: Project) -> Predictions:
    """Each scored record's stored suggestion as ``record_id -> ("vN", label, confidence)``."""
    rows = session.execute(
        select(Record.id, Record.pred_model, Record.pred_label, Record.pred_confidence).where(
            Record.project_id == project.id, Record.pred_label.is_not(None)
        )
    ).tuples()
    return {rid: (version_name(v), str(label), float(conf or 0.0)) for rid, v, label, conf in rows}


# -- reading --------------------------------------------------------------------------------------


def final_label(annotations: list[dict[str, Any]]) -> str | None:
    """Majority of active answers; a tie goes to the label answered first.

    A reviewer's decision (an active answer of origin ``review``) is the label, as it is in
    training; ``None`` when the reviewer marked the record ambiguous.
    """
    reviews = [a for a in annotations if a["status"] == "active" and a.get("origin") == "review"]
    if reviews:
        label: str | None = reviews[-1]["label"]
        return label
    votes = [a["label"] for a in annotations if a["status"] == "active" and a["label"] is not None]
    if not votes:
        return None
    counts = Counter(votes)
    best = max(counts.values())
    return next(label for label in votes if counts[label] == best)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands datetimes back naive (they are stored in UTC), PostgreSQL in the session zone.
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def iter_items(
    session: Session, project: Project, *, include_unlabeled: bool = True, chunk: int = CHUNK
) -> Iterator[Item]:
    """Records of ``project`` in id order, each with its annotations and final label."""
    labelled = exists().where(
        Annotation.record_id == Record.id,
        Annotation.status == "active",
        Annotation.label.is_not(None),
    )
    query = (
        select(
            Record.id,
            Record.payload,
            Record.meta,
            Record.batch_id,
            Record.source_line,
            Record.row_count,
        )
        .where(Record.project_id == project.id)
        .order_by(Record.id)
        .execution_options(yield_per=chunk)
    )
    if not include_unlabeled:
        query = query.where(labelled)
    for part in session.execute(query).partitions():
        first, last = part[0].id, part[-1].id
        grouped: dict[int, list[dict[str, Any]]] = {}
        rows = session.execute(
            select(
                Annotation.record_id,
                Annotation.label,
                User.name,
                Annotation.annotator_id,
                Annotation.origin,
                Annotation.status,
                Annotation.seconds,
                Annotation.created_at,
                User.email,
                Annotation.ground_truth,
                Annotation.row_count,
            )
            .outerjoin(User, User.id == Annotation.annotator_id)
            .where(
                Annotation.project_id == project.id,
                Annotation.record_id >= first,
                Annotation.record_id <= last,
            )
            .order_by(Annotation.record_id, Annotation.id)
        )
        for rid, label, name, uid, origin, status, seconds, created, email, truth, n in rows:
            grouped.setdefault(rid, []).append(
                {
                    "label": label,
                    "annotator": name,
                    "annotator_id": uid,
                    "origin": origin,
                    "status": status,
                    "seconds": seconds,
                    "created_at": _utc(created),
                    "email": email,
                    "ground_truth": bool(truth),
                    "row_count": n,
                }
            )
        for row in part:
            annotations = grouped.get(row.id, [])
            yield Item(
                id=row.id,
                payload=row.payload,
                meta=row.meta or {},
                batch_id=row.batch_id,
                source_line=row.source_line,
                annotations=annotations,
                label=final_label(annotations),
                row_count=row.row_count,
            )


class _Columns:
    """Output column names: payload fields and meta keys, renamed away from reserved names."""

    def __init__(self, project: Project, meta_keys: list[str] | None = None) -> None:
        fields = list(project.fields or ["text"])
        self.fields = {f: (f"data.{f}" if f in _RESERVED else f) for f in fields}
        self._meta: dict[str, str] = {}
        for key in meta_keys or []:
            self.meta_name(key)

    def meta_name(self, key: str) -> str:
        name = self._meta.get(key)
        if name is None:
            clash = key in _RESERVED or key in self.fields.values() or key in self.fields
            name = self._meta[key] = f"meta.{key}" if clash else key
        return name

    @property
    def meta(self) -> dict[str, str]:
        return self._meta

    def header(self) -> list[str]:
        return ["id", *self.fields.values(), "label", *self._meta.values(), *_RESERVED[2:]]

    def row(self, item: Item) -> dict[str, Any]:
        out: dict[str, Any] = {"id": item.id}
        for key, name in self.fields.items():
            out[name] = item.payload.get(key)
        out["label"] = item.label
        out["row_count"] = item.row_count
        for key, value in item.meta.items():
            out[self.meta_name(key)] = value
        out["annotations"] = [
            {k: v for k, v in a.items() if k not in _LS_ONLY} for a in item.annotations
        ]
        out["batch_id"] = item.batch_id
        out["source_line"] = item.source_line
        return out


def _meta_keys(session: Session, project: Project) -> list[str]:
    keys: dict[str, None] = {}
    query = (
        select(Record.meta)
        .where(Record.project_id == project.id)
        .execution_options(yield_per=CHUNK * 5)
    )
    for (meta,) in session.execute(query):
        for key in meta or {}:
            keys.setdefault(key, None)
    return list(keys)


# -- writers --------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _jsonl(session: Session, project: Project, out: IO[str], include_unlabeled: bool) -> int:
    columns = _Columns(project)
    count = 0
    for item in iter_items(session, project, include_unlabeled=include_unlabeled):
        out.write(json.dumps(columns.row(item), ensure_ascii=False, default=_json_default))
        out.write("\n")
        count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return value


def _csv(session: Session, project: Project, out: IO[str], include_unlabeled: bool) -> int:
    columns = _Columns(project, _meta_keys(session, project))
    header = columns.header()
    # The default "\r\n" terminator makes the writer quote fields holding a lone "\r" too.
    writer = csv.writer(out)
    writer.writerow(header)
    count = 0
    for item in iter_items(session, project, include_unlabeled=include_unlabeled):
        row = columns.row(item)
        writer.writerow([_cell(row.get(name)) for name in header])
        count += 1
    return count


@dataclass(frozen=True)
class LabelStudioNames:
    """The names a Label Studio project uses: its Choices control, the object it labels (the
    ``to_name``) and the data key of the text (text projects)."""

    from_name: str = "label"
    to_name: str = "text"
    text_key: str = "text"


def ls_names(
    session: Session,
    project: Project,
    *,
    from_name: str | None = None,
    to_name: str | None = None,
    text_key: str | None = None,
) -> LabelStudioNames:
    """The names of the project's last Label Studio import, each overridable; else the defaults."""
    mapping: dict[str, Any] = {}
    for batch_mapping in session.scalars(
        select(ImportBatch.mapping)
        .where(ImportBatch.project_id == project.id, ImportBatch.format == "label-studio")
        .order_by(ImportBatch.id.desc())
    ):
        if batch_mapping and batch_mapping.get("from_name"):
            mapping = batch_mapping
            break
    tabular = project.task != "text"
    return LabelStudioNames(
        from_name=from_name or mapping.get("from_name") or "label",
        to_name=to_name or mapping.get("to_name") or ("data" if tabular else "text"),
        text_key=text_key or (None if tabular else mapping.get("text")) or "text",
    )


def _external_predictions(
    session: Session, project: Project, first: int, last: int
) -> dict[int, list[tuple[str, str | None, float | None]]]:
    rows = session.execute(
        select(
            ExternalPrediction.record_id,
            ExternalPrediction.model_version,
            ExternalPrediction.label,
            ExternalPrediction.score,
        )
        .where(
            ExternalPrediction.project_id == project.id,
            ExternalPrediction.record_id >= first,
            ExternalPrediction.record_id <= last,
        )
        .order_by(ExternalPrediction.record_id, ExternalPrediction.id)
    ).tuples()
    grouped: dict[int, list[tuple[str, str | None, float | None]]] = {}
    for rid, version, label, score in rows:
        grouped.setdefault(rid, []).append((version, label, score))
    return grouped


def _label_studio(
    session: Session,
    project: Project,
    out: IO[str],
    include_unlabeled: bool,
    predictions: Predictions,
    names: LabelStudioNames,
    notes: list[str],
) -> int:
    def answer(label: str) -> list[dict[str, Any]]:
        return labelstudio.result(label, names.to_name, names.from_name)

    count = 0
    no_email: Counter[str] = Counter()
    external: dict[int, list[tuple[str, str | None, float | None]]] = {}
    fetched_to = 0
    out.write("[")
    for item in iter_items(session, project, include_unlabeled=include_unlabeled):
        if item.id > fetched_to:  # one query per CHUNK record ids
            fetched_to = item.id + CHUNK
            external = _external_predictions(session, project, item.id, fetched_to)
        data = dict(item.payload)
        if project.task == "text" and names.text_key != "text":
            data = {names.text_key: data.pop("text"), **data}
        for key, value in item.meta.items():
            data[f"meta.{key}" if key in data else key] = value
        annotations = []
        for a in item.annotations:
            skipped = a["status"] == "skipped"
            if not skipped and (a["status"] != "active" or a["label"] is None):
                continue
            entry: dict[str, Any] = {
                "result": [] if skipped else answer(a["label"]),
                "was_cancelled": skipped,
                "ground_truth": a["ground_truth"],
            }
            if a["email"]:
                entry["completed_by"] = {"email": a["email"]}
            else:
                no_email[a["annotator"] or "(no annotator)"] += 1
            if a["seconds"] is not None:
                entry["lead_time"] = a["seconds"]
            entry["created_at"] = a["created_at"]
            annotations.append(entry)
        task: dict[str, Any] = {"id": item.id, "data": data, "annotations": annotations}
        task["predictions"] = [
            {"model_version": version, "score": score, "result": answer(label)}
            for version, label, score in external.get(item.id, [])
            if label is not None
        ]
        if item.id in predictions:
            version, label, score = predictions[item.id]
            task["predictions"].append(
                {"model_version": version, "score": score, "result": answer(label)}
            )
        out.write(",\n" if count else "\n")
        out.write(json.dumps(task, ensure_ascii=False, default=_json_default))
        count += 1
    out.write("\n]\n")
    for who, n in sorted(no_email.items()):
        notes.append(
            f"{n:,} answers by {who} have no completed_by (no e-mail known): Label Studio will"
            " credit them to the user who imports the file"
            + ("; set the e-mail with `looplab user email NAME ADDRESS`" if who[0] != "(" else "")
        )
    return count


def _parquet(session: Session, project: Project, out: IO[bytes], include_unlabeled: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds: dict[str, set[str]] = {}
    keys: dict[str, None] = {}
    query = (
        select(Record.payload, Record.meta)
        .where(Record.project_id == project.id)
        .execution_options(yield_per=CHUNK * 5)
    )
    tabular = project.task != "text"
    for payload, meta in session.execute(query):
        for key, value in (meta or {}).items():
            keys.setdefault(key, None)
            kinds.setdefault(f"meta:{key}", set()).add(_kind(value))
        if tabular:
            for key, value in payload.items():
                kinds.setdefault(f"data:{key}", set()).add(_kind(value))
    columns = _Columns(project, list(keys))
    annotation = pa.struct(
        [
            ("label", pa.string()),
            ("annotator", pa.string()),
            ("origin", pa.string()),
            ("status", pa.string()),
            ("seconds", pa.float64()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("row_count", pa.int64()),
        ]
    )
    fields = column_schema.of_project(project) if tabular else None
    types: dict[str, pa.DataType] = {"id": pa.int64()}
    typed = _typed_fields(columns, kinds, fields, types)
    types["label"] = pa.string()
    for key, name in columns.meta.items():
        types[name] = _arrow_type(kinds.get(f"meta:{key}", {"str"}))
    types["row_count"] = pa.int64()
    types["annotations"] = pa.list_(annotation)
    types["batch_id"] = pa.int64()
    types["source_line"] = pa.int64()
    schema = pa.schema(list(types.items()))
    stringify = [n for n, t in types.items() if t == pa.string() and n not in ("label",)]

    count = 0
    buffer: list[dict[str, Any]] = []
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        na = fields.na if fields is not None else frozenset()

        def write() -> None:
            table = {name: [row.get(name) for row in buffer] for name in types}
            for name, ftype in typed.items():
                read = [column_schema.coerce(v, ftype, na, strict=False) for v in table[name]]
                if ftype.type == "boolean":
                    read = [None if v is None else v == 1.0 for v in read]
                table[name] = read
            for name in stringify:
                table[name] = [_as_text(v) for v in table[name]]
            writer.write_batch(pa.RecordBatch.from_pydict(table, schema=schema))
            buffer.clear()

        for item in iter_items(session, project, include_unlabeled=include_unlabeled):
            buffer.append(columns.row(item))
            count += 1
            if len(buffer) >= CHUNK * 5:
                write()
        if buffer or count == 0:
            write()
    return count


def _typed_fields(
    columns: _Columns,
    kinds: dict[str, set[str]],
    fields: column_schema.Schema | None,
    types: dict[str, Any],
) -> dict[str, column_schema.FieldType]:
    """Add the data columns' Arrow types to ``types``; the fields whose values are coerced.

    Tabular fields are typed by the project's column types, as the model reads them: a numeric
    column with "NA" cells is float64 with nulls, a zip code mixing 97095 and "00523" is text.
    Dates and identifiers keep their stored text; without column types, the values decide.
    """
    import pyarrow as pa

    arrow = {"numeric": pa.float64(), "boolean": pa.bool_(), "categorical": pa.string()}
    typed: dict[str, column_schema.FieldType] = {}
    for key, name in columns.fields.items():
        ftype = fields.fields.get(key) if fields is not None else None
        stored = kinds.get(f"data:{key}", {"str"})
        if ftype is not None and ftype.type == "numeric" and stored <= {"int", "float", "none"}:
            ftype = None  # numbers already: int64 stays int64
        if ftype is not None and ftype.type in arrow:
            types[name] = arrow[ftype.type]
            typed[name] = ftype
        else:
            types[name] = _arrow_type(stored)
    return typed


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "other"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "other"


def _arrow_type(kinds: set[str]) -> Any:
    import pyarrow as pa

    kinds = kinds - {"none"}
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()  # strings, and mixed or nested values as JSON text


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


# -- streams --------------------------------------------------------------------------------------


def _is_text(out: Any) -> bool:
    return isinstance(out, io.TextIOBase) or (
        not isinstance(out, io.BufferedIOBase | io.RawIOBase) and hasattr(out, "encoding")
    )


@contextmanager
def _text(out: Any) -> Iterator[IO[str]]:
    if isinstance(out, str | os.PathLike):
        with open(out, "w", encoding="utf-8", newline="") as handle:
            yield handle
    elif _is_text(out):
        yield out
        out.flush()
    else:
        wrapper = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            yield wrapper
            wrapper.flush()
        finally:
            wrapper.detach()  # leave the caller's stream open


@contextmanager
def _binary(out: Any) -> Iterator[IO[bytes]]:
    if isinstance(out, str | os.PathLike):
        with open(out, "wb") as handle:
            yield handle
    elif _is_text(out):
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise Invalid(
                "Parquet is binary: pass a binary stream or a path",
                details={"field": "out"},
            )
        out.flush()
        yield buffer
        buffer.flush()
    else:
        yield out
        out.flush()
