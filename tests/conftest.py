"""Shared fixtures: a fresh, migrated store on SQLite and on PostgreSQL.

PostgreSQL tests get a schema of their own (``search_path`` on the connection URL), which takes
milliseconds to create and drop, instead of a database per test. They skip with the reason when no
server answers at ``LOOPLAB_TEST_POSTGRES_URL``, and fail instead when ``CI`` is set: CI must run
them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from looplab.core.store import Store

PG_URL = os.environ.get(
    "LOOPLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
if PG_URL.startswith(("postgres://", "postgresql://")):
    PG_URL = "postgresql+psycopg://" + PG_URL.split("://", 1)[1]

_pg_reason: list[str | None] = []


def pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if not _pg_reason:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_reason.append(None)
        except Exception as exc:  # any driver or network error means "not here"
            _pg_reason.append(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    return _pg_reason[0]


def require_pg() -> None:
    reason = pg_unreachable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run the PostgreSQL tests)")
        pytest.skip(reason)


@contextmanager
def fresh_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A migrated store of ``kind`` ("sqlite" or "postgresql"), dropped afterwards."""
    if kind == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'looplab.db'}")
        store.upgrade()
        try:
            yield store
        finally:
            store.dispose()
        return
    with pg_schema() as url:
        store = Store(url, artifacts_dir=tmp_path / "artifacts")
        try:
            store.upgrade()
            yield store
        finally:
            store.dispose()


@contextmanager
def pg_schema() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL schema of its own, dropped afterwards."""
    require_pg()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, migrated store; every test runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    with fresh_store(request.param, tmp_path) as made:
        yield made
