"""Import a file's rows into the store as records: normalised, hashed, deduped, all or nothing.

:mod:`looplab.collect.readers` reads the file (CSV, JSONL, Parquet, Label Studio JSON) as rows;
this module normalises and hashes each row, writes the records and their imported labels, and keeps
the provenance (the import batch, each record's line, the audit event). How an import runs, and why:

* **One transaction.** Everything (the batch row, records, imported labels, the audit event) is
  written in the caller's session; any error raises and the caller's ``with store.write()`` rolls
  all of it back. A bad row on line 900,000 leaves the store exactly as it was.
* **Streaming.** The reader yields rows one at a time (Parquet reads :data:`BATCH_ROWS` at a
  time) and they are written in batches of :data:`BATCH_ROWS`, so memory does not grow with the
  file.
* **Dedupe through the index, counts kept.** Each record's ``content_hash`` is 16 bytes of
  BLAKE2b over the canonical JSON (sorted keys, no spaces, UTF-8) of its *normalised* input
  fields; meta and label are not part of it. The project setting ``dedupe`` says what makes two
  rows one record (:data:`DEDUPE`): ``content`` (the default) hashes the inputs, ``none`` adds
  the batch and line so every row is a record of its own, and ``import --id COLUMN`` hashes that
  column's value instead (same id, same record; different ids stay apart even with identical
  inputs). Rows go in with ``INSERT ... ON CONFLICT DO UPDATE`` against the unique
  ``(project_id, content_hash)`` index, which adds the row to the record's ``row_count``; no set
  of hashes is held in memory (only 8 bytes per row, to count the distinct inputs). Each imported
  label is one annotation per (record, batch, label) whose ``row_count`` says how many rows gave
  it: a repeated input keeps how often each label was seen, so training learns P(y|x) from it
  (:mod:`looplab.learn.dataset`), where one vote per distinct label taught the wrong rates.
* **Raw DBAPI writes** with precomputed JSON text: ``executemany`` on SQLite, ``COPY`` into a
  temporary table on PostgreSQL. SQLAlchemy's per-row JSON processing costs more than the rest of
  the import together; one statement per batch does not.

Normalisation (for the hash; see :func:`normalise_text` and :func:`normalise_value`):

* text: Unicode NFKC, every run of whitespace collapsed to one space, stripped. The record keeps
  the text exactly as given; only duplicates are found on the normalised form.
* tabular values: strings are stripped and an empty string is missing (``None``); in CSV (where
  every cell is a string) a cell that looks like a number becomes one: ``-12`` -> int, ``3.5``,
  ``1e3`` -> float, but ``007``, ``1_000``, ``nan``, ``inf`` and anything over 30 characters stay
  strings (identifiers and zip codes keep their zeros). NaN is missing; infinities are refused.
  The record stores these normalised values; for the hash only, whole floats count as ints
  (``42.0`` equals ``42``).

Errors are :class:`~looplab.core.errors.Invalid` with ``details={"file", "line", "field"}`` and a
message that names all three and says how to fix it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import operator
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import DateTime, select
from sqlalchemy.orm import Session

from looplab.collect import lsimport
from looplab.collect import schema as types
from looplab.collect.readers import open_source, resolve_spec
from looplab.collect.rows import MAX_FIELD_CHARS, Source, Spec
from looplab.core import audit
from looplab.core.errors import Invalid
from looplab.core.projects import setting
from looplab.core.tables import ImportBatch, Project, Record, utcnow

#: Rows per ``executemany``: large enough to amortise the round trip, small enough to stay flat.
BATCH_ROWS = 20_000

Progress = Callable[[int, int | None], None]

_NUMBER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|[+-]?\.[0-9]+")
_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_EMPTY_META = "{}"
_BY_HASH = operator.itemgetter(2)
#: Longer numeric-looking cells stay strings: they are identifiers, not quantities.
_NUMBER_CHARS = 30
#: Values of the project setting ``dedupe``: what makes two rows one record.
DEDUPE = ("content", "none")


@dataclass(frozen=True)
class ImportReport:
    """What one import did. ``rows`` = ``imported`` + ``duplicates``.

    ``distinct`` counts the distinct records the file's rows went to (new or earlier ones),
    ``conflicting`` those of them whose rows in this file carry more than one label, ``labels``
    the labeled rows; ``dedupe`` is what made rows one record (``content``, ``none`` or ``id``).
    """

    batch_id: int
    rows: int
    imported: int
    duplicates: int
    labels: int
    seconds: float
    distinct: int = 0
    conflicting: int = 0
    dedupe: str = "content"
    #: Label Studio files: answers, annotators, predictions, merged tasks (:mod:`.lsimport`).
    labelstudio: dict[str, Any] | None = None
    #: Each field's type after this import (:meth:`looplab.collect.schema.Schema.to_dict`).
    schema: dict[str, Any] | None = None
    #: What to know before training: fields left out, values read as missing.
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}

    def summary(self) -> str:
        """One line for people: "77,911 rows, 1,728 distinct inputs, counts kept; ..."."""
        if self.dedupe == "none":
            text = f"{self.rows:,} rows, each its own record (dedupe=none)"
        else:
            unit = "ids" if self.dedupe == "id" else "inputs"
            text = f"{self.rows:,} rows, {self.distinct:,} distinct {unit}"
            text += ", counts kept" if self.distinct < self.rows else ""
        text += f"; {self.imported:,} new records, {self.labels:,} labeled rows"
        if self.conflicting:
            what = "record" if self.dedupe == "none" else "input"
            many = self.conflicting > 1
            text += f"; {self.conflicting:,} {what}{'s' * many} carr{'y' if many else 'ies'}"
            text += " conflicting labels"
        return text


# -- normalisation --------------------------------------------------------------------------------


#: Invisible characters a text is hashed without: zero-width space, word joiner, byte order mark
#: (also a zero-width no-break space), Mongolian vowel separator, soft hyphen. A copy with a BOM
#: or a stray zero-width space is the same text. Zero-width (non-)joiners carry meaning (Persian,
#: emoji sequences) and stay, but a text of nothing else is still blank (:func:`check_text`).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u180e\u00ad"))
_JOINERS = dict.fromkeys(map(ord, "\u200c\u200d"))


def normalise_text(text: str) -> str:
    """NFKC, invisible characters dropped, whitespace runs collapsed to one space, stripped: the
    form duplicates are found on."""
    norm = unicodedata.normalize("NFKC", text)
    if not norm.isascii():  # O(1) in CPython: the common ASCII text pays nothing
        norm = norm.translate(_INVISIBLE)
    return " ".join(norm.split())


def check_text(value: Any) -> str:
    """The one check of a text, for import, predict and feedback alike: its normalised form.

    Raises :class:`Invalid` (without a place: callers add the line or the field) for ``None``,
    a non-string, and a text that is empty once whitespace and invisible characters are removed
    (``""``, ``"   "``, ``"\u200b"``).
    """
    if not isinstance(value, str):
        found = "null" if value is None else type(value).__name__
        raise Invalid(f"the text must be a string, found {found}")
    norm = normalise_text(value)
    if not norm or not norm.translate(_JOINERS).strip():
        raise Invalid(
            "the text is empty (nothing but whitespace or invisible characters); "
            "a record needs some text"
        )
    return norm


def normalise_value(value: Any, *, from_text: bool = False) -> Any:
    """A tabular value as stored: see the module docstring for the rule.

    ``from_text`` marks untyped sources (CSV), where numeric-looking strings become numbers.
    Raises ``ValueError`` for values JSON cannot hold (infinities, bytes, other objects).
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if from_text and len(value) <= _NUMBER_CHARS and _NUMBER.fullmatch(value):
            if _INTEGER.fullmatch(value):
                return int(value)
            number = float(value)
            return number if math.isfinite(number) else value
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError("infinite numbers cannot be stored")
        return value
    if isinstance(value, Decimal):
        return normalise_value(int(value) if value == value.to_integral_value() else float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): normalise_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise_value(v) for v in value]
    raise ValueError(f"values of type {type(value).__name__} cannot be stored")


