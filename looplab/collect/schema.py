"""Column types, decided once at import and read by training, serving, drift and export.

A tabular project's :class:`Schema` says, for each input field, what the values *are*:

=============  ==========================================================================
``numeric``    numbers; also ``$1,073.55``, ``€12``, ``44,362`` and ``14.07%`` (read as 14.07)
``categorical``  a value from a set; ``30``, ``30.0`` and ``"30"`` are one category, ``"00523"``
               keeps its zeros
``boolean``    ``true``/``false``, ``yes``/``no`` (and 1/0 where served)
``date``       dates in one format per column (ISO 8601, ``12/31/2020``, ``Dec-2011``, ...);
               the model reads years since 1970, month and day of week, never a date as a
               category
``text``       free text (most values three words or more): TF-IDF of its words
``identifier``  unique per row (ids, keys): left out of the features, with a warning
=============  ==========================================================================

Missing values are ``null``, an empty or blank string, NaN, and any cell equal (after
stripping) to one of the project's ``na_values`` (pandas' default list plus ``?``:
:data:`DEFAULT_NA_VALUES`).

How a type is inferred, from every stored record of the project (:func:`infer`):

1. every present value is a boolean token: ``boolean``;
2. 95% or more parse as numbers: ``numeric`` (the rest are listed as *unparsed* and read as
   missing in training), unless some have leading zeros (``00523``: codes, so ``categorical``),
   or they are unique integers over 20+ rows named like an id (``id``, ``user_id``, ``key``)
   or numbering 100+ rows one by one (``identifier``);
3. 95% or more parse as dates in one format: ``date``;
4. unique strings over 20+ rows: ``text`` when most have three words or more, else
   ``identifier``; most values three words or more and mostly distinct: ``text``;
5. anything else: ``categorical``.

:func:`coerce` turns one value into what the model reads, by the field's type. Training
coerces leniently (a value that does not parse is missing and was shown at import); serving
strictly (it raises :class:`Uncoercible`, a 422 naming the field).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import audit
from looplab.core.errors import Invalid
from looplab.core.projects import DEFAULT_NA_VALUES, setting
from looplab.core.tables import Project, Record

TYPES = ("numeric", "categorical", "boolean", "date", "text", "identifier")
#: Share of present values that must parse for a column to be numeric or a date.
PARSE_SHARE = 0.95
#: Fewest present values before "unique per row" means identifier (five rows are always unique).
MIN_ROWS_FOR_ID = 20
#: Distinct values remembered per column while profiling (memory stays flat beyond it).
DISTINCT_CAP = 100_000
#: Records profiled at a time (each column's chunk is counted by pandas, in C).
CHUNK = 50_000
#: Unparsed tokens shown per column.
SHOW_TOKENS = 5

_TRUE = frozenset({"true", "yes"})
_FALSE = frozenset({"false", "no"})
_CURRENCY = "$€£¥"
_NUMBER = re.compile(
    r"(?P<sign>[+-])?(?P<cur>[$€£¥])?\s?(?P<sign2>[+-])?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?(?P<exp>[eE][+-]?\d+)?"
    r"\s?(?P<pct>%)?(?P<cur2>[$€£¥])?"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
#: Date formats tried per column, in order: the first one that reads 95% of the values wins,
#: so 01/02/2020 is read as January 2 (US) unless a day above 12 shows the column is d/m/Y.
DATE_FORMATS = (
    "iso",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%b-%Y",
    "%b %Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%Y-%m",
)
_ID_NAME = re.compile(
    r"(?i)(?:^|[_\s.-])(?:id|uuid|guid|key)$|^(?:id|uuid|guid)(?:[_\s.-]|$)|[a-z]Id$"
)
_EPOCH = dt.datetime(1970, 1, 1)


class Uncoercible(ValueError):
    """A value that cannot be read as its field's type (serving answers 422 naming the field)."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        shown = json.dumps(value, ensure_ascii=False, default=str)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"{field}: expected {expected}, got {shown}")
        self.field = field
        self.value = value


_EXPECTED = {
    "numeric": "a number (42, 3.5, $1,073.55, 44,362 or 14.07%)",
    "boolean": "true or false (also yes/no, 1/0)",
    "date": "a date",
    "categorical": "a string or number",
    "text": "a string",
    "identifier": "anything",
}


