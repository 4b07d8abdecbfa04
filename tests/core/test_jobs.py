"""Jobs run once: committed claims, leases with a heartbeat, expiry, give-up, and lost claims."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, utcnow
from tests.conftest import fresh_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with fresh_store(request.param, tmp_path) as s:
        yield s


def queue(store: Store, kind: str = "noop") -> int:
    with store.write() as session:
        return jobs.enqueue(session, kind, project_id=None, dedupe=False).id


def row(store: Store, job_id: int) -> Job:
    with store.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def expire(store: Store, job_id: int) -> None:
    with store.write() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_until=utcnow() - dt.timedelta(seconds=1))
        )


def test_a_claim_is_committed_before_the_work_starts(store: Store) -> None:
    job_id = queue(store)
    seen: dict[str, Job] = {}

    def handler(s: Store, _settings: Settings, job: Job) -> dict:
        # While the handler runs, the store already says who holds the job.
        seen["during"] = row(s, job.id)
        with s.write() as session:
            seen["other"] = jobs.claim(session, "other-worker")  # type: ignore[assignment]
        return {"ok": True}

    assert jobs.run_one(store, Settings(), {"noop": handler}, "w1")
    during = seen["during"]
    assert (during.status, during.worker, during.attempts) == ("running", "w1", 1)
    assert during.lease_until is not None and during.started_at is not None
    assert seen["other"] is None  # nothing else queued: the running job is not handed out
    done = row(store, job_id)
    assert (done.status, done.worker, done.result) == ("done", "w1", {"ok": True})
    assert done.finished_at is not None and done.lease_until is None


def test_an_expired_lease_is_claimed_again_and_the_old_claim_cannot_finish(store: Store) -> None:
    job_id = queue(store)
    with store.write() as session:
        first = jobs.claim(session, "w1", lease_seconds=60)
        assert first is not None
        session.expunge(first)
    with store.write() as session:  # lease still good: nobody else gets it
        assert jobs.claim(session, "w2") is None
    expire(store, job_id)
    with store.write() as session:
        second = jobs.claim(session, "w2", lease_seconds=60)
        assert second is not None and second.id == job_id and second.attempts == 2
        session.expunge(second)
    # The first worker woke up: it may neither commit an effect nor renew the lease.
    with pytest.raises(jobs.LeaseLost), store.write() as session:
        jobs.hold(session, first, lease_seconds=60, checkpoint={"model": "v9"})
    assert not jobs.renew(store, first, 60)
    with store.write() as session:
        jobs.hold(session, second, lease_seconds=60, checkpoint={"model": "v1"})
    current = row(store, job_id)
    assert (current.worker, current.result) == ("w2", {"model": "v1"})


def test_a_job_whose_lease_keeps_expiring_is_given_up(store: Store) -> None:
    job_id = queue(store)
    for attempt in (1, 2):
        with store.write() as session:
            claimed = jobs.claim(session, f"w{attempt}", max_attempts=2)
            assert claimed is not None and claimed.attempts == attempt
        expire(store, job_id)
    with store.write() as session:
        assert jobs.claim(session, "w3", max_attempts=2) is None
    given_up = row(store, job_id)
    assert given_up.status == "failed" and given_up.attempts == 2
    assert "given up after 2 attempt(s)" in (given_up.error or "")


def test_the_heartbeat_keeps_a_long_job_leased(store: Store) -> None:
    job_id = queue(store)
    settings = Settings(job_lease_seconds=2, job_heartbeat_seconds=0.2)
    leases: list[dt.datetime] = []
    stolen: list[Job | None] = []

    def slow(s: Store, _settings: Settings, job: Job) -> dict:
        for _ in range(3):
            time.sleep(1.0)
            leases.append(row(s, job.id).lease_until)  # type: ignore[arg-type]
        with s.write() as session:  # 3 s after the claim, past a 2 s lease without heartbeat
            stolen.append(jobs.claim(session, "thief", lease_seconds=2))
        return {}

    jobs.run_one(store, settings, {"noop": slow}, "w1")
    assert stolen == [None]
    assert leases == sorted(leases) and leases[0] < leases[-1]
    done = row(store, job_id)
    assert (done.status, done.attempts) == ("done", 1)


def test_a_worker_that_lost_its_lease_discards_its_result(store: Store) -> None:
    job_id = queue(store)

    def overtaken(s: Store, _settings: Settings, job: Job) -> dict:
        expire(s, job.id)
        with s.write() as session:
            jobs.claim(session, "w2")
        return {"from": "w1"}

    jobs.run_one(store, Settings(), {"noop": overtaken}, "w1")
    current = row(store, job_id)
    assert (current.status, current.worker, current.attempts) == ("running", "w2", 2)
    assert current.result == {}


def test_two_workers_never_run_one_job(store: Store) -> None:
    """Eight threads of two "workers" race for 20 jobs: each job runs exactly once."""
    ids = [queue(store) for _ in range(20)]
    runs: list[int] = []
    lock = threading.Lock()

    def count(_s: Store, _settings: Settings, job: Job) -> dict:
        with lock:
            runs.append(job.id)
        time.sleep(0.01)
        return {}

    def work(name: str) -> None:
        while jobs.run_one(store, Settings(), {"noop": count}, name):
            pass

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(runs) == ids
    with store.read() as session:
        statuses = session.scalars(select(Job.status).where(Job.id.in_(ids))).all()
    assert set(statuses) == {"done"}


def test_the_most_urgent_kind_is_claimed_first_then_the_oldest(store: Store) -> None:
    ids = {kind: queue(store, kind) for kind in ("train", "score", "other", "monitor")}
    later_monitor = queue(store, "monitor")
    priority = {"monitor": 0, "score": 2, "train": 3}
    claimed = []
    for _ in range(5):
        with store.write() as session:
            job = jobs.claim(session, "w", priority=priority)
            assert job is not None
            claimed.append(job.id)
    # Kinds the map does not name come after every named one.
    assert claimed == [ids["monitor"], later_monitor, ids["score"], ids["train"], ids["other"]]


def test_a_stopping_worker_hands_its_job_back_and_its_effect_is_discarded(store: Store) -> None:
    job_id = queue(store)
    with store.write() as session:
        first = jobs.claim(session, "w1", lease_seconds=600)
        assert first is not None
        session.expunge(first)
    assert jobs.release(store, first)
    back = row(store, job_id)
    # Queued at once (not after the 10-minute lease), this attempt not counted.
    assert (back.status, back.worker, back.attempts, back.lease_until) == ("queued", None, 0, None)
    # The stopping worker's handler, still running, cannot commit its effect any more.
    with pytest.raises(jobs.LeaseLost), store.write() as session:
        jobs.hold(session, first, lease_seconds=60, checkpoint={"model": "v9"})
    assert not jobs.release(store, first)
    ran: list[int] = []
    assert jobs.run_one(store, Settings(), {"noop": lambda s, st, j: ran.append(j.id) or {}}, "w2")
    assert ran == [job_id] and row(store, job_id).status == "done"
    assert row(store, job_id).attempts == 1


def test_ctrl_c_inside_a_job_hands_it_back(store: Store) -> None:
    job_id = queue(store)

    def interrupted(_s: Store, _settings: Settings, _job: Job) -> dict:
        raise KeyboardInterrupt

    running = jobs.Running()
    with pytest.raises(KeyboardInterrupt):
        jobs.run_one(store, Settings(), {"noop": interrupted}, "w1", running=running)
    assert running.job is None
    assert (row(store, job_id).status, row(store, job_id).attempts) == ("queued", 0)


def test_a_worker_for_some_kinds_claims_only_those(store: Store) -> None:
    train, score = queue(store, "train"), queue(store, "score")
    with store.write() as session:
        job = jobs.claim(session, "w", kinds={"score"})
        assert job is not None and job.id == score
    with store.write() as session:
        assert jobs.claim(session, "w", kinds={"score", "monitor"}) is None
        assert jobs.claim(session, "w2").id == train  # type: ignore[union-attr]
