"""Review over HTTP: the queue, decisions (roles, bad input, stale items), history, browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from looplab import worker
from looplab.ask import queue
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.tables import Annotation, AuditEvent, Job, ReviewItem
from looplab.govern import access
from looplab.learn import training
from tests.api.conftest import Api
from tests.reviewdata import LABELS, make_project, scan

BASE = "/api/v1/projects/news"


@pytest.fixture
def scanned(api: Api, tmp_path: Path) -> tuple[Api, set[int]]:
    _, flipped = make_project(api.store, annotator="annotator")
    scan(api.store, tmp_path)
    return api, flipped


def _counts(api: Api) -> tuple[int, int, int]:
    with api.store.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Annotation)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            session.scalar(
                select(func.count()).select_from(ReviewItem).where(ReviewItem.status != "open")
            )
            or 0,
        )


def test_queue_decide_and_history(scanned: tuple[Api, set[int]]) -> None:
    api, _ = scanned
    page = api.client.get(f"{BASE}/review", headers=api.as_("reviewer")).json()
    assert page["total"] == len(page["items"]) > 0
    scores = [i["score"] for i in page["items"]]
    assert scores == sorted(scores)
    item = page["items"][0]
    body = {"decision": "relabel", "label": item["suggested_label"]}
    done = api.client.post(f"{BASE}/review/{item['id']}", json=body, headers=api.as_("reviewer"))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "relabeled" and done.json()["decided_by"] == "reviewer"
    history = api.client.get(
        f"{BASE}/records/{item['record_id']}/history", headers=api.as_("reviewer")
    ).json()
    origins = [(a["origin"], a["status"], a["annotator"]) for a in history["answers"]]
    assert origins == [("human", "superseded", "annotator"), ("review", "active", "reviewer")]
    assert history["training_label"] == {
        "label": item["suggested_label"],
        "why": "a reviewer's decision",
        "examples": [[item["suggested_label"], 1]],
    }
    assert history["reviews"][0]["status"] == "relabeled"
    again = api.client.post(f"{BASE}/review/{item['id']}", json=body, headers=api.as_("reviewer"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "stale"
    quality = api.client.get(f"{BASE}/quality", headers=api.as_("reviewer")).json()
    assert quality["scan"]["precision"]["confirmed"] == 1
    assert quality["scan"]["counts"]["relabeled"] == 1


@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        ("annotator", "/review/{id}", {"decision": "keep"}, 403, "forbidden"),
        ("reviewer", "/review/999999", {"decision": "keep"}, 404, "not_found"),
        ("reviewer", "/review/{id}", {"decision": "relabel", "label": "weather"}, 422, "invalid"),
        ("reviewer", "/review/{id}", {"decision": "relabel"}, 422, "invalid"),
        ("reviewer", "/review/{id}", {"decision": "burn"}, 422, "invalid"),
        ("reviewer", "/review/{id}", {"decision": "keep", "label": "sport"}, 422, "invalid"),
    ],
)
def test_bad_decisions_are_refused_and_write_nothing(
    scanned: tuple[Api, set[int]], who: str, path: str, body: dict, status: int, code: str
) -> None:
    api, _ = scanned
    first = api.client.get(f"{BASE}/review", headers=api.as_("reviewer")).json()["items"][0]
    before = _counts(api)
    answer = api.client.post(BASE + path.format(id=first["id"]), json=body, headers=api.as_(who))
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert _counts(api) == before


def test_history_and_browser_need_a_reviewer_and_a_known_record(
    scanned: tuple[Api, set[int]],
) -> None:
    api, _ = scanned
    assert (
        api.client.get(f"{BASE}/records/1/history", headers=api.as_("annotator")).status_code == 403
    )
    missing = api.client.get(f"{BASE}/records/999999/history", headers=api.as_("reviewer"))
    assert missing.status_code == 404 and "no record 999999" in missing.json()["error"]["message"]
    assert api.client.get(f"{BASE}/browse", headers=api.as_("annotator")).status_code == 403
    for params, message in [
        ({"label": "weather"}, "unknown label 'weather'"),
        ({"annotator": "nobody"}, "no annotator named 'nobody'"),
    ]:
        bad = api.client.get(f"{BASE}/browse", params=params, headers=api.as_("reviewer"))
        assert bad.status_code == 422 and message in bad.json()["error"]["message"]


def test_browser_searches_and_filters(scanned: tuple[Api, set[int]], tmp_path: Path) -> None:
    api, _ = scanned
    get = lambda **p: api.client.get(  # noqa: E731
        f"{BASE}/browse", params=p, headers=api.as_("reviewer")
    ).json()
    everything = get(limit=200)
    assert everything["total"] == 150
    one = get(q="DOC17")["items"]  # case-insensitive; doc17 is the only doc17* of 150
    assert len(one) == 1 and "doc17" in one[0]["payload"]["text"]
    assert get(q="100%")["total"] == 0  # LIKE's wildcards are taken literally
    sport = get(label="sport", limit=200)
    assert sport["total"] > 0 and all("sport" in r["labels"] for r in sport["items"])
    flagged = get(flagged=True, limit=200)
    with api.store.read() as session:
        open_records = set(session.scalars(select(ReviewItem.record_id)))
    assert {r["id"] for r in flagged["items"]} == open_records
    assert get(annotator="annotator")["total"] == 150
    assert get(disagreement=True)["total"] == 0  # one answer per record
    assert get(split="train")["total"] == 0  # no model yet: no record in any split
    first = everything["items"][0]
    other = next(label for label in LABELS if label not in first["labels"])
    with api.store.write() as session:  # a second person disagrees on the first record
        project = projects.get_project(session, "news")
        queue.annotate(session, project, access.get_user(session, "reviewer"), first["id"], other)
    split = get(disagreement=True)
    assert [r["id"] for r in split["items"]] == [first["id"]]
    assert split["items"][0]["labels"] == sorted([first["labels"][0], other])
    training.train_project(
        api.store, Settings(home=tmp_path), Job(kind="train", project_id=project.id, params={})
    )
    train_ids = {r["id"] for r in get(split="train", limit=200)["items"]}
    test_ids = {r["id"] for r in get(split="test", limit=200)["items"]}
    assert train_ids and test_ids and not train_ids & test_ids
    assert len(train_ids | test_ids) == 150
    paged = get(limit=10, offset=140)
    assert len(paged["items"]) == 10 and paged["items"][-1]["id"] == everything["items"][-1]["id"]


def test_scan_over_http_queues_a_job_for_reviewers(api: Api, tmp_path: Path) -> None:
    make_project(api.store, annotator="annotator")
    refused = api.client.post(f"{BASE}/quality/scan", headers=api.as_("annotator"))
    assert refused.status_code == 403
    assert "may not scan labels for errors" in refused.json()["error"]["message"]
    queued = api.client.post(f"{BASE}/quality/scan", headers=api.as_("reviewer"))
    assert queued.status_code == 202 and queued.json()["kind"] == "label_scan"
    quality = api.client.get(f"{BASE}/quality", headers=api.as_("reviewer")).json()
    assert quality["scan"]["status"] == "queued" and quality["scan"]["counts"]["open"] == 0
    worker.drain(api.store, Settings(home=tmp_path))
    quality = api.client.get(f"{BASE}/quality", headers=api.as_("reviewer")).json()
    assert quality["scan"]["job_id"] == queued.json()["id"]
    assert quality["scan"]["status"] == "done" and quality["scan"]["counts"]["open"] > 0
