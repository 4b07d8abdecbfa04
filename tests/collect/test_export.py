"""Export: each format's rows and columns, final labels, provenance, and round trips."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from looplab.ask import queue
from looplab.collect import export, ingest
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import Record
from looplab.govern import access
from tests.conftest import fresh_store

LABELS = ["sport", "tech", "politics"]
CSV = (
    "text,label,source\n"
    "Rain stops play,sport,bbc\n"
    '"Chips get\nsmaller",tech,wired\n'
    "Vote on Tuesday,,ap\n"
)


def setup(store: Store, tmp_path: Path, name: str = "news") -> list[int]:
    """A text project with three records, one imported label each on two, and human answers."""
    path = tmp_path / f"{name}.csv"
    path.write_text(CSV, encoding="utf-8", newline="")
    with store.write() as session:
        project = projects.create_project(session, name, task="text", labels=LABELS, actor="t")
        ingest.import_file(session, project, path, label="label", meta=["source"], actor="t")
        ids = list(session.scalars(select(Record.id).order_by(Record.id)))
        alice, _ = access.create_user(session, f"alice-{name}", "annotator", actor="t")
        bob, _ = access.create_user(session, f"bob-{name}", "annotator", actor="t")
        # record 0: import says sport, two people say tech -> tech
        queue.annotate(session, project, alice, ids[0], "tech", seconds=2.0)
        queue.annotate(session, project, bob, ids[0], "tech", seconds=3.5)
        # record 2: only a skip -> no label
        queue.skip(session, project, alice, ids[2])
    return ids


def dump(store: Store, fmt: str, project: str = "news", **kw: Any) -> bytes:
    out = io.BytesIO()
    with store.read() as session:
        export.export(session, projects.get_project(session, project), fmt, out, **kw)
    return out.getvalue()


def test_jsonl_rows(store: Store, tmp_path: Path) -> None:
    ids = setup(store, tmp_path)
    rows = [json.loads(line) for line in dump(store, "jsonl").decode().splitlines()]
    assert [r["id"] for r in rows] == ids
    assert [r["text"] for r in rows] == ["Rain stops play", "Chips get\nsmaller", "Vote on Tuesday"]
    assert [r["label"] for r in rows] == ["tech", "tech", None]
    assert [r["source"] for r in rows] == ["bbc", "wired", "ap"]
    assert [r["source_line"] for r in rows] == [2, 3, 5]
    assert len({r["batch_id"] for r in rows}) == 1
    first = rows[0]["annotations"]
    assert [(a["label"], a["annotator"], a["origin"], a["seconds"]) for a in first] == [
        ("sport", None, "import", None),
        ("tech", "alice-news", "human", 2.0),
        ("tech", "bob-news", "human", 3.5),
    ]
    assert first[0]["created_at"].endswith("Z")
    assert rows[2]["annotations"][0]["status"] == "skipped"


def test_include_unlabeled_false(store: Store, tmp_path: Path) -> None:
    ids = setup(store, tmp_path)
    rows = [json.loads(x) for x in dump(store, "jsonl", include_unlabeled=False).splitlines()]
    assert [r["id"] for r in rows] == ids[:2]


def test_csv_rows(store: Store, tmp_path: Path) -> None:
    setup(store, tmp_path)
    text = dump(store, "csv").decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == [
        "id",
        "text",
        "label",
        "source",
        "row_count",
        "annotations",
        "batch_id",
        "source_line",
    ]
    assert rows[1]["text"] == "Chips get\nsmaller"
    assert [r["label"] for r in rows] == ["tech", "tech", ""]
    assert json.loads(rows[0]["annotations"])[1]["annotator"] == "alice-news"


def test_parquet_rows(store: Store, tmp_path: Path) -> None:
    ids = setup(store, tmp_path)
    table = pq.read_table(io.BytesIO(dump(store, "parquet")))
    assert table.column_names == [
        "id",
        "text",
        "label",
        "source",
        "row_count",
        "annotations",
        "batch_id",
        "source_line",
    ]
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ids
    assert [r["label"] for r in rows] == ["tech", "tech", None]
    assert rows[0]["annotations"][2]["annotator"] == "bob-news"
    assert rows[0]["annotations"][2]["created_at"].tzinfo is not None


def test_parquet_types_for_tabular_projects_and_renamed_columns(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,income,city,label,flag\n1,2.5,Paris,sport,x\n2,3,,tech,y\n")
    with store.write() as session:
        project = projects.create_project(session, "tab", task="tabular", labels=LABELS, actor="t")
        ingest.import_file(
            session,
            project,
            path,
            fields=["id", "income", "city"],
            label="label",
            meta=["flag", "label"],
            actor="t",
        )
    table = pq.read_table(io.BytesIO(dump(store, "parquet", "tab")))
    assert table.column_names == [
        "id",
        "data.id",
        "income",
        "city",
        "label",
        "flag",
        "meta.label",
        "row_count",
        "annotations",
        "batch_id",
        "source_line",
    ]
    assert str(table.schema.field("data.id").type) == "int64"
    assert str(table.schema.field("income").type) == "double"
    rows = table.to_pylist()
    assert [(r["data.id"], r["income"], r["city"]) for r in rows] == [
        (1, 2.5, "Paris"),
        (2, 3, None),
    ]
    assert [r["meta.label"] for r in rows] == ["sport", "tech"]


def test_label_studio_tasks_and_predictions(store: Store, tmp_path: Path) -> None:
    ids = setup(store, tmp_path)
    predictions = {ids[2]: ("v1", "politics", 0.75)}
    tasks = json.loads(dump(store, "label-studio", predictions=predictions))
    assert [t["id"] for t in tasks] == ids
    assert tasks[0]["data"] == {"text": "Rain stops play", "source": "bbc"}
    results = [a["result"][0] for a in tasks[0]["annotations"]]
    assert [r["value"]["choices"] for r in results] == [["sport"], ["tech"], ["tech"]]
    assert {(r["from_name"], r["to_name"], r["type"]) for r in results} == {
        ("label", "text", "choices")
    }
    assert "completed_by" not in tasks[0]["annotations"][0]  # imported: nobody
    # Label Studio takes completed_by as an e-mail (or its own user ids, which are not ours):
    # an annotator with no e-mail is left out, and the export says so.
    assert "completed_by" not in tasks[0]["annotations"][1]
    assert tasks[0]["annotations"][1]["lead_time"] == 2.0
    assert not any(a["ground_truth"] for t in tasks for a in t["annotations"])
    # A skip is Label Studio's cancelled answer: exported as such, never as a label.
    assert [(a["was_cancelled"], a["result"]) for a in tasks[2]["annotations"]] == [(True, [])]
    assert tasks[2]["predictions"] == [
        {
            "model_version": "v1",
            "score": 0.75,
            "result": [
                {
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["politics"]},
                }
            ],
        }
    ]


def _texts_and_labels(store: Store, project: str) -> list[tuple[str, list[str]]]:
    rows = [json.loads(x) for x in dump(store, "jsonl", project).splitlines()]
    return [
        (r["text"], sorted({a["label"] for a in r["annotations"] if a["status"] == "active"}))
        for r in rows
    ]


@pytest.mark.parametrize(
    ("fmt", "suffix", "mapping"),
    [
        ("label-studio", ".json", {}),
        ("jsonl", ".jsonl", {"label": "label", "meta": ["source"]}),
        ("csv", ".csv", {"label": "label", "meta": ["source"]}),
        ("parquet", ".parquet", {"label": "label", "meta": ["source"]}),
    ],
)
def test_round_trip(
    store: Store, tmp_path: Path, fmt: str, suffix: str, mapping: dict[str, Any]
) -> None:
    setup(store, tmp_path)
    path = tmp_path / f"out{suffix}"
    with store.read() as session:
        export.export(session, projects.get_project(session, "news"), fmt, path)
    with store.write() as session:
        copy = projects.create_project(session, "copy", task="text", labels=LABELS, actor="t")
        report = ingest.import_file(session, copy, path, actor="t", **mapping)
    assert report.imported == 3
    original = _texts_and_labels(store, "news")
    copied = _texts_and_labels(store, "copy")
    assert [t for t, _ in copied] == [t for t, _ in original]
    if fmt == "label-studio":  # every answer travels
        assert copied == original
    else:  # the final label travels
        assert [labels for _, labels in copied] == [["tech"], ["tech"], []]
    meta = [json.loads(x)["source"] for x in dump(store, "jsonl", "copy").splitlines()]
    assert meta == ["bbc", "wired", "ap"]


def test_text_streams_paths_and_errors(store: Store, tmp_path: Path) -> None:
    setup(store, tmp_path)
    with store.read() as session:
        project = projects.get_project(session, "news")
        text = io.StringIO()
        assert export.export(session, project, "jsonl", text) == 3
        assert text.getvalue().count("\n") == 3
        with pytest.raises(Invalid, match="Parquet is binary"):
            export.export(session, project, "parquet", io.StringIO())
        with pytest.raises(Invalid, match="unknown export format 'xml'") as caught:
            export.export(session, project, "xml", io.BytesIO())
        assert caught.value.details["field"] == "format"
        out = io.BytesIO()
        export.export(session, project, "csv", out)
        assert not out.closed  # the caller's stream stays open


def test_parquet_to_a_pipe(tmp_path: Path) -> None:
    """``looplab export --format parquet > file`` writes to a non-seekable binary stdout."""
    with fresh_store("sqlite", tmp_path) as store:
        setup(store, tmp_path)
        script = (
            "import sys\n"
            "from looplab.collect import export\n"
            "from looplab.core import projects\n"
            "from looplab.core.store import Store\n"
            f"store = Store({store.url!r})\n"
            "with store.read() as s:\n"
            "    export.export(s, projects.get_project(s, 'news'), 'parquet', sys.stdout.buffer)\n"
        )
        piped = subprocess.run(
            [sys.executable, "-c", script], check=True, stdout=subprocess.PIPE, timeout=120
        )
    assert pq.read_table(io.BytesIO(piped.stdout)).num_rows == 3


def test_final_label_majority_and_ties() -> None:
    def a(label: str | None, status: str = "active") -> dict[str, Any]:
        return {"label": label, "status": status}

    assert export.final_label([]) is None
    assert export.final_label([a("x"), a("y"), a("y")]) == "y"
    assert export.final_label([a("x"), a("y")]) == "x"  # tie: answered first
    assert export.final_label([a("x", "superseded"), a("y")]) == "y"
    assert export.final_label([a(None, "skipped")]) is None


def test_parquet_types_tabular_fields_by_the_column_types(store: Store, tmp_path: Path) -> None:
    from tests.collect.test_schema import loans_csv

    path = loans_csv(tmp_path / "loans.csv", n=40)
    with store.write() as session:
        project = projects.create_project(
            session, "loans", task="tabular", labels=["paid", "default"], actor="t"
        )
        ingest.import_file(
            session, project, path, fields=["age", "zip", "owns_home", "balance"], actor="t"
        )
    out = tmp_path / "loans.parquet"
    with store.read() as session:
        export.export(session, projects.get_project(session, "loans"), "parquet", out)
    table = pq.read_table(out)
    kinds = {name: str(table.schema.field(name).type) for name in ("age", "zip", "balance")}
    assert kinds == {"age": "double", "zip": "string", "balance": "double"}
    assert str(table.schema.field("owns_home").type) == "bool"
    rows = table.to_pylist()
    assert rows[0]["age"] is None  # "NA" in the file
    assert {r["zip"] for r in rows} <= {"97095", "00523", "10001", "02134"}
    assert {r["owns_home"] for r in rows} <= {True, False, None}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_repeated_rows_export_their_counts(store: Store, tmp_path: Path, fmt: str) -> None:
    """5 identical rows (3 yes, 2 no) are one record: the export says it stood for 5 rows."""
    path = tmp_path / "rep.csv"
    path.write_text("shop,label\n" + "a,yes\n" * 3 + "a,no\n" * 2 + "b,no\n")
    with store.write() as session:
        project = projects.create_project(
            session, "rep", task="tabular", labels=["yes", "no"], actor="t"
        )
        ingest.import_file(session, project, path, fields=["shop"], label="label", actor="t")
    data = dump(store, fmt, "rep")
    if fmt == "jsonl":
        rows = [json.loads(line) for line in data.decode().splitlines()]
    else:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    by_shop = {r["shop"]: r for r in rows}
    assert by_shop["a"]["row_count"] == 5 and by_shop["b"]["row_count"] == 1
    counts = {a["label"]: a["row_count"] for a in by_shop["a"]["annotations"]}
    assert counts == {"yes": 3, "no": 2}
