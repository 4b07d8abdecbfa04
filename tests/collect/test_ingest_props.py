"""Properties: any text survives CSV and JSONL import and export; no input raises but Invalid."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looplab.collect import export, ingest
from looplab.collect.ingest import normalise_text
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store

LABELS = ["a", "b", "c"]
_names = itertools.count()
# The store refuses NUL (PostgreSQL cannot hold it) and lone surrogates (not encodable).
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda t: normalise_text(t) != "")
rows = st.lists(st.tuples(texts, st.sampled_from([None, *LABELS])), min_size=1, max_size=25)
SETTINGS = settings(
    max_examples=int(os.environ.get("LOOPLAB_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def new_project(store: Store, task: str = "text") -> str:
    name = f"p{next(_names)}"
    with store.write() as session:
        fields = ["text", "n"] if task == "tabular" else None
        projects.create_project(session, name, task=task, labels=LABELS, fields=fields, actor="t")
    return name


def write_csv(path: Path, data: list[tuple[str, str | None]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)  # "\r\n" rows: fields holding a lone "\r" get quoted
        writer.writerow(["text", "label"])
        writer.writerows((text, label or "") for text, label in data)


def write_jsonl(path: Path, data: list[tuple[str, str | None]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for text, label in data:
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def expected(data: list[tuple[str, str | None]]) -> list[tuple[str, list[str]]]:
    """The first text of each normalised form, with every distinct label its rows carried."""
    kept: dict[str, tuple[str, list[str]]] = {}
    for text, label in data:
        entry = kept.setdefault(normalise_text(text), (text, []))
        if label is not None and label not in entry[1]:
            entry[1].append(label)
    return list(kept.values())


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@SETTINGS
@given(data=rows)
def test_text_rows_round_trip(
    store: Store, tmp_path: Path, fmt: str, data: list[tuple[str, str | None]]
) -> None:
    name = new_project(store)
    path = tmp_path / f"{name}.{fmt}"
    (write_csv if fmt == "csv" else write_jsonl)(path, data)
    with store.write() as session:
        project = projects.get_project(session, name)
        report = ingest.import_file(session, project, path, label="label", actor="t")
    want = expected(data)
    assert (report.rows, report.imported) == (len(data), len(want))
    assert report.duplicates == len(data) - len(want)
    out = io.BytesIO()
    with store.read() as session:
        export.export(session, projects.get_project(session, name), "jsonl", out)
    got = [json.loads(line) for line in out.getvalue().decode().split("\n") if line]
    assert [(r["text"], [a["label"] for a in r["annotations"]]) for r in got] == want
    # every answer is an imported one, so the tie-break picks the label that came first
    assert [r["label"] for r in got] == [labels[0] if labels else None for _, labels in want]


garbage = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "text",
                    "label",
                    ",",
                    '"',
                    "\n",
                    "\r",
                    "{",
                    "}",
                    "[",
                    "]",
                    ":",
                    "a",
                    "b",
                    "\\u0000",
                    "\x00",
                    "\xff",
                    "1e999",
                    " ",
                ]
            ),
            st.text(max_size=5),
        ),
        max_size=60,
    ).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
json_lines = st.lists(
    st.dictionaries(st.sampled_from(["text", "label", "n", "data", "x"]), json_values)
    | json_values,
    min_size=1,
    max_size=5,
).map(lambda objs: "\n".join(json.dumps(o) for o in objs).encode())
label_studio = st.lists(
    st.fixed_dictionaries(
        {"data": st.dictionaries(st.sampled_from(["text", "n", "x"]), json_values)},
        optional={
            "annotations": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "result": st.lists(
                            st.fixed_dictionaries(
                                {"value": st.fixed_dictionaries({"choices": json_values})}
                            )
                            | json_values,
                            max_size=2,
                        ),
                        "lead_time": json_values,
                        "was_cancelled": json_values,
                    },
                )
                | json_values,
                max_size=2,
            )
        },
    ),
    max_size=4,
).map(lambda tasks: json.dumps(tasks).encode())


@pytest.mark.parametrize("task", ["text", "tabular"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
@SETTINGS
@given(content=garbage | json_lines | label_studio)
def test_garbage_raises_only_invalid(
    store: Store, tmp_path: Path, task: str, suffix: str, content: bytes
) -> None:
    name = new_project(store, task)
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(content)
    try:
        with store.write() as session:
            project = projects.get_project(session, name)
            ingest.import_file(session, project, path, label="label", actor="t")
    except Invalid as error:
        assert error.details["file"] == str(path)
        assert str(path) in error.message


@SETTINGS
@given(
    values=st.lists(
        st.one_of(st.none(), st.text(max_size=10), st.floats(), st.integers()), max_size=20
    )
)
def test_parquet_values_raise_only_invalid(
    store: Store, tmp_path: Path, values: list[object]
) -> None:
    name = new_project(store)
    path = tmp_path / f"{name}.parquet"
    column = pa.array([None if v is None else str(v) for v in values], pa.string())
    pq.write_table(pa.table({"text": column, "label": column}), path)
    try:
        with store.write() as session:
            project = projects.get_project(session, name)
            ingest.import_file(session, project, path, label="label", actor="t")
    except Invalid as error:
        assert error.details["file"] == str(path)


def refused(store: Store, name: str, path: Path, **kw: object) -> Invalid:
    """The import's Invalid; asserts nothing was written."""
    with store.read() as session:
        before = export_lines(store, name)
    with pytest.raises(Invalid) as caught, store.write() as session:
        project = projects.get_project(session, name)
        ingest.import_file(session, project, path, actor="t", **kw)  # type: ignore[arg-type]
    assert export_lines(store, name) == before
    return caught.value


