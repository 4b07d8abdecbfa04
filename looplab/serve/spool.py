"""The prediction log's write-ahead journal: answered predictions on local disk before the store.

Why: the store may make a writer wait. On SQLite one transaction writes at a time, and labeling
holds the write lock many times a second; with annotators labeling, a ``kill -9`` lost prediction
log rows answered up to 865 ms before it, still waiting for that lock. The journal
takes no lock but its own: every ``flush_seconds`` the log appends the rows answered since the last
time to it and ``fsync`` s, then writes them to the store whenever the store lets it.

One journal per server process, ``<folder>/predictions-<uuid>.jsonl``, one JSON row per line,
``flock`` ed for as long as the process lives (the kernel drops the lock on any exit, ``kill -9``
included). It is emptied each time everything in it is committed. A journal whose lock is free
belongs to a server that is gone: :func:`replay` writes its rows that the store does not hold yet
(each row's ``id`` is its primary key, so a row committed just before the crash is not written
twice), then deletes it. Servers replay at start-up and every :data:`REPLAY_SECONDS`, so a crashed
replica's rows come back through any server sharing its workspace folder.

A row is numbered (``seq``) when it reaches the store, replayed rows included: a replayed row
lands in the monitor window being filled at that moment, not the one it was answered in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from looplab.core.store import Store
from looplab.core.tables import Prediction

log = logging.getLogger("looplab.serve.spool")

#: How often a server looks for journals of servers that are gone.
REPLAY_SECONDS = 10.0


def folder_for(home: Path, store_url: str) -> Path:
    """The journal folder of one store in a workspace (two stores never share journals)."""
    return home / "spool" / hashlib.sha256(store_url.encode()).hexdigest()[:12]


def encode(row: dict[str, Any]) -> bytes:
    created: dt.datetime = row["created_at"]
    line = json.dumps({**row, "created_at": created.isoformat()}, separators=(",", ":"))
    return line.encode() + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """A journal line as a row; ``None`` for a line cut short by a crash."""
    try:
        row: dict[str, Any] = json.loads(line)
        row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    except (ValueError, KeyError, TypeError):
        return None
    return row


class Journal:
    """This process's journal: append and ``fsync`` rows, empty it once they are committed."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        # Locked under a name replay ignores, then renamed: replay never sees it unlocked.
        draft = folder / f".{name}.draft"
        self._fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.path = folder / f"predictions-{name}.jsonl"
        os.rename(draft, self.path)
        _fsync_dir(folder)
        self.size = 0

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Write rows and ``fsync``: on return they survive a crash of this process or machine."""
        data = memoryview(b"".join(encode(row) for row in rows))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
            self.size += written
        os.fsync(self._fd)

    def clear(self) -> None:
        """Empty the journal (every row in it is committed)."""
        if self.size:
            os.ftruncate(self._fd, 0)
            self.size = 0

    def close(self) -> None:
        """Release the journal: deleted when empty, else left for a server to replay."""
        if self.size == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replay(
    store: Store,
    folder: Path,
    write: Callable[[list[dict[str, Any]]], None],
    *,
    batch: int = 2000,
) -> int:
    """Write the rows of journals whose server is gone that the store lacks; return how many.

    ``write`` commits a list of rows (the prediction log's own numbered insert). A journal is
    deleted once its rows are committed; one whose rows cannot be written yet (the store is away)
    stays for the next attempt.
    """
    if not folder.is_dir():
        return 0
    written = 0
    for path in sorted(folder.glob("predictions-*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # replayed by another server meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its server is alive
                continue
            if os.fstat(fd).st_nlink == 0:  # replayed and deleted while we waited
                continue
            with os.fdopen(os.dup(fd), "rb") as handle:
                rows = [row for row in map(decode, handle) if row is not None]
            for start in range(0, len(rows), batch):
                written += _write_missing(store, rows[start : start + batch], write)
            os.unlink(path)
            if rows:
                log.warning("replayed %s: %d prediction log rows", path.name, len(rows))
        finally:
            os.close(fd)
    return written


def _write_missing(
    store: Store, rows: list[dict[str, Any]], write: Callable[[list[dict[str, Any]]], None]
) -> int:
    with store.read() as session:
        held = set(
            session.scalars(select(Prediction.id).where(Prediction.id.in_([r["id"] for r in rows])))
        )
    missing = [row for row in rows if row["id"] not in held]
    if missing:
        write(missing)
    return len(missing)