def _hash_form(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _hash_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hash_form(v) for v in value]
    return value


def normalise_payload(project: Project, payload: dict[str, Any]) -> dict[str, Any]:
    """A payload from outside an import (a served prediction, say) in the form imports store."""
    if project.task == "text":
        text = payload.get("text")
        try:
            check_text(text)
        except Invalid as exc:
            raise Invalid(exc.message, details={"field": "text"}) from None
        return {"text": text}
    return {k: normalise_value(payload.get(k)) for k in project.fields or []}


def content_hash(project: Project, payload: dict[str, Any]) -> bytes:
    """The dedupe key of a payload, byte for byte the one an import of the same content computes."""
    if project.task == "text":
        canonical = '{"text":' + encode_basestring(normalise_text(payload["text"])) + "}"
    else:
        canonical = _canonical(normalise_payload(project, payload))
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


def record_of_input(
    session: Session, project: Project, raw: dict[str, Any], *, meta: dict[str, Any], score: float
) -> tuple[Record, bool]:
    """The record holding a served input (feedback, audit samples): the one with the same
    content, as an import would find it, or a new one with ``meta`` and ``score``.

    Returns ``(record, created)``; raises :class:`Invalid` for an input no record can hold.
    """
    payload = normalise_payload(project, dict(raw))
    digest = content_hash(project, payload)
    record = session.scalar(
        select(Record).where(Record.project_id == project.id, Record.content_hash == digest)
    )
    if record is not None:
        return record, False
    record = Record(
        project_id=project.id, content_hash=digest, payload=payload, meta=meta, score=score
    )
    session.add(record)
    session.flush()
    return record, True


