"""Column types: what import decides for data shaped like users' (NA tokens, currency strings,
percents, dates, ids, zip codes), and the parser on bad input (hypothesis)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from looplab.collect import ingest
from looplab.collect import schema as types
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import AuditEvent


def loans_csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    """A loans table as people export it: R's NA, $ and %, Dec-2011 dates, ids, zip codes."""
    rng = random.Random(seed)
    lines = ["member_id,age,balance,income,int_rate,issue_d,opened,zip,grade,owns_home,label"]
    for i in range(n):
        age = "NA" if i % 9 == 0 else str(rng.randint(18, 80))
        balance = f'"${rng.uniform(0, 9000):,.2f}"'
        income = "N/A" if i % 11 == 0 else f'"{rng.randint(20_000, 200_000):,}"'
        rate = f"{rng.uniform(5, 25):.2f}%"
        issued = rng.choice(["Dec-2011", "Jan-2012", "Feb-2012", "Mar-2012"])
        opened = f"2019-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        zipcode = rng.choice(["97095", "00523", "10001", "02134"])
        grade = rng.choice("ABCD")
        owns = rng.choice(["yes", "no", "?"])
        label = rng.choice(["paid", "default"])
        lines.append(
            f"{70_000 + i * 7},{age},{balance},{income},{rate},{issued},{opened},{zipcode},"
            f"{grade},{owns},{label}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


FIELDS = ["member_id", "age", "balance", "income", "int_rate", "issue_d", "opened", "zip", "grade"]


def test_import_reads_na_currency_percent_and_dates_as_their_types(
    store: Store, tmp_path: Path
) -> None:
    path = loans_csv(tmp_path / "loans.csv")
    with store.write() as session:
        project = projects.create_project(
            session, "loans", task="tabular", labels=["paid", "default"], actor="t"
        )
        report = ingest.import_file(
            session, project, path, fields=[*FIELDS, "owns_home"], label="label", actor="t"
        )
    fields = {f["name"]: f for f in report.schema["fields"]}
    assert {name: f["type"] for name, f in fields.items()} == {
        "member_id": "identifier",
        "age": "numeric",
        "balance": "numeric",
        "income": "numeric",
        "int_rate": "numeric",
        "issue_d": "date",
        "opened": "date",
        "zip": "categorical",
        "grade": "categorical",
        "owns_home": "boolean",
    }
    assert fields["age"]["missing"] == 14 and fields["age"]["unparsed"] == {}
    assert fields["income"]["missing"] == 11
    assert (fields["balance"]["format"], fields["int_rate"]["format"]) == ("currency", "percent")
    assert (fields["issue_d"]["format"], fields["opened"]["format"]) == ("%b-%Y", "iso")
    assert "leading zeros" in fields["zip"]["note"]
    assert any("'member_id' looks like an identifier" in w for w in report.warnings)
    with store.read() as session:
        project = projects.get_project(session, "loans")
        stored = types.of_project(project)
        actions = list(session.scalars(select(AuditEvent.action)))
    assert stored is not None and stored.types == {k: f["type"] for k, f in fields.items()}
    assert "project.set_types" in actions


def test_unparsed_tokens_are_counted_and_warned() -> None:
    rows = [{"x": str(v)} for v in range(60)] + [{"x": "unknown"}, {"x": "unknown"}, {"x": "-"}]
    schema = types.infer(rows, ["x"])
    x = schema.fields["x"]
    assert (x.type, x.unparsed, x.missing) == ("numeric", {"unknown": 2, "-": 1}, 0)
    assert "3 value(s) did not parse as numeric" in schema.warnings()[0]
    # Read as missing in training, refused in serving.
    assert types.coerce("unknown", x, schema.na, strict=False) is None
    with pytest.raises(types.Uncoercible, match=r'x: expected a number .* got "unknown"'):
        types.coerce("unknown", x, schema.na, strict=True)


def test_a_mostly_text_column_stays_categorical_and_shows_why() -> None:
    rows = [{"x": str(v)} for v in range(10)] + [{"x": "low"}] * 5
    x = types.infer(rows, ["x"]).fields["x"]
    assert x.type == "categorical" and x.unparsed == {"low": 5}


def test_ids_text_and_small_tables() -> None:
    uuids = [
        {"user_id": i * 13, "ref": f"R-{i:04d}", "comment": f"it was fine number {i}"}
        for i in range(40)
    ]
    schema = types.infer(uuids, ["user_id", "ref", "comment"])
    assert schema.types == {"user_id": "identifier", "ref": "identifier", "comment": "text"}
    # Five rows are always unique: not enough to call a column an identifier.
    assert types.infer(uuids[:5], ["ref"]).types == {"ref": "categorical"}
    # Unique integers that are not an id nor row numbers are quantities.
    assert types.infer([{"age": a} for a in range(40)], ["age"]).types == {"age": "numeric"}


def test_categories_have_one_text_form() -> None:
    x = types.FieldType("x", "categorical")
    na = frozenset(types.DEFAULT_NA_VALUES)
    forms = {types.coerce(v, x, na, strict=True) for v in (30, 30.0, "30", " 30 ", "30.0")}
    assert forms == {"30"}
    assert types.coerce("00523", x, na, strict=True) == "00523"
    assert types.coerce(97095, x, na, strict=True) == "97095"
    assert types.coerce("NA", x, na, strict=True) is None


def test_dates_become_days_and_formats_are_decided_per_column() -> None:
    rows = [{"d": f"{m:02d}/{d:02d}/2020"} for m in range(1, 13) for d in (5, 25)]
    d = types.infer(rows, ["d"]).fields["d"]
    assert (d.type, d.format) == ("date", "%m/%d/%Y")
    assert types.coerce("01/02/1970", d, frozenset(), strict=True) == 1.0
    assert types.coerce("1970-01-03", d, frozenset(), strict=True) == 2.0  # ISO always read


def test_override_checks_field_and_type() -> None:
    schema = types.infer([{"age": 1, "zip": "00523"}, {"age": 2, "zip": "97095"}], ["age", "zip"])
    changed = types.override(schema, {"zip": "numeric", "age": "categorical"})
    assert changed.types == {"age": "categorical", "zip": "numeric"}
    assert changed.fields["zip"].overridden and changed.fields["zip"].inferred == "categorical"
    with pytest.raises(Invalid, match="unknown field 'agee'; the project's fields: age, zip"):
        types.override(schema, {"agee": "numeric"})
    with pytest.raises(Invalid, match="unknown type 'number' for 'age'; valid types: numeric,"):
        types.override(schema, {"age": "number"})
    with pytest.raises(Invalid, match="'age' cannot be a date"):
        types.override(schema, {"age": "date"})
    # A new inference keeps what a person decided.
    again = types.infer([{"age": 3, "zip": "02134"}], ["age", "zip"], previous=changed)
    assert again.types == {"age": "categorical", "zip": "numeric"}


def test_na_values_is_a_project_setting(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'missing' if i % 5 else 'a'}\n" for i in range(30)))
    with store.write() as session:
        project = projects.create_project(
            session, "t", task="tabular", labels=["a", "b"], actor="t"
        )
        from looplab import configure

        configure.update_settings(session, project, {"na_values": ["missing"]}, actor="t")
        report = ingest.import_file(session, project, path, fields=["x", "y"], actor="t")
        with pytest.raises(Invalid, match="na_values must be a list of strings"):
            configure.update_settings(session, project, {"na_values": "NA"}, actor="t")
    y = next(f for f in report.schema["fields"] if f["name"] == "y")
    assert (y["missing"], y["distinct"]) == (24, 1)


# -- the parser on bad input ----------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_number_never_raises_and_gives_finite_numbers(text: str) -> None:
    parsed = types.parse_number(text)
    if parsed is not None:
        value, form = parsed
        assert math.isfinite(value) and form in ("number", "currency", "percent", "code")


@settings(max_examples=300, deadline=None)
@given(ANY_VALUE, st.sampled_from(types.TYPES))
def test_coerce_raises_only_uncoercible_and_is_idempotent_in_training(value, kind) -> None:
    ftype = types.FieldType("f", kind, format="%m/%d/%Y" if kind == "date" else None)
    na = frozenset(types.DEFAULT_NA_VALUES)
    try:
        strict = types.coerce(value, ftype, na, strict=True)
    except types.Uncoercible as exc:
        assert exc.field == "f" and str(exc).startswith("f: expected ")
    else:
        assert strict == types.coerce(value, ftype, na, strict=False)
    lenient = types.coerce(value, ftype, na, strict=False)
    assert lenient is None or isinstance(lenient, float | str)
    if isinstance(lenient, float):
        assert math.isfinite(lenient)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_written_numbers_read_back(x: float) -> None:
    rounded = round(x, 2)
    for text, form in (
        (f"{rounded:,.2f}", "number"),
        (f"${rounded:,.2f}" if x >= 0 else f"-${-rounded:,.2f}", "currency"),
        (f"{rounded:.2f}%", "percent"),
    ):
        parsed = types.parse_number(text)
        assert parsed is not None, text
        assert parsed[0] == pytest.approx(rounded, abs=1e-9) and parsed[1] == form


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from("abc"), ANY_VALUE), max_size=30))
def test_inference_takes_any_records(rows) -> None:
    schema = types.infer(rows, ["a", "b", "c"])
    assert set(schema.types.values()) <= set(types.TYPES)
    assert types.Schema.from_dict(schema.to_dict()) == schema
