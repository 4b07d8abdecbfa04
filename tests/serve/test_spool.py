"""The prediction log's journal: what a hard crash under write contention leaves, and its replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from looplab.core.store import Store
from looplab.serve.predlog import PredictionLog, append
from looplab.serve.spool import Journal, encode, replay
from tests.serve.test_predlog import logged, rows, wait_for

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from looplab.serve.predlog import PredictionLog
    from looplab.serve.spool import decode
    from looplab.core.store import Store

    url, folder, path = sys.argv[1:]
    rows = [decode(line.encode()) for line in open(path)]
    log = PredictionLog(Store(url), flush_seconds=0.05, spool_dir=Path(folder))
    log.start()
    log.add(rows)
    print("added", flush=True)
    time.sleep(600)
    """
)


def journaled(folder: Path) -> int:
    return sum(
        sum(1 for line in path.read_bytes().splitlines() if line)
        for path in folder.glob("predictions-*.jsonl")
    )


def test_a_crash_while_the_store_is_locked_loses_no_journaled_row(
    store: Store, tmp_path: Path
) -> None:
    """kill -9 of a server whose writer waits for the store: its rows come back at the next start.

    The test holds the lock every prediction log write needs (SQLite's write lock; on PostgreSQL
    the project's advisory lock), as labeling transactions do many times a second, so the killed
    server's writer never commits anything.
    """
    folder = tmp_path / "spool"
    batch, other = rows(store, 20), rows(store, 1)
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b"".join(encode(row) for row in batch))
    with store.write() as held:
        append(held, other)  # takes the lock and keeps it until the block ends
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, store.url, str(folder), str(source)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line == b"added\n", child.stderr.read() if child.stderr else b""
            deadline = time.monotonic() + 60
            while journaled(folder) < len(batch):
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert not set(logged(store)) & {row["id"] for row in batch}  # the store never got them
    log = PredictionLog(store, flush_seconds=60, spool_dir=folder)
    log.start()  # replays the dead server's journal
    log.close()
    assert set(logged(store)) >= {row["id"] for row in batch}
    assert not list(folder.glob("predictions-*.jsonl"))


def test_replay_skips_committed_rows_and_a_torn_last_line(store: Store, tmp_path: Path) -> None:
    """A crash after a commit but before the journal was emptied writes nothing twice."""
    folder = tmp_path / "spool"
    batch = rows(store, 6)
    with store.write() as session:
        append(session, batch[:2])  # committed before the crash
    dead = folder / "predictions-dead.jsonl"
    folder.mkdir()
    dead.write_bytes(b"".join(encode(row) for row in batch) + b'{"id": "cut sho')
    written: list[str] = []

    def write(new: list[dict[str, object]]) -> None:
        written.extend(str(row["id"]) for row in new)
        with store.write() as session:
            append(session, new)  # type: ignore[arg-type]

    assert replay(store, folder, write) == 4
    assert written == [row["id"] for row in batch[2:]]
    assert sorted(logged(store)) == sorted(row["id"] for row in batch)
    assert not dead.exists()


def test_a_live_servers_journal_is_not_replayed(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    live = Journal(folder)
    try:
        live.append(rows(store, 3))
        assert replay(store, folder, lambda new: None) == 0
        assert live.path.exists() and logged(store) == []
    finally:
        live.close()
    assert live.path.exists()  # it holds rows: left for a server to replay


def test_the_journal_is_emptied_once_its_rows_are_committed(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    log = PredictionLog(store, flush_seconds=60, spool_dir=folder)
    log.start()
    try:
        log.add(rows(store, 5))
        assert log.spool() == 5 and journaled(folder) == 5 and logged(store) == []
        assert log.write() == 5 and journaled(folder) == 0 and len(logged(store)) == 5
    finally:
        log.close()
    assert not list(folder.glob("predictions-*.jsonl"))  # empty at a clean stop: deleted


def test_a_store_away_at_shutdown_leaves_the_rows_journaled(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    batch = rows(store, 4)
    log = PredictionLog(store, flush_seconds=60, spool_dir=folder)
    log.start()
    log.add(batch)

    def away() -> None:
        raise ConnectionError("store away")

    log.write = away  # type: ignore[method-assign]
    log.close(attempts=1)
    left = [json.loads(line)["id"] for path in folder.glob("*.jsonl") for line in path.open()]
    assert left == [row["id"] for row in batch]
    again = PredictionLog(store, flush_seconds=60, spool_dir=folder)
    again.start()
    again.close()
    wait_for(lambda: len(logged(store)) == 4)
