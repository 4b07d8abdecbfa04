"""An ad-hoc drift check (`/drift`, `looplab drift`) never writes on a read session.

The production version's reference is built in a write of its own; a promotion that lands
between that write and the read is handled, never by building the new reference on the read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from looplab import worker
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.tables import ReferenceProfile
from looplab.learn import registry
from looplab.watch import overview, reference
from tests.api.conftest import Api
from tests.api.test_monitor import BASE, served_project


def with_v2(api: Api, tmp_path) -> None:
    """v1 in production (its reference not built yet) and v2 trained, not promoted."""
    served_project(api, tmp_path)
    with api.store.write() as session:
        jobs.enqueue(session, "train", project_id=projects.get_project(session, "shop").id)
    worker.drain(api.store, Settings(home=tmp_path))


def promote(api: Api, version: str) -> None:
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        registry.promote(
            session, project, registry.get_version(session, project, version), actor="test"
        )


def read_only(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any flush of a read session fail the test."""
    read = api.store.read

    def refuse(session: Any, *_: Any) -> None:
        raise AssertionError(f"a read session flushes {list(session.new)}")

    @contextmanager
    def guarded() -> Iterator[Any]:
        with read() as session:
            event.listen(session, "before_flush", refuse)
            yield session

    monkeypatch.setattr(api.store, "read", guarded)


def test_a_version_promoted_after_the_reference_was_built_gets_its_own(
    api: Api, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_v2(api, tmp_path)
    ensure = reference.ensure_reference
    calls: list[int] = []

    def then_promoted(store: Any, project_id: int) -> None:
        ensure(store, project_id)
        if not calls:  # v2 is promoted right after v1's reference was built
            promote(api, "v2")
        calls.append(project_id)

    monkeypatch.setattr(reference, "ensure_reference", then_promoted)
    read_only(api, monkeypatch)
    result = overview.drift_now(api.store, "shop", "1d")
    assert result["model_version"] == "v2" and result["n"] == 0 and result["drift"] is None
    assert len(calls) == 2
    with api.store.write() as session:  # both references were stored, each in its own write
        project = projects.get_project(session, "shop")
        for version in ("v1", "v2"):
            row = registry.get_version(session, project, version)
            assert session.get(ReferenceProfile, row.id) is not None


def test_a_reference_never_built_is_a_clear_409(
    api: Api, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_v2(api, tmp_path)
    promote(api, "v2")
    # As if production changed under every build: the reference is never there when read.
    monkeypatch.setattr(reference, "ensure_reference", lambda store, project_id: None)
    response = api.client.get(f"{BASE}/drift?window=1d", headers=api.as_("reviewer"))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "reference_not_ready"
    assert (
        "the drift reference of v2, in production in 'shop', is not built yet" in error["message"]
    )
    assert error["details"] == {"project": "shop", "model": "v2"}
    with api.store.read() as session:  # and nothing was built behind the read
        assert session.query(ReferenceProfile).count() == 0

    from typer.testing import CliRunner

    from looplab.cli.app import app

    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", api.store.url)
    result = CliRunner().invoke(app, ["drift", "shop", "--window", "1d"])
    assert result.exit_code == 2
    assert "is not built yet" in result.stderr and "ask again in a moment" in result.stderr
