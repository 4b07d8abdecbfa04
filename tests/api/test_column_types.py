"""Serving by the column types decided at import, over HTTP; one check of a text everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from looplab import configure, worker
from looplab.collect import ingest
from looplab.core import jobs, projects
from looplab.core.errors import Invalid
from looplab.core.settings import Settings
from looplab.core.tables import MonitorWindow, Prediction
from looplab.learn import registry
from tests.api.conftest import Api
from tests.collect.test_schema import loans_csv

PREDICT = "/api/v1/projects/loans/predict"
FIELDS = ["member_id", "age", "balance", "int_rate", "issue_d", "zip", "grade"]


def served_loans(api: Api, tmp_path: Path) -> None:
    """The loans table imported from CSV (NA, $, %, dates, ids, zip codes), trained, promoted."""
    path = loans_csv(tmp_path / "loans.csv", n=200)
    with api.store.write() as session:
        project = projects.create_project(
            session, "loans", task="tabular", labels=["paid", "default"], actor="t"
        )
        ingest.import_file(session, project, path, fields=FIELDS, label="label", actor="t")
        configure.update_settings(session, project, {"monitor_min_predictions": 10}, actor="t")
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(api.store, Settings(home=tmp_path))
    with api.store.write() as session:
        project = projects.get_project(session, "loans")
        registry.promote(session, project, registry.get_version(session, project, "v1"), actor="t")


def record(**changes: object) -> dict[str, object]:
    base = {
        "member_id": 1,
        "age": 30,
        "balance": "$1,073.55",
        "int_rate": "14.07%",
        "issue_d": "Dec-2011",
        "zip": "00523",
        "grade": "B",
    }
    return {**base, **changes}


def test_served_values_are_coerced_as_at_import(api: Api, tmp_path: Path) -> None:
    served_loans(api, tmp_path)
    h = api.as_("annotator")
    variants = [
        record(),
        record(age=30.0, balance=1073.55, int_rate=14.07),
        record(age="30", balance="1073.55", int_rate=" 14.07 %", member_id="anything"),
    ]
    answers = api.client.post(PREDICT, json={"records": variants}, headers=h)
    assert answers.status_code == 200, answers.text
    probabilities = [p["probabilities"] for p in answers.json()["predictions"]]
    assert probabilities[0] == probabilities[1] == probabilities[2]
    missing = api.client.post(
        PREDICT, json={"records": [record(age="NA"), record(age=None)]}, headers=h
    ).json()["predictions"]
    assert missing[0]["probabilities"] == missing[1]["probabilities"]
    assert missing[0]["unknown"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"age": "ABCDE"}, "age"),
        ({"balance": "a lot"}, "balance"),
        ({"issue_d": "yesterday"}, "issue_d"),
        ({"grade": {"x": 1}}, "grade"),
    ],
)
def test_a_value_that_cannot_be_coerced_is_422_naming_the_field(
    api: Api, tmp_path: Path, changes: dict[str, object], field: str
) -> None:
    served_loans(api, tmp_path)
    response = api.client.post(
        PREDICT, json={"records": [record(**changes)]}, headers=api.as_("annotator")
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith(f"records[0].{field}: expected ")
    assert error["details"] == {"record": 0, "field": field}


def test_unseen_categories_are_counted_in_the_answer_and_the_window(
    api: Api, tmp_path: Path
) -> None:
    served_loans(api, tmp_path)
    batch = [record(zip="99999", grade="Z")] * 3 + [record(zip="99999")] * 2 + [record()] * 5
    response = api.client.post(PREDICT, json={"records": batch}, headers=api.as_("annotator"))
    assert response.status_code == 200, response.text
    unknown = [p["unknown"] for p in response.json()["predictions"]]
    assert unknown == [["zip", "grade"]] * 3 + [["zip"]] * 2 + [[]] * 5
    api.client.app.state.prediction_log.flush()  # type: ignore[attr-defined]
    with api.store.write() as session:
        logged = session.scalars(select(Prediction.unknown).order_by(Prediction.seq)).all()
        assert logged == [["zip", "grade"]] * 3 + [["zip"]] * 2 + [None] * 5
        jobs.enqueue(session, "monitor", project_id=projects.get_project(session, "loans").id)
    worker.drain(api.store, Settings(home=tmp_path))
    with api.store.read() as session:
        window = session.scalars(select(MonitorWindow)).one()
    assert window.report["unknown"] == {"zip": 5, "grade": 3}
    state = api.client.get("/api/v1/projects/loans/monitor", headers=api.as_("admin"))
    assert state.status_code == 200, state.text
    assert state.json()["windows"][-1]["unknown"] == {"zip": 5, "grade": 3}


# -- one check of a text ---------------------------------------------------------------------------


def import_message(tmp_path: Path, store, text: str | None) -> str:
    path = tmp_path / "blank.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": text}) + "\n")
    with pytest.raises(Invalid) as caught, store.write() as session:
        ingest.import_file(session, projects.get_project(session, "news"), path, actor="t")
    return caught.value.message.split("field 'text': ", 1)[1]


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "\ufeff\u200d", None])
def test_a_blank_text_is_refused_by_predict_as_by_import(
    news: Api, tmp_path: Path, text: str | None
) -> None:
    from tests.textdata import add_labeled

    words = {"business": "shares profit bank", "sport": "match goal team", "tech": "chip app code"}
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        for i in range(45):
            label = list(words)[i % 3]
            add_labeled(session, project, f"n{i}", {"text": f"{words[label]} story {i}"}, label)
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(news.store, Settings(home=tmp_path))
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        registry.promote(session, project, registry.get_version(session, project, "v1"), actor="t")
    response = news.client.post(
        "/api/v1/projects/news/predict",
        json={"records": [{"text": "shares rose"}, {"text": text}]},
        headers=news.as_("annotator"),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"] == {"record": 1, "field": "text"}
    assert error["message"] == f"records[1].text: {import_message(tmp_path, news.store, text)}"
    # Feedback builds its record through the same check.
    with news.store.read() as session, pytest.raises(Invalid) as caught:
        ingest.normalise_payload(projects.get_project(session, "news"), {"text": text})
    assert error["message"].endswith(caught.value.message)


def test_column_types_over_http_are_shown_and_overridden(api: Api, tmp_path: Path) -> None:
    url = "/api/v1/projects/loans/schema"
    with api.store.write() as session:
        project = projects.create_project(
            session, "loans", task="tabular", labels=["paid", "default"], actor="t"
        )
    assert api.client.get(url, headers=api.as_("annotator")).status_code == 404  # no import yet
    with api.store.write() as session:
        project = projects.get_project(session, "loans")
        path = loans_csv(tmp_path / "loans.csv", n=40)
        ingest.import_file(session, project, path, fields=FIELDS, actor="t")
    shown = api.client.get(url, headers=api.as_("annotator"))
    assert shown.status_code == 200, shown.text
    types = {f["name"]: f["type"] for f in shown.json()["fields"]}
    assert types["zip"] == "categorical" and types["balance"] == "numeric"
    assert (
        api.client.patch(
            url, json={"types": {"zip": "numeric"}}, headers=api.as_("annotator")
        ).status_code
        == 403
    )
    changed = api.client.patch(url, json={"types": {"zip": "numeric"}}, headers=api.as_("admin"))
    assert changed.status_code == 200, changed.text
    zip_field = next(f for f in changed.json()["fields"] if f["name"] == "zip")
    assert (zip_field["type"], zip_field["inferred"]) == ("numeric", "categorical")
    bad = api.client.patch(url, json={"types": {"zipp": "numeric"}}, headers=api.as_("admin"))
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("unknown field 'zipp'; the project's fields:")
