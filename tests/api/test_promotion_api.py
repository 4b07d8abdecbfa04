"""Gate, promote, rollback and model cards over HTTP: admins change stages, reviewers look."""

from __future__ import annotations

from looplab import configure, worker
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from tests.api.conftest import Api
from tests.textdata import add_text_project

BASE = "/api/v1/projects/news/models"


def train(api: Api, tmp_path, **changes: object) -> None:
    with api.store.write() as session:
        project = projects.get_project(session, "news")
        if changes:
            configure.update_settings(session, project, dict(changes), actor="test")
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(api.store, Settings(home=tmp_path))


def test_gate_promote_rollback_and_card_over_http(api: Api, tmp_path) -> None:
    with api.store.write() as session:
        add_text_project(session)
    train(api, tmp_path)
    admin, reviewer = api.as_("admin"), api.as_("reviewer")

    response = api.client.get(f"{BASE}/v1/gate", headers=reviewer)
    assert response.status_code == 200 and response.json()["passed"] is True
    assert api.client.get(f"{BASE}/v1/gate", headers=api.as_("annotator")).status_code == 403
    response = api.client.post(f"{BASE}/v1/promote", json={}, headers=reviewer)
    assert response.status_code == 403
    assert response.json()["error"]["details"]["needs"] == "admin"
    response = api.client.post(f"{BASE}/v1/promote", json={}, headers=admin)
    assert response.status_code == 200 and response.json()["promoted"] == "v1"

    train(api, tmp_path, estimator="sklearn.dummy.DummyClassifier")
    response = api.client.post(f"{BASE}/v2/promote", json={}, headers=admin)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "gate_failed"
    assert "does not beat a constant model" in error["details"]["reasons"][0]
    assert any("worse by" in r for r in error["details"]["reasons"])
    response = api.client.post(f"{BASE}/v2/promote", json={"force": True}, headers=admin)
    assert response.status_code == 422 and "needs a reason" in response.json()["error"]["message"]
    response = api.client.post(
        f"{BASE}/v2/promote", json={"force": True, "reason": "hotfix"}, headers=admin
    )
    assert response.status_code == 200 and response.json()["forced"] is True
    response = api.client.get(f"{BASE}/v9/gate", headers=reviewer)
    assert response.status_code == 404 and "no model 'v9'" in response.json()["error"]["message"]

    response = api.client.post(f"{BASE}/rollback", json={"reason": "worse"}, headers=admin)
    assert response.status_code == 200
    assert response.json() == {"production": "v1", "rolled_back": "v2"}
    stages = {m["version"]: m["stage"] for m in api.client.get(BASE, headers=reviewer).json()}
    assert stages == {"v1": "production", "v2": "archived"}

    card = api.client.get(f"{BASE}/v2/card", headers=reviewer)
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/plain")
    assert card.text.startswith("# Model card: news v2") and "| yes | hotfix |" in card.text
    events = api.client.get("/api/v1/audit", headers=admin).json()["items"]
    moves = [(e["action"], e["details"].get("forced")) for e in events if "stage" not in e]
    assert ("model.production", True) in moves and ("model.archived", False) in moves


def test_model_listing_shows_what_each_training_cost(api: Api, tmp_path) -> None:
    with api.store.write() as session:
        add_text_project(session)
    train(api, tmp_path)
    (v1,) = api.client.get(BASE, headers=api.as_("reviewer")).json()
    assert 0 < v1["seconds"] < 600 and 0 <= v1["peak_mb"] < 4000
    assert v1["config"]["training"]["n_features"] == 2**18 + 2**18
    assert v1["config"]["training"]["artifact_mb"] > 0
