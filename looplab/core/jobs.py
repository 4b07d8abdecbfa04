"""Long work as jobs in the store, run by workers: inside ``looplab serve`` or ``looplab worker``.

A job is a row. A worker *claims* the oldest queued one in a transaction of its own that commits
before the work starts (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), so no
two workers ever hold one job. A claim is a *lease*: while the handler runs, a heartbeat thread
pushes ``lease_until`` forward every ``job_heartbeat_seconds``. A running job whose lease has
passed (its worker was killed, lost the store, or hung) is queued again by the next worker that
looks, up to ``job_max_attempts`` claims; then it is failed with the reason.

A claim is named by ``(worker, attempts)``. Everything a worker writes about its job checks that
name, so a worker that lost its lease (and whose job another worker now runs) cannot mark the job
done, and :func:`hold` lets a handler commit its effect only while the claim is still its own: the
check, the lease renewal and the effect are one transaction. A handler that records a checkpoint
there (``train`` records the version it registered) finds it in ``job.result`` when a later
attempt runs, so the effect happens once even if the worker dies right after committing it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.orm import Session

from looplab.core.errors import Conflict, NotFound
from looplab.core.settings import Settings
from looplab.core.store import Store, lock_rows
from looplab.core.tables import Job, Project, utcnow

log = logging.getLogger("looplab.core.jobs")

Handler = Callable[[Store, Settings, Job], dict[str, Any]]
ACTIVE = ("queued", "running")


class LeaseLost(Conflict):
    """The job's lease expired and the job was queued again (or given up) meanwhile."""

    default_code = "job_lease_lost"


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


def active(session: Session, kind: str, project_id: int | None) -> Job | None:
    """The oldest queued or running job of ``kind`` for the project, or None."""
    return session.scalar(
        select(Job)
        .where(Job.kind == kind, Job.project_id == project_id, Job.status.in_(ACTIVE))
        .order_by(Job.id)
        .limit(1)
    )


def _changed(result: Any) -> int:
    """Rows an UPDATE changed (a ``CursorResult``'s rowcount; typed as ``Result`` by Session)."""
    return int(result.rowcount or 0)


def _claimed_by(job: Job) -> ColumnElement[bool]:
    """Rows of ``job`` still held by the claim ``job`` was read under."""
    return and_(
        Job.id == job.id,
        Job.status == "running",
        Job.worker == job.worker,
        Job.attempts == job.attempts,
    )


def requeue_expired(session: Session, *, max_attempts: int, now: dt.datetime) -> int:
    """Queue again (or give up) running jobs whose lease has passed; return how many."""
    expired = session.execute(
        lock_rows(
            session,
            select(Job.id, Job.attempts, Job.worker).where(
                Job.status == "running", or_(Job.lease_until.is_(None), Job.lease_until < now)
            ),
            skip_locked=True,
        )
    ).all()
    for job_id, attempts, worker in expired:
        if attempts >= max_attempts:
            values: dict[str, Any] = {
                "status": "failed",
                "finished_at": now,
                "error": f"given up after {attempts} attempt(s): the lease of worker "
                f"{worker} expired each time (the worker died, hung or lost the store)",
            }
            log.warning("job %s given up after %d attempts", job_id, attempts)
        else:
            values = {"status": "queued", "worker": None}
            log.warning("job %s: the lease of worker %s expired; queued again", job_id, worker)
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.attempts == attempts)
            .values(lease_until=None, **values)
        )
    return len(expired)


def claim(
    session: Session,
    worker: str,
    *,
    lease_seconds: float = 60.0,
    max_attempts: int = 3,
    asked_at: dt.datetime | None = None,
    priority: Mapping[str, int] | None = None,
    kinds: Collection[str] | None = None,
) -> Job | None:
    """Claim the most urgent queued job for ``worker``; the caller's commit makes the claim.

    ``priority`` ranks job kinds (lower first; kinds it does not name come last); within a rank
    the oldest goes first. The worker module ranks monitoring ahead of scoring ahead of training,
    so a minute-long training never makes the monitor late by more than the job running now.
    ``kinds`` limits the claim to those job kinds (a worker started with ``--kinds``).

    ``asked_at`` is when the caller began to wait for its transaction. Only leases that had
    expired by then are taken back: on SQLite, a worker that waited for the write lock may have
    waited behind the very transaction that kept a running job's heartbeat from renewing its
    lease, and that job's worker is alive. Returns the job as claimed (status ``running``,
    ``attempts`` counted), or None.
    """
    now = utcnow()
    requeue_expired(session, max_attempts=max_attempts, now=min(asked_at or now, now))
    order: list[Any] = [Job.id]
    if priority:
        order.insert(0, case(dict(priority), value=Job.kind, else_=max(priority.values()) + 1))
    queued = select(Job.id).where(Job.status == "queued")
    if kinds is not None:
        queued = queued.where(Job.kind.in_(list(kinds)))
    job_id = session.scalar(lock_rows(session, queued.order_by(*order).limit(1), skip_locked=True))
    if job_id is None:
        return None
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(
            status="running",
            worker=worker,
            attempts=Job.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            lease_until=now + dt.timedelta(seconds=lease_seconds),
            finished_at=None,
        )
    )
    if _changed(claimed) != 1:  # cannot happen under the lock; never run a job not held
        return None
    return session.get(Job, job_id, populate_existing=True)


