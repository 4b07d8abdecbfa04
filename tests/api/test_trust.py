"""The trust routes: reviewers read agreement and evidence, import gold, quarantine and release;
bad input gets the usual 4xx with nothing written."""

from __future__ import annotations

from sqlalchemy import func, select

from looplab.ask import queue
from looplab.core import projects
from looplab.core.tables import AuditEvent, GoldAnswer, Record, User
from tests.api.conftest import Api

BASE = "/api/v1/projects/news"


def answer_everything(news: Api, people: tuple[str, ...] = ("ann", "bob")) -> None:
    """Each of ``people`` answers every record of ``news``: ann "sport", bob "tech" on odd ids."""
    for name in people:
        news.add_user(name)
    with news.store.write() as session:
        project = projects.get_project(session, "news")
        users = {u.name: u for u in session.scalars(select(User))}
        for rid in session.scalars(select(Record.id).order_by(Record.id)):
            for name in people:
                label = "tech" if name == "bob" and rid % 2 else "sport"
                queue.annotate(session, project, users[name], rid, label, seconds=3.0)


def events(news: Api) -> int:
    with news.store.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_agreement_and_annotators_are_for_reviewers(news: Api) -> None:
    got = news.client.get(f"{BASE}/agreement", headers=news.as_("annotator"))
    assert got.status_code == 403 and got.json()["error"]["code"] == "forbidden"
    got = news.client.get(f"{BASE}/agreement", headers=news.as_("reviewer"))
    assert got.status_code == 200 and got.json()["n_records"] == 0
    assert "overlap" in got.json()["note"]
    answer_everything(news)
    got = news.client.get(f"{BASE}/agreement?by=day&min_shared=5", headers=news.as_("reviewer"))
    body = got.json()
    assert got.status_code == 200 and body["overall"]["n_records"] == 12
    assert [(p["a"], p["b"], p["n_shared"]) for p in body["pairs"]] == [("ann", "bob", 12)]
    got = news.client.get(f"{BASE}/agreement?by=year", headers=news.as_("reviewer"))
    assert got.status_code == 422 and got.json()["error"]["code"] == "invalid"
    people = news.client.get(f"{BASE}/annotators", headers=news.as_("reviewer")).json()
    assert [(p["user"], p["labels"], p["standing"]["status"]) for p in people["annotators"]] == [
        ("ann", 12, "ok"),
        ("bob", 12, "ok"),
    ]
    assert (
        news.client.get(
            "/api/v1/projects/nope/annotators", headers=news.as_("reviewer")
        ).status_code
        == 404
    )


def test_quarantine_and_release_over_http(news: Api) -> None:
    answer_everything(news)
    url = f"{BASE}/annotators/bob"
    body = {"reason": "answers tech for every odd record"}
    assert (
        news.client.post(f"{url}/quarantine", json=body, headers=news.as_("annotator")).status_code
        == 403
    )
    before = events(news)
    missing = news.client.post(
        f"{BASE}/annotators/nobody/quarantine", json=body, headers=news.as_("reviewer")
    )
    assert (
        missing.status_code == 404
        and "no user named 'nobody'" in missing.json()["error"]["message"]
    )
    blank = news.client.post(f"{url}/quarantine", json={"reason": ""}, headers=news.as_("reviewer"))
    assert blank.status_code == 422
    assert events(news) == before
    done = news.client.post(f"{url}/quarantine", json=body, headers=news.as_("reviewer"))
    assert done.status_code == 200
    assert done.json()["status"] == "quarantined" and done.json()["annotations"] == 12
    again = news.client.post(f"{url}/quarantine", json=body, headers=news.as_("reviewer"))
    assert again.status_code == 409
    people = news.client.get(f"{BASE}/annotators", headers=news.as_("reviewer")).json()
    bob = next(p for p in people["annotators"] if p["user"] == "bob")
    assert (
        bob["standing"]["status"] == "quarantined" and bob["standing"]["decided_by"] == "reviewer"
    )
    agreement = news.client.get(f"{BASE}/agreement", headers=news.as_("reviewer")).json()
    assert agreement["n_records"] == 0  # bob's answers no longer count
    confirmed = news.client.post(
        f"{url}/confirm", json={"reason": "checked"}, headers=news.as_("reviewer")
    )
    assert confirmed.json()["status"] == "confirmed"
    released = news.client.post(
        f"{url}/release", json={"reason": "ok now"}, headers=news.as_("admin")
    )
    assert released.status_code == 200 and released.json()["annotations"] == 12


