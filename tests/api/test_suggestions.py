"""The queue hands out a model's suggestion only from a version above the project's floor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from looplab import configure
from looplab.core import projects
from looplab.core.tables import ImportBatch, ModelVersion, Record
from tests.api.conftest import Api

NEXT = "/api/v1/projects/news/queue/next"
SETTINGS = "/api/v1/projects/news/settings"

#: Ten equal-width confidence bins; 40 test records at 0.8-0.9 of which 85% were right.
RELIABILITY = {
    "edges": [i / 10 for i in range(11)],
    "confidence": [None] * 4 + [0.45] + [None] * 3 + [0.85, None],
    "accuracy": [None] * 4 + [0.4] + [None] * 3 + [0.85, None],
    "counts": [0] * 4 + [5] + [0] * 3 + [40, 0],
}


def _version(api: Api, version: int, n_test: int, metrics: dict[str, Any]) -> None:
    with api.store.write() as session:
        project = projects.get_project(session, "news")
        session.add(
            ModelVersion(
                project_id=project.id,
                version=version,
                artifact="unused.skops",
                sha256="0" * 64,
                metrics={"n": n_test, **metrics},
                n_test=n_test,
                created_by="test",
            )
        )
        session.execute(
            update(Record)
            .where(Record.project_id == project.id)
            .values(pred_label="sport", pred_confidence=0.83, pred_model=version)
        )


def test_a_version_tested_on_few_records_makes_no_suggestion(news: Api) -> None:
    # The case: a model tested on 10 records, its suggestion shown at 22-32% confidence.
    _version(news, 1, 10, {"accuracy": 0.3, "accuracy_ci": [0.1, 0.6]})
    item = news.client.get(NEXT, headers=news.as_("annotator")).json()
    assert item["record"] is not None and item["suggestion"] is None
    assert item["suggestion_note"] == (
        "The model (v1) makes no suggestion yet: its suggestions are hidden until a version is "
        "tested on at least 30 records; it was tested on 10."
    )


def test_a_version_whose_accuracy_interval_starts_below_the_floor_makes_none(news: Api) -> None:
    _version(news, 1, 60, {"accuracy": 0.55, "accuracy_ci": [0.42, 0.67]})
    item = news.client.get(NEXT, headers=news.as_("annotator")).json()
    assert item["suggestion"] is None
    assert (
        "held-out accuracy is 55% on 60 test records (95% interval 42% to 67%)"
        in (item["suggestion_note"])
    )
    assert "lower end reaches 50%" in item["suggestion_note"]
    # The floor is a project setting, applied when the record is handed out.
    ok = news.client.patch(SETTINGS, json={"suggest_min_accuracy": 0.4}, headers=news.as_("admin"))
    assert ok.status_code == 200 and ok.json()["settings"]["suggest_min_accuracy"] == 0.4
    item = news.client.get(NEXT, headers=news.as_("annotator")).json()
    assert item["suggestion"]["label"] == "sport" and item["suggestion_note"] == ""


def test_a_suggestion_says_how_often_the_model_is_right_on_records_like_this(news: Api) -> None:
    _version(news, 1, 45, {"accuracy": 0.8, "accuracy_ci": [0.66, 0.9], "reliability": RELIABILITY})
    suggestion = news.client.get(NEXT, headers=news.as_("annotator")).json()["suggestion"]
    assert suggestion["model_version"] == "v1" and suggestion["confidence"] == 0.83
    # Confidence 0.83 falls in the 0.8-0.9 bin: 40 test records, 85% right.
    assert suggestion["right_scope"] == "similar" and suggestion["right_n"] == 40
    assert suggestion["right_rate"] == 0.85
    assert 0.7 < suggestion["right_low"] < 0.85 < suggestion["right_high"] < 0.95
    assert suggestion["words"] == (
        "The model guesses sport. On test records where it was this sure, it was right about "
        "8 in 10 times (between 7 and 9 in 10; 40 records)."
    )


def test_too_few_similar_records_falls_back_to_the_whole_test_split(news: Api) -> None:
    _version(news, 1, 45, {"accuracy": 0.8, "accuracy_ci": [0.66, 0.9], "reliability": RELIABILITY})
    with news.store.write() as session:
        session.execute(update(Record).values(pred_confidence=0.45))  # 5 test records there
    suggestion = news.client.get(NEXT, headers=news.as_("annotator")).json()["suggestion"]
    assert suggestion["right_scope"] == "all" and suggestion["right_n"] == 45
    assert suggestion["words"].startswith("The model guesses sport. On its test records,")


def test_turned_off_suggestions_say_so(news: Api) -> None:
    _version(news, 1, 45, {"accuracy": 0.8, "accuracy_ci": [0.66, 0.9]})
    news.client.patch(SETTINGS, json={"show_suggestions": False}, headers=news.as_("admin"))
    item = news.client.get(NEXT, headers=news.as_("annotator")).json()
    assert item["suggestion"] is None
    assert item["suggestion_note"] == (
        "suggestions are turned off for this project (show_suggestions)"
    )


def test_floor_settings_are_validated(news: Api) -> None:
    admin = news.as_("admin")
    bad = news.client.patch(SETTINGS, json={"suggest_min_accuracy": 1.5}, headers=admin)
    assert bad.status_code == 422
    bad = news.client.patch(SETTINGS, json={"suggest_min_test": 0}, headers=admin)
    assert bad.status_code == 422
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        try:
            configure.update_settings(session, project, {"suggest_min_accuracy": "x"}, actor="t")
        except Exception as exc:  # the CLI path: looplab config news suggest_min_accuracy=x
            assert "suggest_min_accuracy must be a number from 0 to 1" in str(exc)
        else:
            raise AssertionError("a non-number floor was accepted")


def test_the_queue_names_the_records_import_file_and_line(news: Api) -> None:
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        batch = ImportBatch(
            project_id=project.id,
            source="/home/ana/data/bbc-articles.csv",
            format="csv",
            file_sha256="0" * 64,
            created_by="test",
        )
        session.add(batch)
        session.flush()
        top = session.scalar(select(Record).order_by(Record.score.desc()).limit(1))
        assert top is not None
        top.batch_id, top.source_line = batch.id, 201
    item = news.client.get(NEXT, headers=news.as_("annotator")).json()
    assert item["source"] == "bbc-articles.csv" and item["record"]["source_line"] == 201
    assert item["record"]["meta"] == {"topic": "sport"}
