"""Predict and feedback over HTTP: logged, validated, hot-swapped on promotion."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from sklearn.datasets import load_digits
from sqlalchemy import func, select

from looplab import jobs, projects, registry
from looplab.settings import Settings
from looplab.tables import Annotation, Feedback, Prediction, Record
from tests.api.conftest import Api

X, Y = load_digits(return_X_y=True)
FIELDS = [f"p{i}" for i in range(X.shape[1])]
PREDICT = "/api/v1/projects/digits/predict"
FEEDBACK = "/api/v1/projects/digits/feedback"


def row(i: int) -> dict[str, float]:
    return dict(zip(FIELDS, X[i].tolist(), strict=True))


def trained(api: Api, tmp_path, n: int = 400, promote: bool = True) -> None:
    """A digits project with n imported labels, a trained v1, optionally in production."""
    with api.store.write() as session:
        project = projects.create_project(
            session,
            "digits",
            task="tabular",
            labels=[str(d) for d in range(10)],
            fields=FIELDS,
            actor="test",
        )
        for i in range(n):
            record = Record(
                project_id=project.id,
                content_hash=hashlib.blake2b(str(i).encode(), digest_size=16).digest(),
                payload=row(i),
                meta={},
                score=0.0,
            )
            session.add(record)
            session.flush()
            session.add(
                Annotation(
                    project_id=project.id,
                    record_id=record.id,
                    origin="import",
                    value={"label": str(Y[i])},
                    label=str(Y[i]),
                )
            )
        jobs.enqueue(session, "train", project_id=project.id)
    jobs.drain(api.store, Settings(home=tmp_path))
    if promote:
        with api.store.write() as session:
            project = projects.get_project(session, "digits")
            registry.promote(
                session,
                project,
                registry.get_version(session, project, "v1"),
                actor="test",
                reason="first model",
            )


def flush(api: Api) -> None:
    api.client.app.state.prediction_log.flush()  # type: ignore[attr-defined]


def test_predict_returns_labels_and_logs_every_prediction(api: Api, tmp_path) -> None:
    trained(api, tmp_path)
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
    trained(api, tmp_path, promote=False)
    response = api.client.post(PREDICT, json={"records": [row(0)]}, headers=api.as_("annotator"))
    assert response.status_code == 409
    assert "no production model" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**row(0), "colour": "red"}, "records[0]: unknown field(s) colour"),
        ({k: v for k, v in row(0).items() if k != "p5"}, "records[0]: missing field(s) p5"),
        ({**row(0), "p3": "bright"}, "records[0].p3: expected a finite number, got str"),
    ],
)
def test_bad_predict_input_is_422_and_logs_nothing(
    api: Api, tmp_path, record: dict, message: str
) -> None:
    trained(api, tmp_path)
    response = api.client.post(PREDICT, json={"records": [record]}, headers=api.as_("annotator"))
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith(message)
    flush(api)
    with api.store.read() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 0


def test_empty_or_malformed_body_is_422(api: Api, tmp_path) -> None:
    trained(api, tmp_path)
    h = api.as_("annotator")
    assert api.client.post(PREDICT, json={"records": []}, headers=h).status_code == 422
    assert api.client.post(PREDICT, json={"rows": [row(0)]}, headers=h).status_code == 422
    assert api.client.post(PREDICT, content=b"{not json", headers=h).status_code == 422


def test_feedback_correction_becomes_a_feedback_annotation(api: Api, tmp_path) -> None:
    trained(api, tmp_path)
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
    trained(api, tmp_path)
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
        ({"prediction_id": "PID", "label": "eleven"}, 422, "unknown label 'eleven'"),
        ({"prediction_id": "PID"}, 422, "send either 'label'"),
        ({"prediction_id": "PID", "accepted": False}, 422, "a rejection needs the right label"),
    ],
)
def test_bad_feedback_is_4xx_and_stores_nothing(
    api: Api, tmp_path, body: dict, status: int, message: str
) -> None:
    trained(api, tmp_path)
    h = api.as_("annotator")
    pid = api.client.post(PREDICT, json={"records": [row(7)]}, headers=h).json()["predictions"][0]
    body = {k: (pid["id"] if v == "PID" else v) for k, v in body.items()}
    response = api.client.post(FEEDBACK, json=body, headers=h)
    assert response.status_code == status
    assert response.json()["error"]["message"].startswith(message)
    with api.store.read() as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 0
        assert (
            session.scalar(
                select(func.count()).select_from(Annotation).where(Annotation.origin == "feedback")
            )
            == 0
        )


def test_promotion_while_requests_are_in_flight_loses_none(api: Api, tmp_path) -> None:
    trained(api, tmp_path)
    with api.store.write() as session:
        project = projects.get_project(session, "digits")
        jobs.enqueue(session, "train", project_id=project.id)
    jobs.drain(api.store, Settings(home=tmp_path))
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = api.client.post(PREDICT, json={"records": [row(3)]}, headers=api.as_("annotator"))
            statuses.append(r.status_code)
            if r.status_code == 200:
                versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    with api.store.write() as session:
        project = projects.get_project(session, "digits")
        registry.promote(
            session,
            project,
            registry.get_version(session, project, "v2"),
            actor="test",
            reason="newer",
        )
    time.sleep(1.5)  # longer than the model cache's check interval
    stop.set()
    for t in threads:
        t.join()
    assert statuses and set(statuses) == {200}
    assert versions == {"v1", "v2"}
