"""A bad model file: 503 model_unavailable naming version and reason, a metric, an alert, and a
replica that keeps the last good model it holds. A copied workspace serves its own files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from looplab import worker
from looplab.api import create_app
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job
from looplab.govern import access
from looplab.learn import registry
from tests.api.conftest import Api
from tests.api.test_serving import PREDICT, row, trained


def artifact_of(store: Store, version: str) -> Path:
    with store.read() as session:
        project = projects.get_project(session, "digits")
        return registry.artifact_file(session, registry.get_version(session, project, version))


def promote(store: Store, version: str) -> None:
    with store.write() as session:
        project = projects.get_project(session, "digits")
        model = registry.get_version(session, project, version)
        registry.promote(session, project, model, actor="test", reason="test")


def unavailable_gauge(client: TestClient) -> dict[tuple[str, str, str], float]:
    text = client.get("/metrics").text
    return {
        (s.labels["project"], s.labels["model_version"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "looplab_model_unavailable"
        for s in family.samples
    }


def alerts(store: Store) -> list[dict]:
    with store.read() as session:
        return [
            p
            for p in session.scalars(select(Job.params).where(Job.kind == "alert"))
            if p.get("alert") == "model_unavailable"
        ]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.unlink(), id="missing"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:1000]), id="truncated"),
        pytest.param(
            lambda p: p.write_bytes(
                bytes(b ^ 1 if i == 500 else b for i, b in enumerate(p.read_bytes()))
            ),
            id="tampered",
        ),
    ],
)
def test_a_bad_model_file_answers_503_naming_the_version(api: Api, tmp_path, damage) -> None:
    trained(api.store, tmp_path)
    damage(artifact_of(api.store, "v1"))
    response = api.client.post(PREDICT, json={"records": [row(1)]}, headers=api.as_("annotator"))
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert error["message"].startswith("model v1 of project 'digits' cannot be loaded: ")
    reason = error["details"]["reason"]
    # A truncated or edited file no longer has the SHA-256 recorded at training: "modified".
    assert reason == ("missing" if not artifact_of(api.store, "v1").exists() else "modified")
    assert error["details"]["model"] == "v1"
    assert unavailable_gauge(api.client) == {("digits", "v1", reason): 1.0}
    # Every replica and every request would raise it: one alert per version and reason.
    api.client.post(PREDICT, json={"records": [row(2)]}, headers=api.as_("annotator"))
    assert [(a["model_version"], a["reason"]) for a in alerts(api.store)] == [("v1", reason)]


def test_a_replica_keeps_its_last_good_model_when_the_next_one_is_broken(
    api_store: Store, tmp_path
) -> None:
    trained(api_store, tmp_path)
    with api_store.write() as session:
        jobs.enqueue(session, "train", project_id=projects.get_project(session, "digits").id)
        _, token = access.create_user(session, "client", "annotator", actor="test")
    worker.drain(api_store, Settings(home=tmp_path))
    settings = Settings(home=tmp_path, run_worker=False, model_check_seconds=0.05)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, store=api_store)) as client:
        first = client.post(PREDICT, json={"records": [row(1)]}, headers=headers)
        assert first.json()["model_version"] == "v1"
        artifact_of(api_store, "v2").unlink()
        promote(api_store, "v2")
        deadline = time.monotonic() + 10
        while not unavailable_gauge(client) and time.monotonic() < deadline:
            answer = client.post(PREDICT, json={"records": [row(2)]}, headers=headers)
            assert answer.status_code == 200 and answer.json()["model_version"] == "v1"
            time.sleep(0.05)
        assert unavailable_gauge(client) == {("digits", "v2", "missing"): 1.0}
        assert [a["model_version"] for a in alerts(api_store)] == ["v2"]
        # Back to a good production model: the gauge clears.
        promote(api_store, "v1")
        deadline = time.monotonic() + 10
        while unavailable_gauge(client) and time.monotonic() < deadline:
            client.post(PREDICT, json={"records": [row(3)]}, headers=headers)
            time.sleep(0.05)
        assert unavailable_gauge(client) == {}


def test_a_copied_workspace_serves_its_own_model_files(tmp_path: Path) -> None:
    home = tmp_path / "old"
    store = Store.from_settings(Settings(home=home))
    store.upgrade()
    trained(store, home)
    with store.write() as session:
        _, token = access.create_user(session, "client", "annotator", actor="test")
        stored = registry.get_version(
            session, projects.get_project(session, "digits"), "v1"
        ).artifact
    store.dispose()
    assert not Path(stored).is_absolute() and stored.startswith("digits/v1-")
    shutil.copytree(home, tmp_path / "new")
    shutil.rmtree(home)  # the old folder is gone
    settings = Settings(home=tmp_path / "new", run_worker=False)
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            PREDICT, json={"records": [row(1)]}, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == "v1"
