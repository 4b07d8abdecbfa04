"""The prediction log: batched writes, nothing lost while the store is away, a bounded buffer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import projects
from looplab.core.errors import Unavailable
from looplab.core.store import Store
from looplab.core.tables import Prediction, Project, utcnow
from looplab.serve.predlog import PredictionLog, append
from tests.predictions import prediction_row


def rows(store: Store, n: int) -> list[dict[str, Any]]:
    """n prediction rows of project ``p`` (made on first use)."""
    with store.write() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == "p"))
        if project_id is None:
            project_id = projects.create_project(
                session, "p", task="tabular", labels=["a", "b"], fields=["x"], actor="test"
            ).id
    return [prediction_row(project_id, i, utcnow()) for i in range(n)]


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


def seqs(store: Store) -> dict[str, int]:
    with store.read() as session:
        return dict(session.execute(select(Prediction.id, Prediction.seq)).tuples().all())


def test_rows_are_numbered_per_version_in_commit_order(store: Store) -> None:
    """``seq`` counts each version's rows 1, 2, ... in the order they are committed."""
    first, second = rows(store, 3), rows(store, 2)
    other = [{**row, "model_version": 2} for row in rows(store, 2)]
    older = [{**row, "created_at": first[0]["created_at"]} for row in rows(store, 2)]
    with store.write() as session:
        append(session, first)
    with store.write() as session:
        append(session, [*second, *other])
    with store.write() as session:
        append(session, older)  # answered earlier, committed last: numbered last
    numbers = seqs(store)
    assert [numbers[r["id"]] for r in [*first, *second, *older]] == [1, 2, 3, 4, 5, 6, 7]
    assert [numbers[r["id"]] for r in other] == [1, 2]


def test_concurrent_writers_number_in_commit_order(store: Store) -> None:
    """A writer that started numbering first commits first; the other waits for its numbers.

    On PostgreSQL this is the per-project advisory lock (without it both would take 1 and 2,
    and the second insert would fail on the unique index); on SQLite, the write lock.
    """
    first, second = rows(store, 2), rows(store, 2)
    numbered = threading.Event()
    done: list[str] = []

    def slow_writer() -> None:
        with store.write() as session:
            append(session, first)
            numbered.set()
            time.sleep(0.5)  # still uncommitted
        done.append("first")

    def fast_writer() -> None:
        assert numbered.wait(10)
        with store.write() as session:
            append(session, second)
        done.append("second")

    threads = [threading.Thread(target=slow_writer), threading.Thread(target=fast_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert done == ["first", "second"]
    numbers = seqs(store)
    assert [numbers[r["id"]] for r in [*first, *second]] == [1, 2, 3, 4]
