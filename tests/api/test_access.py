"""Tokens and roles: 401 without a valid token, 403 for the wrong role, the fixed error shape."""

from __future__ import annotations

from sqlalchemy import select

from looplab.core.tables import Record
from tests.api.conftest import Api


def test_healthz_needs_no_token(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_missing_token_is_401_with_the_error_shape(api: Api) -> None:
    response = api.client.get("/api/v1/projects")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing token: send 'Authorization: Bearer <token>'",
            "details": {},
        }
    }


def test_wrong_token_is_401(api: Api) -> None:
    response = api.client.get("/api/v1/me", headers={"Authorization": "Bearer ll_nope"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "unknown or revoked token"


def test_revoked_token_is_401(api: Api) -> None:
    from looplab.govern import access

    with api.store.write() as session:
        access.revoke(session, "annotator", actor="test")
    response = api.client.get("/api/v1/me", headers=api.as_("annotator"))
    assert response.status_code == 401


def test_annotator_may_not_create_a_project(api: Api) -> None:
    body = {"name": "x", "task": "text", "labels": ["a", "b"]}
    response = api.client.post("/api/v1/projects", json=body, headers=api.as_("annotator"))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "an annotator may not create projects: that needs the admin role; ask an admin",
        "details": {"action": "project.create", "role": "annotator", "needs": "admin"},
    }


def test_every_refusal_reads_as_a_sentence() -> None:
    from looplab.govern.access import POLICY, refusal

    assert refusal("annotator", "model.read", "reviewer") == (
        "an annotator may not read models: that needs the reviewer role or above; ask an admin"
    )
    for action, needed in POLICY.items():
        message = refusal("annotator", action, needed)
        assert action not in message and message.startswith("an annotator may not ")


def test_reviewer_may_not_manage_users_but_admin_may(api: Api) -> None:
    body = {"name": "bob", "role": "annotator"}
    assert (
        api.client.post("/api/v1/users", json=body, headers=api.as_("reviewer")).status_code == 403
    )
    created = api.client.post("/api/v1/users", json=body, headers=api.as_("admin"))
    assert created.status_code == 201
    token = created.json()["token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "bob"


def test_token_is_stored_only_as_a_hash(api: Api) -> None:
    from sqlalchemy import select

    from looplab.core.tables import User

    with api.store.read() as session:
        hashes = session.scalars(select(User.token_hash)).all()
    assert all(api.tokens[role] not in hashes for role in api.tokens)
    assert all(len(h) == 64 for h in hashes)


def test_reviewer_may_read_records_annotator_may_not(news: Api) -> None:
    url = "/api/v1/projects/news/records"
    assert news.client.get(url, headers=news.as_("annotator")).status_code == 403
    page = news.client.get(url, params={"limit": 5}, headers=news.as_("reviewer")).json()
    assert len(page["items"]) == 5 and page["next_after"] == page["items"][-1]["id"]
    rest = news.client.get(
        url, params={"after": page["next_after"], "limit": 50}, headers=news.as_("reviewer")
    ).json()
    assert len(rest["items"]) == 7 and rest["next_after"] is None


def test_an_annotator_reads_only_the_records_handed_to_them(news: Api) -> None:
    base = "/api/v1/projects/news"
    held = news.client.get(f"{base}/queue/next", headers=news.as_("annotator")).json()
    held_id = held["record"]["id"]
    with news.store.read() as session:
        ids = session.scalars(select(Record.id).order_by(Record.id)).all()
    other = next(i for i in ids if i != held_id)
    # The record in hand reads; any other is refused, with who may read it.
    assert news.client.get(f"{base}/records/{held_id}", headers=news.as_("annotator")).is_success
    refused = news.client.get(f"{base}/records/{other}", headers=news.as_("annotator"))
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        "an annotator may not read records that were not handed to them: that needs the "
        "reviewer role or above; ask an admin"
    )
    # Another annotator does not hold the first one's record.
    news.add_user("carol")
    assert (
        news.client.get(f"{base}/records/{held_id}", headers=news.as_("carol")).status_code == 403
    )
    # Answered records stay readable to the one who answered (going back to change an answer).
    answer = {"record_id": held_id, "label": "sport"}
    assert news.client.post(
        f"{base}/annotations", json=answer, headers=news.as_("annotator")
    ).is_success
    assert news.client.get(f"{base}/records/{held_id}", headers=news.as_("annotator")).is_success
    assert news.client.get(f"{base}/records/{other}", headers=news.as_("reviewer")).is_success
