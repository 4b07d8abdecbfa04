"""Import: every format, mappings, labels, dedupe, provenance, audit; bad input writes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from looplab import configure
from looplab.collect import ingest
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import Annotation, AuditEvent, ImportBatch, Record

LABELS = ["sport", "tech", "politics"]


# -- helpers --------------------------------------------------------------------------------------


def make_project(store: Store, name: str = "news", task: str = "text", **kw: Any) -> None:
    with store.write() as session:
        projects.create_project(session, name, task=task, labels=LABELS, actor="test", **kw)


def run(store: Store, path: Path, project: str = "news", **kw: Any) -> ingest.ImportReport:
    with store.write() as session:
        target = projects.get_project(session, project)
        return ingest.import_file(session, target, path, actor="tester", **kw)


def counts(store: Store) -> tuple[int, int, int, int]:
    """(records, batches, annotations, audit events)."""
    with store.read() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Record, ImportBatch, Annotation, AuditEvent)
        )


def records(store: Store) -> list[Record]:
    with store.read() as session:
        return list(session.scalars(select(Record).order_by(Record.id)))


def import_labels(store: Store) -> list[tuple[str, str]]:
    """(text, label) of every imported annotation, sorted."""
    with store.read() as session:
        rows = session.execute(
            select(Record.payload, Annotation.label)
            .join(Record, Record.id == Annotation.record_id)
            .where(Annotation.origin == "import")
        ).all()
    return sorted((payload["text"], label) for payload, label in rows)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def rejects(
    store: Store,
    path: Path,
    *,
    line: int | None,
    field: str | None,
    says: str,
    project: str = "news",
    **kw: Any,
) -> Invalid:
    """Assert the import raises Invalid naming file, line and field, and writes nothing at all."""
    before = counts(store)
    with pytest.raises(Invalid) as caught:
        run(store, path, project, **kw)
    error = caught.value
    assert error.details["file"] == str(path)
    assert error.details["line"] == line
    assert error.details["field"] == field
    assert str(path) in error.message
    if line is not None:
        assert f"line {line}" in error.message
    if field is not None:
        assert repr(field) in error.message
    assert says in error.message, error.message
    assert counts(store) == before
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Record)) == before[0]
    return error


# -- formats --------------------------------------------------------------------------------------


def test_csv_text_with_labels_meta_and_provenance(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(
        tmp_path,
        "news.csv",
        "id,body,topic,source\n"
        "1,Rain stops play,sport,bbc\n"
        '2,"Chips get\nsmaller",tech,wired\n'
        "\n"
        "3,Vote on Tuesday,,ap\n",
    )
    report = run(store, path, text="body", label="topic", meta=["source", "id"])
    assert (report.rows, report.imported, report.duplicates, report.labels) == (3, 3, 0, 2)
    assert report.to_dict()["batch_id"] == report.batch_id
    got = records(store)
    assert [r.payload for r in got] == [
        {"text": "Rain stops play"},
        {"text": "Chips get\nsmaller"},
        {"text": "Vote on Tuesday"},
    ]
    assert [r.source_line for r in got] == [2, 3, 6]  # physical lines: a quoted newline, a blank
    assert got[1].meta == {"source": "wired", "id": "2"}
    assert {r.batch_id for r in got} == {report.batch_id}
    assert all(0 <= r.score < 1 and r.needed == 1 for r in got)
    assert [r.n_human for r in got] == [1, 1, 0]  # an imported label counts as one answer
    assert import_labels(store) == [("Chips get\nsmaller", "tech"), ("Rain stops play", "sport")]
    with store.read() as session:
        batch = session.get(ImportBatch, report.batch_id)
        assert batch is not None
        assert batch.source == str(path.resolve())
        assert batch.format == "csv"
        assert batch.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert batch.mapping["text"] == "body" and batch.mapping["label"] == "topic"
        assert (batch.n_rows, batch.n_imported, batch.n_duplicates, batch.n_labels) == (3, 3, 0, 2)
        assert batch.created_by == "tester"
        annotation = session.scalars(select(Annotation)).first()
        assert annotation is not None
        assert annotation.annotator_id is None and annotation.value == {"label": annotation.label}
        assert annotation.batch_id == report.batch_id and annotation.status == "active"
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "records.import")
        ).all()
        assert len(events) == 1
        assert events[0].entity_id == str(report.batch_id)
        assert events[0].details["sha256"] == batch.file_sha256
        assert events[0].details["imported"] == 3 and events[0].details["labels"] == 2
        assert events[0].details["mapping"]["text"] == "body"


def test_jsonl_line_numbers_labels_and_missing_label_key(store: Store, tmp_path: Path) -> None:
    make_project(store)
    lines = [
        {"text": "first", "label": "sport", "lang": "en"},
        {"text": "second", "lang": "fr"},  # no label key: unlabeled
        {"text": "third", "label": None},
        {"text": "fourth", "label": "tech", "extra": [1, 2]},
    ]
    body = (
        "\n".join(json.dumps(x) for x in lines[:2])
        + "\n\n"
        + "\n".join(json.dumps(x) for x in lines[2:])
    )
    path = write(tmp_path, "data.ndjson", body)
    report = run(store, path, label="label", meta=["lang"])
    assert (report.rows, report.imported, report.labels) == (4, 4, 2)
    got = records(store)
    assert [r.source_line for r in got] == [1, 2, 4, 5]
    assert [r.meta for r in got] == [{"lang": "en"}, {"lang": "fr"}, {"lang": None}, {"lang": None}]


def test_parquet_text_and_row_numbers(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = tmp_path / "data.parquet"
    table = pa.table(
        {
            "text": ["a b", "c d", "a  b", "e f"],
            "label": ["sport", None, "tech", None],
            "n": [1, 2, 3, None],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    seen: list[tuple[int, int | None]] = []
    report = run(store, path, label="label", meta=["n"], progress=lambda d, t: seen.append((d, t)))
    assert (report.rows, report.imported, report.duplicates, report.labels) == (4, 3, 1, 2)
    got = records(store)
    assert [r.source_line for r in got] == [1, 2, 4]
    assert [r.meta["n"] for r in got] == [1, 2, None]
    # "a  b" is a duplicate of "a b"; its label still lands on the surviving record
    assert import_labels(store) == [("a b", "sport"), ("a b", "tech")]
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)


def test_parquet_from_pandas_with_categories_and_large_strings(
    store: Store, tmp_path: Path
) -> None:
    make_project(store)
    frame = pd.DataFrame(
        {"text": pd.Categorical(["x", "y", "x"]), "label": pd.Categorical(["sport", None, "tech"])}
    )
    frame.to_parquet(tmp_path / "a.parquet")
    report = run(store, tmp_path / "a.parquet", label="label")
    assert (report.imported, report.duplicates, report.labels) == (2, 1, 2)
    large = pa.table({"text": pa.array(["big one"], pa.large_string())})
    pq.write_table(large, tmp_path / "b.parquet")
    assert run(store, tmp_path / "b.parquet").imported == 1


def test_tabular_first_import_sets_fields_then_later_imports_must_match(
    store: Store, tmp_path: Path
) -> None:
    make_project(store, "loans", task="tabular")
    path = write(
        tmp_path,
        "loans.csv",
        "age,income,zip,label\n42,1e3, 007 ,sport\n42.0,1000,007,tech\n,3.5,x,\n",
    )
    report = run(store, path, "loans", fields=["age", "income", "zip"], label="label")
    # row 3 normalises to the same values as row 2 (42.0 == 42, 1e3 == 1000): a duplicate
    assert (report.rows, report.imported, report.duplicates, report.labels) == (3, 2, 1, 2)
    got = records(store)
    assert got[0].payload == {"age": 42, "income": 1000.0, "zip": "007"}
    assert got[1].payload == {"age": None, "income": 3.5, "zip": "x"}
    with store.read() as session:
        assert projects.get_project(session, "loans").fields == ["age", "income", "zip"]
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions == [
            "project.create",
            "project.set_fields",
            "project.set_types",
            "records.import",
        ]
    # later imports: same fields in any order, or none at all
    again = write(tmp_path, "more.csv", "zip,income,age\n9,9,9\n")
    assert run(store, again, "loans", fields=["zip", "age", "income"]).imported == 1
    more = write(tmp_path, "more2.csv", "zip,income,age\n8,8,8\n")
    assert run(store, more, "loans").imported == 1
    before = counts(store)
    with pytest.raises(Invalid, match="must name the same fields") as caught:
        run(store, more, "loans", fields=["zip", "age"])
    assert caught.value.details["field"] == "fields"
    assert counts(store) == before


def test_label_studio_file(store: Store, tmp_path: Path) -> None:
    make_project(store)
    tasks = [
        {
            "id": 7,
            "data": {"text": "Rain stops play", "source": "bbc"},
            "annotations": [
                {"result": [{"value": {"choices": ["tech"]}}], "was_cancelled": True},
                {
                    "result": [{"type": "choices", "value": {"choices": ["sport"]}}],
                    "lead_time": 2.5,
                },
                {"result": [{"type": "choices", "value": {"choices": ["sport"]}}]},
            ],
        },
        {"data": {"text": "Chips"}, "annotations": []},
        {"text": "Flat task", "id": 3},  # JSON-MIN style, no "data" wrapper
    ]
    text = json.dumps(tasks, indent=2)
    path = write(tmp_path, "export.json", text)
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line == "  {"]
    report = run(store, path)
    # One annotation per Label Studio answer: two people answering "sport" are two answers.
    assert (report.rows, report.imported, report.labels) == (3, 3, 2)
    got = records(store)
    assert [r.payload["text"] for r in got] == ["Rain stops play", "Chips", "Flat task"]
    assert got[0].meta == {"source": "bbc"} and got[1].meta == {}
    assert [r.source_line for r in got] == starts
    with store.read() as session:
        answers = session.scalars(select(Annotation).order_by(Annotation.id)).all()
        assert [(a.label, a.seconds, a.status) for a in answers] == [
            (None, None, "skipped"),  # the cancelled answer
            ("sport", 2.5, "active"),
            ("sport", None, "active"),
        ]


def test_format_flag_overrides_the_extension(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "data.txt", '{"text": "x"}\n')
    assert run(store, path, fmt="jsonl").imported == 1


def test_dedupe_within_the_file_and_across_imports(store: Store, tmp_path: Path) -> None:
    make_project(store)
    first = write(
        tmp_path,
        "a.csv",
        "text,label\nHello  world,sport\n hello world ,\nHello world,sport\n"
        "\uff28ello world,tech\n",
    )
    report = run(store, first, label="label")
    # "Hello  world", "Hello world" and the one with a full-width H normalise alike (NFKC): one
    # record standing for 3 rows, 2 of them labeled sport and 1 tech (counts kept, issue 17).
    assert (report.rows, report.imported, report.duplicates, report.labels) == (4, 2, 2, 3)
    assert (report.distinct, report.conflicting) == (2, 1)
    assert report.summary() == (
        "4 rows, 2 distinct inputs, counts kept; 2 new records, 3 labeled rows;"
        " 1 input carries conflicting labels"
    )
    second = write(tmp_path, "b.csv", "text,label\nHello world,sport\nnew one,politics\n")
    report = run(store, second, label="label")
    assert (report.rows, report.imported, report.duplicates, report.labels) == (2, 1, 1, 2)
    assert [(r.payload["text"], r.row_count) for r in records(store)] == [
        ("Hello  world", 4),
        (" hello world ", 1),
        ("new one", 1),
    ]
    # One annotation per record, batch and label, with the rows that gave it.
    with store.read() as session:
        rows = session.execute(
            select(Record.payload, Annotation.label, Annotation.batch_id, Annotation.row_count)
            .join(Record, Record.id == Annotation.record_id)
            .where(Annotation.origin == "import")
        ).all()
    assert sorted((p["text"], label, batch, n) for p, label, batch, n in rows) == [
        ("Hello  world", "sport", 1, 2),
        ("Hello  world", "sport", 2, 1),
        ("Hello  world", "tech", 1, 1),
        ("new one", "politics", 2, 1),
    ]


def test_overlap_fraction_sets_needed(store: Store, tmp_path: Path) -> None:
    make_project(store)
    with store.write() as session:
        project = projects.get_project(session, "news")
        configure.update_settings(
            session, project, {"overlap": 3, "overlap_fraction": 1.0}, actor="test"
        )
    run(store, write(tmp_path, "a.csv", "text\nx\ny\n"))
    assert [r.needed for r in records(store)] == [3, 3]


def test_other_encodings_and_a_byte_order_mark(store: Store, tmp_path: Path) -> None:
    make_project(store)
    latin = write(tmp_path, "latin.csv", "text\ncaf\xe9 cr\xe8me\n".encode("latin-1"))
    assert run(store, latin, encoding="latin-1").imported == 1
    bom = write(tmp_path, "bom.csv", "\ufefftext\nwith bom\n".encode())
    assert run(store, bom).imported == 1
    utf16 = write(tmp_path, "wide.csv", "text\nwide one\n".encode("utf-16"))
    assert run(store, utf16, encoding="utf-16").imported == 1
    assert [r.payload["text"] for r in records(store)] == ["café crème", "with bom", "wide one"]


def test_progress_reports_bytes(store: Store, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(ingest, "BATCH_ROWS", 10)
    make_project(store)
    path = write(tmp_path, "a.csv", "text\n" + "".join(f"row {i}\n" for i in range(35)))
    seen: list[tuple[int, int | None]] = []
    report = run(store, path, progress=lambda done, total: seen.append((done, total)))
    assert report.imported == 35
    size = path.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 5


def test_hash_is_blake2b_of_canonical_json(store: Store, tmp_path: Path) -> None:
    make_project(store)
    run(store, write(tmp_path, "a.csv", 'text\n"  Ünïcode\tand  spaces "\n'))
    canonical = json.dumps(
        {"text": "Ünïcode and spaces"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    expected = hashlib.blake2b(canonical.encode(), digest_size=16).digest()
    assert records(store)[0].content_hash == expected
    assert records(store)[0].payload == {"text": "  Ünïcode\tand  spaces "}


# -- bad input: message names file, line and field; nothing is written ------------------------


def test_missing_column_lists_the_header(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "a.csv", "body,topic\nx,sport\n")
    error = rejects(store, path, line=1, field="text", says="the file has: 'body', 'topic'")
    assert error.details["columns"] == ["body", "topic"]
    rejects(store, path, line=1, field="lbl", says="not found", text="body", label="lbl")
    rejects(store, path, line=1, field="src", says="not found", text="body", meta=["src"])


def test_missing_key_in_jsonl(store: Store, tmp_path: Path) -> None:
    make_project(store)
    first = write(tmp_path, "a.jsonl", '{"body": "x"}\n')
    rejects(store, first, line=1, field="text", says="key 'text' not found")
    later = write(tmp_path, "b.jsonl", '{"text": "x"}\n{"text": "y"}\n{"txt": "z"}\n')
    rejects(store, later, line=3, field="text", says="has no key 'text'")
    never = write(tmp_path, "c.jsonl", '{"text": "x"}\n')
    rejects(store, never, line=None, field="topic", says="no object", label="topic")


def test_missing_parquet_column_and_wrong_type(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"body": ["x"], "n": [1]}), path)
    rejects(store, path, line=None, field="text", says="'body', 'n'")
    rejects(store, path, line=None, field="n", says="must hold strings", text="n")


def test_unknown_label_lists_the_valid_ones(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "a.csv", "text,label\na,sport\nb,weather\n")
    rejects(
        store,
        path,
        line=3,
        field="label",
        says="unknown label 'weather'; valid labels: sport, tech, politics",
        label="label",
    )
    ls = write(
        tmp_path,
        "a.json",
        '[{"data": {"text": "a"},\n "annotations": [{"result": [{"value": {"choices": ["x"]}}]}]}]',
    )
    rejects(store, ls, line=1, field="annotations", says="unknown label 'x'")


def test_broken_csv_rows(store: Store, tmp_path: Path) -> None:
    make_project(store)
    extra = write(tmp_path, "a.csv", "text,label\na,sport\nb,tech,oops\n")
    rejects(store, extra, line=3, field=None, says="expected 2 fields", label="label")
    short = write(tmp_path, "b.csv", "text,label,n\na,sport,1\nb,tech\n")
    rejects(store, short, line=3, field="n", says="found 2", label="label")
    unclosed = write(tmp_path, "c.csv", 'text\na\n"never closed\nb\nc\n')
    rejects(store, unclosed, line=3, field=None, says="never closed")
    stray = write(tmp_path, "d.csv", 'text\na\n"b"c\n')
    rejects(store, stray, line=3, field=None, says="not valid CSV")
    old_mac = write(tmp_path, "e.csv", "text\ra\rb\r")
    rejects(store, old_mac, line=1, field=None, says="old Mac line endings")


def test_broken_jsonl_lines(store: Store, tmp_path: Path) -> None:
    make_project(store)
    bad = write(tmp_path, "a.jsonl", '{"text": "a"}\n{"text": "b",}\n')
    rejects(store, bad, line=2, field=None, says="not valid JSON")
    array = write(tmp_path, "b.jsonl", '{"text": "a"}\n\n["text"]\n')
    rejects(store, array, line=3, field=None, says="must be a JSON object, found list")
    number = write(tmp_path, "c.jsonl", '{"text": 5}\n')
    rejects(store, number, line=1, field="text", says="must be a string, found int")


def test_wrong_encoding_names_the_line_and_suggests_the_flag(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "a.csv", "text,n\nfine,1\nalso fine,2\ncaf\xe9,3\n".encode("latin-1"))
    rejects(store, path, line=4, field="text", says="--encoding")
    header = write(tmp_path, "b.csv", "t\xe9xt\nx\n".encode("latin-1"))
    rejects(store, header, line=1, field=None, says="byte 0xe9 at byte 2 of the line")
    jsonl = write(tmp_path, "a.jsonl", '{"n": 1, "text": "caf\xe9"}\n'.encode("latin-1"))
    rejects(store, jsonl, line=1, field="text", says="not valid utf-8")
    ls = write(tmp_path, "a.json", '[\n{"text": "caf\xe9"}]'.encode("latin-1"))
    rejects(store, ls, line=2, field=None, says="--encoding")
    rejects(store, path, line=None, field="encoding", says="unknown encoding", encoding="klingon")


def test_empty_files(store: Store, tmp_path: Path) -> None:
    make_project(store)
    for name, content, says in [
        ("a.csv", "", "empty: no header"),
        ("b.csv", "text\n", "no rows"),
        ("c.jsonl", "", "empty"),
        ("d.jsonl", "\n  \n", "no records"),
        ("e.json", "[]", "no tasks"),
        ("f.json", "", "empty"),
    ]:
        rejects(store, write(tmp_path, name, content), line=None, field=None, says=says)
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "g.parquet")
    rejects(store, tmp_path / "g.parquet", line=None, field=None, says="no rows")


def test_empty_text(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "a.csv", "text,n\na,1\n   ,2\n")
    rejects(store, path, line=3, field="text", says="the text is empty")
    nul = write(tmp_path, "b.jsonl", '{"text": "a\\u0000b"}\n')
    rejects(store, nul, line=1, field="text", says="NUL")


def test_unsupported_extension_and_format(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "a.xlsx", "text\nx\n")
    rejects(store, path, line=None, field=None, says="cannot tell the format")
    rejects(store, path, line=None, field="format", says="unknown format 'xls'", fmt="xls")
    garbage = write(tmp_path, "b.parquet", "text\nx\n")
    rejects(store, garbage, line=None, field=None, says="not a readable Parquet file")


def test_broken_label_studio_files(store: Store, tmp_path: Path) -> None:
    make_project(store)
    obj = write(tmp_path, "a.json", '{"data": {"text": "x"}}')
    rejects(store, obj, line=1, field=None, says="JSON list of tasks")
    missing = write(tmp_path, "b.json", '[{"data": {"text": "x"}},\n\n {"data": {"body": "y"}}]')
    rejects(store, missing, line=3, field="text", says="has no key 'text'")
    broken = write(tmp_path, "c.json", '[{"data": {"text": "x"}},\n {"data": }]')
    rejects(store, broken, line=2, field=None, says="not valid JSON")
    truncated = write(tmp_path, "d.json", '[{"data": {"text": "x"}},\n')
    rejects(store, truncated, line=2, field=None, says="truncated")


def test_blank_labels_are_refused_where_a_missing_label_is_not(
    store: Store, tmp_path: Path
) -> None:
    make_project(store)
    # An empty CSV cell, JSON null, no key, a Parquet null: unlabeled. Present but blank: refused.
    path = write(tmp_path, "a.csv", 'text,label\none,\ntwo,"  "\n')
    rejects(store, path, line=3, field="label", says="the label is only whitespace", label="label")
    assert (
        "leave the cell empty"
        in rejects(store, path, line=3, field="label", says="unlabeled", label="label").message
    )
    body = '{"text": "one", "label": null}\n{"text": "two"}\n{"text": "three", "label": ""}\n'
    path = write(tmp_path, "a.jsonl", body)
    error = rejects(store, path, line=3, field="label", says="the label is empty", label="label")
    assert "use null or leave the key out" in error.message
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["one", "two"], "label": [None, "\t"]}), path)
    rejects(
        store,
        path,
        line=2,
        field="label",
        says="only whitespace; for an unlabeled record, store a null",
        label="label",
    )
    task = {"data": {"text": "x"}, "annotations": [{"result": [{"value": {"choices": [" "]}}]}]}
    path = write(tmp_path, "a.json", json.dumps([{"data": {"text": "y"}}, task], indent=1))
    rejects(store, path, line=7, field="annotations", says="the label is only whitespace")


def test_meta_naming_a_column_twice(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "a.csv", "text,source,source\nRain stops play,bbc,ap\n")
    rejects(
        store,
        path,
        line=None,
        field="meta",
        says="--meta names the column 'source' twice",
        meta=["source", "source"],
    )
    rejects(
        store,
        path,
        line=1,
        field="source",
        says="the header names this column twice",
        meta=["source"],
    )
    assert run(store, path).imported == 1  # a doubled column nobody asked for is no problem


def test_a_json_object_naming_a_key_twice(store: Store, tmp_path: Path) -> None:
    make_project(store)
    body = '{"text": "one", "label": "sport"}\n{"text": "two", "label": "sport", "label": "tech"}\n'
    path = write(tmp_path, "a.jsonl", body)
    rejects(store, path, line=2, field="label", says="names this key twice", label="label")
    nested = '{"text": "one", "meta": {"a": 1, "a": 2}}\n'
    path = write(tmp_path, "b.jsonl", nested)
    rejects(store, path, line=1, field="a", says="names this key twice")
    tasks = '[\n{"data": {"text": "x"}},\n{"data": {"text": "y", "text": "z"}}\n]'
    path = write(tmp_path, "a.json", tasks)
    rejects(store, path, line=3, field="text", says="the task names this key twice")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "label-studio"])
def test_a_value_over_the_field_limit(store: Store, tmp_path: Path, fmt: str) -> None:
    make_project(store)
    rows = [("short", "sport", "bbc"), ("x" * 101, "tech", "bbc"), ("y", "tech", "s" * 101)]
    path = tmp_path / f"a.{fmt}"
    if fmt == "csv":
        path.write_text("text,label,source\n" + "".join(f"{t},{lab},{s}\n" for t, lab, s in rows))
    elif fmt == "jsonl":
        path.write_text(
            "".join(json.dumps({"text": t, "label": lab, "source": s}) + "\n" for t, lab, s in rows)
        )
    elif fmt == "parquet":
        pq.write_table(
            pa.table(
                {
                    k: list(v)
                    for k, v in zip(
                        ["text", "label", "source"], zip(*rows, strict=True), strict=True
                    )
                }
            ),
            path,
        )
    else:
        path.write_text(
            json.dumps(
                [{"data": {"text": t, "label": lab, "source": s}} for t, lab, s in rows],
                indent=None,
            ).replace("}}, ", "}},\n")
        )
    options: dict[str, Any] = {"label": "label", "meta": ["source"], "fmt": fmt}
    error = rejects(
        store,
        path,
        line=2 if fmt in ("jsonl", "parquet", "label-studio") else 3,
        field="text",
        says="the value has 101 characters, more than the limit of 100",
        max_field_chars=100,
        **options,
    )
    assert "--max-field-chars" in error.message
    rows[1] = ("x" * 100, "tech", "bbc")
    # the meta column is held to the limit too; at 101 the file passes
    if fmt == "csv":
        path.write_text("text,label,source\n" + "".join(f"{t},{lab},{s}\n" for t, lab, s in rows))
        rejects(
            store,
            path,
            line=4,
            field="source",
            says="101 characters",
            max_field_chars=100,
            **options,
        )
        assert run(store, path, max_field_chars=101, **options).imported == 3


def test_mapping_errors(store: Store, tmp_path: Path) -> None:
    make_project(store)
    make_project(store, "tab", task="tabular")
    path = write(tmp_path, "a.csv", "text,label\nx,sport\n")
    rejects(store, path, line=None, field="fields", says="--text", fields=["text"])
    rejects(store, path, line=None, field="text", says="--fields", project="tab", text="text")
    rejects(store, path, line=None, field="fields", says="no input fields", project="tab")
    rejects(
        store, path, line=None, field="label", says="also an input", text="label", label="label"
    )


def test_a_late_error_rolls_back_earlier_batches(
    store: Store, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(ingest, "BATCH_ROWS", 7)
    make_project(store)
    body = "text,label\n" + "".join(f"row {i},sport\n" for i in range(50)) + "last,nope\n"
    path = write(tmp_path, "a.csv", body)
    rejects(store, path, line=52, field="label", says="unknown label 'nope'", label="label")


def test_cannot_be_called_with_a_missing_file(store: Store, tmp_path: Path) -> None:
    make_project(store)
    rejects(store, tmp_path / "nope.csv", line=None, field=None, says="no such file")


def test_imported_labels_count_as_one_answer_for_the_queue(store: Store, tmp_path: Path) -> None:
    from looplab.ask import queue
    from looplab.govern import access

    make_project(store)
    first = write(tmp_path, "a.csv", "body,topic\nRain stops play,sport\nChips shrink,\nVote,\n")
    run(store, first, text="body", label="topic")
    # A second import gives the labeled record another label and labels a new one: the first
    # record still counts once, the newly labeled one once.
    second = write(tmp_path, "b.csv", "body,topic\nRain stops play,politics\nChips shrink,tech\n")
    run(store, second, text="body", label="topic")
    assert {r.payload["text"]: r.n_human for r in records(store)} == {
        "Rain stops play": 1,
        "Chips shrink": 1,
        "Vote": 0,
    }
    with store.write() as session:
        user, _ = access.create_user(session, "ann", "annotator", actor="test")
        project = projects.get_project(session, "news")
        handed = queue.next_record(session, project, user, lease_seconds=60)
        assert handed is not None and handed.payload == {"text": "Vote"}
        # Prefetching past it finds nothing: the labeled records are not open.
        after = queue.next_record(session, project, user, lease_seconds=60, exclude=[handed.id])
        assert after is None


def test_strict_json_docstring_examples() -> None:
    import doctest

    from looplab.collect import strictjson

    result = doctest.testmod(strictjson)
    assert result.attempted > 0 and result.failed == 0


def test_bom_and_zero_width_copies_are_duplicates(store: Store, tmp_path: Path) -> None:
    make_project(store)
    texts = [
        "Shares rose at the bank",
        "\ufeffShares rose at the bank",  # a file concatenated after one with a BOM
        "Shares\u200b rose at the\u2060 bank",  # pasted from a web page
        "Τα κέρδη αυξήθηκαν",  # noqa: RUF001 (Greek, as users write it)
        "\ufeffΤα κέρδη αυξήθηκαν\u00ad",  # noqa: RUF001
    ]
    path = write(tmp_path, "t.jsonl", "".join(json.dumps({"text": t}) + "\n" for t in texts))
    report = run(store, path)
    assert (report.rows, report.imported, report.duplicates) == (5, 2, 3)
    # The record keeps the text as given: only the hash ignores the invisible characters.
    assert [r.payload["text"] for r in records(store)] == [texts[0], texts[3]]


@pytest.mark.parametrize("text", ["\u200b", " \ufeff ", "\u200d\u200c", "\u2060"])
def test_a_zero_width_only_text_is_blank(store: Store, tmp_path: Path, text: str) -> None:
    make_project(store)
    path = write(
        tmp_path, "t.jsonl", json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": text})
    )
    rejects(store, path, line=2, field="text", says="the text is empty")


def test_the_same_file_twice_is_refused_not_counted_twice(store: Store, tmp_path: Path) -> None:
    make_project(store)
    path = write(tmp_path, "news.csv", "text,label\nRates rose.,politics\nRates rose.,politics\n")
    assert run(store, path, label="label").rows == 2
    rejects(store, path, line=None, field=None, says="count each of its rows", label="label")
    with store.read() as session:
        assert session.scalar(select(func.sum(Record.row_count))) == 2
    # The same rows in another file are new observations, and are counted.
    other = write(tmp_path, "more.csv", "text,label\nRates rose.,politics\n")
    assert run(store, other, label="label").rows == 1
    with store.read() as session:
        assert session.scalar(select(func.sum(Record.row_count))) == 3