def export_lines(store: Store, name: str) -> int:
    out = io.BytesIO()
    with store.read() as session:
        export.export(session, projects.get_project(session, name), "jsonl", out)
    return out.getvalue().count(b"\n")


@pytest.mark.parametrize("fmt", ["jsonl", "label-studio"])
@SETTINGS
@given(
    data=st.lists(texts, min_size=1, max_size=8),
    where=st.integers(min_value=0),
    key=st.sampled_from(["text", "label", "source"]),
)
def test_an_object_naming_a_key_twice_is_refused_on_its_line(
    store: Store, tmp_path: Path, fmt: str, data: list[str], where: int, key: str
) -> None:
    name = new_project(store)
    bad = where % len(data)
    objects = []
    for i, text in enumerate(data):
        body = json.dumps({"text": text, "label": "a", "source": "s"}, ensure_ascii=False)
        if i == bad:  # name the key again at the end
            body = (
                body[:-1] + f", {json.dumps(key)}: {json.dumps((key == 'label' and 'b') or 'x')}}}"
            )
        objects.append(body if fmt == "jsonl" else '{"data": ' + body + "}")
    path = tmp_path / f"{name}.{'jsonl' if fmt == 'jsonl' else 'json'}"
    content = "\n".join(objects) if fmt == "jsonl" else "[\n" + ",\n".join(objects) + "\n]"
    path.write_text(content, encoding="utf-8")
    error = refused(store, name, path, label="label", meta=["source"])
    assert (error.details["line"], error.details["field"]) == (bad + 1 + (fmt != "jsonl"), key)
    assert "twice" in error.message


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@SETTINGS
@given(data=rows, limit=st.integers(min_value=1, max_value=45))
def test_the_field_limit_refuses_exactly_the_longer_values(
    store: Store, tmp_path: Path, fmt: str, data: list[tuple[str, str | None]], limit: int
) -> None:
    name = new_project(store)
    path = tmp_path / f"{name}.{fmt}"
    (write_csv if fmt == "csv" else write_jsonl)(path, data)
    over = [i for i, (text, _) in enumerate(data) if len(text) > limit]
    if not over:
        with store.write() as session:
            project = projects.get_project(session, name)
            ingest.import_file(
                session, project, path, label="label", max_field_chars=limit, actor="t"
            )
        return
    error = refused(store, name, path, label="label", max_field_chars=limit)
    assert error.details["field"] == "text"
    assert f"more than the limit of {limit:,}" in error.message
    if fmt == "jsonl":  # CSV lines move with quoted newlines; JSONL's are one object each
        assert error.details["line"] == over[0] + 1


blanks = st.text(alphabet=" \t\u00a0\u2003\u3000", min_size=1, max_size=4)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@SETTINGS
@given(data=rows, where=st.integers(min_value=0), blank=blanks)
def test_a_blank_label_is_refused_on_its_line(
    store: Store,
    tmp_path: Path,
    fmt: str,
    data: list[tuple[str, str | None]],
    where: int,
    blank: str,
) -> None:
    name = new_project(store)
    bad = where % len(data)
    lines = [(text, blank if i == bad else label) for i, (text, label) in enumerate(data)]
    path = tmp_path / f"{name}.{fmt}"
    (write_csv if fmt == "csv" else write_jsonl)(path, lines)
    error = refused(store, name, path, label="label")
    assert error.details["field"] == "label"
    assert "the label is only whitespace" in error.message
    if fmt == "jsonl":
        assert error.details["line"] == bad + 1
