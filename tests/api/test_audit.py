"""The audit chain: every mutation writes an event; editing any row makes verify fail."""

from __future__ import annotations

from sqlalchemy import select, update

from looplab.core import audit
from looplab.core.tables import AuditEvent
from tests.api.conftest import Api


def _annotate_three(news: Api) -> None:
    for _ in range(3):
        nxt = news.client.get("/api/v1/projects/news/queue/next", headers=news.as_("annotator"))
        news.client.post(
            "/api/v1/projects/news/annotations",
            json={"record_id": nxt.json()["record"]["id"], "label": "tech"},
            headers=news.as_("annotator"),
        )


def test_mutations_are_audited_and_the_chain_verifies(news: Api) -> None:
    _annotate_three(news)
    with news.store.read() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        result = audit.verify(session)
    assert actions.count("annotation.create") == 3
    assert actions[:3] == ["user.create"] * 3 and "project.create" in actions
    assert result.ok and result.events == len(actions)
    over_http = news.client.get("/api/v1/audit/verify", headers=news.as_("admin")).json()
    assert over_http["ok"] is True and over_http["head"] == result.head


def test_editing_details_is_detected(news: Api) -> None:
    _annotate_three(news)
    with news.store.write() as session:
        victim = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "annotation.create")
        ).first()
        assert victim is not None
        victim_id = victim.id
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == victim_id)
            .values(details={**victim.details, "label": "sport"})
        )
    with news.store.read() as session:
        result = audit.verify(session)
    assert not result.ok and result.first_bad_id == victim_id
    assert result.reason == "details were changed"


def test_editing_the_actor_or_deleting_a_row_is_detected(news: Api) -> None:
    _annotate_three(news)
    with news.store.write() as session:
        ids = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
        session.execute(update(AuditEvent).where(AuditEvent.id == ids[2]).values(actor="mallory"))
    with news.store.read() as session:
        assert audit.verify(session).reason == "event fields were changed"
    with news.store.write() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == ids[2]).values(actor="test"))
        session.delete(session.get(AuditEvent, ids[3]))
    with news.store.read() as session:
        result = audit.verify(session)
    assert not result.ok and result.first_bad_id == ids[4]
    assert result.reason == "link to the previous event is broken"


def test_audit_listing_is_paged_and_admin_only(news: Api) -> None:
    assert news.client.get("/api/v1/audit", headers=news.as_("reviewer")).status_code == 403
    page = news.client.get("/api/v1/audit", params={"limit": 2}, headers=news.as_("admin")).json()
    assert len(page["items"]) == 2 and page["next_after"] == page["items"][1]["id"]
