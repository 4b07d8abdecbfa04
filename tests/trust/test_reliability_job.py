"""The reliability check as a job: queued by answers now and then, run by the worker, and under
quarantine_policy=auto it quarantines the flipper (and only her) and queues a retrain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from looplab import worker
from looplab.ask import queue
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import AnnotatorStanding, AuditEvent, Job, Record
from looplab.govern import access
from tests import textdata


def crowd(store: Store, n: int = 60, **settings: object) -> None:
    """``n`` articles each answered by ann, bob (right 95% of the time) and mallory, who files
    every sport article under business."""
    rng = np.random.default_rng(1)
    with store.write() as session:
        project = textdata.add_text_project(session, n=0)
        projects.write_settings(session, project, dict(settings), actor="t")
        people = [
            access.create_user(session, name, "annotator", actor="t")[0]
            for name in ("ann", "bob", "mallory")
        ]
        for i, (text, true, _) in enumerate(textdata.rows(n)):
            record = Record(
                project_id=project.id, content_hash=i.to_bytes(16, "big"), payload={"text": text}
            )
            session.add(record)
            session.flush()
            for person in people:
                if person.name == "mallory":
                    label = "business" if true == "sport" else true
                else:
                    label = true if rng.random() < 0.95 else str(rng.choice(textdata.LABELS))
                queue.annotate(session, project, person, record.id, label, seconds=5.0)


def test_answers_queue_the_check_and_auto_quarantines_only_the_flipper(
    store: Store, tmp_path: Path
) -> None:
    crowd(store, quarantine_policy="auto", reliability_every=1, retrain_every=10**6)
    with store.read() as session:
        queued = session.scalars(select(Job.kind).where(Job.status == "queued")).all()
    assert queued == ["reliability"]  # one, however many answers asked for it
    worker.drain(store, Settings(home=tmp_path))
    with store.read() as session:
        decided = {
            s.user_id: (s.status, s.policy, s.decided_by)
            for s in session.scalars(select(AnnotatorStanding))
        }
        mallory = access.get_user(session, "mallory")
        trains = session.scalar(select(func.count()).where(Job.kind == "train"))
        actors = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "annotator.quarantine")
        ).all()
    assert decided == {mallory.id: ("quarantined", "auto", "reliability")}
    assert trains == 1 and actors == ["reliability"]


def test_under_policy_flag_the_check_only_flags(store: Store, tmp_path: Path) -> None:
    crowd(store, reliability_every=0)
    with store.read() as session:
        # reliability_every=0: never queued by answers
        assert session.scalar(select(func.count()).where(Job.kind == "reliability")) == 0
    with store.write() as session:
        project = projects.get_project(session, "news")
        from looplab.trust import annotators

        result = annotators.check(session, project, actor="rev")
    assert result == {"flagged": ["mallory"], "quarantined": [], "policy": "flag"}
    with store.read() as session:
        statuses = session.scalars(select(AnnotatorStanding.status)).all()
    assert statuses == ["flagged"]


def test_report_shows_each_persons_answers_against_the_others_consensus(store: Store) -> None:
    """The table the dashboard's heatmap draws: mallory's sport articles sit in the
    (sport, business) cell, the flipped cell her flag names."""
    crowd(store, reliability_every=0)
    from looplab.trust import annotators

    with store.read() as session:
        report = annotators.report(session, projects.get_project(session, "news"))
    people = {p["user"]: p for p in report["annotators"]}
    table = people["mallory"]["confusion"]
    sport, business = table["classes"].index("sport"), table["classes"].index("business")
    counts = np.array(table["counts"])
    assert table["n"] == 60 == counts.sum()
    assert counts[sport, business] == counts[sport].sum() > 5
    assert counts[sport, sport] == 0
    worst = people["mallory"]["worst_confusion"]
    assert (worst["truth"], worst["answered"]) == ("sport", "business")
    ann = np.array(people["ann"]["confusion"]["counts"])
    assert np.trace(ann) >= 0.9 * ann.sum()
