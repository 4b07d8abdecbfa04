"""Predict and feedback over HTTP: logged, validated, hot-swapped on promotion."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits
from sqlalchemy import func, select

from looplab import worker
from looplab.api import create_app
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, Feedback, Job, Prediction, Record
from looplab.govern import access
from looplab.learn import registry
from tests.api.conftest import Api
from tests.textdata import add_labeled

X, Y = load_digits(return_X_y=True)
FIELDS = [f"p{i}" for i in range(X.shape[1])]
PREDICT = "/api/v1/projects/digits/predict"
FEEDBACK = "/api/v1/projects/digits/feedback"
NOT_A_NUMBER = "expected a number (42, 3.5, $1,073.55, 44,362 or 14.07%), got"


def row(i: int) -> dict[str, float]:
    return dict(zip(FIELDS, X[i].tolist(), strict=True))


def trained(
    store: Store, tmp_path, n: int = 400, promote: bool = True, extra: tuple[str, ...] = ()
) -> None:
    """A digits project with n imported labels, a trained v1, optionally in production.

    ``extra`` labels are project labels no record carries.
    """
    with store.write() as session:
        project = projects.create_project(
            session,
            "digits",
            task="tabular",
            labels=[str(d) for d in range(10)] + list(extra),
            fields=FIELDS,
            actor="test",
        )
        for i in range(n):
            add_labeled(session, project, str(i), row(i), str(Y[i]))
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(store, Settings(home=tmp_path))
    if promote:
        with store.write() as session:
            project = projects.get_project(session, "digits")
            registry.promote(
                session,
                project,
                registry.get_version(session, project, "v1"),
                actor="test",
                reason="first model",
            )


def test_a_label_missing_from_training_is_warned_and_served_at_zero(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path, extra=("smudge",))
    with api.store.read() as session:
        job = session.scalars(select(Job).where(Job.kind == "train")).one()
        version = registry.get_version(session, projects.get_project(session, "digits"), "v1")
        assert version.config["untrained_labels"] == ["smudge"]
    assert any("'smudge' has no training record" in w for w in job.result["warnings"])
    response = api.client.post(PREDICT, json={"records": [row(1000)]}, headers=api.as_("annotator"))
    assert response.status_code == 200, response.text
    probabilities = response.json()["predictions"][0]["probabilities"]
    assert set(probabilities) == {*map(str, range(10)), "smudge"}
    assert probabilities["smudge"] == 0.0


def flush(api: Api) -> None:
    api.client.app.state.prediction_log.flush()  # type: ignore[attr-defined]


def test_predict_returns_labels_and_logs_every_prediction(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path)
    body = {"records": [row(1000), row(1001), row(1002)]}
    response = api.client.post(PREDICT, json=body, headers=api.as_("annotator"))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model_version"] == "v1" and len(data["predictions"]) == 3
    first = data["predictions"][0]
    assert set(first["probabilities"]) == {str(d) for d in range(10)}
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-3
    assert first["label"] == max(first["probabilities"], key=first["probabilities"].get)
    flush(api)
    with api.store.read() as session:
        logged = session.scalars(select(Prediction)).all()
    assert {p.id for p in logged} == {p["id"] for p in data["predictions"]}
    assert all(p.model_version == 1 and p.latency_ms > 0 and p.input for p in logged)


def test_no_production_model_is_409(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path, promote=False)
    response = api.client.post(PREDICT, json={"records": [row(0)]}, headers=api.as_("annotator"))
    assert response.status_code == 409
    assert "no production model" in response.json()["error"]["message"]


def count(store: Store, table: type, *where: Any) -> int:
    with store.read() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"records": [{**row(0), "colour": "red"}]},
            "records[0]: unknown field(s) colour; the model reads p0, p1,",
        ),
        (
            {"records": [{k: v for k, v in row(0).items() if k != "p5"}]},
            "records[0]: missing field(s) p5 (send null if unknown)",
        ),
        ({"records": [{**row(0), "p3": "bright"}]}, f'records[0].p3: {NOT_A_NUMBER} "bright"'),
        ({"records": [{**row(0), "p3": True}]}, f"records[0].p3: {NOT_A_NUMBER} true"),
        ({"records": [{**row(0), "p3": [1]}]}, f"records[0].p3: {NOT_A_NUMBER} [1]"),
        ({"records": [{**row(0), "p3": 10**400}]}, f"records[0].p3: {NOT_A_NUMBER} 1000000"),
        (
            {"records": [row(0), {**row(1), "p9": {"x": 1}}]},
            f'records[1].p9: {NOT_A_NUMBER} {{"x": 1}}',
        ),
        ({"records": []}, "invalid request: records: List should have at least 1 item"),
        ({"records": "p0=1"}, "invalid request: records: Input should be a valid list"),
        ({"records": [5]}, "invalid request: records.0: Input should be a valid dictionary"),
        ({"rows": [row(0)]}, "invalid request: records: Field required; rows: Extra inputs"),
        (
            {"records": [row(0)], "version": "v2"},
            "invalid request: version: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_predict_input_is_422_and_logs_nothing(
    api: Api, tmp_path, body: dict, message: str
) -> None:
    trained(api.store, tmp_path)
    response = api.client.post(PREDICT, json=body, headers=api.as_("annotator"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(message)
    flush(api)
    assert count(api.store, Prediction) == 0


def test_malformed_json_or_nan_is_422_and_logs_nothing(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path)
    headers = {**api.as_("annotator"), "Content-Type": "application/json"}
    nan = json.dumps({"records": [{**row(0), "p0": float("nan")}]}).encode()  # NaN is not JSON
    for content, message in [
        (b"{not json", "invalid request: "),
        (nan, f"records[0].p0: {NOT_A_NUMBER} NaN"),
    ]:
        response = api.client.post(PREDICT, content=content, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["message"].startswith(message)
    flush(api)
    assert count(api.store, Prediction) == 0


def test_text_model_rejects_a_number_for_a_text_field(news: Api, tmp_path) -> None:
    words = {"business": "shares profit bank", "sport": "match goal team", "tech": "chip app code"}
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        for i in range(60):
            label = list(words)[i % 3]
            add_labeled(session, project, f"news{i}", {"text": f"{words[label]} story {i}"}, label)
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(news.store, Settings(home=tmp_path))
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        registry.promote(
            session, project, registry.get_version(session, project, "v1"), actor="test"
        )
    url = "/api/v1/projects/news/predict"
    h = news.as_("annotator")
    response = news.client.post(url, json={"records": [{"text": 42}]}, headers=h)
    assert response.status_code == 422
    message = "records[0].text: the text must be a string, found int"
    assert response.json()["error"]["message"] == message
    ok = news.client.post(url, json={"records": [{"text": "shares rose"}]}, headers=h)
    assert ok.status_code == 200, ok.text
    flush(news)
    assert count(news.store, Prediction) == 1


def test_unknown_project_is_404(api: Api, tmp_path) -> None:
    response = api.client.post(
        "/api/v1/projects/nope/predict", json={"records": [row(0)]}, headers=api.as_("annotator")
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("no project named 'nope'")


def test_feedback_correction_becomes_a_feedback_annotation(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path)
    h = api.as_("annotator")
    pred = api.client.post(PREDICT, json={"records": [row(1500)]}, headers=h).json()
    pid = pred["predictions"][0]["id"]
    wrong = next(str(d) for d in range(10) if str(d) != pred["predictions"][0]["label"])
    response = api.client.post(FEEDBACK, json={"prediction_id": pid, "label": wrong}, headers=h)
    assert response.status_code == 201, response.text
    assert response.json()["accepted"] is False
    with api.store.read() as session:
        annotation = session.scalar(select(Annotation).where(Annotation.prediction_id == pid))
        assert annotation is not None and annotation.origin == "feedback"
        assert annotation.label == wrong
        record = session.get(Record, annotation.record_id)
        assert record is not None and record.payload == row(1500) and record.n_human == 1
    again = api.client.post(FEEDBACK, json={"prediction_id": pid, "accepted": True}, headers=h)
    assert again.status_code == 409


def test_feedback_accept_and_online_metrics(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path)
    h = api.as_("annotator")
    ids = [
        p["id"]
        for p in api.client.post(
            PREDICT, json={"records": [row(i) for i in range(1200, 1210)]}, headers=h
        ).json()["predictions"]
    ]
    for pid in ids:
        assert (
            api.client.post(
                FEEDBACK, json={"prediction_id": pid, "accepted": True}, headers=h
            ).status_code
            == 201
        )
    metrics = api.client.get(
        "/api/v1/projects/digits/online-metrics", headers=api.as_("reviewer")
    ).json()
    assert metrics == [
        {
            "version": "v1",
            "predictions": 10,
            "feedback": 10,
            "accepted": 10,
            "accuracy": 1.0,
            "ci_low": pytest.approx(0.722, abs=1e-3),
            "ci_high": 1.0,
        }
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prediction_id": "nope", "label": "3"}, 404, "no prediction 'nope' in project 'digits'"),
        (
            {"prediction_id": "PID", "label": "eleven"},
            422,
            "unknown label 'eleven'; valid labels: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
        ),
        ({"prediction_id": "PID"}, 422, "send either 'label'"),
        ({"prediction_id": "PID", "label": "3", "accepted": True}, 422, "send either 'label'"),
        ({"prediction_id": "PID", "accepted": False}, 422, "a rejection needs the right label"),
        ({"prediction_id": "PID", "label": 3}, 422, "invalid request: label: Input should be a"),
        (
            {"prediction_id": "PID", "accepted": "yes"},
            422,
            "invalid request: accepted: Input should be a valid boolean",
        ),
        (
            {"prediction_id": "PID", "accepted": True, "colour": "red"},
            422,
            "invalid request: colour: Extra inputs are not permitted",
        ),
        ({"prediction_id": "x" * 33, "label": "3"}, 422, "invalid request: prediction_id:"),
        ({"label": "3"}, 422, "invalid request: prediction_id: Field required"),
    ],
)
def test_bad_feedback_is_4xx_and_stores_nothing(
    api: Api, tmp_path, body: dict, status: int, message: str
) -> None:
    trained(api.store, tmp_path)
    h = api.as_("annotator")
    pid = api.client.post(PREDICT, json={"records": [row(7)]}, headers=h).json()["predictions"][0]
    body = {k: (pid["id"] if v == "PID" else v) for k, v in body.items()}
    response = api.client.post(FEEDBACK, json=body, headers=h)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"].startswith(message)
    assert_no_feedback(api.store)


def assert_no_feedback(store: Store) -> None:
    assert count(store, Feedback) == 0
    assert count(store, Annotation, Annotation.origin == "feedback") == 0
    assert count(store, Record, Record.meta["source"].as_string() == "feedback") == 0


def test_feedback_on_another_projects_prediction_is_404(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path)
    with api.store.write() as session:
        projects.create_project(
            session, "other", task="tabular", labels=["a", "b"], fields=FIELDS, actor="test"
        )
    h = api.as_("annotator")
    pid = api.client.post(PREDICT, json={"records": [row(7)]}, headers=h).json()["predictions"][0]
    body = {"prediction_id": pid["id"], "label": "a"}
    response = api.client.post("/api/v1/projects/other/feedback", json=body, headers=h)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"no prediction {pid['id']!r} in project 'other'"
    assert_no_feedback(api.store)


def test_feedback_right_after_predict_succeeds_before_the_log_is_written(
    api: Api, tmp_path
) -> None:
    """This replica still buffers the row (a 60 s flush interval): feedback flushes it first."""
    trained(api.store, tmp_path)
    settings = Settings(home=tmp_path, run_worker=False, prediction_flush_seconds=60)
    with TestClient(create_app(settings, store=api.store)) as client:
        h = api.as_("annotator")
        pid = client.post(PREDICT, json={"records": [row(9)]}, headers=h).json()["predictions"][0]
        assert count(api.store, Prediction) == 0  # still in the buffer
        started = time.perf_counter()
        response = client.post(FEEDBACK, json={"prediction_id": pid["id"], "label": "9"}, headers=h)
        assert response.status_code == 201, response.text
        assert time.perf_counter() - started < 5  # no waiting on the writer's 60 s
        assert count(api.store, Prediction) == 1
        assert count(api.store, Feedback) == 1


def test_feedback_sent_to_another_replica_waits_for_the_first_ones_flush(
    api: Api, tmp_path
) -> None:
    """Replica A answers the prediction; replica B gets the feedback before A's log is written."""
    trained(api.store, tmp_path)
    h = api.as_("annotator")
    settings = Settings(home=tmp_path, run_worker=False, prediction_flush_seconds=0.3)
    a, b = create_app(settings, store=api.store), create_app(settings, store=api.store)
    with TestClient(a) as replica_a, TestClient(b) as replica_b:
        pids = [
            p["id"]
            for p in replica_a.post(
                PREDICT, json={"records": [row(20), row(21)]}, headers=h
            ).json()["predictions"]
        ]
        for pid in pids:
            response = replica_b.post(
                FEEDBACK, json={"prediction_id": pid, "accepted": True}, headers=h
            )
            assert response.status_code == 201, response.text
    assert count(api.store, Feedback) == 2