def renew(store: Store, job: Job, lease_seconds: float) -> bool:
    """Push the lease of ``job``'s claim forward; False if the claim is no longer held."""
    now = utcnow()
    with store.write() as session:
        renewed = session.execute(
            update(Job)
            .where(_claimed_by(job))
            .values(heartbeat_at=now, lease_until=now + dt.timedelta(seconds=lease_seconds))
        )
    return _changed(renewed) == 1


def hold(
    session: Session,
    job: Job,
    *,
    lease_seconds: float,
    checkpoint: dict[str, Any] | None = None,
) -> None:
    """Check in the caller's transaction that ``job`` is still held; renew its lease.

    Call it in the transaction that commits a job's effect: if the lease expired and another
    worker may be running the job, :class:`LeaseLost` rolls the effect back. ``checkpoint`` is
    merged into the job's result in the same transaction, for a later attempt to find.
    """
    if job.id is None:  # a handler called directly (tests, scripts): no claim to hold
        return
    now = utcnow()
    values: dict[str, Any] = {
        "heartbeat_at": now,
        "lease_until": now + dt.timedelta(seconds=lease_seconds),
    }
    if checkpoint:
        values["result"] = {**(job.result or {}), **checkpoint}
    held = session.execute(update(Job).where(_claimed_by(job)).values(**values))
    if _changed(held) != 1:
        raise LeaseLost(
            f"job {job.id} ({job.kind}) is no longer held by {job.worker}: its lease expired "
            "and it was queued again; this attempt's work is discarded",
            details={"job": job.id, "worker": job.worker, "attempt": job.attempts},
        )
    if checkpoint:
        job.result = values["result"]


def release(store: Store, job: Job) -> bool:
    """Hand ``job``'s claim back at once: queued again, this attempt not counted.

    For a worker that stops while a job runs (SIGTERM, Ctrl-C, a server shutting down): the
    next worker claims it now instead of after the lease expires. If the stopping worker's
    handler still reaches the transaction that commits its effect, :func:`hold` finds the
    claim gone and rolls the effect back, so the job's effect happens once. A checkpoint the
    handler committed before stays in ``result`` for the next attempt. False if the claim was
    not held any more.
    """
    with store.write() as session:
        released = session.execute(
            update(Job)
            .where(_claimed_by(job))
            .values(
                status="queued",
                worker=None,
                lease_until=None,
                attempts=Job.attempts - 1,
            )
        )
    done = _changed(released) == 1
    if done:
        log.warning(
            "job %s (%s) handed back to the queue: the worker is stopping", job.id, job.kind
        )
    return done


@contextmanager
def heartbeat(store: Store, job: Job, *, every: float, lease_seconds: float) -> Iterator[None]:
    """Renew ``job``'s lease every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                if not renew(store, job, lease_seconds):
                    log.warning(
                        "job %s: lease lost (another worker may run it); stopping the heartbeat",
                        job.id,
                    )
                    return
            except Exception:  # the store may be away for a moment; the lease has slack
                log.exception("job %s: renewing the lease failed", job.id)

    thread = threading.Thread(target=beat, name=f"looplab-heartbeat-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Running:
    """The job a worker is running now, for whoever stops the worker to hand back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: Job | None = None

    @property
    def job(self) -> Job | None:
        with self._lock:
            return self._job

    @job.setter
    def job(self, job: Job | None) -> None:
        with self._lock:
            self._job = job


def run_one(
    store: Store,
    settings: Settings,
    handlers: dict[str, Handler],
    worker: str,
    *,
    priority: Mapping[str, int] | None = None,
    running: Running | None = None,
    kinds: Collection[str] | None = None,
) -> bool:
    """Claim and run one job (of ``kinds``, when given); return whether there was one.

    Stopped inside the job (Ctrl-C, SIGTERM turned into ``KeyboardInterrupt`` or
    ``SystemExit``), it hands the claim back (:func:`release`) before it lets the stop through.
    """
    asked_at = utcnow()
    with store.write() as session:
        job = claim(
            session,
            worker,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            asked_at=asked_at,
            priority=priority,
            kinds=kinds,
        )
        if job is None:
            return False
        session.expunge(job)
    if running is not None:
        running.job = job
    try:
        _run_claimed(store, settings, handlers, job)
    except (KeyboardInterrupt, SystemExit):
        release(store, job)
        raise
    finally:
        if running is not None:
            running.job = None
    return True