def _canonical(fields: dict[str, Any]) -> str:
    """What a tabular record is hashed on: sorted keys, no spaces, whole floats as ints."""
    return json.dumps(_hash_form(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """Meta values: anything JSON can hold; NaN and infinities become None (meta is not data)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


# -- writing --------------------------------------------------------------------------------------


class _Writer:
    """Batched writes of records and imported labels on the session's own connection.

    Every record row carries ``seq``, its place in the file, so ids follow the file and the first
    occurrence of a duplicate is the one kept. Rows of one batch are gathered by key first
    (:meth:`add`): a record goes in once per batch with the number of its rows, and an upsert
    adds that number to an earlier record's ``row_count``.

    SQLite: one ``executemany`` per batch, with the rows sorted by content hash. Both indexes on
    ``records`` are keyed by the hash (``score`` derives from it), so sorted inserts touch
    neighbouring index pages and cost about a quarter less CPU than file order; ``seq`` is the
    explicit id, which is safe because the transaction holds SQLite's write lock from its start.

    PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... SELECT ... ORDER BY seq
    ON CONFLICT DO UPDATE`` (half the client CPU of ``executemany``); ids come from the sequence.

    Labels go through ``executemany`` on both: first adding to this batch's annotation of the same
    record and label (written by an earlier batch of rows), then inserting the ones not there.
    """

    def __init__(self, session: Session, project: Project, batch_id: int, now: dt.datetime) -> None:
        self.conn = session.connection()
        dialect = self.conn.dialect
        mark = "%s" if dialect.paramstyle in ("format", "pyformat") else "?"
        # PostgreSQL needs the JSON text cast inside INSERT ... SELECT; SQLite stores text as is.
        jmark = f"CAST({mark} AS JSONB)" if dialect.name == "postgresql" else mark
        bind = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
        self.now = bind(now) if bind else now
        pid, bid = int(project.id), int(batch_id)
        self.pid, self.bid = pid, bid
        upsert = (
            "ON CONFLICT (project_id, content_hash) DO UPDATE"
            " SET row_count = records.row_count + excluded.row_count"
        )
        self.records_sql = (
            "INSERT INTO records (id, project_id, batch_id, source_line, content_hash, payload,"
            " meta, n_human, needed, score, created_at, row_count)"
            f" VALUES ({mark}, {pid}, {bid}, {mark}, {mark}, {jmark}, {jmark}, 0, {mark}, {mark},"
            f" {mark}, {mark}) {upsert}"
        )
        record_of = f"SELECT id FROM records WHERE project_id = {pid} AND content_hash = {mark}"
        self.add_labels_sql = (
            f"UPDATE annotations SET row_count = row_count + {mark} WHERE batch_id = {bid}"
            f" AND origin = 'import' AND label = {mark} AND record_id = ({record_of})"
        )
        self.labels_sql = (
            "INSERT INTO annotations (project_id, record_id, annotator_id, value, label, seconds,"
            " origin, status, batch_id, created_at, row_count)"
            f" SELECT {pid}, r.id, NULL, {jmark}, {mark}, {mark}, 'import', 'active', {bid},"
            f" {mark}, {mark} FROM records r WHERE r.project_id = {pid} AND r.content_hash = {mark}"
            " AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.record_id = r.id"
            f" AND a.origin = 'import' AND a.batch_id = {bid} AND a.label = {mark})"
        )
        self.copy = dialect.name == "postgresql"
        if self.copy:
            self.conn.exec_driver_sql(
                "CREATE TEMPORARY TABLE IF NOT EXISTS looplab_import (seq bigint,"
                " source_line integer, content_hash bytea, payload text, meta text,"
                " needed integer, score double precision, created_at timestamptz,"
                " row_count integer) ON COMMIT DROP"
            )
            self.conn.exec_driver_sql("TRUNCATE looplab_import")
            self.records_sql = (
                "INSERT INTO records (project_id, batch_id, source_line, content_hash, payload,"
                " meta, n_human, needed, score, created_at, row_count)"
                f" SELECT {pid}, {bid}, source_line, content_hash, CAST(payload AS JSONB),"
                " CAST(meta AS JSONB), 0, needed, score, created_at, row_count"
                f" FROM looplab_import ORDER BY seq {upsert}"
            )
            self.next_id = 1  # ordering only: PostgreSQL's sequence gives the ids
        else:
            self.next_id = int(
                self.conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) + 1 FROM records").scalar()
                or 1
            )
        # This batch of rows: key -> (seq, line, key, payload, meta, needed, score, now, rows)
        # and (key, label) -> [value, label, seconds, now, rows, key, label].
        self.records: dict[bytes, tuple[Any, ...]] = {}
        self.repeats: dict[bytes, int] = {}  # rows of a key beyond its first in this batch
        self.labels: dict[tuple[bytes, str], list[Any]] = {}
        self.keys: list[np.ndarray] = []  # 8 bytes of each distinct key per batch, to count them
        self.labelled = 0
        self.labels_written = False

    def flush(self) -> None:
        if self.records:
            keys = b"".join(self.records)
            self.keys.append(np.frombuffer(keys, dtype=np.uint64)[::2].copy())
            for key, count in self.repeats.items():
                self.records[key] = (*self.records[key][:8], count)
            rows = list(self.records.values())
            if self.copy:
                cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                with cursor.copy(
                    "COPY looplab_import (seq, source_line, content_hash, payload, meta, needed,"
                    " score, created_at, row_count) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                self.conn.exec_driver_sql(self.records_sql)
                self.conn.exec_driver_sql("TRUNCATE looplab_import")
            else:
                rows.sort(key=_BY_HASH)
                self.conn.exec_driver_sql(self.records_sql, rows)
            self.records, self.repeats = {}, {}
        if self.labels:  # after the records, which they point at
            found = list(self.labels.values())
            if self.labels_written:  # an earlier batch of rows may hold the same record's label
                self.conn.exec_driver_sql(self.add_labels_sql, [(r[4], r[6], r[5]) for r in found])
            self.conn.exec_driver_sql(self.labels_sql, [tuple(r) for r in found])
            self.labels_written = True
            self.labels = {}

    def totals(self) -> tuple[int, int, int]:
        """(new records, distinct records the rows went to, those with conflicting labels)."""
        imported = self.conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM records WHERE project_id = {self.pid} AND batch_id = {self.bid}"
        ).scalar()
        distinct = len(np.unique(np.concatenate(self.keys))) if self.keys else 0
        conflicting = self.conn.exec_driver_sql(
            "SELECT COUNT(*) FROM (SELECT record_id FROM annotations WHERE project_id ="
            f" {self.pid} AND batch_id = {self.bid} AND origin = 'import' GROUP BY record_id"
            " HAVING COUNT(*) > 1) AS mixed"
        ).scalar()
        return int(imported or 0), distinct, int(conflicting or 0)

    def count_imported_answers(self) -> None:
        """Count a record's first imported label as one answer, so the queue does not hand out
        records that are already labeled (with ``overlap`` k, k - 1 people still see them)."""
        self.conn.exec_driver_sql(
            f"UPDATE records SET n_human = n_human + 1 WHERE project_id = {self.pid}"
            " AND id IN (SELECT record_id FROM annotations WHERE batch_id ="
            f" {self.bid} AND origin = 'import') AND NOT EXISTS (SELECT 1 FROM annotations a"
            " WHERE a.record_id = records.id AND a.origin = 'import'"
            f" AND a.batch_id <> {self.bid})"
        )


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def import_file(
    session: Session,
    project: Project,
    path: str | Path,
    *,
    fmt: str | None = None,
    text: str | None = None,
    fields: list[str] | None = None,
    label: str | None = None,
    meta: list[str] | None = None,
    id_column: str | None = None,
    encoding: str = "utf-8",
    max_field_chars: int = MAX_FIELD_CHARS,
    actor: str,
    progress: Progress | None = None,
    from_name: str | None = None,
) -> ImportReport:
    """Import one file into ``project``, in the caller's transaction; all or nothing.

    ``path``'s format comes from its extension (.csv, .jsonl/.ndjson, .parquet/.pq, .json = Label
    Studio tasks) unless ``fmt`` names it. ``text`` is a text project's column (default
    ``"text"``), ``fields`` a tabular project's input columns (the first import sets them; later
    ones may omit them or must name the same). ``label`` is a column of known labels, imported
    with origin ``"import"`` and the rows that gave each record each label; a missing value means
    unlabeled, a blank one is refused (Label Studio files bring their own annotations). ``meta``
    columns are kept in ``Record.meta`` (Label Studio: default every other ``data`` key).
    ``id_column`` names each row's record (same id, same record; different ids apart; kept in
    meta); without it the project's ``dedupe`` decides. ``encoding`` is that of CSV, JSONL and
    Label Studio files; ``max_field_chars`` the longest value kept. ``actor`` is who imports;
    ``progress(done, total)`` is called after each batch (bytes, or rows for Parquet).
    ``from_name``: Label Studio exports, the control whose answers are imported (default: the
    only Choices control; :mod:`looplab.collect.labelstudio`).

    Raises :class:`Invalid` for a bad mapping or bad input, with
    ``details={"file", "line", "field"}``; the caller's transaction then writes nothing.
    """
    started = time.perf_counter()
    path = Path(path)
    kept = _meta_with(meta, id_column, fmt)
    mapped = resolve_spec(project, path, fmt, text, fields, label, kept, encoding, max_field_chars)
    fmt, spec, sets_fields = mapped
    if not path.is_file():
        raise Invalid(f"{path}: no such file", details=spec.where(None, None))
    sha256, size = _sha256(path)
    if size == 0:
        raise spec.invalid(None, None, "the file is empty" + (": no header line" * (fmt == "csv")))
    with path.open("rb") as handle:
        source = open_source(
            fmt,
            path,
            handle,
            spec,
            size,
            batch_rows=BATCH_ROWS,
            from_name=from_name,
            labels=list(project.labels),
        )
        # A Label Studio export (JSON, or its CSV, found by the header) brings answers.
        label_studio = hasattr(source, "tasks")
        if not label_studio:  # Label Studio answers are keyed by their ids: re-import is a no-op
            _refuse_a_second_count(session, project, spec, sha256)
        dedupe = _dedupe_of(project, spec, label_studio, id_column)
        batch = _open_batch(session, project, path, fmt, sha256, spec, encoding, id_column, actor)
        keys = _Keys(dedupe, batch.id, id_column)
        if hasattr(source, "hasher"):  # Label Studio: hash each task as read, drop its text
            source.hasher = _task_hasher(spec, source)
        profiler = _profiler(session, project, spec)
        rows, writer = _load(session, project, batch.id, spec, source, keys, progress, profiler)
    if rows == 0:
        raise spec.invalid(None, None, "the file has a header but no rows")
    report = _report(session, project, batch, spec, source, writer, rows, dedupe, actor)
    schema = _decide_types(session, project, profiler)
    report = replace(
        report,
        schema=schema.to_dict() if project.task != "text" else None,
        warnings=schema.warnings(project.name),
    )
    _close_batch(session, project, batch, report, writer, spec, sets_fields, actor, schema)
    return replace(report, seconds=time.perf_counter() - started)


def _profiler(session: Session, project: Project, spec: Spec) -> types.Profiler | None:
    """A profiler of the column types for a tabular project's first import, else ``None``."""
    if project.task == "text":
        return None
    query = select(Record.id).where(Record.project_id == project.id).limit(1)
    if session.scalar(query) is not None:
        return None  # later imports type every record again (:func:`_decide_types`)
    return types.Profiler(spec.keys, list(setting(project, "na_values")))


