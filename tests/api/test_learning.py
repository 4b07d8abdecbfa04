"""The loop behind the annotators: labels trigger training, the model re-ranks the queue."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from sklearn.datasets import load_digits
from sqlalchemy import func, select

from looplab import configure, worker
from looplab.ask import queue
from looplab.collect import export
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.tables import Job, Record, TrainingLabel, User
from looplab.learn import registry
from tests.api.conftest import Api


def _digits_project(api: Api, n: int = 300) -> tuple[int, dict[int, str]]:
    X, y = load_digits(return_X_y=True)
    fields = [f"p{i}" for i in range(X.shape[1])]
    truth: dict[int, str] = {}
    with api.store.write() as session:
        project = projects.create_project(
            session,
            "digits",
            task="tabular",
            labels=[str(d) for d in range(10)],
            fields=fields,
            actor="test",
        )
        # No reliability checks (drawn about one answer in reliability_every): this test
        # counts the training and scoring jobs, and the checks have tests of their own.
        configure.update_settings(
            session, project, {"retrain_every": 40, "reliability_every": 0}, actor="test"
        )
        for i in range(n):
            record = Record(
                project_id=project.id,
                content_hash=hashlib.blake2b(str(i).encode(), digest_size=16).digest(),
                payload=dict(zip(fields, X[i].tolist(), strict=True)),
                meta={},
                score=0.0,
            )
            session.add(record)
            session.flush()
            truth[record.id] = str(y[i])
        return project.id, truth


def test_labels_trigger_training_then_scoring_with_suggestions(api: Api, tmp_path) -> None:
    _, truth = _digits_project(api)
    settings = Settings(home=tmp_path)
    # Cold start: rank the pool before any model exists.
    with api.store.write() as session:
        project = projects.get_project(session, "digits")
        jobs.enqueue(session, "score", project_id=project.id)
    assert worker.drain(api.store, settings) == 1
    with api.store.read() as session:
        top = session.scalars(select(Record.score).order_by(Record.score.desc()).limit(40)).all()
    assert all(s >= 2.0 for s in top)  # the typical batch sits on top of the queue

    h = api.as_("annotator")
    for _ in range(80):
        item = api.client.get("/api/v1/projects/digits/queue/next", headers=h).json()
        rid = item["record"]["id"]
        api.client.post(
            "/api/v1/projects/digits/annotations",
            json={"record_id": rid, "label": truth[rid], "seconds": 1.0},
            headers=h,
        )
    with api.store.read() as session:
        kinds = session.scalars(select(Job.kind).where(Job.status == "queued")).all()
    assert kinds == ["train"]  # 80 labels with retrain_every=40: one job, not two
    ran = worker.drain(api.store, settings)
    with api.store.read() as session:
        failed = session.scalars(select(Job.error).where(Job.status == "failed")).all()
        results = session.execute(select(Job.kind, Job.status, Job.result)).all()
    assert not failed
    assert ran == 2, results  # train, then the score job it queued

    with api.store.read() as session:
        project = projects.get_project(session, "digits")
        model = registry.latest(session, project)
        assert model is not None and model.name == "v1"
        lineage = session.scalar(
            select(func.count())
            .select_from(TrainingLabel)
            .where(TrainingLabel.model_id == model.id)
        )
        open_one = session.execute(
            select(Record.id, Record.pred_label, Record.pred_confidence).where(Record.n_human == 0)
        ).first()
        open_rows = session.execute(
            select(Record.pred_label, Record.pred_confidence, Record.score).where(
                Record.n_human == 0
            )
        ).all()
    assert model.n_train + model.n_test == 80 == lineage
    assert 0.5 < model.metrics["accuracy"] <= 1.0
    assert all(label is not None and 0 < conf <= 1 for label, conf, _ in open_rows)
    scores = np.array([s for *_, s in open_rows])
    assert (scores >= 2.0).sum() == 40  # the next diverse batch, then the rest by margin

    # 16 test records are below the floor (30): no suggestion yet, and the queue says why.
    item = api.client.get("/api/v1/projects/digits/queue/next", headers=h).json()
    assert item["suggestion"] is None
    assert f"it was tested on {model.n_test}" in item["suggestion_note"]
    api.client.patch(
        "/api/v1/projects/digits/settings",
        json={"suggest_min_test": 10, "suggest_min_accuracy": 0.3},
        headers=api.as_("admin"),
    )
    item = api.client.get("/api/v1/projects/digits/queue/next", headers=h).json()
    assert item["suggestion"]["model_version"] == "v1"
    assert item["suggestion"]["words"].startswith("The model guesses ")

    # Label Studio export carries the suggestion people were shown as a prediction.
    out = io.StringIO()
    with api.store.read() as session:
        export.export(session, projects.get_project(session, "digits"), "label-studio", out)
    tasks = {t["id"]: t for t in json.loads(out.getvalue())}
    rid, label, conf = open_one
    (pred,) = tasks[rid]["predictions"]
    assert pred["model_version"] == "v1" and pred["score"] == conf
    assert pred["result"][0]["value"]["choices"] == [label]
    curve = api.client.get("/api/v1/projects/digits/learning-curve", headers=h).json()
    assert [p["version"] for p in curve] == ["v1"] and curve[0]["n_labels"] == model.n_train
    low, high = curve[0]["accuracy_ci"]  # the dashboard shows the interval and n_test with it
    assert low <= curve[0]["accuracy"] <= high and curve[0]["n_test"] == model.n_test

    api.client.patch(
        "/api/v1/projects/digits/settings",
        json={"show_suggestions": False},
        headers=api.as_("admin"),
    )
    item = api.client.get("/api/v1/projects/digits/queue/next", headers=h).json()
    assert item["suggestion"] is None


def test_training_with_too_few_labels_is_skipped_not_failed(api: Api, tmp_path) -> None:
    _digits_project(api, n=30)
    with api.store.write() as session:
        project = projects.get_project(session, "digits")
        user = session.scalar(select(User).where(User.name == "annotator"))
        assert user is not None
        record = queue.next_record(session, project, user, lease_seconds=60)
        assert record is not None
        queue.annotate(session, project, user, record.id, "3")
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(api.store, Settings(home=tmp_path))
    with api.store.read() as session:
        job = session.scalar(select(Job).where(Job.kind == "train"))
    assert job is not None and job.status == "done" and "need 10" in job.result["skipped"]
