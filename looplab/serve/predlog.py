"""The prediction log: every answered prediction becomes a row, written off the request path.

A predict handler only appends its rows to an in-process buffer (microseconds). Every
``flush_seconds`` (``LOOPLAB_PREDICTION_FLUSH_SECONDS``, 0.2 s by default; sooner when
``max_batch`` rows wait) a background thread appends the buffer to a journal on local disk and
``fsync`` s it (:mod:`looplab.serve.spool`); a second thread writes journaled rows to the store in
one transaction per batch. The journal takes no lock of the store's, so labeling transactions
holding SQLite's write lock delay the store write, not the journal. What each kind of stop may lose:

- graceful stop (SIGTERM, Ctrl-C, end of the app's lifespan): nothing; the buffer is journaled
  and written before the process exits (rows the store refuses then stay journaled).
- hard crash (``kill -9``, OOM kill, power loss): the rows not yet journaled, the predictions
  answered in about the last ``flush_seconds`` (plus the time one journal append takes).
  Journaled rows the store does not hold yet are written by the next server to start on the
  workspace, or by a running one within ``REPLAY_SECONDS``; until then feedback on them answers
  404.
- store unreachable: rows stay journaled and queued and the writer retries (backing off up to
  5 s). Once ``max_pending`` rows wait, predict answers 503 rather than answer predictions it
  cannot log.

Without a journal folder (``spool_dir=None``) rows go straight to the writer, and a hard crash
loses every row the store does not hold yet, however long the store made the writer wait.

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
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from looplab.core.errors import Unavailable
from looplab.core.store import Store, advisory_lock, lock_key
from looplab.core.tables import Prediction
from looplab.serve.spool import REPLAY_SECONDS, Journal, replay

log = logging.getLogger("looplab.serve.predlog")

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
    advisory_lock(session, *(lock_key(f"looplab.predlog.{pid}") for pid, _ in groups))
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


class PredictionLog:
    """A buffer of prediction rows, journaled to local disk, then written to the store in batches.

    Two background threads: the *spooler* appends the buffered rows to the :class:`Journal`
    every ``flush_seconds`` (it never waits for the store), the *writer* writes journaled rows to
    the store and empties the journal once all of them are committed. Without a ``spool_dir``
    rows go to the writer unjournaled, and a hard crash loses what the store does not hold yet.

    Parameters
    ----------
    store : Store
        Where the rows go (table ``predictions``).
    flush_seconds : float
        The spooler's period: with a journal, about the most a hard crash loses, in time,
        whatever the store is doing; without one, the writer's period.
    max_batch : int
        Rows per transaction; this many waiting rows wake the spooler early.
    max_pending : int
        Rows not yet committed beyond which :meth:`add` refuses.
    spool_dir : Path or None
        The journal folder (:func:`looplab.serve.spool.folder_for`); journals of servers that are
        gone found there are replayed at :meth:`start` and every ``REPLAY_SECONDS``.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_seconds: float = 0.2,
        max_batch: int = 2000,
        max_pending: int = 100_000,
        spool_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.spool_dir = spool_dir
        self._journal: Journal | None = None
        self._rows: deque[dict[str, Any]] = deque()  # answered, not journaled yet
        self._spooled: deque[dict[str, Any]] = deque()  # journaled, not committed yet
        self._ids: set[str] = set()  # buffered or being written: not yet committed
        self._lock = threading.Lock()  # guards _rows, _spooled and _ids
        self._spool_lock = threading.Lock()  # one spooler at a time; guards the journal
        self._write_lock = threading.Lock()  # one writer at a time, so flush() is a barrier
        self._wake_spooler = threading.Event()
        self._wake_writer = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Open the journal, replay those of servers that are gone, start both threads."""
        self._stop.clear()
        if self.spool_dir is not None:
            self._journal = Journal(self.spool_dir)
            self._replay()
        self._threads = [
            threading.Thread(target=self._run_spooler, name="looplab-predlog-spool", daemon=True),
            threading.Thread(target=self._run_writer, name="looplab-predlog", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

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
            self._wake_spooler.set()

    def holds(self, prediction_id: str) -> bool:
        """Whether the row of ``prediction_id`` is buffered here and not yet committed."""
        return prediction_id in self._ids

    @property
    def pending(self) -> int:
        """Rows not yet committed (buffered, journaled or being written)."""
        return len(self._ids)

    def spool(self) -> int:
        """Journal everything buffered now (append + ``fsync``); return how many rows.

        If the journal cannot be written (a full disk), the rows go on to the writer anyway and
        the error is logged: they are then only as safe as without a journal.
        """
        with self._spool_lock:
            with self._lock:
                rows = list(self._rows)
                self._rows.clear()
            if rows and self._journal is not None:
                try:
                    self._journal.append(rows)
                except OSError:
                    log.exception("journaling %d prediction log rows failed", len(rows))
            with self._lock:
                self._spooled.extend(rows)
        return len(rows)

    def flush(self) -> int:
        """Journal and write everything buffered now; return how many rows were written.

        When it returns, every row added before the call is committed, including rows the
        background writer was writing at the time. A store error propagates; the rows stay
        journaled and queued, in order, for the next attempt.
        """
        self.spool()
        return self.write()

    def write(self) -> int:
        """Write every journaled row to the store; empty the journal once all are committed."""
        written = 0
        with self._write_lock:
            while True:
                with self._lock:
                    n = min(self.max_batch, len(self._spooled))
                    rows = [self._spooled.popleft() for _ in range(n)]
                if not rows:
                    break
                try:
                    with self.store.write() as session:
                        append(session, rows)
                except BaseException:
                    with self._lock:
                        self._spooled.extendleft(reversed(rows))
                    raise
                with self._lock:
                    self._ids.difference_update(row["id"] for row in rows)
                written += len(rows)
            # Everything journaled is committed unless the spooler added rows since: then the
            # journal holds uncommitted rows and waits for the next write to be emptied.
            with self._spool_lock, self._lock:
                if self._journal is not None and not self._spooled:
                    self._journal.clear()
        return written

    def _replay(self) -> None:
        if self.spool_dir is None:
            return
        try:
            replay(self.store, self.spool_dir, self._commit, batch=self.max_batch)
        except Exception:  # the store may be away: the journals stay for the next attempt
            log.exception("replaying the prediction log journals of stopped servers failed")

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        with self.store.write() as session:
            append(session, rows)

    def _run_spooler(self) -> None:
        while not self._stop.is_set():
            self._wake_spooler.wait(self.flush_seconds)
            self._wake_spooler.clear()
            if self.spool():
                self._wake_writer.set()

    def _run_writer(self) -> None:
        delay = self.flush_seconds
        replay_at = time.monotonic() + REPLAY_SECONDS
        while not self._stop.is_set():
            self._wake_writer.wait(delay)
            self._wake_writer.clear()
            try:
                self.write()
            except Exception:  # the store may be briefly away: keep the rows, back off, retry
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                log.exception("writing %d prediction log rows failed; retrying", self.pending)
            else:
                delay = self.flush_seconds
            if time.monotonic() >= replay_at:
                self._replay()
                replay_at = time.monotonic() + REPLAY_SECONDS

    def close(self, *, attempts: int = 5) -> None:
        """Stop both threads and flush what is left, retrying a few times if the store is away.

        Rows the store still refuses stay in the journal, which the next server to start on this
        workspace replays.
        """
        self._stop.set()
        self._wake_spooler.set()
        self._wake_writer.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._threads = []
        try:
            for attempt in range(attempts):
                try:
                    self.flush()
                    return
                except Exception:
                    log.exception(
                        "final flush of the prediction log failed (attempt %d)", attempt + 1
                    )
                    time.sleep(min(0.2 * 2**attempt, MAX_BACKOFF_SECONDS))
            if self._journal is not None:
                log.error(
                    "%d prediction log rows are left in %s for the next server to replay",
                    self.pending,
                    self._journal.path,
                )
            else:
                log.error(
                    "lost %d prediction log rows: the store did not answer at shutdown",
                    self.pending,
                )
        finally:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