def _decide_types(
    session: Session, project: Project, profiler: types.Profiler | None
) -> types.Schema:
    """The column types, decided here once and read by training, serving, drift and export.

    Profiled while the rows were written on a project's first import; read back from every
    record of the project after later ones. Overrides (`looplab schema`) are kept.
    """
    if profiler is not None:
        return profiler.schema(types.of_project(project))
    return types.profile(session, project)


def _refuse_a_second_count(session: Session, project: Project, spec: Spec, sha256: str) -> None:
    """Refuse a file this project already imported, byte for byte.

    Records keep how many rows they stand for, so the same file imported twice would count
    every row (and every imported label) twice: a mistake far more often than a wish.
    """
    earlier = session.scalars(
        select(ImportBatch)
        .where(ImportBatch.project_id == project.id, ImportBatch.file_sha256 == sha256)
        .order_by(ImportBatch.id)
        .limit(1)
    ).first()
    if earlier is not None:
        when = earlier.created_at.strftime("%Y-%m-%d %H:%M") if earlier.created_at else "earlier"
        raise spec.invalid(
            None,
            None,
            f"this file was imported into {project.name!r} already (batch {earlier.id}, {when},"
            f" {earlier.n_rows or 0} rows, sha256 {sha256[:12]}...); importing it again would"
            " count each of its rows and labels twice",
        )


