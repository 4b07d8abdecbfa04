"""Feedback and labeling-page answers of one person on one record: both kept, consensus decides."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from looplab.collect import ingest
from looplab.core import projects
from looplab.core.tables import Annotation, Record
from looplab.learn import dataset
from tests.api.conftest import Api
from tests.api.test_serving import FEEDBACK, PREDICT, row, trained

STATUS = "/api/v1/projects/digits/status"
ANNOTATE = "/api/v1/projects/digits/annotations"


def pool_record(api: Api, payload: dict[str, float]) -> int:
    """An unlabeled record holding ``payload``, keyed by the content hash imports use."""
    with api.store.write() as session:
        project = projects.get_project(session, "digits")
        normalised = ingest.normalise_payload(project, dict(payload))
        record = Record(
            project_id=project.id,
            content_hash=ingest.content_hash(project, normalised),
            payload=normalised,
            meta={},
            score=1.0,
        )
        session.add(record)
        session.flush()
        return record.id


def answers(api: Api, record_id: int) -> list[tuple[str, str, str | None]]:
    with api.store.read() as session:
        rows = session.execute(
            select(Annotation.origin, Annotation.status, Annotation.label)
            .where(Annotation.record_id == record_id)
            .order_by(Annotation.id)
        ).tuples()
        return [(origin, status, label) for origin, status, label in rows]


def training_label(api: Api, record_id: int) -> tuple[str, int]:
    """The record's consensus label in the training data, and its count of people."""
    with api.store.read() as session:
        project = projects.get_project(session, "digits")
        labeled = dataset.labeled_set(session, project)
        record = session.get(Record, record_id)
        assert record is not None
        return labeled.labels[labeled.record_ids.index(record_id)], record.n_human


def test_feedback_keeps_the_annotators_own_label_and_consensus_decides(
    api: Api, tmp_path: Path
) -> None:
    trained(api.store, tmp_path)
    record_id = pool_record(api, row(1500))
    me = api.as_("annotator")

    labeled = api.client.post(ANNOTATE, json={"record_id": record_id, "label": "3"}, headers=me)
    assert labeled.status_code == 201, labeled.text
    pid = api.client.post(PREDICT, json={"records": [row(1500)]}, headers=me).json()["predictions"][
        0
    ]["id"]
    verdict = api.client.post(FEEDBACK, json={"prediction_id": pid, "label": "5"}, headers=me)
    assert verdict.status_code == 201, verdict.text

    # Both answers are kept, each with its origin; neither replaced the other.
    assert answers(api, record_id) == [("human", "active", "3"), ("feedback", "active", "5")]
    status = api.client.get(STATUS, headers=api.as_("reviewer")).json()
    assert status["per_annotator"] == {"annotator": 1}
    assert status["per_annotator_feedback"] == {"annotator": 1}
    assert status["feedback_conflicts"] == 1
    last = api.client.get(f"{ANNOTATE}/last", headers=me).json()
    assert (last["origin"], last["label"]) == ("human", "3")  # Backspace brings back the page's

    # One person of two minds: a tie, which goes to the most recent answer; they count once.
    assert training_label(api, record_id) == ("5", 1)
    # A second person's answer decides.
    bob = api.add_user("bob")
    second = api.client.post(
        ANNOTATE,
        json={"record_id": record_id, "label": "3"},
        headers={"Authorization": f"Bearer {bob}"},
    )
    assert second.status_code == 201, second.text
    assert training_label(api, record_id) == ("3", 2)

    # Fixing one's labeling answer replaces that answer only; the feedback verdict stays.
    fixed = api.client.post(ANNOTATE, json={"record_id": record_id, "label": "5"}, headers=me)
    assert fixed.status_code == 201, fixed.text
    assert answers(api, record_id) == [
        ("human", "superseded", "3"),
        ("feedback", "active", "5"),
        ("human", "active", "3"),
        ("human", "active", "5"),
    ]
    status = api.client.get(STATUS, headers=api.as_("reviewer")).json()
    assert status["per_annotator"] == {"annotator": 1, "bob": 1}
    assert status["feedback_conflicts"] == 0
    # annotator agrees with themself now (one vote for 5), bob says 3: a tie, the latest is 5.
    assert training_label(api, record_id) == ("5", 2)
