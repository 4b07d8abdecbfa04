"""The prediction log: every answered prediction becomes a row, written off the request path.

A predict handler only appends its rows to an in-process buffer (microseconds). A background
thread writes the buffer to the store in one transaction every ``flush_seconds``
(``LOOPLAB_PREDICTION_FLUSH_SECONDS``, 0.2 s by default), sooner when ``max_batch`` rows are
waiting. What each kind of stop may lose:

- graceful stop (SIGTERM, Ctrl-C, end of the app's lifespan): nothing; the buffer is flushed
  before the process exits.
- hard crash (``kill -9``, OOM kill, power loss): the rows still in the buffer, normally the
  predictions answered in the last ``flush_seconds`` plus the one write in progress. Those
  predictions were answered but are not in the store, so feedback on them answers 404.
- store unreachable: rows stay in the buffer and the writer retries (backing off up to 5 s); a
  crash during the outage loses everything buffered since it began. Once ``max_pending`` rows
  wait, predict answers 503 rather than answer predictions it cannot log.

Feedback is written synchronously in its own transaction and is never buffered.

Each row is numbered (``seq``) when it is written, in commit order within its model version
(:func:`append`). Buffering means a row's ``created_at``, the time it was answered, can be older
than rows another replica has already committed, by the flush period normally, by the whole
outage when the store was away, by however long SQLite's write lock was busy. Monitor windows
are therefore cut on ``seq``, which only grows in the order rows become visible: a late row lands
in the next window instead of before the last one's end, where no window would ever read it.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from looplab.errors import Unavailable
from looplab.store import Store
from looplab.tables import Prediction

log = logging.getLogger("looplab.predlog")

MAX_BACKOFF_SECONDS = 5.0


def append(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert prediction rows, numbering each model version's (``seq``) in commit order.

    A version's rows get the numbers after the highest it has, in the order given. The numbers
    follow commit order because no two transactions number one project's rows at once: on SQLite
    the write lock is held from ``BEGIN IMMEDIATE`` to the commit, on PostgreSQL a
    transaction-scoped advisory lock per project (taken in key order, so two writers never wait
    on each other in a cycle). So a reader that sees a row sees every row of lower ``seq``, and
    a monitor window that ends at ``seq`` n can never have a row below n committed after it.
    A database sequence would not do: its numbers are taken at insert, not at commit, and on
    PostgreSQL a writer holding lower numbers may commit after one holding higher ones.
    """
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["project_id"], row["model_version"]), []).append(row)
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    if postgres:
        keys = sorted({_lock_key(project_id) for project_id, _ in groups})
        for key in keys:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    numbered: list[dict[str, Any]] = []
    for (project_id, version), group in groups.items():
        last = session.scalar(
            select(func.max(Prediction.seq)).where(
                Prediction.project_id == project_id, Prediction.model_version == version
            )
        )
        start = (last or 0) + 1
        numbered.extend({**row, "seq": start + i} for i, row in enumerate(group))
    session.execute(insert(Prediction), numbered)


def _lock_key(project_id: int) -> int:
    return zlib.crc32(f"looplab.predlog.{project_id}".encode())


class PredictionLog:
    """A buffer of prediction rows written to the store in batches by a background thread.

    Parameters
    ----------
    store : Store
        Where the rows go (table ``predictions``).
    flush_seconds : float
        The writer's period: the most a hard crash loses, in time, while the store is up.
    max_batch : int
        Rows per transaction; this many waiting rows wake the writer early.
    max_pending : int
        Rows buffered (the store being unreachable) beyond which :meth:`add` refuses.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_seconds: float = 0.2,
        max_batch: int = 2000,
        max_pending: int = 100_000,
    ) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._rows: deque[dict[str, Any]] = deque()
        self._ids: set[str] = set()  # buffered or being written: not yet committed
        self._lock = threading.Lock()  # guards _rows and _ids
        self._write_lock = threading.Lock()  # one writer at a time, so flush() is a barrier
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="looplab-predlog", daemon=True)
        self._thread.start()

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Buffer rows (each with a unique ``id``); raise :class:`Unavailable` when full."""
        with self._lock:
            if len(self._ids) + len(rows) > self.max_pending:
                raise Unavailable(
                    f"{len(self._ids)} prediction log rows are waiting for the store; refusing "
                    "predictions that could not be logged until it answers again",
                    details={"pending": len(self._ids)},
                )
            self._rows.extend(rows)
            self._ids.update(row["id"] for row in rows)
            full = len(self._rows) >= self.max_batch
        if full:
            self._wake.set()

    def holds(self, prediction_id: str) -> bool:
        """Whether the row of ``prediction_id`` is buffered here and not yet committed."""
        return prediction_id in self._ids

    @property
    def pending(self) -> int:
        """Rows not yet committed (buffered or being written)."""
        return len(self._ids)

    def flush(self) -> int:
        """Write everything buffered now; return how many rows were written.

        When it returns, every row added before the call is committed, including rows the
        background writer was writing at the time. A store error propagates; the rows stay
        buffered, in order, for the next attempt.
        """
        written = 0
        with self._write_lock:
            while True:
                with self._lock:
                    n = min(self.max_batch, len(self._rows))
                    rows = [self._rows.popleft() for _ in range(n)]
                if not rows:
                    return written
                try:
                    with self.store.write() as session:
                        append(session, rows)
                except BaseException:
                    with self._lock:
                        self._rows.extendleft(reversed(rows))
                    raise
                with self._lock:
                    self._ids.difference_update(row["id"] for row in rows)
                written += len(rows)

    def _run(self) -> None:
        delay = self.flush_seconds
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the store may be briefly away: keep the rows, back off, retry
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                log.exception("writing %d prediction log rows failed; retrying", self.pending)
            else:
                delay = self.flush_seconds

    def close(self, *, attempts: int = 5) -> None:
        """Stop the writer and flush what is left, retrying a few times if the store is away."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        for attempt in range(attempts):
            try:
                self.flush()
                return
            except Exception:
                log.exception("final flush of the prediction log failed (attempt %d)", attempt + 1)
                time.sleep(min(0.2 * 2**attempt, MAX_BACKOFF_SECONDS))
        log.error("lost %d prediction log rows: the store did not answer at shutdown", self.pending)
