"""The audit sample: predictions drawn at random for people to label, against volunteered feedback
that comes five times more often on wrong answers."""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy import func, select

from looplab import worker
from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import AuditSample, Record
from looplab.learn.intervals import wilson_interval
from looplab.watch import auditing
from tests.watch import replay


def test_the_draw_is_uniform_and_independent_of_the_answer() -> None:
    ids = [uuid.UUID(int=i).hex for i in range(20_000)]
    picked = sum(auditing.drawn(i, 0.05) for i in ids)
    assert abs(picked / 20_000 - 0.05) < 0.006
    assert not any(auditing.drawn(i, 0.0) for i in ids[:100])
    assert all(auditing.drawn(i, 1.0) for i in ids[:100])


def test_audit_intervals_cover_the_truth_where_volunteered_feedback_does_not() -> None:
    """200 seeded windows of 2,000 predictions, 80% right; feedback 2% on right answers, 10% on
    wrong ones; audit at 2%."""
    audit_covers = volunteered_covers = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        right = rng.random(2000) < 0.8
        ids = [f"{seed:08x}{i:024x}" for i in range(2000)]
        audited = np.array([auditing.drawn(i, 0.02) for i in ids])
        volunteered = rng.random(2000) < np.where(right, 0.02, 0.10)
        truth = right.mean()
        low, high = wilson_interval(int(right[audited].sum()), int(audited.sum()))
        audit_covers += low <= truth <= high
        low, high = wilson_interval(int(right[volunteered].sum()), int(volunteered.sum()))
        volunteered_covers += low <= truth <= high
    assert audit_covers >= 0.92 * 200  # a 95% interval, as it should be
    assert volunteered_covers <= 0.05 * 200  # biased low: it almost never covers


def test_the_monitor_reports_the_audit_apart_and_judges_with_it(store: Store, tmp_path) -> None:
    replay.served(store, tmp_path, audit_rate=0.1, monitor_min_predictions=1000)
    rng = np.random.default_rng(7)
    outcome = replay.replay(store, replay.rows(rng, 1000), feedback=0.05, wrong_boost=5.0, rng=rng)
    truth = float(np.mean([right for _, right in outcome]))
    closed = replay.run(store, tmp_path)
    assert closed["audited"] == closed["windows"][0]["audited"] > 50
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditSample)) == closed["audited"]
        tasks = session.scalars(select(Record).where(Record.score >= auditing.AUDIT_SCORE)).all()
        assert tasks and all(r.n_human < r.needed for r in tasks)  # on top of the queue
    # A scoring job ranks the rest of the pool and leaves the audit tasks on top.
    with store.write() as session:
        jobs.enqueue(session, "score", project_id=tasks[0].project_id)
    worker.drain(store, Settings(home=tmp_path))
    with store.read() as session:
        ids = [r.id for r in tasks]
        scores = session.scalars(select(Record.score).where(Record.id.in_(ids))).all()
        assert min(scores) >= auditing.AUDIT_SCORE
    before = replay.state(store)["latest"]
    assert before["audit"]["n"] == 0 and before["labels_used"] == "feedback"
    assert replay.answer_audit(store) > 50
    latest = replay.state(store)["latest"]
    audit, volunteered = latest["audit"], latest["feedback"]
    assert audit["selective"] is False and volunteered["selective"] is True
    assert audit["ci_low"] <= truth <= audit["ci_high"]
    assert volunteered["accuracy"] < audit["accuracy"]
    assert latest["labels_used"] == "audit"
