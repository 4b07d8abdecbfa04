"""Admin routes the UI needs: a project's settings (as `looplab config` sees them), users."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from looplab.cli.app import app as cli
from looplab.core.tables import AuditEvent
from tests.api.conftest import Api

#: (key, value, accepted): `looplab config` and PATCH .../settings must agree on each.
SETTINGS_CASES: list[tuple[str, Any, bool]] = [
    ("overlap", 2, True),
    ("overlap", 0, False),
    ("overlap", 21, False),
    ("overlap", 2.0, False),
    ("overlap", "2", False),
    ("show_suggestions", False, True),
    ("show_suggestions", "yes", False),
    ("overlap_fraction", 0.5, True),
    ("overlap_fraction", "half", False),
    ("monitor_min_predictions", 5, False),
    ("webhook_url", "https://hooks.example/looplab", True),
    ("webhook_url", "ftp://hooks.example", False),
    ("strategy", "entropy", True),
    ("strategy", "nope", False),
    ("gate_alpha", 1, False),
    ("retrain_every", 100, True),
    ("triggers", None, True),
    # The issue's own command: `looplab config demo monitor_min_predictions=0 overlap=50
    # auto_promote='"maybe"' webhook_url=42` stored all four before settings were checked once.
    ("monitor_min_predictions", 0, False),
    ("overlap", 50, False),
    ("auto_promote", "maybe", False),
    ("webhook_url", 42, False),
    # Trust (looplab.trust.labels, looplab.ask.gold).
    ("consensus", "dawid_skene", True),
    ("consensus", "mace", False),
    ("consensus_min_posterior", 0.8, True),
    ("consensus_min_posterior", 1.5, False),
    ("gold_rate", 0.05, True),
    ("gold_rate", 0.6, False),
    ("gold_rate", "5%", False),
    ("quarantine_policy", "auto", True),
    ("quarantine_policy", "ban", False),
    ("reliability_every", 0, True),
    ("reliability_every", -1, False),
    # The agreement_below trigger rule (looplab.watch.agreement_rule).
    ("triggers", [{"when": "agreement_below", "alpha": 0.6, "drop": 0.15}], True),
    ("triggers", [{"when": "agreement_below"}], False),
    ("triggers", [{"when": "agreement_below", "alpha": 0.6, "actions": ["retrain"]}], False),
    ("triggers", [{"when": "agreement_below", "drop": 0}], False),
    ("triggers", [{"when": "agreement_below", "alpha": 0.6, "min_items": 1}], False),
    # Retention (looplab.learn.retention).
    ("keep_candidates", 0, True),
    ("keep_candidates", 5, True),
    ("keep_candidates", -1, False),
    ("keep_candidates", 2.5, False),
]


@pytest.fixture
def cli_env(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI on the API's own store."""
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", api.store.url)
    return CliRunner()


def test_settings_read_as_the_cli_prints_them(news: Api, cli_env: CliRunner) -> None:
    got = news.client.get("/api/v1/projects/news/settings", headers=news.as_("admin"))
    assert got.status_code == 200
    printed = cli_env.invoke(cli, ["config", "news", "--json"])
    assert printed.exit_code == 0
    assert got.json() == json.loads(printed.stdout)
    reviewer = news.client.get("/api/v1/projects/news/settings", headers=news.as_("reviewer"))
    assert reviewer.status_code == 403
    missing = news.client.get("/api/v1/projects/nope/settings", headers=news.as_("admin"))
    assert missing.status_code == 404


def test_cli_and_http_accept_and_refuse_the_same_settings(news: Api, cli_env: CliRunner) -> None:
    disagreements = []
    for key, value, accepted in SETTINGS_CASES:
        response = news.client.patch(
            "/api/v1/projects/news/settings", json={key: value}, headers=news.as_("admin")
        )
        outcome = cli_env.invoke(cli, ["config", "news", f"{key}={json.dumps(value)}"])
        http_ok, cli_ok = response.status_code == 200, outcome.exit_code == 0
        if (http_ok, cli_ok) != (accepted, accepted) or response.status_code not in (200, 422):
            disagreements.append((key, value, response.status_code, outcome.exit_code))
        if not accepted:
            assert response.json()["error"]["code"] == "invalid"
            assert outcome.exit_code == 2, outcome.output
    assert disagreements == []


def test_disable_a_user_and_issue_a_new_token(api: Api) -> None:
    api.client.app.state.token_cache.ttl = 0  # type: ignore[attr-defined]
    created = api.client.post(
        "/api/v1/users", json={"name": "alice", "role": "annotator"}, headers=api.as_("admin")
    )
    assert created.status_code == 201
    old = {"Authorization": f"Bearer {created.json()['token']}"}
    assert api.client.get("/api/v1/me", headers=old).status_code == 200

    disabled = api.client.post("/api/v1/users/alice/disable", headers=api.as_("admin"))
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert api.client.get("/api/v1/me", headers=old).status_code == 401

    issued = api.client.post("/api/v1/users/alice/token", headers=api.as_("admin"))
    assert issued.status_code == 200
    assert issued.json()["active"] is True and issued.json()["token"].startswith("ll_")
    new = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert api.client.get("/api/v1/me", headers=new).json()["name"] == "alice"
    assert api.client.get("/api/v1/me", headers=old).status_code == 401

    with api.store.read() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_type == "user")
        ).all()
    assert actions[-3:] == ["user.create", "user.revoke", "user.rotate_token"]


def test_user_route_refusals(api: Api) -> None:
    last_admin = api.client.post("/api/v1/users/admin/disable", headers=api.as_("admin"))
    assert last_admin.status_code == 409
    assert last_admin.json()["error"] == {
        "code": "conflict",
        "message": "'admin' is the last active admin; make another admin first",
        "details": {"name": "admin"},
    }
    forbidden = api.client.post("/api/v1/users/annotator/disable", headers=api.as_("reviewer"))
    assert forbidden.status_code == 403
    for path in ("/api/v1/users/ghost/disable", "/api/v1/users/ghost/token"):
        assert api.client.post(path, headers=api.as_("admin")).status_code == 404
    api.add_user("root", "admin")
    assert (
        api.client.post("/api/v1/users/admin/disable", headers=api.as_("root")).status_code == 200
    )
