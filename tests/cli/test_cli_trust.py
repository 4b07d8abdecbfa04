"""`looplab gold`, `agreement`, `annotators`, `quarantine` and `release` as a user runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from looplab.ask import queue
from looplab.cli.app import app
from looplab.core import projects
from looplab.core.store import Store
from looplab.core.tables import AuditEvent, GoldAnswer, Job, Record
from looplab.govern import access
from tests import textdata

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def crowd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Project ``news``: 90 articles, each answered by ann, bob (right 95% of the time) and
    mallory, who files every sport article under business."""
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("LOOPLAB_DATABASE_URL", raising=False)
    assert run("init", "news", "--task", "text", "--labels", ",".join(textdata.LABELS))[0] == 0
    assert run("config", "news", "overlap=3", "overlap_fraction=1.0")[0] == 0
    rows = textdata.rows(90)
    with (tmp_path / "news.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("text",), *((text,) for text, _, _ in rows)])
    assert run("import", "news", str(tmp_path / "news.csv"))[0] == 0
    store = Store(f"sqlite:///{tmp_path / 'ws' / 'looplab.db'}")
    rng = np.random.default_rng(0)
    truth = {text: label for text, label, _ in rows}
    with store.write() as session:
        project = projects.get_project(session, "news")
        people = [
            access.create_user(session, n, "annotator", actor="t")[0]
            for n in ("ann", "bob", "mallory")
        ]
        for record in session.scalars(select(Record).order_by(Record.id)):
            true = truth[record.payload["text"]]
            for person in people:
                if person.name == "mallory":
                    label = "business" if true == "sport" else true
                else:
                    label = true if rng.random() < 0.95 else str(rng.choice(textdata.LABELS))
                queue.annotate(session, project, person, record.id, label, seconds=4.0)
    yield store
    store.dispose()


def test_agreement_reports_alpha_with_its_interval_and_every_pair(crowd: Store) -> None:
    code, out, _ = run("agreement", "news", "--json")
    assert code == 0
    found = json.loads(out)
    overall = found["overall"]
    assert found["n_records"] == 90 and overall["n_labels"] == 270
    assert overall["low"] < overall["alpha"] < overall["high"]
    assert set(found["per_label"]) == set(textdata.LABELS)
    # mallory's flip shows on sport, and in her pairs.
    assert found["per_label"]["sport"]["alpha"] < found["per_label"]["tech"]["alpha"]
    pairs = {(p["a"], p["b"]): p["kappa"] for p in found["pairs"]}
    assert pairs[("ann", "bob")] > max(pairs[("ann", "mallory")], pairs[("bob", "mallory")])
    code, out, _ = run("agreement", "news")
    assert code == 0 and "Krippendorff's alpha" in out and "mallory" in out
    code, _, err = run("agreement", "news", "--by", "year")
    assert code == 2 and "unknown batch 'year'; valid: day, week, month" in err


def test_annotators_flag_the_flipper_and_auto_quarantines_her(crowd: Store) -> None:
    code, out, _ = run("annotators", "news", "--json")
    assert code == 0
    people = {p["user"]: p for p in json.loads(out)["annotators"]}
    assert [f["reason"] for f in people["mallory"]["flags"]] == ["flipped_class"]
    assert people["mallory"]["worst_confusion"]["truth"] == "sport"
    assert people["ann"]["flags"] == [] and people["ann"]["standing"]["status"] == "ok"
    assert run("config", "news", "quarantine_policy=auto")[0] == 0
    code, out, _ = run("annotators", "news", "--run", "--json")
    assert code == 0
    found = json.loads(out)
    assert found["check"]["quarantined"] == ["mallory"]
    people = {p["user"]: p for p in found["annotators"]}
    assert people["mallory"]["standing"]["status"] == "quarantined"
    assert people["mallory"]["standing"]["policy"] == "auto"
    with crowd.read() as session:
        assert session.scalar(select(func.count()).where(Job.kind == "train")) == 1
    code, out, _ = run("release", "news", "mallory", "--reason", "new guideline")
    assert code == 0 and "mallory is released" in out


def test_unknown_user_or_bad_gold_file_exit_2_and_write_nothing(
    crowd: Store, tmp_path: Path
) -> None:
    def events() -> int:
        with crowd.read() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent)) or 0

    before = events()
    code, _, err = run("quarantine", "news", "nobody", "--reason", "spam")
    assert code == 2 and "no user named 'nobody'" in err
    code, _, err = run("release", "news", "ann")
    assert code == 2 and "'ann' is not quarantined in project 'news'" in err
    gold = tmp_path / "gold.csv"
    gold.write_text("text,topic\nthe cup final,sport\nrates rise,weather\n")
    code, _, err = run("gold", "news", str(gold), "--label", "topic")
    assert code == 2 and "line 3, field 'topic': unknown label 'weather'" in err
    assert events() == before
    with crowd.read() as session:
        assert session.scalar(select(func.count()).select_from(GoldAnswer)) == 0
    gold.write_text("text,topic\nthe cup final,sport\n")
    code, out, _ = run("gold", "news", str(gold), "--label", "topic")
    assert code == 0 and "1 new gold records" in out
