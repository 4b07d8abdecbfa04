"""The prediction log: batched writes, nothing lost while the store is away, a bounded buffer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab import projects
from looplab.errors import Unavailable
from looplab.predlog import PredictionLog
from looplab.store import Store
from looplab.tables import Prediction, Project, utcnow


def rows(store: Store, n: int) -> list[dict[str, Any]]:
    """n prediction rows of project ``p`` (made on first use)."""
    with store.write() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == "p"))
        if project_id is None:
            project_id = projects.create_project(
                session, "p", task="tabular", labels=["a", "b"], fields=["x"], actor="test"
            ).id
    return [
        {
            "id": uuid.uuid4().hex,
            "project_id": project_id,
            "model_version": 1,
            "input": {"x": i},
            "label": "a",
            "confidence": 0.9,
            "proba": {"a": 0.9, "b": 0.1},
            "latency_ms": 1.0,
            "created_at": utcnow(),
        }
        for i in range(n)
    ]


def logged(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.scalars(select(Prediction.id)))


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_rows_are_written_by_the_background_writer(store: Store) -> None:
    log = PredictionLog(store, flush_seconds=0.05)
    batch = rows(store, 5)
    log.start()
    try:
        log.add(batch)
        assert log.holds(batch[0]["id"]) or batch[0]["id"] in logged(store)
        wait_for(lambda: log.pending == 0)
        assert sorted(logged(store)) == sorted(r["id"] for r in batch)
        assert not log.holds(batch[0]["id"])
    finally:
        log.close()


def test_flush_is_a_barrier_and_close_writes_the_rest(store: Store) -> None:
    log = PredictionLog(store, flush_seconds=60)  # the writer never wakes by itself
    log.start()
    first, second = rows(store, 3), rows(store, 4)
    log.add(first)
    assert log.flush() == 3 and len(logged(store)) == 3
    log.add(second)
    log.close()
    assert len(logged(store)) == 7 and log.pending == 0


def test_nothing_is_lost_while_the_store_is_away(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = store.write
    failures = {"left": 4}

    @contextmanager
    def flaky_write() -> Iterator[Session]:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("store away")
        with real_write() as session:
            yield session

    batch = rows(store, 6)
    monkeypatch.setattr(store, "write", flaky_write)
    log = PredictionLog(store, flush_seconds=0.02)
    log.start()
    try:
        log.add(batch[:3])
        wait_for(lambda: failures["left"] < 4)
        log.add(batch[3:])
        wait_for(lambda: log.pending == 0)
    finally:
        log.close()
    assert failures["left"] == 0
    assert sorted(logged(store)) == sorted(r["id"] for r in batch)


def test_a_full_buffer_refuses_instead_of_losing(store: Store) -> None:
    log = PredictionLog(store, flush_seconds=60, max_pending=5)
    batch = rows(store, 7)
    log.add(batch[:4])
    with pytest.raises(Unavailable, match="4 prediction log rows are waiting for the store"):
        log.add(batch[4:6])
    assert log.pending == 4 and not log.holds(batch[4]["id"])
    log.flush()
    log.add(batch[4:6])
    assert log.pending == 2
