"""Retraining paced to what changed (issue 17): new labels must reach ``retrain_every`` *and*
``retrain_min_share`` of the latest version's training rows, and no candidate is queued while a
training job is queued or running."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from looplab import configure
from looplab.ask import queue
from looplab.core import jobs, projects
from looplab.core.errors import Invalid
from looplab.core.tables import Job, ModelVersion, Project, Record, User, utcnow
from looplab.govern.access import create_user
from tests.conftest import fresh_store

#: Rows of the issue's training set: 78k imported rows, 80% of them in the train split.
TRAIN_ROWS = 62_329


def _setup(session: Session, n_records: int) -> tuple[Project, User, list[int]]:
    project = projects.create_project(
        session, "late", task="tabular", labels=["late", "ontime"], fields=["x"], actor="t"
    )
    user, _ = create_user(session, "client", "annotator", actor="t")
    ids = []
    for i in range(n_records):
        record = Record(
            project_id=project.id,
            content_hash=hashlib.blake2b(str(i).encode(), digest_size=16).digest(),
            payload={"x": i},
            meta={},
        )
        session.add(record)
        session.flush()
        ids.append(record.id)
    return project, user, ids


def _version(session: Session, project: Project, number: int, rows: int) -> None:
    session.add(
        ModelVersion(
            project_id=project.id,
            version=number,
            artifact=f"v{number}.skops",
            sha256="0" * 64,
            config={"train_rows": rows},
            n_train=rows,
            created_by="t",
        )
    )
    session.flush()


def test_5500_feedback_labels_on_a_78k_row_training_set_queue_one_candidate(
    tmp_path: Path,
) -> None:
    with fresh_store("sqlite", tmp_path) as store, store.write() as session:
        project, user, ids = _setup(session, 5_500)
        _version(session, project, 1, TRAIN_ROWS)
        queued = 0
        rows = TRAIN_ROWS
        for i, record_id in enumerate(ids):
            queue.annotate(session, project, user, record_id, "late", origin="feedback")
            job = jobs.active(session, "train", project.id)
            if job is not None:  # the fastest worker: it runs the job at once
                queued += 1
                project.labels_since_model = 0  # what the training job does when it starts
                session.execute(update(Job).where(Job.id == job.id).values(status="done"))
                rows = TRAIN_ROWS + i + 1
                _version(session, project, 1 + queued, rows)
        # retrain_every alone (50) queued a version every 50 labels: 110 of them.
        assert queued == 1
        # ...at 3,150 labels: the first multiple of 50 past 5% of 62,329 rows (3,116).
        assert project.labels_since_model == 5_500 - 3_150


def test_no_candidate_while_a_training_job_is_queued_or_running(tmp_path: Path) -> None:
    with fresh_store("sqlite", tmp_path) as store, store.write() as session:
        project, user, ids = _setup(session, 120)
        projects.write_settings(session, project, {"retrain_every": 20}, actor="t")
        running = jobs.enqueue(session, "train", project_id=project.id)
        running.status = "running"
        for record_id in ids[:100]:  # no version yet: only the job in flight holds them back
            queue.annotate(session, project, user, record_id, "late")
        count = select(func.count()).select_from(Job).where(Job.kind == "train")
        assert session.scalar(count) == 1
        running.status = "done"
        for record_id in ids[100:]:
            queue.annotate(session, project, user, record_id, "late")
        assert session.scalar(count) == 2  # at 120 = 6 x retrain_every, with nothing in flight


def test_retrain_min_share_is_checked_like_every_setting() -> None:
    for bad in (-0.1, 1.5, "5%", True):
        with pytest.raises(Invalid, match="retrain_min_share must be a number from 0 to 1"):
            configure.check_settings({"retrain_min_share": bad}, dict(projects.DEFAULT_SETTINGS))
    configure.check_settings({"retrain_min_share": 0}, dict(projects.DEFAULT_SETTINGS))


def test_background_training_keeps_to_its_share_of_the_worker(tmp_path: Path) -> None:
    """A training that took 60 s holds the next back 60 s at share 0.5; share 0 turns it off."""
    with fresh_store("sqlite", tmp_path) as store, store.write() as session:
        project, user, ids = _setup(session, 60)
        projects.write_settings(session, project, {"retrain_every": 20}, actor="t")
        done = jobs.enqueue(session, "train", project_id=project.id)
        now = utcnow()
        done.status = "done"
        done.started_at, done.finished_at = (
            now - dt.timedelta(seconds=90),
            now - dt.timedelta(seconds=30),
        )
        count = select(func.count()).select_from(Job).where(Job.kind == "train")
        for record_id in ids[:20]:
            queue.annotate(session, project, user, record_id, "late")
        assert session.scalar(count) == 1  # 30 s after a 60 s training: the worker rests
        done.finished_at = now - dt.timedelta(seconds=61)
        for record_id in ids[20:40]:
            queue.annotate(session, project, user, record_id, "late")
        assert session.scalar(count) == 2
        jobs.active(session, "train", project.id).status = "done"  # type: ignore[union-attr]
        projects.write_settings(session, project, {"retrain_worker_share": 0}, actor="t")
        for record_id in ids[40:]:
            queue.annotate(session, project, user, record_id, "late")
        assert session.scalar(count) == 2  # off: only `looplab train` and triggers train