def _dedupe_of(project: Project, spec: Spec, label_studio: bool, id_column: str | None) -> str:
    """What makes rows one record here: ``id`` with an id column, else the project's setting.

    Label Studio tasks are found again by their content (their answers and predictions attach
    to the record of that content), so they always dedupe by content.
    """
    if label_studio:
        if id_column is not None:
            raise spec.invalid(
                None,
                id_column,
                "--id does not apply to Label Studio files: tasks are matched"
                " to records by their content",
            )
        return "content"
    return "id" if id_column else str(setting(project, "dedupe"))


def _meta_with(meta: list[str] | None, id_column: str | None, fmt: str | None) -> list[str] | None:
    """The meta columns to read: the id column is kept in meta (Label Studio: all keys are)."""
    if id_column is None or (meta is None and fmt == "label-studio"):
        return meta
    return [*(meta or []), id_column] if id_column not in (meta or []) else meta


def _report(
    session: Session,
    project: Project,
    batch: ImportBatch,
    spec: Spec,
    source: Source,
    writer: _Writer,
    rows: int,
    dedupe: str,
    actor: str,
) -> ImportReport:
    """Count what the rows became; write a Label Studio file's answers (after its records)."""
    imported, distinct, conflicting = writer.totals()
    if writer.labelled:
        writer.count_imported_answers()
    answers = _label_studio_answers(session, project, batch, spec, source, actor)
    return ImportReport(
        batch_id=batch.id,
        rows=rows,
        imported=imported,
        duplicates=rows - imported,
        labels=writer.labelled + (answers["answers"] if answers is not None else 0),
        seconds=0.0,
        distinct=distinct,
        conflicting=conflicting,
        dedupe=dedupe,
        labelstudio=answers,
    )


