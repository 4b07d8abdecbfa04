"""WAL checkpoints (issue 19): SQLite's ``-wal`` file shrinks back after a burst of writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Record


def burst(store: Store, n: int = 2000) -> None:
    """About 4 MB of records in one transaction: the WAL grows by as much."""
    with store.write() as session:
        project = projects.create_project(
            session, f"p{time.monotonic_ns()}", task="text", labels=["a", "b"], actor="test"
        )
        for i in range(n):
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=i.to_bytes(16, "big"),
                    payload={"text": f"{i} " + "x" * 2000},
                    meta={},
                )
            )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'looplab.db'}")
    store.upgrade()
    yield store
    store.dispose()


def wal(tmp_path: Path) -> int:
    path = tmp_path / "looplab.db-wal"
    return path.stat().st_size if path.exists() else 0


def test_a_checkpoint_truncates_the_wal(sqlite_store: Store, tmp_path: Path) -> None:
    burst(sqlite_store)
    grown = wal(tmp_path)
    assert grown > 2_000_000  # SQLite's own checkpoints never shrink the file
    result = sqlite_store.checkpoint()
    assert result is not None and result["busy"] == 0 and result["copied"] == result["frames"]
    assert wal(tmp_path) == 0
    with sqlite_store.read() as session:  # nothing lost
        assert session.scalar(text("SELECT count(*) FROM records")) == 2000


def test_a_long_reader_holds_a_checkpoint_back_only_briefly(
    sqlite_store: Store, tmp_path: Path
) -> None:
    burst(sqlite_store)
    with sqlite_store.read() as session:
        session.execute(text("SELECT count(*) FROM records")).scalar()  # a snapshot held open
        burst(sqlite_store, 500)  # written after the reader's snapshot
        started = time.perf_counter()
        held = sqlite_store.checkpoint(wait_ms=200)
        assert time.perf_counter() - started < 2
        assert held is not None and held["busy"] == 1  # the reader still needs the log
        with sqlite_store.write() as writer:  # writers were not left locked out
            writer.execute(text("UPDATE records SET score = 1 WHERE id = 1"))
    assert sqlite_store.checkpoint() == {"busy": 0, "frames": 0, "copied": 0}
    assert wal(tmp_path) == 0


def test_the_worker_checkpoints_between_jobs(sqlite_store: Store, tmp_path: Path) -> None:
    burst(sqlite_store)
    assert wal(tmp_path) > 2_000_000
    settings = Settings(home=tmp_path, wal_checkpoint_seconds=0.05)
    stop = threading.Event()
    worker = threading.Thread(
        target=jobs.run_worker,
        args=(sqlite_store, settings, stop),
        kwargs={"handlers": {}, "poll_seconds": 0.02},
    )
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while wal(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()
    assert wal(tmp_path) == 0


@pytest.mark.postgres
def test_a_checkpoint_is_nothing_on_postgresql(tmp_path: Path) -> None:
    from tests.conftest import fresh_store

    with fresh_store("postgresql", tmp_path) as store:
        assert store.checkpoint() is None