def test_simultaneous_verdicts_on_one_prediction_store_one(api: Api, tmp_path) -> None:
    trained(api.store, tmp_path)
    h = api.as_("annotator")
    pid = api.client.post(PREDICT, json={"records": [row(5)]}, headers=h).json()["predictions"][0]
    flush(api)
    statuses: list[int] = []
    start = threading.Barrier(6)

    def verdict(k: int) -> None:
        body = {"prediction_id": pid["id"], "label": str(k)}
        start.wait()
        statuses.append(api.client.post(FEEDBACK, json=body, headers=h).status_code)

    threads = [threading.Thread(target=verdict, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    assert count(api.store, Feedback) == 1
    assert count(api.store, Annotation, Annotation.origin == "feedback") == 1


def test_promotion_while_requests_are_in_flight_loses_none(api_store: Store, tmp_path) -> None:
    """A real uvicorn server, 8 client threads, and a promotion from v1 to v2 in the middle."""
    trained(api_store, tmp_path)
    with api_store.write() as session:
        project = projects.get_project(session, "digits")
        jobs.enqueue(session, "train", project_id=project.id)
        _, token = access.create_user(session, "client", "annotator", actor="test")
    worker.drain(api_store, Settings(home=tmp_path))
    settings = Settings(home=tmp_path, run_worker=False, model_check_seconds=0.2)
    app = create_app(settings, store=api_store)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving_thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    serving_thread.start()
    answers: list[tuple[int, str, list[str]]] = []  # status, version, prediction ids
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            i = k
            while not stop.is_set():
                i += 8
                try:
                    r = http.post(PREDICT, json={"records": [row(i % 1700), row(i % 1700 + 1)]})
                except httpx.HTTPError as exc:
                    answers.append((-1, repr(exc), []))
                    continue
                if r.status_code != 200:
                    answers.append((r.status_code, r.text, []))
                    continue
                data = r.json()
                answers.append((200, data["model_version"], [p["id"] for p in data["predictions"]]))

    def served(version: str) -> int:
        return sum(1 for _, v, _ in answers if v == version)

    def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"timed out; answers so far: {answers[-3:]}"
            time.sleep(0.05)

    try:
        wait_for(lambda: server.started)
        clients = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in clients:
            t.start()
        wait_for(lambda: served("v1") >= 50)
        with api_store.write() as session:
            project = projects.get_project(session, "digits")
            registry.promote(
                session, project, registry.get_version(session, project, "v2"), actor="test"
            )
        wait_for(lambda: served("v2") >= 50)
        stop.set()
        for t in clients:
            t.join()
        app.state.prediction_log.flush()
        failed = [a for a in answers if a[0] != 200]
        assert not failed, failed[:3]
        assert {version for _, version, _ in answers} == {"v1", "v2"}
        answered = {pid: version for _, version, ids in answers for pid in ids}
        with api_store.read() as session:
            logged = dict(
                session.execute(select(Prediction.id, Prediction.model_version)).tuples().all()
            )
        assert {pid: f"v{v}" for pid, v in logged.items()} == answered
    finally:
        stop.set()
        server.should_exit = True
        serving_thread.join(timeout=30)
