"""Long work as jobs in the store, run by workers: inside ``looplab serve`` or ``looplab worker``.

A job is a row; a worker claims the oldest queued one (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
the write lock on SQLite), runs its handler, and records the result or the error. Servers stay
stateless: any replica may enqueue, any worker may run. A job left ``running`` by a worker that died
is queued again once it is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from looplab.settings import Settings
from looplab.store import Store
from looplab.tables import Job, utcnow

log = logging.getLogger("looplab.jobs")

Handler = Callable[[Store, Settings, Job], dict[str, Any]]
ACTIVE = ("queued", "running")


def enqueue(
    session: Session,
    kind: str,
    *,
    project_id: int | None,
    params: dict[str, Any] | None = None,
    dedupe: bool = True,
) -> Job:
    """Queue a job; with ``dedupe``, return the same kind's queued job for the project instead."""
    if dedupe:
        existing = session.scalar(
            select(Job).where(
                Job.kind == kind, Job.project_id == project_id, Job.status == "queued"
            )
        )
        if existing is not None:
            return existing
    job = Job(kind=kind, project_id=project_id, params=params or {}, status="queued")
    session.add(job)
    session.flush()
    return job


def claim(session: Session, worker: str, *, stale_after: float = 3600) -> Job | None:
    now = utcnow()
    session.execute(
        update(Job)
        .where(Job.status == "running", Job.started_at < now - dt.timedelta(seconds=stale_after))
        .values(status="queued", worker=None)
    )
    query = select(Job).where(Job.status == "queued").order_by(Job.id).limit(1)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job = session.scalar(query)
    if job is None:
        return None
    job.status, job.worker, job.started_at = "running", worker, now
    return job


def run_one(store: Store, settings: Settings, handlers: dict[str, Handler], worker: str) -> bool:
    """Claim and run one job; return whether there was one."""
    with store.write() as session:
        job = claim(session, worker)
        if job is None:
            return False
        session.expunge(job)
    handler = handlers.get(job.kind)
    started = time.monotonic()
    error: str | None = None
    try:
        if handler is None:
            raise ValueError(f"no handler for job kind {job.kind!r}")
        result = handler(store, settings, job)
    except Exception as exc:  # a failed job is recorded, never fatal to the worker
        log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
        result, status = {}, "failed"
        error = "".join(traceback.format_exception_only(exc)).strip()
        log.debug("%s", traceback.format_exc())
    else:
        status = "done"
        # The periodic monitor job runs every minute per project: not worth a line each time.
        log.log(
            logging.DEBUG if job.kind == "monitor" else logging.INFO,
            "job %s %s (project %s) done in %.1f s",
            job.id,
            job.kind,
            job.project_id,
            time.monotonic() - started,
        )
    with store.write() as session:
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=status, result=result, error=error, finished_at=utcnow())
        )
    return True


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_worker(
    store: Store,
    settings: Settings,
    stop: threading.Event,
    *,
    handlers: dict[str, Handler] | None = None,
    poll_seconds: float = 1.0,
) -> None:
    """Run jobs until ``stop`` is set; sleep ``poll_seconds`` when the queue is empty."""
    from looplab.monitor import schedule
    from looplab.tasks import HANDLERS

    handlers = handlers or HANDLERS
    name = worker_name()
    next_schedule = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_schedule:
                # Every worker may schedule; enqueue's dedupe keeps it to one job per project.
                with store.write() as session:
                    schedule(session)
                next_schedule = time.monotonic() + settings.monitor_every_seconds
            ran = run_one(store, settings, handlers, name)
        except Exception:  # the store may be briefly unreachable; keep the worker alive
            log.exception("worker loop error")
            ran = False
        if not ran:
            stop.wait(poll_seconds)


def drain(store: Store, settings: Settings, *, handlers: dict[str, Handler] | None = None) -> int:
    """Run queued jobs until none is left (for the CLI and tests); return how many ran."""
    from looplab.tasks import HANDLERS

    count = 0
    while run_one(store, settings, handlers or HANDLERS, worker_name()):
        count += 1
    return count
