"""Feedback belongs to the window of the prediction it judges, however late it arrives."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select

from looplab import configure
from looplab.core import projects
from looplab.core.tables import Job, TriggerDecision
from tests.api.conftest import Api
from tests.api.test_monitor import BASE, RULES, monitor, rows, served_project

LOW_ACCURACY = {
    "name": "low-accuracy",
    "when": "accuracy_below",
    "threshold": 0.8,
    "min_n": 20,
    "actions": ["alert"],
}


def predict(api: Api, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = api.client.post(
        f"{BASE}/predict", json={"records": batch}, headers=api.as_("annotator")
    )
    assert response.status_code == 200, response.text
    api.client.app.state.prediction_log.flush()  # type: ignore[attr-defined]
    return list(response.json()["predictions"])


def judge(api: Api, predictions: list[dict[str, Any]], wrong: int) -> None:
    """Feedback on each prediction: the first ``wrong`` corrected, the rest accepted."""
    for i, pred in enumerate(predictions):
        other = "lo" if pred["label"] == "hi" else "hi"
        body = {"prediction_id": pred["id"], **({"label": other} if i < wrong else {})}
        if i >= wrong:
            body["accepted"] = True
        response = api.client.post(f"{BASE}/feedback", json=body, headers=api.as_("annotator"))
        assert response.status_code == 201, response.text


def windows(api: Api) -> dict[int, dict[str, Any]]:
    state = api.client.get(f"{BASE}/monitor", headers=api.as_("reviewer")).json()
    return {w["id"]: w for w in state["windows"]}


def test_late_feedback_counts_in_its_predictions_window(api: Api, tmp_path) -> None:
    served_project(api, tmp_path)
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        configure.update_settings(
            session, project, {"triggers": [*RULES, LOW_ACCURACY]}, actor="test"
        )
    rng = np.random.default_rng(21)
    first = predict(api, rows(rng, 200))
    w1 = monitor(api, tmp_path)["window"]

    # Window 1's labels come after it closed: 30 verdicts, 12 of them corrections.
    judge(api, first[:30], wrong=12)
    second = predict(api, rows(rng, 200))
    w2 = monitor(api, tmp_path)
    assert w2["fired"] == ["low-accuracy"]  # window 1 is now known to be at 60%
    seen = windows(api)
    assert seen[w1]["feedback"]["n"] == 30 and seen[w1]["feedback"]["accepted"] == 18
    assert seen[w1]["feedback"]["accuracy"] == 0.6
    assert 0.4 < seen[w1]["feedback"]["ci_low"] < 0.6 < seen[w1]["feedback"]["ci_high"] < 0.8
    # Window 2 is about its own traffic, none of which has been judged yet.
    assert seen[w2["window"]]["feedback"] == {
        "n": 0,
        "accepted": 0,
        "accuracy": None,
        "ci_low": None,
        "ci_high": None,
        "labels": {},
        "selective": True,  # volunteered feedback: possibly selective
    }

    # Labels for window 2 after it closed, with no window closing since: read at once.
    judge(api, second[:10], wrong=0)
    seen = windows(api)
    assert seen[w2["window"]]["feedback"]["n"] == 10
    assert seen[w2["window"]]["feedback"]["accuracy"] == 1.0
    assert seen[w1]["feedback"]["n"] == 30

    # A third window: window 1 is still the latest with 20 answers, and was already fired on.
    predict(api, rows(rng, 200))
    assert monitor(api, tmp_path)["fired"] == []
    with api.store.read() as session:
        decisions = session.scalars(
            select(TriggerDecision)
            .where(TriggerDecision.trigger == "low-accuracy")
            .order_by(TriggerDecision.id)
        ).all()
    # Each decision names the window it judged: none had 20 answers when window 1 closed.
    assert [(d.window_id, d.fired) for d in decisions] == [(w1, False), (w1, True), (w1, False)]
    assert decisions[0].reason == "feedback accuracy needs 20 observations in a window, has 0"
    assert decisions[1].reason == f"feedback accuracy 0.600 < 0.8 (n=30) in window #{w1}"
    assert "already fired on it" in decisions[2].reason
    with api.store.read() as session:
        alert = session.get(Job, decisions[1].actions["alert"]["job"])
        assert alert is not None and alert.params["window"] == w1
        assert alert.params["report"]["feedback"]["n"] == 30