def _run_claimed(store: Store, settings: Settings, handlers: dict[str, Handler], job: Job) -> None:
    handler = handlers.get(job.kind)
    started = time.monotonic()
    error: str | None = None
    try:
        if handler is None:
            raise ValueError(f"no handler for job kind {job.kind!r}")
        with heartbeat(
            store,
            job,
            every=settings.job_heartbeat_seconds,
            lease_seconds=settings.job_lease_seconds,
        ):
            result = handler(store, settings, job)
    except LeaseLost as exc:
        log.warning("%s", exc)
        return
    except Exception as exc:  # a failed job is recorded, never fatal to the worker
        log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
        result, status = dict(job.result or {}), "failed"
        error = "".join(traceback.format_exception_only(exc)).strip()
        log.debug("%s", traceback.format_exc())
    else:
        status = "done"
    with store.write() as session:
        finished = session.execute(
            update(Job)
            .where(_claimed_by(job))
            .values(
                status=status,
                result=result,
                error=error,
                finished_at=utcnow(),
                lease_until=None,
            )
        )
    if _changed(finished) != 1:
        log.warning(
            "job %s (%s): its lease expired while it ran and it was queued again; the result "
            "of attempt %d is discarded",
            job.id,
            job.kind,
            job.attempts,
        )
    elif status == "done":
        # The periodic monitor job runs every minute per project: not worth a line each time.
        log.log(
            logging.DEBUG if job.kind == "monitor" else logging.INFO,
            "job %s %s (project %s) done in %.1f s",
            job.id,
            job.kind,
            job.project_id,
            time.monotonic() - started,
        )


def worker_name() -> str:
    """``host:pid:thread:nonce``: the nonce tells this run's claims from an earlier run's in the
    same thread, whose handler may still be running after its claim was handed back."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{secrets.token_hex(3)}"


def run_worker(
    store: Store,
    settings: Settings,
    stop: threading.Event,
    *,
    handlers: dict[str, Handler],
    periodic: Callable[[Session], object] | None = None,
    poll_seconds: float = 1.0,
    priority: Mapping[str, int] | None = None,
    running: Running | None = None,
    kinds: Collection[str] | None = None,
) -> None:
    """Run jobs until ``stop`` is set; sleep ``poll_seconds`` when the queue is empty.

    ``priority`` ranks job kinds (:func:`claim`); ``running`` shows the job running now, so
    whoever stops a worker thread can hand that job back (:func:`release`).

    ``periodic`` runs in a write transaction every ``monitor_every_seconds`` (the worker module
    hands in the queueing of monitoring jobs); every worker may run it, so it must be idempotent.
    """
    name = worker_name()
    next_periodic = 0.0
    next_checkpoint = time.monotonic() + settings.wal_checkpoint_seconds
    while not stop.is_set():
        try:
            if periodic is not None and time.monotonic() >= next_periodic:
                with store.write() as session:
                    periodic(session)
                next_periodic = time.monotonic() + settings.monitor_every_seconds
            if settings.wal_checkpoint_seconds and time.monotonic() >= next_checkpoint:
                # Between jobs, never inside one: the WAL shrinks back after each burst.
                store.checkpoint()
                next_checkpoint = time.monotonic() + settings.wal_checkpoint_seconds
            ran = run_one(store, settings, handlers, name, priority=priority, running=running)
        except Exception:  # the store may be briefly unreachable; keep the worker alive
            log.exception("worker loop error")
            ran = False
        if not ran:
            stop.wait(poll_seconds)


def drain(
    store: Store,
    settings: Settings,
    *,
    handlers: dict[str, Handler],
    priority: Mapping[str, int] | None = None,
) -> int:
    """Run queued jobs until none is left; return how many ran."""
    count = 0
    while run_one(store, settings, handlers, worker_name(), priority=priority):
        count += 1
    return count


def list_jobs(
    session: Session, project_id: int, *, status: str | None = None, limit: int = 50
) -> list[Job]:
    """The project's jobs, newest first: ``status`` one of queued, running, done, failed."""
    query = select(Job).where(Job.project_id == project_id)
    if status is not None:
        query = query.where(Job.status == status)
    return list(session.scalars(query.order_by(Job.id.desc()).limit(limit)))


def get_job(session: Session, job_id: int) -> tuple[Job, str | None]:
    """Job ``job_id`` and the name of its project (``None`` for a job of no project).

    :class:`NotFound` if there is no such job.
    """
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", details={"job": job_id})
    project = session.get(Project, job.project_id) if job.project_id is not None else None
    return job, project.name if project is not None else None


def project_of(session: Session, job: Job) -> Project:
    """The project ``job`` works on; a clear error if it was deleted since it was queued."""
    project = session.get(Project, job.project_id)
    if project is None:
        raise ValueError(f"project {job.project_id} no longer exists")
    return project