# -- parsing one value ----------------------------------------------------------------------------


def parse_number(text: str) -> tuple[float, str] | None:
    """``(value, form)`` of a number as people write it, or ``None``.

    ``form`` is ``"number"``, ``"currency"`` (``$1,073.55``), ``"percent"`` (``14.07%`` is
    14.07) or ``"code"`` (an integer with leading zeros, ``00523``: a number only if the column
    is said to be one). Thousands separators are commas in groups of three; the decimal mark is
    a point.

    >>> parse_number("$1,073.55"), parse_number("14.07%"), parse_number("00523")
    ((1073.55, 'currency'), (14.07, 'percent'), (523.0, 'code'))
    >>> parse_number("1,2"), parse_number("nan"), parse_number("12 apples")
    (None, None, None)
    """
    if len(text) > 40:
        return None
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    whole, frac = match["int"], match["frac"]
    if whole is None and frac is None:
        return None
    if match["sign"] and match["sign2"]:
        return None
    currency = match["cur"] or match["cur2"]
    if (match["cur"] and match["cur2"]) or (currency and match["pct"]):
        return None
    if match["exp"] and (currency or match["pct"] or (whole and "," in whole)):
        return None
    negative = "-" in ((match["sign"] or "") + (match["sign2"] or ""))
    digits = (whole or "0").replace(",", "") + (frac or "") + (match["exp"] or "")
    value = float(digits)
    if not math.isfinite(value):
        return None
    if negative:
        value = -value
    if currency:
        form = "currency"
    elif match["pct"]:
        form = "percent"
    elif whole and len(whole) > 1 and whole[0] == "0" and "," not in whole and not frac:
        form = "code"
    else:
        form = "number"
    return value, form


def parse_date(text: str, fmt: str) -> dt.datetime | None:
    """``text`` read with ``fmt`` (a :data:`DATE_FORMATS` entry), naive UTC; or ``None``."""
    text = text.strip()
    if len(text) > 40 or not text:
        return None
    try:
        if fmt == "iso":
            if not _ISO_DATE.fullmatch(text):
                return None
            moment = dt.datetime.fromisoformat(text)
        else:
            moment = dt.datetime.strptime(text, fmt)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def days(moment: dt.datetime) -> float:
    """Days since 1970-01-01 (what a date column holds once coerced)."""
    return (moment - _EPOCH).total_seconds() / 86400.0


