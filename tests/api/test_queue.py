"""The queue: best-first hand-out, leases, overlap, skip, replace; safe under concurrent clients."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event, func, select

from looplab.ask import queue
from looplab.core import projects
from looplab.core.tables import Annotation, Lease, Record, User, utcnow
from tests.api.conftest import Api

NEXT = "/api/v1/projects/news/queue/next"
ANNOTATE = "/api/v1/projects/news/annotations"


def test_highest_score_first_and_reload_returns_the_same_record(news: Api) -> None:
    first = news.client.get(NEXT, headers=news.as_("annotator")).json()["record"]
    assert first["payload"] == {"text": "article number 11"}  # score 11 is highest
    again = news.client.get(NEXT, headers=news.as_("annotator")).json()["record"]
    assert again["id"] == first["id"]
    prefetched = news.client.get(
        NEXT, params={"exclude": [first["id"]]}, headers=news.as_("annotator")
    ).json()["record"]
    assert prefetched["id"] != first["id"]


def test_two_annotators_get_different_records(news: Api) -> None:
    news.add_user("bob")
    a = news.client.get(NEXT, headers=news.as_("annotator")).json()["record"]["id"]
    b = news.client.get(NEXT, headers=news.as_("bob")).json()["record"]["id"]
    assert a != b


def test_overlap_hands_one_record_to_k_people(news: Api) -> None:
    with news.store.write() as session:
        session.execute(Record.__table__.update().values(needed=2))
    news.add_user("bob")
    news.add_user("carol")
    a = news.client.get(NEXT, headers=news.as_("annotator")).json()["record"]["id"]
    b = news.client.get(NEXT, headers=news.as_("bob")).json()["record"]["id"]
    c = news.client.get(NEXT, headers=news.as_("carol")).json()["record"]["id"]
    assert a == b != c


def test_unknown_label_and_record_are_rejected_and_nothing_stored(news: Api) -> None:
    rid = news.client.get(NEXT, headers=news.as_("annotator")).json()["record"]["id"]
    bad = news.client.post(
        ANNOTATE, json={"record_id": rid, "label": "weather"}, headers=news.as_("annotator")
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == {
        "code": "invalid",
        "message": "unknown label 'weather'; valid labels: business, sport, tech",
        "details": {"field": "label", "value": "weather"},
    }
    missing = news.client.post(
        ANNOTATE, json={"record_id": 999_999, "label": "tech"}, headers=news.as_("annotator")
    )
    assert missing.status_code == 404
    negative = news.client.post(
        ANNOTATE,
        json={"record_id": rid, "label": "tech", "seconds": -1},
        headers=news.as_("annotator"),
    )
    assert negative.status_code == 422
    with news.store.read() as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0


def test_answer_again_replaces_and_skip_hides(news: Api) -> None:
    h = news.as_("annotator")
    rid = news.client.get(NEXT, headers=h).json()["record"]["id"]
    news.client.post(ANNOTATE, json={"record_id": rid, "label": "tech", "seconds": 1.2}, headers=h)
    fixed = news.client.post(ANNOTATE, json={"record_id": rid, "label": "sport"}, headers=h)
    assert fixed.status_code == 201
    last = news.client.get("/api/v1/projects/news/annotations/last", headers=h).json()
    assert last["record_id"] == rid and last["label"] == "sport"
    with news.store.read() as session:
        record = session.get(Record, rid)
        statuses = Counter(
            session.scalars(select(Annotation.status).where(Annotation.record_id == rid))
        )
    assert record is not None and record.n_human == 1
    assert statuses == {"active": 1, "superseded": 1}

    skipped = news.client.get(NEXT, headers=h).json()["record"]["id"]
    assert (
        news.client.post(
            "/api/v1/projects/news/queue/skip", json={"record_id": skipped}, headers=h
        ).status_code
        == 201
    )
    assert news.client.get(NEXT, headers=h).json()["record"]["id"] not in (rid, skipped)


def test_expired_lease_comes_back(news: Api) -> None:
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        alice = session.scalar(select(User).where(User.name == "annotator"))
        assert alice is not None
        first = queue.next_record(session, project, alice, lease_seconds=60)
        assert first is not None
    news.add_user("bob")
    with news.store.write() as session:
        bob = session.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        later = utcnow() + dt.timedelta(seconds=120)
        record = queue.next_record(session, project, bob, lease_seconds=60, now=later)
        assert record is not None and record.id == first.id


def test_queue_runs_dry(news: Api) -> None:
    h = news.as_("annotator")
    for _ in range(12):
        rid = news.client.get(NEXT, headers=h).json()["record"]["id"]
        news.client.post(ANNOTATE, json={"record_id": rid, "label": "tech"}, headers=h)
    empty = {"record": None, "suggestion": None, "suggestion_note": "", "source": None}
    assert news.client.get(NEXT, headers=h).json() == empty


def test_concurrent_annotators_never_share_a_record(news: Api) -> None:
    """Eight threads, each its own user, label the pool dry through the real store."""
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        for i in range(12, 160):
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=i.to_bytes(16, "big"),
                    payload={"text": f"more {i}"},
                    meta={},
                    score=float(i % 7),
                )
            )
    names = [f"worker{i}" for i in range(8)]
    for name in names:
        news.add_user(name)
    handed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        try:
            with news.store.read() as session:
                user = session.scalar(select(User).where(User.name == name))
            assert user is not None
            while True:
                with news.store.write() as session:
                    record = queue.next_record(session, project, user, lease_seconds=300)
                    if record is None:
                        return
                    rid = record.id
                with lock:
                    handed.append(rid)
                with news.store.write() as session:
                    queue.annotate(session, project, user, rid, "tech", seconds=0.1)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(handed) == 160 and len(set(handed)) == 160
    with news.store.read() as session:
        per_record = session.execute(
            select(Annotation.record_id, func.count()).group_by(Annotation.record_id)
        ).all()
        leases = session.scalar(select(func.count()).select_from(Lease))
    assert len(per_record) == 160 and all(n == 1 for _, n in per_record)
    assert leases == 0


def test_next_record_reads_the_open_records_index(news: Api) -> None:
    """Answered records leave ix_records_open, so a hand-out never walks past them."""
    if news.store.dialect != "sqlite":
        pytest.skip("SQLite's plan: PostgreSQL's planner rightly scans 12 rows instead")
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "ORDER BY records.score DESC" in statement:
            seen.append((statement, params))

    event.listen(news.store.write_engine, "before_cursor_execute", capture)
    try:
        with news.store.write() as session:
            project = projects.get_project(session, "news")
            alice = session.scalar(select(User).where(User.name == "annotator"))
            assert alice is not None
            first = queue.next_record(session, project, alice, lease_seconds=60)
            assert first is not None
            queue.next_record(session, project, alice, lease_seconds=60, exclude=[first.id])
    finally:
        event.remove(news.store.write_engine, "before_cursor_execute", capture)
    assert len(seen) == 2  # without and with excluded ids
    with news.store.read() as session:
        for statement, params in seen:
            plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            details = " ".join(str(row[-1]) for row in plan)
            assert "USING INDEX ix_records_open" in details, details
            assert "TEMP B-TREE" not in details, details
