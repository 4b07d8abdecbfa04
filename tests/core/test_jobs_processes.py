"""Two `looplab worker` processes and two `looplab serve` replicas on one store, one worker killed
with SIGKILL in the middle of a training job: every job runs to completion exactly once, and
every registered version loads. On SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from looplab import configure
from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, ModelVersion
from looplab.govern import access
from looplab.learn import registry
from tests.conftest import pg_schema
from tests.textdata import add_text_project

LOOPLAB = str(Path(sys.executable).with_name("looplab"))
# Slow enough (seconds) that the kill lands inside the work, yet a loadable scikit-learn model.
SLOW_ESTIMATOR = "sklearn.ensemble.GradientBoostingClassifier"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start processes; stop every one by its process id at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [LOOPLAB, *args], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def job_rows(store: Store) -> list[Job]:
    with store.read() as session:
        rows = list(session.scalars(select(Job).order_by(Job.id)))
        for row in rows:
            session.expunge(row)
        return rows


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_each_job_runs_once_across_workers_replicas_and_a_kill(kind: str, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with ExitStack() as stack:
        url = stack.enter_context(pg_schema()) if kind == "postgresql" else None
        settings = Settings(home=home, database_url=url)
        store = Store.from_settings(settings)
        stack.callback(store.dispose)
        store.upgrade()
        with store.write() as session:
            project = add_text_project(session, n=300)
            configure.update_settings(session, project, {"estimator": SLOW_ESTIMATOR}, actor="t")
            _, token = access.create_user(session, "root", "admin", actor="t")
        env = {
            **os.environ,
            "LOOPLAB_HOME": str(home),
            "LOOPLAB_RUN_WORKER": "false",
            "LOOPLAB_JOB_LEASE_SECONDS": "4",
            "LOOPLAB_JOB_HEARTBEAT_SECONDS": "0.5",
            "LOOPLAB_MONITOR_EVERY_SECONDS": "3600",
        }
        if url:
            env["LOOPLAB_DATABASE_URL"] = url
        start = stack.enter_context(processes())
        replicas = []
        for i in range(2):
            port = free_port()
            start("serve", "--port", str(port), env=env, log=tmp_path / f"serve{i}.log")
            replicas.append(f"http://127.0.0.1:{port}")
        workers = {
            start("worker", "--poll", "0.2", env=env, log=tmp_path / f"worker{i}.log").pid
            for i in range(2)
        }
        for base in replicas:
            wait_for(lambda b=base: _healthy(b), 90, f"the replica at {base}")
        headers = {"Authorization": f"Bearer {token}"}

        def train_via(base: str) -> int:
            answer = httpx.post(f"{base}/api/v1/projects/news/train", headers=headers, timeout=30)
            assert answer.status_code == 202, answer.text
            return int(answer.json()["id"])

        def running(job_id: int) -> Job | None:
            return next(
                (j for j in job_rows(store) if j.id == job_id and j.status == "running"), None
            )

        first = train_via(replicas[0])
        job = wait_for(lambda: running(first), 60, "the first training job to start")
        assert isinstance(job, Job) and job.worker is not None
        victim = int(job.worker.split(":")[1])
        assert victim in workers
        time.sleep(1.0)  # inside the fit: a few seconds on this estimator
        os.kill(victim, signal.SIGKILL)
        workers.discard(victim)
        # A second training job through the other replica, and a new worker for the dead one.
        second = train_via(replicas[1])
        workers.add(start("worker", "--poll", "0.2", env=env, log=tmp_path / "worker2.log").pid)
        wait_for(lambda: running(second) or _finished(store, second), 60, "the second job")
        third = train_via(replicas[0])
        wait_for(
            lambda: all(j.status in ("done", "failed") for j in job_rows(store)),
            240,
            "every job to finish",
        )

        jobs_now = job_rows(store)
        logs = "\n".join(
            f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(tmp_path.glob("*.log"))
        )
        assert {j.status for j in jobs_now} == {"done"}, (
            [(j.id, j.kind, j.status, j.attempts, j.error) for j in jobs_now],
            logs,
        )
        trains = {j.id: j for j in jobs_now if j.kind == "train"}
        assert set(trains) == {first, second, third}
        assert trains[first].attempts == 2  # claimed by the killed worker, then reclaimed
        with store.read() as session:
            versions = list(session.scalars(select(ModelVersion).order_by(ModelVersion.version)))
            # Exactly once: one version per training job, each registered by its own job.
            assert sorted(v.job_id for v in versions) == sorted(trains)
            assert [v.name for v in versions] == ["v1", "v2", "v3"]
            assert {trains[j].result["model"] for j in trains} == {"v1", "v2", "v3"}
            files = [registry.artifact_file(session, v) for v in versions]
            assert len(set(files)) == 3
            for version in versions:
                model = registry.load(session, version)  # SHA-256 checked
                assert list(model.classes_) == ["business", "sport", "tech"]


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _finished(store: Store, job_id: int) -> bool:
    return any(j.id == job_id and j.status in ("done", "failed") for j in job_rows(store))


def test_sigterm_hands_a_running_training_back_and_the_next_worker_runs_it_once(
    tmp_path: Path,
) -> None:
    """A supervisor stops `looplab worker` in the middle of a training: the worker exits at once
    with the job queued again (the attempt not counted), and the next worker trains it once."""
    home = tmp_path / "ws"
    settings = Settings(home=home)
    store = Store.from_settings(settings)
    store.upgrade()
    try:
        with store.write() as session:
            project = add_text_project(session, n=300)
            configure.update_settings(session, project, {"estimator": SLOW_ESTIMATOR}, actor="t")
            job_id = jobs.enqueue(session, "train", project_id=project.id).id
        env = {
            **os.environ,
            "LOOPLAB_HOME": str(home),
            "LOOPLAB_JOB_LEASE_SECONDS": "600",  # the hand-back, not an expiry, must requeue it
            "LOOPLAB_MONITOR_EVERY_SECONDS": "3600",
        }
        with processes() as start:
            worker = start("worker", "--poll", "0.2", env=env, log=tmp_path / "worker1.log")
            wait_for(
                lambda: any(j.id == job_id and j.status == "running" for j in job_rows(store)),
                60,
                "the training to start",
            )
            time.sleep(0.5)  # inside the fit
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, (tmp_path / "worker1.log").read_text()
            job = next(j for j in job_rows(store) if j.id == job_id)
            assert (job.status, job.worker, job.attempts) == ("queued", None, 0)
            start("worker", "--poll", "0.2", env=env, log=tmp_path / "worker2.log")
            wait_for(lambda: _finished(store, job_id), 120, "the training to finish")
        job = next(j for j in job_rows(store) if j.id == job_id)
        assert (job.status, job.attempts) == ("done", 1)
        with store.read() as session:
            versions = list(session.scalars(select(ModelVersion)))
            assert [(v.name, v.job_id) for v in versions] == [("v1", job_id)]
    finally:
        store.dispose()