def category(value: Any) -> str:
    """The one text form of a category: 30, 30.0 and "30" are all ``"30"``; "00523" stays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, str):
        text = value.strip()
        parsed = parse_number(text)
        if parsed is not None and parsed[1] == "number" and not any(c in text for c in ",$%"):
            return category(parsed[0])
        return text
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# -- the schema -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldType:
    """One field's type and the evidence for it, as shown by ``looplab schema``."""

    name: str
    type: str
    format: str | None = None  # numeric: "percent" or "currency"; date: a DATE_FORMATS entry
    rows: int = 0
    missing: int = 0
    distinct: int = 0
    unparsed: dict[str, int] = field(default_factory=dict)  # token -> count, most common first
    inferred: str | None = None  # what inference said (differs from type after an override)
    date_format: str | None = None  # the best date format seen, kept for a date override
    note: str = ""

    @property
    def overridden(self) -> bool:
        return self.inferred is not None and self.inferred != self.type

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Schema:
    """Every input field's :class:`FieldType`, and the missing-value tokens they were read with."""

    fields: dict[str, FieldType]
    na_values: list[str] = field(default_factory=lambda: list(DEFAULT_NA_VALUES))

    @property
    def types(self) -> dict[str, str]:
        return {name: f.type for name, f in self.fields.items()}

    def of(self, *kinds: str) -> list[str]:
        """The fields of the given types, in field order."""
        return [name for name, f in self.fields.items() if f.type in kinds]

    @property
    def na(self) -> frozenset[str]:
        return frozenset(self.na_values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "na_values": list(self.na_values),
            "fields": [f.to_dict() for f in self.fields.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        fields = {f["name"]: FieldType(**f) for f in data.get("fields", [])}
        return cls(fields, list(data.get("na_values", DEFAULT_NA_VALUES)))

    def warnings(self, project: str = "PROJECT") -> list[str]:
        """What a person should know before training: fields left out, values read as missing."""
        out = []
        for f in self.fields.values():
            if f.type == "identifier":
                out.append(
                    f"{f.name!r} looks like an identifier ({f.note or 'unique per row'}): left"
                    " out of the features; keep it with"
                    f" `looplab schema {project} {f.name}=categorical`"
                )
            elif f.unparsed and f.type in ("numeric", "date", "boolean"):
                n = sum(f.unparsed.values())
                shown = ", ".join(repr(t) for t in f.unparsed)
                out.append(
                    f"{f.name!r}: {n:,} value(s) did not parse as {f.type} ({shown}); training"
                    " reads them as missing, serving refuses them; add the token to na_values if"
                    " it means missing"
                )
        return out

    def coerce_record(self, record: Mapping[str, Any], *, strict: bool) -> dict[str, Any]:
        """Every field of ``record`` coerced (:func:`coerce`); identifiers are dropped."""
        na = self.na
        return {
            name: coerce(record.get(name), f, na, strict=strict)
            for name, f in self.fields.items()
            if f.type != "identifier"
        }


def coerce(value: Any, ftype: FieldType, na: frozenset[str], *, strict: bool) -> Any:
    """``value`` as its field's type reads it: a float, a category string, a text, or ``None``.

    numeric, boolean and date give floats (a date: days since 1970-01-01); categorical the
    :func:`category` form; text the string. Missing values give ``None``. A value that does not
    parse raises :class:`Uncoercible` if ``strict``, else gives ``None``.
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        if strict:  # not JSON: a client that sends NaN has a bug; null says missing
            raise Uncoercible(ftype.name, value, _EXPECTED[ftype.type])
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text in na:
            return None
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars (a DataFrame's cells) as Python numbers and bools
    kind = ftype.type
    out: Any = None
    if kind == "numeric":
        if isinstance(value, int | float) and not isinstance(value, bool):
            out = float(value) if _finite(value) else None
        elif isinstance(value, str):
            parsed = parse_number(value)
            out = parsed[0] if parsed is not None else None
    elif kind == "categorical":
        if isinstance(value, str | int | float):
            return category(value)
        out = None if strict else category(value)  # nested values: JSON text, in training
    elif kind == "boolean":
        if isinstance(value, bool):
            out = 1.0 if value else 0.0
        elif isinstance(value, int | float) and value in (0, 1):
            out = float(value)
        elif isinstance(value, str):
            token = value.strip().lower()
            out = (
                1.0
                if token in _TRUE or token == "1"
                else 0.0
                if token in _FALSE or token == "0"
                else None
            )
    elif kind == "date":
        if isinstance(value, str):
            moment = parse_date(value, ftype.format or "iso")
            if moment is None and ftype.format not in (None, "iso"):
                moment = parse_date(value, "iso")  # ISO is always understood
            out = days(moment) if moment is not None else None
    elif kind == "text":
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return value if isinstance(value, str) else category(value)
    else:  # identifier: never read
        return None
    if out is None and strict:
        expected = _EXPECTED[kind]
        if kind == "date" and ftype.format not in (None, "iso"):
            expected = f"a date in the column's format {ftype.format} (or ISO 8601, 2011-12-31)"
        elif kind == "date":
            expected = "an ISO 8601 date (2011-12-31)"
        raise Uncoercible(ftype.name, value, expected)
    return out


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# -- inference ------------------------------------------------------------------------------------


class _Tally:
    """What one pass over a column's values needs to decide its type."""

    def __init__(self, na: frozenset[str]) -> None:
        self.na = na
        self.rows = 0
        self.missing = 0
        self.kinds: Counter[str] = Counter()
        self.strings: Counter[str] = Counter()  # non-number strings (dates, categories, tokens)
        self.distinct: set[Any] = set()
        self.capped = False
        self.integral = True
        self.low = math.inf
        self.high = -math.inf
        self.wordy = 0  # strings of three words or more
        self.first_code: str | None = None  # an integer with leading zeros, for the note
        self._seen: dict[Any, tuple[str, float | None]] = {}

    def add_column(self, values: list[Any]) -> None:
        """Count a chunk of one column's values: each distinct value is looked at once."""
        self.rows += len(values)
        present = 0
        for value, n in _value_counts(values):
            present += n
            self.add(value, n)
        self.missing += len(values) - present

    def add(self, value: Any, n: int = 1) -> None:
        """Count ``n`` occurrences of one present (not null, not NaN) value."""
        key: Any = value if isinstance(value, str | int | float) else json.dumps(value, default=str)
        if isinstance(value, bool):
            key = ("bool", value)  # True == 1 for a set: keep booleans apart
        seen = self._seen.get(key)
        if seen is None:
            seen = self._classify(value)
            if len(self._seen) < DISTINCT_CAP:
                self._seen[key] = seen
        kind, number = seen
        if kind == "missing":
            self.missing += n
            return
        if not self.capped:
            self.distinct.add(key if not isinstance(key, str) else key.strip())
            if len(self.distinct) >= DISTINCT_CAP:
                self.capped = True
        if kind == "code" and self.first_code is None:
            self.first_code = str(value).strip()
        self.kinds[kind] += n
        if number is not None:
            if not number.is_integer():
                self.integral = False
            self.low = min(self.low, number)
            self.high = max(self.high, number)
        elif isinstance(value, str):
            text = value.strip()
            if len(self.strings) < DISTINCT_CAP or text in self.strings:
                self.strings[text] += n
            if text.count(" ") >= 2:
                self.wordy += n

    def _classify(self, value: Any) -> tuple[str, float | None]:
        if isinstance(value, bool):
            return "bool", None
        if isinstance(value, int | float):
            return ("number", float(value)) if _finite(value) else ("string", None)
        if isinstance(value, dt.date | dt.time):  # Parquet: stored as ISO text
            value = value.isoformat()
        elif isinstance(value, Decimal):
            return ("number", float(value)) if value.is_finite() else ("string", None)
        if not isinstance(value, str):
            return "other", None
        text = value.strip()
        if not text or text in self.na:
            return "missing", None
        if text.lower() in _TRUE or text.lower() in _FALSE:
            return "bool", None
        parsed = parse_number(text)
        if parsed is not None:
            return parsed[1], parsed[0]
        return "string", None

    def decide(self, name: str) -> FieldType:
        present = self.rows - self.missing
        distinct = len(self.distinct)
        base = FieldType(
            name, "categorical", rows=self.rows, missing=self.missing, distinct=distinct
        )
        if present == 0:
            return replace(base, inferred="categorical", note="every value is missing")
        numbers = sum(self.kinds[k] for k in ("number", "currency", "percent", "code"))
        tokens = dict(self.strings.most_common(SHOW_TOKENS))
        unique = self.capped or distinct == present
        date_format, date_share = self._date_format()
        if self.kinds["bool"] == present:
            return replace(base, type="boolean", inferred="boolean")
        if numbers >= PARSE_SHARE * present:
            bad = tokens
            if self.kinds["code"]:
                return replace(
                    base,
                    inferred="categorical",
                    unparsed=bad,
                    note=f"{self.kinds['code']:,} value(s) with leading zeros"
                    f" (e.g. {self.first_code!r}):"
                    " codes, not quantities",
                )
            if (
                unique
                and self.integral
                and present >= MIN_ROWS_FOR_ID
                and (_ID_NAME.search(name) or self._row_numbers(present))
            ):
                return replace(
                    base, type="identifier", inferred="identifier", note="unique integers per row"
                )
            fmt = (
                "percent"
                if self.kinds["percent"]
                else "currency"
                if self.kinds["currency"]
                else None
            )
            return replace(base, type="numeric", inferred="numeric", format=fmt, unparsed=bad)
        if date_format is not None and date_share >= PARSE_SHARE:
            bad = {
                t: n for t, n in self.strings.most_common() if parse_date(t, date_format) is None
            }
            bad = dict(list(bad.items())[:SHOW_TOKENS])
            return replace(
                base,
                type="date",
                inferred="date",
                format=date_format,
                date_format=date_format,
                unparsed=bad,
            )
        strings = sum(self.strings.values())
        wordy = strings and self.wordy >= 0.5 * strings
        if unique and present >= MIN_ROWS_FOR_ID and not wordy:
            return replace(
                base,
                type="identifier",
                inferred="identifier",
                date_format=date_format,
                note="a different value on every row",
            )
        if wordy and distinct >= 0.5 * present:
            return replace(base, type="text", inferred="text", date_format=date_format)
        shown = tokens if numbers >= 0.5 * present else {}
        return replace(base, inferred="categorical", unparsed=shown, date_format=date_format)

    def _row_numbers(self, present: int) -> bool:
        """Unique integers forming one run (1, 2, ... n) over 100+ rows: row numbers."""
        return present >= 100 and self.high - self.low + 1 == present

    def _date_format(self) -> tuple[str | None, float]:
        """The date format reading the most string values, and its share of present values."""
        present = self.rows - self.missing
        if not self.strings or present == 0:
            return None, 0.0
        sample = [t for t, _ in self.strings.most_common(200)]
        best, best_hits = None, 0
        for fmt in DATE_FORMATS:
            hits = sum(parse_date(t, fmt) is not None for t in sample)
            if hits > best_hits:
                best, best_hits = fmt, hits
        if best is None or best_hits < 0.8 * len(sample):
            return None, 0.0
        read = sum(n for t, n in self.strings.items() if parse_date(t, best) is not None)
        return best, read / present


class Profiler:
    """Column types from rows as an import reads them (lists in field order), chunk by chunk.

    The first import of a project profiles its rows while it writes them, so the types cost no
    second pass over the store; later imports re-read every record (:func:`profile`).
    """

    def __init__(self, fields: Sequence[str], na_values: Sequence[str]) -> None:
        self.fields = list(fields)
        self.na_values = list(na_values)
        na = frozenset(na_values)
        self._tallies = [_Tally(na) for _ in self.fields]

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        for j, tally in enumerate(self._tallies):
            tally.add_column([row[j] for row in rows])

    def schema(self, previous: Schema | None = None) -> Schema:
        decided = {name: t.decide(name) for name, t in zip(self.fields, self._tallies, strict=True)}
        return _keep_overrides(Schema(decided, self.na_values), previous)


def _keep_overrides(schema: Schema, previous: Schema | None) -> Schema:
    if previous is None:
        return schema
    fields = dict(schema.fields)
    for name, old in previous.fields.items():
        if name in fields and old.overridden:
            fields[name] = _with_type(fields[name], old.type)
    return Schema(fields, schema.na_values)


def infer(
    records: Iterable[Mapping[str, Any]],
    fields: Sequence[str],
    *,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    previous: Schema | None = None,
) -> Schema:
    """Each field's type from ``records`` (one pass); overrides in ``previous`` are kept.

    >>> rows = [{"age": a, "pay": p} for a, p in [("31", "$1,200"), ("NA", "$950.50"), ("40", "?")]]
    >>> infer(rows, ["age", "pay"]).types
    {'age': 'numeric', 'pay': 'numeric'}
    """
    profiler = Profiler(fields, na_values)
    rows = iter(records)
    while chunk := list(itertools.islice(rows, CHUNK)):
        profiler.add_rows([[r.get(name) for name in fields] for r in chunk])
    return profiler.schema(previous)


def _value_counts(values: list[Any]) -> Iterable[tuple[Any, int]]:
    """(value, count) of the present values: hashed in C by pandas, nested values by their JSON."""
    import pandas as pd  # here: the CLI starts without pandas

    try:
        counts = pd.Series(values, dtype=object).value_counts(dropna=True, sort=False)
    except TypeError:  # unhashable values (lists, dicts): count their JSON text
        plain: Counter[Any] = Counter()
        nested: dict[str, Any] = {}
        for value in values:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, dict | list):
                key = json.dumps(value, sort_keys=True, default=str)
                nested.setdefault(key, value)
                plain[("json", key)] += 1
            else:
                plain[value] += 1
        return [
            (nested[k[1]] if isinstance(k, tuple) and k[0] == "json" else k, n)
            for k, n in plain.items()
        ]
    # tolist(): Python ints and floats, not numpy scalars. 1, 1.0 and True hash alike and are
    # counted as one value (the first seen): they read the same as a number.
    return zip(counts.index.tolist(), counts.tolist(), strict=True)


def text_schema(fields: Sequence[str]) -> Schema:
    """A text project's schema: every field is text."""
    note = "text project: read as text, not profiled"
    return Schema({f: FieldType(f, "text", inferred="text", note=note) for f in fields})


def _with_type(ftype: FieldType, kind: str) -> FieldType:
    fmt = ftype.format
    if kind == "date":
        fmt = ftype.date_format
    elif kind != ftype.inferred:
        fmt = None
    return replace(ftype, type=kind, format=fmt)


def override(schema: Schema, changes: Mapping[str, str]) -> Schema:
    """``schema`` with the given fields' types replaced; :class:`Invalid` names a bad one.

    Overriding back to the inferred type clears the override.
    """
    fields = dict(schema.fields)
    for name, kind in changes.items():
        if name not in fields:
            raise Invalid(
                f"unknown field {name!r}; the project's fields: {', '.join(fields)}",
                details={"field": name},
            )
        if kind not in TYPES:
            raise Invalid(
                f"unknown type {kind!r} for {name!r}; valid types: {', '.join(TYPES)}",
                details={"field": name, "value": kind},
            )
        if kind == "date" and fields[name].date_format is None:
            raise Invalid(
                f"{name!r} cannot be a date: no date format reads its values (formats: "
                f"{', '.join(DATE_FORMATS)})",
                details={"field": name, "value": kind},
            )
        fields[name] = _with_type(fields[name], kind)
    return Schema(fields, list(schema.na_values))


# -- a project's schema ---------------------------------------------------------------------------


def of_project(project: Project) -> Schema | None:
    """The project's stored schema (``None`` before a tabular project's first import)."""
    if project.task == "text":
        return text_schema(list(project.fields or ["text"]))
    return Schema.from_dict(project.field_types) if project.field_types else None


def profile(session: Session, project: Project) -> Schema:
    """Infer the types from every stored record of ``project``, keeping its overrides.

    Reads the records in batches, so memory does not grow with the project (beyond
    :data:`DISTINCT_CAP` distinct values per column).
    """
    if project.task == "text":
        return text_schema(list(project.fields or ["text"]))
    query = (
        select(Record.payload)
        .where(Record.project_id == project.id)
        .execution_options(yield_per=10_000)
    )
    payloads = (payload for (payload,) in session.execute(query))
    return infer(
        payloads,
        list(project.fields or []),
        na_values=list(setting(project, "na_values")),
        previous=of_project(project),
    )


def store(session: Session, project: Project, schema: Schema, *, actor: str, why: str) -> None:
    """Keep ``schema`` with the project, audited (``project.set_types``) when a type changed."""
    before = of_project(project)
    project.field_types = schema.to_dict()
    old = before.types if before is not None else {}
    changed = {name: kind for name, kind in schema.types.items() if old.get(name) != kind}
    if changed:
        audit.record(
            session,
            actor=actor,
            action="project.set_types",
            entity_type="project",
            entity_id=project.id,
            project_id=project.id,
            details={"types": changed, "before": {k: old.get(k) for k in changed}, "why": why},
        )


def set_types(
    session: Session,
    project: Project,
    changes: Mapping[str, str],
    *,
    actor: str,
    infer_again: bool = False,
) -> Schema:
    """Override field types (``{"age": "numeric"}``), checked and audited; the new schema.

    ``infer_again`` first re-reads every record (after a change of ``na_values``, say); the
    overrides made before are kept.
    """
    if project.task == "text":
        if changes:
            raise Invalid(
                f"project {project.name!r} is a text project: its only field is text",
                details={"project": project.name},
            )
        return text_schema(list(project.fields or ["text"]))
    current = profile(session, project) if infer_again else of_project(project)
    if current is None:
        current = profile(session, project)
        if not current.fields:
            raise Invalid(
                f"project {project.name!r} has no fields yet: import a file first",
                details={"project": project.name},
            )
    new = override(current, changes)
    store(session, project, new, actor=actor, why="override" if changes else "inferred")
    return new
