"""API fixtures: a real store (SQLite file, and PostgreSQL in a schema of its own) and a client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from looplab.api import create_app
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.govern import access

PG_URL = os.environ.get(
    "LOOPLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver or network error means "not here"
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}"


@pytest.fixture(params=["sqlite", "postgresql"])
def api_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'looplab.db'}")
        store.upgrade()
        yield store
        store.dispose()
        return
    reason = _pg_reachable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run the PostgreSQL tests)")
        pytest.skip(reason)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    store = Store(url, artifacts_dir=tmp_path / "artifacts")
    store.upgrade()
    yield store
    store.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


class Api:
    """A test client plus tokens for one user of each role."""

    def __init__(self, client: TestClient, store: Store, tokens: dict[str, str]) -> None:
        self.client = client
        self.store = store
        self.tokens = tokens

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def add_user(self, name: str, role: str = "annotator") -> str:
        with self.store.write() as session:
            _, token = access.create_user(session, name, role, actor="test")
        self.tokens[name] = token
        return token


@pytest.fixture
def api(api_store: Store, tmp_path) -> Iterator[Api]:
    tokens = {}
    with api_store.write() as session:
        for role in ("admin", "reviewer", "annotator"):
            _, tokens[role] = access.create_user(session, role, role, actor="test")
    app = create_app(Settings(home=tmp_path, run_worker=False), store=api_store)
    with TestClient(app) as client:
        yield Api(client, api_store, tokens)


@pytest.fixture
def news(api: Api) -> Api:
    """A text project with a handful of records."""
    from looplab.core import projects
    from looplab.core.tables import Record

    with api.store.write() as session:
        project = projects.create_project(
            session, "news", task="text", labels=["business", "sport", "tech"], actor="test"
        )
        for i in range(12):
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=i.to_bytes(16, "big"),
                    payload={"text": f"article number {i}"},
                    meta={"topic": "sport"},
                    score=float(i),
                )
            )
    return api
