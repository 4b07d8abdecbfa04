"""The store: one SQLAlchemy engine per process, SQLite by default, PostgreSQL for teams.

SQLite is set up so that "database is locked" never reaches a user: WAL lets readers run beside the
one writer, ``busy_timeout`` makes a writer wait for the lock instead of failing, and every
write transaction starts with ``BEGIN IMMEDIATE``. The last point matters most: a deferred
transaction that reads and then writes cannot wait for the lock (SQLite returns ``SQLITE_BUSY``
at once, because its snapshot is stale), so writes take the lock up front and reads use a
separate, deferred engine.

Within one process, SQLite writers also queue on a lock of the Store's own before ``BEGIN
IMMEDIATE``. SQLite's busy handler polls with sleeps that grow to 100 ms, so threads contending
for the write lock left it idle between hand-overs (eight annotators saw a p99 near a second);
a lock hands over at once. Between processes the busy handler still applies.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from looplab.core.settings import Settings

SelectT = TypeVar("SelectT", bound=Select[Any])

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"


def _sqlite_engine(url: str, *, immediate: bool, busy_timeout_ms: int) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" hook below instead of pysqlite's.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # NORMAL is durable against application crashes in WAL mode; a power cut may lose the
        # last transactions but never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Random content-hash index inserts thrash the default 2 MB page cache.
        cursor.execute("PRAGMA cache_size=-131072")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_engines(url: str, *, busy_timeout_ms: int = 30_000) -> tuple[Engine, Engine]:
    """Return ``(read_engine, write_engine)``; they are one engine except on SQLite."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        read = _sqlite_engine(url, immediate=False, busy_timeout_ms=busy_timeout_ms)
        write = _sqlite_engine(url, immediate=True, busy_timeout_ms=busy_timeout_ms)
        return read, write
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return engine, engine


def lock_key(name: str) -> int:
    """The advisory-lock key of a lock ``name`` (its CRC-32, stable across processes)."""
    return zlib.crc32(name.encode())


# The two ways looplab serialises writers. SQLite needs neither: a write transaction there
# (``Store.write``, BEGIN IMMEDIATE) already excludes every other writer. PostgreSQL runs writers
# side by side, so a check-then-write must lock what it checks, until commit:
# * rows that exist: :func:`lock_rows` (``SELECT ... FOR UPDATE``, optionally ``SKIP LOCKED``);
# * a decision over rows that may not exist yet (the next record to hand out, the next window,
#   the audit chain's head): :func:`advisory_lock` on a key named after it (:func:`lock_key`).


def on_postgresql(session: Session) -> bool:
    """Whether ``session`` talks to PostgreSQL, where writers need explicit locks."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def lock_rows(session: Session, query: SelectT, *, skip_locked: bool = False) -> SelectT:
    """``query`` with row locks held to commit on PostgreSQL; as it is on SQLite.

    ``skip_locked`` passes over rows another transaction holds (a queue's claim) instead of
    waiting for them.
    """
    if on_postgresql(session):
        return query.with_for_update(skip_locked=skip_locked)
    return query


def advisory_lock(session: Session, *keys: int) -> None:
    """Hold transaction-scoped locks ``keys`` (in key order, so two holders never deadlock).

    On PostgreSQL an advisory lock per key, released at commit or rollback; on SQLite nothing.
    """
    if not on_postgresql(session):
        return
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def default_artifacts_dir(url: str) -> Path:
    """``artifacts`` beside a SQLite file (the workspace layout), else the settings' folder."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            return Path(path).parent / "artifacts"
    return Settings().artifacts_dir


class Store:
    """Sessions over the configured database. Hold one per process; it keeps no domain state."""

    def __init__(
        self, url: str, *, busy_timeout_ms: int = 30_000, artifacts_dir: Path | None = None
    ) -> None:
        self.url = url
        self._busy_timeout_ms = busy_timeout_ms
        self.read_engine, self.write_engine = make_engines(url, busy_timeout_ms=busy_timeout_ms)
        # Model artifacts are stored by paths relative to this folder (a workspace can be
        # copied or restored elsewhere). Sessions carry it, so a service that loads a model
        # needs nothing but its session.
        self.artifacts_dir = (artifacts_dir or default_artifacts_dir(url)).resolve()
        info = {"artifacts_dir": self.artifacts_dir}
        self._read = sessionmaker(self.read_engine, expire_on_commit=False, info=info)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False, info=info)
        # Re-entrant, so a nested write in one thread behaves as it would without the lock.
        self._write_lock = threading.RLock() if self.dialect == "sqlite" else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(
            settings.store_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            artifacts_dir=settings.artifacts_dir,
        )

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error."""
        if self._write_lock is None:
            with self._write.begin() as session:
                yield session
            return
        with self._write_lock, self._write.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    def checkpoint(self, *, wait_ms: int = 250) -> dict[str, int] | None:
        """Copy SQLite's write-ahead log into the database file and truncate it; ``None`` on
        PostgreSQL, which needs nothing of the kind.

        SQLite checkpoints on its own (PASSIVE, at 1,000 pages) but never shrinks the ``-wal``
        file, which keeps the size of the largest burst of writes since the database was opened
        (issue 19: it grew in steps during the soak). ``TRUNCATE`` waits for readers still on
        an older snapshot while holding the write lock, so it waits at most ``wait_ms`` for them
        (writers of this process queue on the store's lock meanwhile, not on a busy loop); if a
        long reader is still there, the log is copied as far as it can be and truncated next
        time. Returns SQLite's answer: ``busy`` (1 if a reader held it back), the frames in the
        log and the frames copied.
        """
        if self.dialect != "sqlite":
            return None
        with self._write_lock or threading.RLock():
            raw = self.write_engine.raw_connection()
            cursor = raw.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
                busy, frames, copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
                cursor.close()
                raw.close()
        return {"busy": int(busy), "frames": int(frames), "copied": int(copied)}

    def upgrade(self) -> None:
        """Apply Alembic migrations up to head (idempotent; safe from many replicas at once)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.write_engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()
