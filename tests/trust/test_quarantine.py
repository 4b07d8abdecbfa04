"""Quarantine takes a person's answers out of the next model (lineage proves it), reopens their
records for others, and release brings everything back; both audited."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from looplab.ask import queue
from looplab.core import projects
from looplab.core.errors import Conflict, Invalid
from looplab.core.store import Store
from looplab.core.tables import Annotation, AuditEvent, ModelVersion, Record, TrainingLabel, User
from looplab.govern import access
from looplab.trust import standing
from tests import textdata


def setup(store: Store, n: int = 90, unanswered: int = 0) -> None:
    """Project ``news`` with ``n`` records; ann answers two thirds of them right, mallory the last
    third, every one as "business"; and ``unanswered`` more records nobody answered."""
    with store.write() as session:
        project = projects.create_project(
            session, "news", task="text", labels=textdata.LABELS, actor="test"
        )
        people = {
            name: access.create_user(session, name, "annotator", actor="test")[0]
            for name in ("ann", "mallory")
        }
        for i, (text, label, _) in enumerate(textdata.rows(n + unanswered)):
            record = Record(
                project_id=project.id,
                content_hash=hashlib.blake2b(text.encode(), digest_size=16).digest(),
                payload={"text": text},
                meta={},
            )
            session.add(record)
            session.flush()
            who, answer = (
                (people["ann"], label) if i < 2 * n // 3 else (people["mallory"], "business")
            )
            if i < n:
                queue.annotate(session, project, who, record.id, answer)


def lineage(store: Store, version: str) -> dict[str, int]:
    """Training rows each person stood for in ``version`` (the TrainingLabel rows)."""
    with store.read() as session:
        rows = session.execute(
            select(User.name, TrainingLabel.weight)
            .join(Annotation, Annotation.id == TrainingLabel.annotation_id)
            .join(User, User.id == Annotation.annotator_id)
            .join(ModelVersion, ModelVersion.id == TrainingLabel.model_id)
            .where(ModelVersion.version == int(version[1:]))
        ).all()
    out: dict[str, int] = {}
    for name, weight in rows:
        out[name] = out.get(name, 0) + int(weight or 0)
    return out


def decide(store: Store, what: str, reason: str = "files sport as business") -> dict:
    with store.write() as session:
        project = projects.get_project(session, "news")
        user = access.get_user(session, "mallory")
        act = standing.quarantine if what == "quarantine" else standing.release
        return act(session, project, user, reason=reason, actor="rev")


def test_quarantine_leaves_the_next_model_and_release_brings_it_back(
    store: Store, tmp_path: Path
) -> None:
    setup(store)
    first = textdata.train(store, tmp_path)
    assert lineage(store, first["model"])["mallory"] > 0

    result = decide(store, "quarantine")
    assert result["annotations"] == 30 and result["status"] == "quarantined"
    with store.read() as session:
        statuses = set(
            session.scalars(select(Annotation.status).join(User).where(User.name == "mallory"))
        )
        reopened = session.scalar(
            select(Record.n_human)
            .join(Annotation, Annotation.record_id == Record.id)
            .join(User)
            .where(User.name == "mallory")
            .limit(1)
        )
        queued = session.scalars(select(AuditEvent.action)).all()
    assert statuses == {"quarantined"} and reopened == 0  # back in the queue for others
    assert "annotator.quarantine" in queued
    second = textdata.train(store, tmp_path)
    assert "mallory" not in lineage(store, second["model"])
    assert second["n_train"] < first["n_train"]

    decide(store, "release", "guideline was unclear")
    third = textdata.train(store, tmp_path)
    assert lineage(store, third["model"])["mallory"] == lineage(store, first["model"])["mallory"]
    with store.read() as session:
        assert (
            session.scalar(
                select(AuditEvent.details).where(AuditEvent.action == "annotator.release")
            )["reason"]
            == "guideline was unclear"
        )


def test_a_quarantined_persons_new_answer_arrives_quarantined_and_fills_nothing(
    store: Store,
) -> None:
    setup(store, n=9, unanswered=1)
    decide(store, "quarantine")
    with store.write() as session:
        project = projects.get_project(session, "news")
        mallory = access.get_user(session, "mallory")
        record = queue.next_record(session, project, mallory, lease_seconds=60)
        assert record is not None  # she still labels (the answers are kept and shown)
        answer = queue.annotate(session, project, mallory, record.id, "sport")
        assert answer.status == "quarantined" and record.n_human == 0
        # Her own earlier answers are still hers: none of those records comes back to her.
        assert record.id not in {
            a.record_id
            for a in session.scalars(select(Annotation).where(Annotation.id < answer.id))
            if a.annotator_id == mallory.id
        }


def test_twice_or_without_a_reason_is_refused_and_writes_nothing(store: Store) -> None:
    setup(store, n=9)
    with pytest.raises(Invalid, match="reason is required"):
        decide(store, "quarantine", reason="  ")
    with pytest.raises(Conflict, match="not quarantined"):
        decide(store, "release")
    decide(store, "quarantine")
    with pytest.raises(Conflict, match="already quarantined"):
        decide(store, "quarantine")
    with store.read() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("annotator.%"))
        ).all()
    assert actions == ["annotator.quarantine"]
