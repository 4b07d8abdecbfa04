"""`looplab train | models | gate | promote | rollback | card | report` as a user runs them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from looplab.cli.app import app
from tests.textdata import LABELS, rows

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def news(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with a labeled text project and v1 trained."""
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("LOOPLAB_DATABASE_URL", raising=False)
    path = tmp_path / "news.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic", "source"])
        writer.writerows(rows(300))
    assert run("init", "news", "--labels", ",".join(LABELS))[0] == 0
    # ECE over 10 bins on ~50 test records is noisy: loosen the bound for this small project.
    assert run("config", "news", "gate_max_ece=0.25")[0] == 0
    code, _, err = run(
        "import", "news", str(path), "--text", "text", "--label", "topic", "--meta", "source"
    )
    assert code == 0, err
    code, out, err = run("train", "news", "--json")
    assert code == 0 and json.loads(out)["model"] == "v1", err
    return tmp_path


def test_gate_promote_rollback_exit_codes(news: Path) -> None:
    code, out, _ = run("gate", "news", "v1", "--json")
    assert code == 0 and json.loads(out)["passed"] is True
    assert json.loads(out)["production"] is None
    code, out, _ = run("promote", "news", "v1")
    assert code == 0 and "v1 is in production" in out

    assert run("config", "news", "estimator=sklearn.dummy.DummyClassifier")[0] == 0
    assert run("train", "news")[0] == 0
    code, out, err = run("gate", "news", "v2")
    assert code == 1 and "FAIL: v2 may not replace v1" in err and "worse by" in err
    code, out, _ = run("gate", "news", "v2", "--json")
    data = json.loads(out)
    assert code == 1 and data["passed"] is False and data["candidate"] == "v2"
    assert any(c["name"] == "metric" and not c["passed"] for c in data["checks"])

    code, _, err = run("promote", "news", "v2")
    assert code == 1 and "refused" in err and "worse by" in err
    code, _, err = run("promote", "news", "v2", "--force")
    assert code == 2 and "needs a reason" in err
    code, out, _ = run("promote", "news", "v2", "--force", "--reason", "demo", "--json")
    assert code == 0 and json.loads(out)["forced"] is True

    code, out, _ = run("models", "news", "--json")
    assert [(m["version"], m["stage"]) for m in json.loads(out)] == [
        ("v1", "archived"),
        ("v2", "production"),
    ]
    code, out, _ = run("rollback", "news", "--reason", "v2 is worse")
    assert code == 0 and "v1 is in production again (was v2)" in out
    code, out, _ = run("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_bad_input_exits_2(news: Path) -> None:
    code, _, err = run("gate", "news", "v9")
    assert code == 2 and "no model 'v9' in project 'news'" in err
    code, _, err = run("promote", "nope", "v1")
    assert code == 2 and "no project named 'nope'" in err
    code, _, err = run("rollback", "news")
    assert code == 2 and "no production model to roll back" in err
    code, _, err = run("config", "news", "gate_tolerance=5")
    assert code == 2 and "gate_tolerance must be a number from 0 to 1" in err


def test_tampered_artifact_exits_2_with_a_clear_message(news: Path) -> None:
    path = next((news / "ws").rglob("v1-*.skops"))
    good = path.read_bytes()
    data = bytearray(good)
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    code, _, err = run("gate", "news", "v1")
    assert code == 2 and "modified or corrupted after it was saved" in err
    path.write_bytes(good)
    assert run("promote", "news", "v1")[0] == 0
    path.write_bytes(bytes(data))
    # Watching the production model says the same in one message, with no traceback.
    code, out, err = run("drift", "news", "--window", "1d")
    assert code == 2 and "model v1 of project 'news' cannot be loaded" in err
    assert "Traceback" not in out + err


def test_report_and_card(news: Path) -> None:
    run("promote", "news", "v1")
    run("train", "news", "--force")  # the same labels: only --force makes a v2
    target = news / "report.html"
    code, out, err = run("report", "news", "--html", str(target))
    assert code == 0, err
    page = target.read_text()
    assert page.startswith("<!doctype html>") and "news v2: evaluation" in page
    assert page.count("<svg") >= 4  # reliability, confusion, per class, slices/learning curve
    for title in ("Reliability (ECE", "Confusion matrix", "Per class", "Learning curve"):
        assert title in page
    assert "PASS" in page and "against v1" in page
    # Self-contained: no scripts, nothing fetched (only the SVG namespace URIs remain).
    assert not re.search(r"<script|(src|href)=[\"']?https?:|@import", page)
    assert set(re.findall(r"https?://[^\"' ]+", page)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }

    code, out, _ = run("card", "news", "v1")
    assert code == 0 and out.startswith("# Model card: news v1")
    for section in (
        "## Training data",
        "## Evaluation",
        "## Calibration",
        "## Slices",
        "## Stage history",
    ):
        assert section in out
    assert "| candidate | production | cli:" in out
    assert "(import)" in out  # who taught it: imported labels


def test_an_old_versions_ece_is_marked_optimistic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A calibrated version without a cross calibrator: its ECE is marked, a footnote says why."""
    from looplab.cli.app import opened
    from looplab.core import projects
    from looplab.core.settings import Settings
    from looplab.core.tables import Job
    from looplab.govern import card
    from looplab.learn import registry, training
    from tests.calibrated import forget_cross_calibrator
    from tests.textdata import add_text_project

    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("LOOPLAB_DATABASE_URL", raising=False)
    with opened() as store:
        with store.write() as session:
            project_id = add_text_project(session).id
        job = Job(kind="train", project_id=project_id, params={"actor": "test"})
        assert training.train_project(store, Settings(), job)["model"] == "v1"
    code, out, _ = run("models", "news")
    assert code == 0 and "optimistic" not in out and "*" not in out
    assert json.loads(run("models", "news", "--json")[1])[0]["ece_optimistic"] is False
    report = tmp_path / "report.html"
    assert run("report", "news", "--html", str(report))[0] == 0
    assert "optimistic" not in report.read_text()
    with opened() as store:
        forget_cross_calibrator(store)  # as trained before cross-fitting
        with store.read() as session:
            row = registry.get_version(session, projects.get_project(session, "news"), "v1")
            ece, brier = row.metrics["ece"], row.metrics["brier"]

    code, out, _ = run("models", "news")
    assert code == 0 and f"{ece:.3f}*" in out
    assert card.OPTIMISTIC_NOTE in " ".join(out.split())
    assert json.loads(run("models", "news", "--json")[1])[0]["ece_optimistic"] is True
    assert run("report", "news", "--html", str(report))[0] == 0
    page = report.read_text()
    assert f"<td>ECE</td><td>{ece:.3f}*</td>" in page
    assert f"<td>Brier</td><td>{brier:.3f}*</td>" in page
    assert f"<p class=note>{card.OPTIMISTIC_NOTE}</p>" in page


def test_train_skips_a_twin_and_times_the_whole_command(
    news: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from looplab import worker

    code, out, err = run("train", "news")
    assert code == 0 and "not trained: v1 was trained on exactly these labels" in err
    code, out, _ = run("train", "news", "--json")
    assert json.loads(out)["identical_to"] == "v1" and "model" not in json.loads(out)

    def slow_score(*args: object) -> dict:
        time.sleep(1.5)
        return {"scored": 0}

    monkeypatch.setitem(worker.HANDLERS, "score", slow_score)
    code, out, err = run("train", "news", "--force", "--json")
    result = json.loads(out)
    assert code == 0 and result["model"] == "v2", err
    # the command's own wall time: training, then the re-scoring it queued
    assert result["seconds"] >= result["train_seconds"] + 1.5
    code, out, _ = run("train", "news", "--force")
    assert re.search(r"\(\d+\.\d s in all, of which training \d+\.\d s", out), out


def test_models_show_what_each_training_cost(news: Path) -> None:
    code, out, _ = run("models", "news", "--json")
    (v1,) = json.loads(out)
    assert code == 0 and 0 < v1["seconds"] < 600
    # Resident memory the training added: at least the features of 300 texts, under a few GB.
    assert v1["peak_mb"] is not None and 0 <= v1["peak_mb"] < 4000
    code, out, _ = run("models", "news")
    assert code == 0 and "train s" in out and "peak MB" in out
    assert f"{v1['seconds']:.1f}" in out
