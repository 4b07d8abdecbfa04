"""Replays for monitoring tests: a served tabular model, traffic with known truth, labels.

``served(store, tmp_path)`` builds project "shop" (inputs ``x0, x1, x2, color``; the label is
``hi`` when ``x0 + x1 > 0``) with 600 imported labels, trains v1 and promotes it. ``replay``
runs the production model on rows, logs the predictions (at the times given, so tests control
the clock), and adds volunteered feedback and audit answers with the true label. ``run``
calls the monitor job's handler directly, with the test's ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import select

from looplab import configure, worker
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import (
    Annotation,
    AuditSample,
    Feedback,
    Job,
    Prediction,
    Record,
    User,
)
from looplab.govern import access
from looplab.learn import registry
from looplab.serve import predlog
from looplab.watch import monitor
from tests.textdata import add_labeled

FIELDS = ["x0", "x1", "x2", "color"]
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def rows(
    rng: np.random.Generator, n: int, *, shift: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """Inputs; ``shift`` moves numeric columns by that many standard deviations."""
    x = rng.normal(size=(n, 3))
    for i, name in enumerate(("x0", "x1", "x2")):
        x[:, i] += (shift or {}).get(name, 0.0)
    colors = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    return [
        {"x0": float(a), "x1": float(b), "x2": float(c), "color": str(k)}
        for (a, b, c), k in zip(x, colors, strict=True)
    ]


def truth(row: dict[str, Any]) -> str:
    return "hi" if row["x0"] + row["x1"] > 0 else "lo"


def served(store: Store, tmp_path, *, n: int = 600, seed: int = 10, **settings: Any) -> list:
    """Project "shop" with ``n`` imported labels, v1 trained and promoted; returns the rows."""
    rng = np.random.default_rng(seed)
    data = rows(rng, n)
    with store.write() as session:
        project = projects.create_project(
            session, "shop", task="tabular", labels=["hi", "lo"], fields=FIELDS, actor="test"
        )
        for i, row in enumerate(data):
            add_labeled(session, project, f"train{i}", row, truth(row))
        configure.update_settings(
            session, project, {"monitor_min_predictions": 500, **settings}, actor="test"
        )
        access.create_user(session, "judge", "annotator", actor="test")
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(store, Settings(home=tmp_path))
    with store.write() as session:
        project = projects.get_project(session, "shop")
        registry.promote(
            session, project, registry.get_version(session, project, "v1"), actor="test"
        )
    return data


def replay(
    store: Store,
    batch: list[dict[str, Any]],
    *,
    start: dt.datetime = T0,
    step: dt.timedelta = dt.timedelta(seconds=1),
    label: Callable[[dict[str, Any]], str] = truth,
    feedback: float = 0.0,
    wrong_boost: float = 1.0,
    rng: np.random.Generator | None = None,
) -> list[tuple[str, bool]]:
    """Log the model's predictions on ``batch``; return ``(prediction id, right)`` per row.

    Volunteered feedback (the true label from ``label``) is sent on a share ``feedback`` of the
    right answers and ``feedback * wrong_boost`` of the wrong ones: ``wrong_boost`` 5 is the
    client who mostly speaks up when the answer was wrong.
    """
    rng = rng or np.random.default_rng()  # unseeded unless the test seeds it
    with store.write() as session:
        project = projects.get_project(session, "shop")
        model = registry.production(session, project)
        assert model is not None
        fitted = registry.load(session, model)
        proba = fitted.predict_proba(batch)
        classes = [str(c) for c in fitted.classes_]
        out, log = [], []
        for i, (row, p) in enumerate(zip(batch, proba, strict=True)):
            k = int(np.argmax(p))
            pid = f"{int(rng.integers(2**62)):016x}{i:016x}"  # seeded: the audit draw is too
            log.append(
                {
                    "id": pid,
                    "project_id": project.id,
                    "model_version": model.version,
                    "input": row,
                    "label": classes[k],
                    "confidence": float(p[k]),
                    "proba": dict(zip(classes, map(float, p), strict=True)),
                    "latency_ms": 1.0,
                    "created_at": start + i * step,
                }
            )
            out.append((pid, classes[k] == label(row)))
        predlog.append(session, log)
        user_id = _user_id(session)
        for entry, row, (pid, right) in zip(log, batch, out, strict=True):
            if rng.random() < feedback * (1.0 if right else wrong_boost):
                seq = session.scalar(select(Prediction.seq).where(Prediction.id == pid))
                session.add(
                    Feedback(
                        project_id=project.id,
                        prediction_id=pid,
                        model_version=model.version,
                        prediction_at=entry["created_at"],
                        prediction_seq=seq,
                        user_id=user_id,
                        accepted=right,
                        label=label(row),
                    )
                )
    return out


def _user_id(session: Any) -> int:
    return int(session.scalar(select(User.id).where(User.name == "judge")))


def answer_audit(store: Store, label: Callable[[dict[str, Any]], str] = truth) -> int:
    """A person answers every open audit task with the true label; returns how many."""
    with store.write() as session:
        samples = session.scalars(select(AuditSample)).all()
        done = 0
        for record_id in {s.record_id for s in samples}:
            record = session.get(Record, record_id)
            assert record is not None
            if record.n_human >= record.needed:
                continue
            answer = label(record.payload)
            session.add(
                Annotation(
                    project_id=record.project_id,
                    record_id=record.id,
                    annotator_id=_user_id(session),
                    value={"label": answer},
                    label=answer,
                    origin="human",
                )
            )
            record.n_human += 1
            done += 1
    return done


def run(
    store: Store, tmp_path, *, now: dt.datetime | None = None, force: bool = False
) -> dict[str, Any]:
    """The monitor job's handler on a clock the test controls (the job is not queued)."""
    with store.read() as session:
        project_id = projects.get_project(session, "shop").id
    job = Job(kind="monitor", project_id=project_id, params={"force": force})
    return monitor.monitor_project(store, Settings(home=tmp_path), job, now=now)


def state(store: Store) -> dict[str, Any]:
    from looplab.watch import overview

    with store.read() as session:
        return overview.monitor_state(session, projects.get_project(session, "shop"))