def _open_batch(
    session: Session,
    project: Project,
    path: Path,
    fmt: str,
    sha256: str,
    spec: Spec,
    encoding: str,
    id_column: str | None,
    actor: str,
) -> ImportBatch:
    """The batch row every record of the import points back to (flushed: it has an id)."""
    mapping = {
        ("text" if project.task == "text" else "fields"): (
            spec.inputs[0] if project.task == "text" else spec.inputs
        ),
        "label": spec.label,
        "meta": spec.meta,
        "encoding": encoding,
    }
    if id_column is not None:
        mapping["id"] = id_column
    batch = ImportBatch(
        project_id=project.id,
        source=str(path.resolve()),
        format=fmt,
        file_sha256=sha256,
        mapping=mapping,
        created_by=actor,
    )
    session.add(batch)
    session.flush()
    return batch


def _close_batch(
    session: Session,
    project: Project,
    batch: ImportBatch,
    report: ImportReport,
    writer: _Writer,
    spec: Spec,
    sets_fields: bool,
    actor: str,
    schema: types.Schema,
) -> None:
    """Store the counts on the batch, count imported answers, set the fields and the column
    types, audit it all."""
    batch.n_rows = report.rows
    batch.n_imported = report.imported
    batch.n_duplicates = report.duplicates
    batch.n_labels = report.labels
    if sets_fields:
        project.fields = list(spec.inputs)
        audit.record(
            session,
            actor=actor,
            action="project.set_fields",
            entity_type="project",
            entity_id=project.id,
            project_id=project.id,
            details={"fields": list(spec.inputs), "batch_id": batch.id},
        )
    if project.task != "text":
        types.store(session, project, schema, actor=actor, why=f"import batch {batch.id}")
    counts = {
        k: v
        for k, v in report.to_dict().items()
        if k not in ("batch_id", "seconds", "schema", "warnings")
        and not (k == "labelstudio" and v is None)
    }
    counts["types"] = schema.types
    audit.record(
        session,
        actor=actor,
        action="records.import",
        entity_type="import_batch",
        entity_id=batch.id,
        project_id=project.id,
        details={
            "source": batch.source,
            "format": batch.format,
            "sha256": batch.file_sha256,
            "mapping": batch.mapping,
            **counts,
        },
    )
    session.flush()


def _task_hasher(spec: Spec, source: Source) -> Callable[[Any], bytes]:
    """The content hash of a Label Studio task's inputs: the one its record was written with."""
    encode = _encode_text if spec.task == "text" else _encode_fields
    from_text = source.format == "csv"

    def hasher(task: Any) -> bytes:
        data, _ = encode(spec, task.inputs, task.line, from_text)
        return hashlib.blake2b(data, digest_size=16).digest()

    return hasher


def _label_studio_answers(
    session: Session, project: Project, batch: ImportBatch, spec: Spec, source: Source, actor: str
) -> dict[str, Any] | None:
    """A Label Studio source's answers and predictions (:mod:`.lsimport`), after its records."""
    tasks = getattr(source, "tasks", None)
    controls = getattr(source, "controls", None)
    if not tasks or controls is None:  # not Label Studio, or plain [{"text": ...}] data
        return None
    valid = dict.fromkeys(project.labels)

    def check_label(task: Any, raw: str) -> str:
        return _label(spec, raw, valid, task.line) or raw

    summary = lsimport.write_answers(
        session,
        project,
        batch.id,
        tasks,
        controls,
        _task_hasher(spec, source),
        check_label,
        actor=actor,
        now=utcnow(),
    )
    # Remembered for the export back to Label Studio: the project's own control and field names.
    batch.mapping = {
        **batch.mapping,
        "from_name": summary["from_name"],
        "to_name": summary["to_name"],
    }
    return summary


