"""``POST .../gc`` and ``looplab gc`` on one store: the same plan, admins only, audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from looplab.cli.app import app as cli
from looplab.core.tables import AuditEvent, ModelVersion
from tests.api.conftest import Api
from tests.learn.test_retention import REMOVED, grow

GC = "/api/v1/projects/news/gc"


@pytest.fixture
def cli_env(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI on the API's own store."""
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", api.store.url)
    return CliRunner()


def counts(api: Api) -> tuple[int, int]:
    with api.store.read() as session:
        return (
            session.scalar(select(func.count()).select_from(ModelVersion)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_gc_over_http_and_the_cli(api: Api, cli_env: CliRunner, tmp_path: Path) -> None:
    grow(api.store, tmp_path)
    card = api.client.get("/api/v1/projects/news/models/v2/card", headers=api.as_("admin")).text
    before = counts(api)

    for who in ("reviewer", "annotator"):
        refused = api.client.post(GC, params={"dry_run": True}, headers=api.as_(who))
        assert refused.status_code == 403
    missing = api.client.post("/api/v1/projects/nope/gc", headers=api.as_("admin"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    dry = api.client.post(GC, params={"dry_run": True}, headers=api.as_("admin"))
    assert dry.status_code == 200, dry.text
    assert {r["version"] for r in dry.json()["removed"]} == REMOVED and dry.json()["dry_run"]
    printed = cli_env.invoke(cli, ["gc", "news", "--dry-run", "--json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == dry.json()
    table = cli_env.invoke(cli, ["gc", "news", "--dry-run"])
    assert table.exit_code == 0 and "would remove 2 version(s)" in table.stdout
    assert counts(api) == before  # dry runs write nothing, not even an audit event

    done = cli_env.invoke(cli, ["gc", "news", "--json"])
    assert done.exit_code == 0, done.output
    assert {r["version"] for r in json.loads(done.stdout)["removed"]} == REMOVED
    assert counts(api) == (before[0] - 2, before[1] + 2)  # one model.remove event each
    gone = api.client.get("/api/v1/projects/news/models/v3/card", headers=api.as_("admin"))
    assert gone.status_code == 404
    after = api.client.get("/api/v1/projects/news/models/v2/card", headers=api.as_("admin"))
    assert after.text == card

    again = api.client.post(GC, headers=api.as_("admin"))
    assert again.status_code == 200 and again.json()["removed"] == []
    unknown = cli_env.invoke(cli, ["gc", "nope"])
    assert unknown.exit_code == 2 and "no project named 'nope'" in unknown.stderr
