"""The review queue on a real store: the scan finds planted flips, decisions supersede labels,
are audited, and the next training set (and model) uses them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab import configure
from looplab.ask import queue
from looplab.collect import export
from looplab.core import audit, projects
from looplab.core.errors import Conflict, Invalid, NotFound
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import (
    Annotation,
    AuditEvent,
    Job,
    Project,
    ReviewItem,
    TrainingLabel,
    User,
)
from looplab.govern import access
from looplab.learn import dataset, training
from looplab.trust import review, standing
from tests.reviewdata import LABELS, make_project, scan


def items(store: Store) -> list[ReviewItem]:
    with store.read() as session:
        rows = list(session.scalars(select(ReviewItem).order_by(ReviewItem.score)))
        for row in rows:
            session.expunge(row)
        return rows


@pytest.fixture(autouse=True)
def reviewer(store: Store) -> None:
    with store.write() as session:
        access.create_user(session, "rita", "reviewer", actor="t")


def test_scan_finds_planted_flips(store: Store, tmp_path: Path) -> None:
    _, flipped = make_project(store)
    result = scan(store, tmp_path)
    queued = items(store)
    found = {item.record_id for item in queued}
    assert result["n_scanned"] == 150
    assert result["n_queued"] == len(queued) > 0
    hits = found & flipped
    # Words name the topic, so a flip is plain to an out-of-fold model: most are found, and
    # most suspects are flips.
    assert len(hits) / len(flipped) >= 0.8, (found, flipped)
    assert len(hits) / len(found) >= 0.7, (found, flipped)
    for item in queued:
        if item.record_id in flipped:
            assert item.suggested_label != item.given_label
        assert item.status == "open" and len(item.annotation_ids) == 1


def test_too_few_labels_is_a_clear_skip(store: Store, tmp_path: Path) -> None:
    make_project(store, n=12, flips=0)
    result = scan(store, tmp_path)
    assert result["skipped"].startswith("need 30 labeled records of 2+ labels to scan; have 12")
    assert items(store) == []


def _reviewer(session: Session) -> User:
    return access.get_user(session, "rita")


def _decide(store: Store, item_id: int, decision: str, label: str | None = None) -> None:
    with store.write() as session:
        project = projects.get_project(session, "news")
        item = review.get_item(session, project, item_id, for_update=True)
        review.decide(session, project, _reviewer(session), item, decision, label)


def _labels(store: Store) -> dict[int, str]:
    with store.read() as session:
        data = dataset.labeled_set(session, projects.get_project(session, "news"))
    return dict(zip(data.record_ids, data.labels, strict=True))


def test_relabel_supersedes_is_audited_and_trains(store: Store, tmp_path: Path) -> None:
    make_project(store)
    scan(store, tmp_path)
    first, second, third = items(store)[:3]
    assert first.suggested_label is not None
    _decide(store, first.id, "relabel", first.suggested_label)
    _decide(store, second.id, "keep")
    _decide(store, third.id, "ambiguous")
    with store.read() as session:
        old = session.get(Annotation, first.annotation_ids[0])
        assert old is not None and old.status == "superseded"
        kept = session.get(Annotation, second.annotation_ids[0])
        assert kept is not None and kept.status == "active"
        decided = {i.id: i for i in session.scalars(select(ReviewItem))}
        assert decided[first.id].status == "relabeled" and decided[first.id].decided_by == "rita"
        note = session.get(Annotation, decided[first.id].decision_id)
        assert note is not None and (note.origin, note.label) == ("review", first.suggested_label)
        events = list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "review.decide"))
        )
        assert [e.details["decision"] for e in events] == ["relabel", "keep", "ambiguous"]
        assert events[0].details["superseded"] == first.annotation_ids
        assert audit.verify(session).ok
    labels = _labels(store)
    assert labels[first.record_id] == first.suggested_label
    assert labels[second.record_id] == second.given_label
    assert third.record_id not in labels  # ambiguous: out of training
    with store.read() as session:  # and an export says what training reads
        exported = {
            item.id: item.label
            for item in export.iter_items(session, projects.get_project(session, "news"))
        }
    assert exported[first.record_id] == first.suggested_label
    assert exported[third.record_id] is None
    _trains_on_the_review(store, tmp_path, first)
    # A second scan leaves decided records alone and drops the first scan's open items.
    scan(store, tmp_path)
    reopened = {i.record_id for i in items(store) if i.status == "open"}
    assert not reopened & {first.record_id, second.record_id, third.record_id}


def _trains_on_the_review(store: Store, tmp_path: Path, item: ReviewItem) -> None:
    """The next model's lineage holds the review's answer, and not the superseded one."""
    with store.read() as session:
        project_id = projects.get_project(session, "news").id
        note = session.get(ReviewItem, item.id)
        assert note is not None and note.decision_id is not None
        decision_id = note.decision_id
    result = training.train_project(
        store, Settings(home=tmp_path), Job(kind="train", project_id=project_id, params={})
    )
    assert result["model"] == "v1"
    with store.read() as session:
        taught = dict(
            session.execute(select(TrainingLabel.annotation_id, TrainingLabel.weight))
            .tuples()
            .all()
        )
    assert taught[decision_id] == 1
    assert item.annotation_ids[0] not in taught


def test_bad_decisions_write_nothing(store: Store, tmp_path: Path) -> None:
    make_project(store)
    scan(store, tmp_path)
    item = items(store)[0]
    with store.read() as session:
        before = session.scalar(select(Annotation.id).order_by(Annotation.id.desc()).limit(1))
    with pytest.raises(Invalid, match="unknown label 'weather'"):
        _decide(store, item.id, "relabel", "weather")
    with pytest.raises(Invalid, match="is the given label"):
        _decide(store, item.id, "relabel", item.given_label)
    with pytest.raises(Invalid, match="unknown decision 'burn'"):
        _decide(store, item.id, "burn")
    with pytest.raises(Invalid, match="'keep' takes no label"):
        _decide(store, item.id, "keep", "sport")
    with pytest.raises(NotFound, match="no review item 999999"):
        _decide(store, 999999, "keep")
    _decide(store, item.id, "keep")
    with pytest.raises(Conflict, match="already decided \\(kept by rita\\)"):
        _decide(store, item.id, "ambiguous")
    with store.read() as session:
        after = session.scalar(select(Annotation.id).order_by(Annotation.id.desc()).limit(1))
        assert after == (before or 0) + 1  # only the one good decision wrote


def test_stale_item_is_refused(store: Store, tmp_path: Path) -> None:
    make_project(store)
    scan(store, tmp_path)
    item = items(store)[0]
    with store.write() as session:  # someone changed the record's label meanwhile
        for aid in item.annotation_ids:
            row = session.get(Annotation, aid)
            assert row is not None
            row.status = "superseded"
    with pytest.raises(Conflict, match="is stale"):
        _decide(store, item.id, "relabel", item.suggested_label)


def test_summary_measures_the_confirm_rate(store: Store, tmp_path: Path) -> None:
    make_project(store)
    scan(store, tmp_path)
    rows = items(store)
    for item in rows[:4]:
        _decide(store, item.id, "relabel", item.suggested_label)
    _decide(store, rows[4].id, "keep")
    with store.read() as session:
        project: Project = projects.get_project(session, "news")
        state = review.summary(session, project)
    counts, p = state["scan"]["counts"], state["scan"]["precision"]
    assert counts == {"open": len(rows) - 5, "kept": 1, "relabeled": 4, "ambiguous": 0}
    assert (p["confirmed"], p["decided"], p["rate"]) == (4, 5, 0.8)
    assert 0.37 < p["low"] < 0.38 and 0.96 < p["high"] < 0.97


def test_two_reviewers_deciding_one_item_at_once(store: Store, tmp_path: Path) -> None:
    """One decision wins; the other finds the item decided (409 stale), and writes nothing."""
    make_project(store)
    scan(store, tmp_path)
    item = items(store)[0]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(decision: str) -> None:
        start.wait()
        try:
            _decide(store, item.id, decision)
            outcomes.append(decision)
        except Conflict:
            outcomes.append("stale")

    threads = [threading.Thread(target=decide, args=(d,)) for d in ("keep", "ambiguous")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[-1] == "stale" and len(outcomes) == 2
    with store.read() as session:
        reviews = session.scalars(select(Annotation).where(Annotation.origin == "review")).all()
        assert len(reviews) == 1
        assert session.get(ReviewItem, item.id).decision_id == reviews[0].id  # type: ignore[union-attr]


def test_scan_also_queues_low_consensus_and_flagged_annotator(store: Store, tmp_path: Path) -> None:
    """Records the consensus holds back, and records a flagged person labeled, are queued too."""
    ids, _ = make_project(store)
    with store.write() as session:
        project = projects.get_project(session, "news")
        configure.update_settings(session, project, {"consensus_min_posterior": 0.6}, actor="t")
        bob, _ = access.create_user(session, "bob", "annotator", actor="t")
        for record_id in ids[:4]:  # bob disagrees with ann: half the votes each, below 0.6
            mine = session.scalar(select(Annotation.label).where(Annotation.record_id == record_id))
            other = next(label for label in LABELS if label != mine)
            queue.annotate(session, project, bob, record_id, other)
        standing.flag(session, project, bob, evidence={"flags": ["flipped_class"]}, actor="t")
        queue.annotate(session, project, bob, ids[10], "sport")  # flagged, not quarantined: active
    result = scan(store, tmp_path)
    by_reason: dict[str, set[int]] = {}
    for row in items(store):
        by_reason.setdefault(row.reason, set()).add(row.record_id)
    assert by_reason["low_consensus"] == set(ids[:4]) and result["n_low_consensus"] == 4
    assert ids[10] in by_reason["flagged_annotator"]
    assert result["n_flagged_annotator"] == len(by_reason["flagged_annotator"])
    assert result["n_scanned"] == 146  # the four held back are not scanned