class _Keys:
    """What makes two rows one record: the inputs' hash, the row's place, or an id column."""

    def __init__(self, dedupe: str, batch_id: int, id_column: str | None) -> None:
        if dedupe not in (*DEDUPE, "id"):
            raise Invalid(f"unknown dedupe {dedupe!r}; valid: {', '.join(DEDUPE)}")
        self.dedupe, self.batch_id, self.id_column = dedupe, batch_id, id_column
        self.by_content = dedupe == "content"

    def key(
        self, spec: Spec, hasher: Any, line: int, meta: dict[str, Any] | None, from_text: bool
    ) -> bytes:
        """The record key of a row whose inputs ``hasher`` holds already (not for ``content``)."""
        if self.dedupe == "none":
            hasher.update(b"\x00row:%d:%d" % (self.batch_id, line))
            return bytes(hasher.digest())
        value = (meta or {}).get(self.id_column or "")
        try:
            value = normalise_value(value, from_text=from_text)
        except ValueError as exc:
            raise spec.invalid(line, self.id_column, str(exc)) from None
        if value is None:
            raise spec.invalid(
                line, self.id_column, "the id is missing: with --id every row needs one"
            )
        fresh = hashlib.blake2b(digest_size=16)
        fresh.update(b"id:" + _canonical({"id": value}).encode("utf-8", "replace"))
        return fresh.digest()


def _load(
    session: Session,
    project: Project,
    batch_id: int,
    spec: Spec,
    source: Source,
    keys: _Keys,
    progress: Progress | None,
    profiler: types.Profiler | None = None,
) -> tuple[int, _Writer]:
    """The hot loop: normalise, hash, gather by key, write (and profile). (rows read, writer)."""
    writer = _Writer(session, project, batch_id, utcnow())
    now = writer.now
    valid = dict.fromkeys(project.labels)  # ordered, for the error message
    overlap = int(setting(project, "overlap") or 1)
    fraction = float(setting(project, "overlap_fraction") or 0.0)
    share = int(fraction * 2**32) if overlap > 1 else 0
    encode = _encode_text if spec.task == "text" else _encode_fields
    from_text = source.format == "csv"
    blank = hashlib.blake2b(digest_size=16)
    rows = labelled = 0
    records, labels, repeats = writer.records, writer.labels, writer.repeats
    seq = writer.next_id
    if progress:
        progress(0, source.total)
    text_task = spec.task == "text"
    by_content = keys.by_content
    normalize = unicodedata.normalize
    pending: list[list[Any]] = []
    for line, values, row_labels, meta in source.rows():
        raw = values[0]
        # The common case inline (a call per row costs more than the work); anything unusual
        # goes through the full encoder, which also raises the right error.
        if text_task and raw.__class__ is str and "\x00" not in raw and raw.isascii():
            norm = " ".join(normalize("NFKC", raw).split())
            canonical = '{"text":' + encode_basestring(norm) + "}"
            try:
                data = canonical.encode() if norm else b""
            except UnicodeEncodeError:
                data = b""
            if data:
                payload = canonical if norm == raw else '{"text":' + encode_basestring(raw) + "}"
            else:
                data, payload = encode(spec, values, line, from_text)
        else:
            data, payload = encode(spec, values, line, from_text)
        hasher = blank.copy()  # cheaper than parsing digest_size=16 for every row
        hasher.update(data)
        digest = hasher.digest() if by_content else keys.key(spec, hasher, line, meta, from_text)
        meta_json = _EMPTY_META if meta is None else _meta_json(spec, meta, line)
        if digest not in records:
            needed = overlap if share and int.from_bytes(digest[6:10]) < share else 1
            # The hash is uniform, so its first 48 bits make a fair cold-start queue order.
            score = int.from_bytes(digest[:6]) / 281474976710656.0
            records[digest] = (seq, line, digest, payload, meta_json, needed, score, now, 1)
            seq += 1
        else:  # rare in most files: counted aside, so the common row stays one tuple
            repeats[digest] = repeats.get(digest, 1) + 1
        if row_labels:
            labelled += _gather_labels(spec, row_labels, valid, line, digest, now, labels)
        rows += 1
        if profiler is not None:
            pending.append(values)
        if rows % BATCH_ROWS == 0:
            writer.flush()
            records, labels, repeats = writer.records, writer.labels, writer.repeats
            if profiler is not None:
                profiler.add_rows(pending)
                pending = []
            if progress:
                progress(source.position(), source.total)
    writer.flush()
    if profiler is not None and pending:
        profiler.add_rows(pending)
    writer.labelled = labelled
    if progress:
        progress(source.position(), source.total)
    return rows, writer


