"""Label Studio both ways, on exports Label Studio 1.23.2 itself produced (tests/data/labelstudio,
made by make_exports.py there): every answer, its annotator, its predictions; bad input refused."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from looplab.collect import export, ingest
from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import Annotation, ExternalPrediction, Record, User
from looplab.govern import access

DATA = Path(__file__).parents[1] / "data" / "labelstudio"
TOPICS = ["business", "tech", "sport", "politics"]


def make_project(store: Store, name: str = "news", labels: list[str] | None = None) -> None:
    with store.write() as session:
        projects.create_project(session, name, task="text", labels=labels or TOPICS, actor="t")


def run(store: Store, path: Path, project: str = "news", **kw: Any) -> ingest.ImportReport:
    with store.write() as session:
        target = projects.get_project(session, project)
        return ingest.import_file(session, target, path, actor="tester", **kw)


def exported(store: Store, project: str = "news", **kw: Any) -> tuple[list[dict], list[str]]:
    buffer = io.BytesIO()
    notes: list[str] = []
    with store.read() as session:
        target = projects.get_project(session, project)
        export.export(session, target, "label-studio", buffer, notes=notes, **kw)
    return json.loads(buffer.getvalue()), notes


def stored_answers(store: Store, project: str = "news") -> set[tuple[Any, ...]]:
    """(LS id, e-mail, label, cancelled, lead time, created_at, ground truth) of every answer."""
    with store.read() as session:
        pid = projects.get_project(session, project).id
        rows = session.execute(
            select(
                Annotation.external_id,
                User.email,
                Annotation.label,
                Annotation.status,
                Annotation.seconds,
                Annotation.created_at,
                Annotation.ground_truth,
            )
            .outerjoin(User, User.id == Annotation.annotator_id)
            .where(Annotation.project_id == pid)
        ).all()
    return {
        (ext, email, label, status == "skipped", seconds, created, truth)
        for ext, email, label, status, seconds, created, truth in rows
    }


def file_answers(tasks: list[dict]) -> set[tuple[Any, ...]]:
    """The same tuples, read from a Label Studio JSON export with plain json (no looplab code)."""
    out = set()
    for task in tasks:
        for a in task["annotations"]:
            choices = [r["value"]["choices"] for r in a["result"]]
            created = dt.datetime.fromisoformat(a["created_at"].replace("Z", "+00:00"))
            out.add(
                (
                    str(a["id"]),
                    a["completed_by"]["email"],
                    choices[0][0] if choices else None,
                    a["was_cancelled"],
                    a["lead_time"],
                    created,
                    a["ground_truth"],
                )
            )
    return out


def load(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


# -- import ---------------------------------------------------------------------------------------


def test_every_answer_keeps_its_annotator_time_and_lead_time(store: Store) -> None:
    make_project(store)
    tasks = load("topic.json")
    report = run(store, DATA / "topic.json")
    summary = report.labelstudio
    assert summary is not None
    n_answers = sum(1 for t in tasks for a in t["annotations"] if not a["was_cancelled"])
    n_cancelled = sum(1 for t in tasks for a in t["annotations"] if a["was_cancelled"])
    assert (summary["tasks"], summary["answers"], summary["cancelled"]) == (
        len(tasks),
        n_answers,
        n_cancelled,
    )
    assert (n_answers, n_cancelled) == (17, 2)  # what make_exports.py asked Label Studio for
    assert report.labels == n_answers  # two people agreeing are two answers, not one label
    assert summary["from_name"] == "topic" and summary["to_name"] == "text"
    assert summary["annotators"] == {
        "admin@looplab.test": 1,
        "alice@looplab.test": 8,
        "bob@looplab.test": 8,
    }
    assert sorted(summary["placeholder_users"]) == [
        "admin@looplab.test",
        "alice@looplab.test",
        "bob@looplab.test",
    ]
    assert stored_answers(store) == file_answers(tasks)
    with store.read() as session:
        placeholders = session.scalars(select(User)).all()
        assert all(not u.active and u.token_hash.startswith("!") for u in placeholders)


def test_agreement_stays_visible_and_people_count_once(store: Store) -> None:
    make_project(store)
    run(store, DATA / "topic.json")
    with store.read() as session:
        first = session.scalars(select(Record).order_by(Record.id)).first()
        assert first is not None
        labels = session.scalars(
            select(Annotation.label).where(
                Annotation.record_id == first.id, Annotation.status == "active"
            )
        ).all()
        # Alice and bob on task 1, and bob again on task 13 (the same text): three answers,
        # two people towards the record's overlap.
        assert labels == ["business", "business", "business"]
        assert first.n_human == 2
        assert first.external_id == "1"


def test_predictions_are_kept_with_model_version_and_score(store: Store) -> None:
    make_project(store)
    report = run(store, DATA / "topic.json")
    assert report.labelstudio is not None
    assert report.labelstudio["predictions"] == {"m-2024": 2}
    want = {
        (str(t["id"]), p["model_version"], p["result"][0]["value"]["choices"][0], p["score"])
        for t in load("topic.json")
        for p in t["predictions"]
    }
    with store.read() as session:
        got = set(
            session.execute(
                select(
                    Record.external_id,
                    ExternalPrediction.model_version,
                    ExternalPrediction.label,
                    ExternalPrediction.score,
                ).join(Record, Record.id == ExternalPrediction.record_id)
            ).tuples()
        )
    assert got == want and len(want) == 2


def test_reimporting_the_same_export_adds_nothing(store: Store) -> None:
    make_project(store)
    run(store, DATA / "topic.json")
    before = stored_answers(store)
    again = run(store, DATA / "topic.json")
    assert again.labelstudio is not None
    assert (again.imported, again.labels, again.labelstudio["already_imported"]) == (0, 0, 19)
    assert again.labelstudio["placeholder_users"] == []
    assert stored_answers(store) == before
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(ExternalPrediction)) == 2
        assert session.scalar(select(func.max(Record.n_human))) == 2


def test_annotators_are_matched_to_existing_users_by_email(store: Store) -> None:
    make_project(store)
    with store.write() as session:
        access.create_user(session, "alice", "annotator", actor="t")
        access.set_email(session, "alice", "Alice@Looplab.test", actor="t")
        access.create_user(session, "bob@looplab.test", "reviewer", actor="t")  # named by e-mail
    report = run(store, DATA / "topic.json")
    assert report.labelstudio is not None
    assert report.labelstudio["placeholder_users"] == ["admin@looplab.test"]
    assert report.labelstudio["annotators"]["alice"] == 8
    with store.read() as session:
        bob = session.scalars(select(User).where(User.name == "bob@looplab.test")).one()
        assert bob.email == "bob@looplab.test" and bob.active  # linked, not replaced


def test_a_merged_duplicate_task_is_reported_with_its_differing_meta(store: Store) -> None:
    make_project(store)
    report = run(store, DATA / "topic.json")
    assert report.labelstudio is not None
    assert report.duplicates == 1
    [merged] = report.labelstudio["merged"]
    assert (merged["task"], merged["kept_task"]) == ("13", "1")
    assert merged["meta_differs"] == ["origin", "source", "tags", "weight"]


def test_json_min_and_csv_exports_give_the_same_answers(store: Store) -> None:
    make_project(store, "full")
    make_project(store, "min")
    make_project(store, "csv")
    run(store, DATA / "topic.json", project="full")
    run(store, DATA / "topic.min.json", project="min")
    run(store, DATA / "topic.csv", project="csv")
    full = stored_answers(store, "full")
    # JSON_MIN and CSV leave out cancelled answers and ground truth; the rest is the same.
    same = {a[:3] + a[4:6] for a in full if not a[3]}
    assert {a[:3] + a[4:6] for a in stored_answers(store, "min")} == same
    assert {a[:3] + a[4:6] for a in stored_answers(store, "csv")} == same
    with store.read() as session:
        metas = {
            name: session.scalars(
                select(Record.meta)
                .where(Record.project_id == projects.get_project(session, name).id)
                .order_by(Record.id)
            ).first()
            for name in ("full", "min", "csv")
        }
    assert metas["min"] == metas["full"]  # JSON_MIN keeps types: ints, bools, lists, objects
    assert metas["full"] is not None and metas["full"]["n_words"] == 9
    assert metas["csv"] is not None and metas["csv"]["n_words"] == "9"  # CSV holds text


def test_a_second_import_of_json_min_is_idempotent_too(store: Store) -> None:
    make_project(store)
    run(store, DATA / "topic.min.json")
    again = run(store, DATA / "topic.min.json")
    assert again.labelstudio is not None
    assert (again.labels, again.labelstudio["already_imported"]) == (0, 17)


# -- refusals -------------------------------------------------------------------------------------


def refused(store: Store, path: Path, says: str, **kw: Any) -> Invalid:
    with pytest.raises(Invalid) as caught:
        run(store, path, **kw)
    assert says in caught.value.message, caught.value.message
    with store.read() as session:  # all or nothing
        assert session.scalar(select(func.count()).select_from(Record)) == 0
        assert session.scalar(select(func.count()).select_from(User)) == 0
    return caught.value


def test_multiple_choices_are_refused_not_cut_to_the_first(store: Store) -> None:
    make_project(store)
    task = next(t for t in load("multi.json") if len(t["annotations"]) == 2)
    refused(
        store,
        DATA / "multi.json",
        f"task {task['id']}, annotation {task['annotations'][0]['id']} by alice@looplab.test:"
        " 2 choices ['business', 'tech'] in control 'topic'",
    )


def test_spans_are_refused_with_the_task_and_result_type(store: Store) -> None:
    make_project(store, labels=["PER", "ORG"])
    task = load("spans.json")[0]
    error = refused(
        store,
        DATA / "spans.json",
        f"task {task['id']}, annotation {task['annotations'][0]['id']} by alice@looplab.test:"
        " a 'labels' result of control 'label'",
    )
    assert error.details["field"] == "annotations"


def test_two_choices_controls_need_from_name(store: Store) -> None:
    make_project(store, labels=["business", "tech", "positive", "negative"])
    refused(
        store,
        DATA / "two_controls.json",
        "this export answers several Choices controls ('topic', 'sentiment'); pick one with"
        " --from-name",
    )
    report = run(store, DATA / "two_controls.json", from_name="sentiment")
    assert report.labelstudio is not None
    assert report.labelstudio["from_name"] == "sentiment"
    assert report.labelstudio["left_out"] == {"topic (choices)": 3}
    assert report.labels == 3
    with store.read() as session:
        assert set(session.scalars(select(Annotation.label))) == {"positive", "negative"}


def test_flat_exports_with_an_unknown_column_or_label_are_refused(store: Store) -> None:
    make_project(store)
    refused(store, DATA / "topic.min.json", "the export has no column 'topc'", from_name="topc")
    make_project(store, "other", labels=["a", "b"])
    refused(
        store,
        DATA / "topic.csv",
        "a Label Studio CSV export: name its label column (the control) with --from-name",
        project="other",
    )


def test_an_unknown_label_names_the_task_line(store: Store) -> None:
    make_project(store, labels=["business", "tech", "sport"])  # no "politics"
    refused(store, DATA / "topic.json", "unknown label 'politics'")


# -- export ---------------------------------------------------------------------------------------


def test_export_is_what_label_studio_imports(store: Store) -> None:
    make_project(store)
    run(store, DATA / "topic.json")
    tasks, notes = exported(store)
    source = load("topic.json")
    answers = [a for t in tasks for a in t["annotations"]]
    # In equals out: tasks (one merged by dedupe), answers, annotators, predictions.
    assert len(tasks) == len(source) - 1
    assert len(answers) == sum(len(t["annotations"]) for t in source) == 19
    assert {a["completed_by"]["email"] for a in answers} == {
        a["completed_by"]["email"] for t in source for a in t["annotations"]
    }
    assert sum(len(t["predictions"]) for t in tasks) == 2
    assert notes == []
    for a in answers:
        assert a["ground_truth"] in (True, False)
        if a["was_cancelled"]:
            assert a["result"] == []
        else:
            [item] = a["result"]
            assert (item["from_name"], item["to_name"], item["type"]) == (
                "topic",
                "text",
                "choices",
            )
    assert sum(a["ground_truth"] for a in answers) == 1
    assert sum(a["was_cancelled"] for a in answers) == 2
    scored = {(p["model_version"], p["score"]) for t in tasks for p in t["predictions"]}
    assert scored == {("m-2024", 0.91), ("m-2024", 0.55)}
    by_text = {t["data"]["text"]: t["data"] for t in source}
    for task in tasks:  # texts byte-exact, metadata with its types
        assert task["data"] == by_text[task["data"]["text"]]


def test_round_trip_is_stable(store: Store, tmp_path: Path) -> None:
    make_project(store)
    make_project(store, "again")
    run(store, DATA / "topic.json")
    first, _ = exported(store)
    target = tmp_path / "first.json"
    target.write_text(json.dumps(first, ensure_ascii=False), encoding="utf-8")
    report = run(store, target, project="again")
    assert report.labelstudio is not None
    assert report.labelstudio["tasks"] == len(first) and report.duplicates == 0
    second, _ = exported(store, "again")
    assert [{**t, "id": None} for t in second] == [{**t, "id": None} for t in first]


def test_names_are_overridable_and_missing_emails_are_noted(store: Store) -> None:
    make_project(store)
    run(store, DATA / "topic.json")
    with store.write() as session:
        access.set_email(session, "bob@looplab.test", None, actor="t")
        project = projects.get_project(session, "news")
        names = export.ls_names(session, project, from_name="label", text_key="body")
    tasks, notes = exported(store, names=names)
    assert "body" in tasks[0]["data"] and "text" not in tasks[0]["data"]
    assert tasks[0]["annotations"][0]["result"][0]["from_name"] == "label"
    # Bob's 8 answers and 1 cancelled one.
    assert notes == [
        "9 answers by bob@looplab.test have no completed_by (no e-mail known): Label Studio will"
        " credit them to the user who imports the file; set the e-mail with `looplab user email"
        " NAME ADDRESS`"
    ]


def test_csv_export_rows_have_the_label_column() -> None:
    """The CSV file really is Label Studio's: one row per answer with the control's column."""
    with (DATA / "topic.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"annotation_id", "annotator", "lead_time", "topic", "text"} <= set(rows[0])


# -- command line ---------------------------------------------------------------------------------


def test_the_command_line_imports_reports_and_exits_2_on_what_it_cannot_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from looplab.cli.app import app

    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("LOOPLAB_DATABASE_URL", raising=False)
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    assert cli("init", "news", "--labels", ",".join(TOPICS))[0] == 0
    code, out, _ = cli("import", "news", str(DATA / "topic.json"))
    assert code == 0, out
    assert "17 answers, 2 cancelled (kept as skips)" in out
    assert "annotator alice@looplab.test: 8 answers" in out
    assert "predictions of m-2024: 2 kept with their scores" in out
    assert "task 13 merged into record 1 (task 1, same input)" in out
    code, out, _ = cli("import", "news", str(DATA / "multi.json"))
    assert code == 2
    code, out, err = cli("import", "news", str(DATA / "spans.json"))
    assert code == 2 and "a 'labels' result of control 'label'" in err
    assert cli("user", "email", "alice@looplab.test", "not-an-address")[0] == 2
    assert cli("user", "email", "bob@looplab.test", "")[0] == 0
    target = tmp_path / "out.json"
    code, _, err = cli("export", "news", "--format", "label-studio", "-o", str(target))
    assert code == 0 and "control 'topic', object 'text'" in err
    assert "9 answers by bob@looplab.test have no completed_by" in err
    assert len(json.loads(target.read_text(encoding="utf-8"))) == 12
    code, _, err = cli("export", "news", "--from-name", "x")
    assert code == 2 and "are for --format label-studio" in err


def test_predictions_looplab_cannot_hold_are_counted_by_version(
    store: Store, tmp_path: Path
) -> None:
    make_project(store)
    tasks = load("multi.json")[2:]  # the unanswered task
    tasks[0]["predictions"] = [
        {
            "id": 1,
            "model_version": "m-multi",
            "score": 0.5,
            "result": load("multi.json")[0]["annotations"][0]["result"],
        },
    ]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    report = run(store, path)
    assert report.labelstudio is not None
    assert report.labelstudio["predictions_not_held"] == {"m-multi": 1}
    assert report.labelstudio["predictions"] == {}


def test_a_label_studio_csv_with_several_choices_in_a_cell_is_refused(
    store: Store, tmp_path: Path
) -> None:
    make_project(store)
    rows = (DATA / "topic.csv").read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([rows[0]]))
    cells = next(csv.reader([rows[1]]))
    cells[header.index("topic")] = json.dumps({"choices": ["business", "tech"]})
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, cells])
    path = tmp_path / "multi.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    error = refused(store, path, "2 choices ['business', 'tech'] in control 'topic'")
    assert (error.details["line"], error.details["field"]) == (2, "topic")


def test_an_unanswered_first_csv_row_keeps_no_label_column_in_its_meta(
    store: Store, tmp_path: Path
) -> None:
    make_project(store)
    with (DATA / "topic.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    aid = header.index("annotation_id")
    body.sort(key=lambda row: row[aid] != "")  # the unanswered task first
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    path = tmp_path / "first-unanswered.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    report = run(store, path)
    assert report.labelstudio is not None and report.labelstudio["answers"] == 17
    with store.read() as session:
        metas = session.scalars(select(Record.meta).order_by(Record.id)).all()
    assert all("topic" not in meta for meta in metas)
    assert metas[0]["source"] == "afp"


@pytest.mark.parametrize("name", ["topic.json", "topic.csv"])
def test_label_studio_files_dedupe_by_content_whatever_the_project_setting(
    store: Store, name: str
) -> None:
    from looplab import configure

    make_project(store)
    with store.write() as session:
        project = projects.get_project(session, "news")
        configure.update_settings(session, project, {"dedupe": "none"}, actor="t")
    report = run(store, DATA / name)
    assert report.dedupe == "content"
    assert report.labelstudio is not None and report.labelstudio["answers"] == 17