def test_gold_upload_all_or_nothing_and_shown_like_any_record(news: Api) -> None:
    url = f"{BASE}/gold?filename=gold.csv&label=topic"
    bad = b"text,topic\narticle number 1,sport\nsomething,weather\n"
    got = news.client.post(url, content=bad, headers=news.as_("reviewer"))
    assert got.status_code == 422 and "unknown label 'weather'" in got.json()["error"]["message"]
    assert got.json()["error"]["details"]["line"] == 3
    with news.store.read() as session:
        assert session.scalar(select(func.count()).select_from(GoldAnswer)) == 0
    assert (
        news.client.post(url, content=b"text,topic\n", headers=news.as_("annotator")).status_code
        == 403
    )
    good = b"text,topic\narticle number 1,sport\na new one,tech\n"
    got = news.client.post(url, content=good, headers=news.as_("reviewer"))
    assert got.status_code == 201
    assert {k: got.json()[k] for k in ("gold", "matched", "created")} == {
        "gold": 2,
        "matched": 0,  # the fixture's records are not hashed by content (ingest's tests match)
        "created": 2,
    }
    settings = news.client.patch(
        f"{BASE}/settings", json={"gold_rate": 0.5}, headers=news.as_("admin")
    )
    assert settings.status_code == 200
    seen = []
    for _ in range(15):
        item = news.client.get(f"{BASE}/queue/next", headers=news.as_("annotator")).json()
        if item["record"] is None:
            break
        seen.append(item)
        record = item["record"]
        answer = {"record_id": record["id"], "label": "sport"}
        assert (
            news.client.post(
                f"{BASE}/annotations", json=answer, headers=news.as_("annotator")
            ).status_code
            == 201
        )
    with news.store.read() as session:
        gold_ids = set(session.scalars(select(GoldAnswer.record_id)))
    golden = [item for item in seen if item["record"]["id"] in gold_ids]
    assert len(golden) == 2 and len({i["record"]["id"] for i in seen}) == len(seen) == 14
    ordinary = next(item for item in seen if item["record"]["id"] not in gold_ids)
    for item in golden:  # the same fields, and nothing that says "known answer"
        assert item.keys() == ordinary.keys() and item["record"].keys() == ordinary["record"].keys()
        assert (item["record"]["n_human"], item["record"]["needed"]) == (0, 1)
        # Read again by id, as the annotator may (it was handed to them): still ordinary.
        again = news.client.get(
            f"{BASE}/records/{item['record']['id']}", headers=news.as_("annotator")
        )
        assert again.status_code == 200 and again.json()["batch_id"] is None
        assert (again.json()["n_human"], again.json()["needed"]) == (0, 1)


def test_check_over_http_runs_the_agreement_rules(news: Api) -> None:
    """POST .../annotators/check: the reliability check, then the agreement_below rules; its
    decision stored without a window (the rule judges people's answers, not predictions)."""
    from looplab.core.tables import TriggerDecision

    answer_everything(news)
    rule = {"name": "crowd", "when": "agreement_below", "alpha": 0.9, "min_items": 5, "by": "day"}
    with news.store.write() as session:
        projects.write_settings(
            session, projects.get_project(session, "news"), {"triggers": [rule]}, actor="t"
        )
    got = news.client.post(f"{BASE}/annotators/check", headers=news.as_("reviewer"))
    assert got.status_code == 200
    assert got.json()["triggers"] == ["crowd"]  # ann and bob disagree on every odd record
    with news.store.read() as session:
        [decision] = session.scalars(select(TriggerDecision)).all()
    assert decision.fired and decision.window_id is None and "< 0.9" in decision.reason
    assert (
        news.client.post(f"{BASE}/annotators/check", headers=news.as_("annotator")).status_code
        == 403
    )