def _gather_labels(
    spec: Spec,
    row_labels: list[tuple[Any, float | None]],
    valid: dict[str, None],
    line: int,
    digest: bytes,
    now: Any,
    labels: dict[tuple[bytes, str], list[Any]],
) -> int:
    """Add a row's labels to its record's counts for this batch; 1 if the row is labeled."""
    seen = 0
    for raw, seconds in row_labels:
        name = _label(spec, raw, valid, line)
        if name is None:
            continue
        entry = labels.get((digest, name))
        if entry is None:
            value = '{"label":' + encode_basestring(name) + "}"
            labels[(digest, name)] = [value, name, seconds, now, 1, digest, name]
        else:
            entry[4] += 1
        seen = 1
    return seen


def encode_row(spec: Spec, values: list[Any], line: int, from_text: bool) -> tuple[bytes, str]:
    """(content hash, payload JSON) of one row read by a reader, exactly as an import makes them.

    Other importers of rows (gold files: :mod:`looplab.trust.goldfile`) find the same record.
    """
    encode = _encode_text if spec.task == "text" else _encode_fields
    data, payload = encode(spec, values, line, from_text)
    return hashlib.blake2b(data, digest_size=16).digest(), payload


def check_label(spec: Spec, raw: Any, labels: list[str], line: int) -> str | None:
    """A row's label checked against the project's ``labels`` (None: the row has none)."""
    return _label(spec, raw, dict.fromkeys(labels), line)


def _encode_text(spec: Spec, values: list[Any], line: int, from_text: bool) -> tuple[bytes, str]:
    raw = values[0]
    try:
        norm = check_text(raw)
    except Invalid as exc:
        raise spec.invalid(line, spec.inputs[0], exc.message) from None
    canonical = '{"text":' + encode_basestring(norm) + "}"
    try:
        data = canonical.encode()
    except UnicodeEncodeError:
        raise spec.invalid(line, spec.inputs[0], "the text holds an unpaired surrogate") from None
    if "\x00" in raw:
        raise spec.invalid(line, spec.inputs[0], "the text holds a NUL character")
    payload = canonical if norm == raw else '{"text":' + encode_basestring(raw) + "}"
    return data, payload


def _encode_fields(spec: Spec, values: list[Any], line: int, from_text: bool) -> tuple[bytes, str]:
    payload: dict[str, Any] = {}
    for key, column, value in zip(spec.keys, spec.inputs, values, strict=True):
        try:
            payload[key] = normalise_value(value, from_text=from_text)
        except ValueError as exc:
            raise spec.invalid(line, column, str(exc)) from None
    canonical = _canonical(payload)
    if "\\u0000" in canonical:
        raise spec.invalid(line, _culprit(spec, payload, "\x00"), "a value holds a NUL character")
    try:
        data = canonical.encode()
    except UnicodeEncodeError:
        raise spec.invalid(
            line, _culprit(spec, payload, None), "a value holds an unpaired surrogate"
        ) from None
    return data, json.dumps(payload, ensure_ascii=False)


def _culprit(spec: Spec, payload: dict[str, Any], char: str | None) -> str | None:
    for key, column in zip(spec.keys, spec.inputs, strict=True):
        text = json.dumps(payload[key], ensure_ascii=False)
        if char is not None and "\\u0000" in text:
            return column
        if char is None:
            try:
                text.encode()
            except UnicodeEncodeError:
                return column
    return None


def _meta_json(spec: Spec, meta: dict[str, Any], line: int) -> str:
    try:
        text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(_plain(meta), ensure_ascii=False, default=str)
    if "\\u0000" in text:
        field = next((k for k, v in meta.items() if "\\u0000" in json.dumps(v)), None)
        raise spec.invalid(line, field, "a meta value holds a NUL character")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise spec.invalid(line, None, "a meta value holds an unpaired surrogate") from None
    return text


def _label(spec: Spec, raw: Any, valid: dict[str, None], line: int) -> str | None:
    field = spec.label or "annotations"
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**18:
        raw = str(raw)  # a numeric class id, as Parquet and JSON often hold them
    if not isinstance(raw, str):
        raise spec.invalid(line, field, f"a label must be a string, found {type(raw).__name__}")
    name = raw.strip()
    if not name:
        missing = {"csv": "leave the cell empty", "parquet": "store a null"}.get(
            spec.format, "use null or leave the key out"
        )
        raise spec.invalid(
            line,
            field,
            f"the label is {'empty' if not raw else 'only whitespace'}; for an unlabeled"
            f" record, {missing}",
        )
    if name not in valid:
        raise spec.invalid(
            line,
            field,
            f"unknown label {name!r}; valid labels: {', '.join(valid)}",
        )
    return name
