"""The monitor job measures a window on a read session and writes it in one short transaction."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from sqlalchemy import func, select

from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.tables import Job, MonitorWindow, Project
from looplab.watch import monitor, reference
from tests.api.conftest import Api
from tests.api.test_monitor import rows, serve, served_project


def monitor_job(api: Api) -> Job:
    """A queued monitor job for "shop", detached, as a worker holds it while running it."""
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        job = jobs.enqueue(session, "monitor", project_id=project.id, dedupe=False)
        session.expunge(job)
    return job


def blocking_drift(monkeypatch, entered: threading.Semaphore, release: threading.Event) -> None:
    """Make the drift computation wait for ``release`` (saying so on ``entered``)."""
    compute = reference.window_drift

    def slow(*args: Any, **kwargs: Any) -> Any:
        entered.release()
        assert release.wait(30), "the test never released the computation"
        return compute(*args, **kwargs)

    monkeypatch.setattr(reference, "window_drift", slow)


def test_writes_go_through_while_a_window_is_measured(api: Api, tmp_path, monkeypatch) -> None:
    """Annotators and the prediction log never wait for a window's drift computation."""
    served_project(api, tmp_path)
    serve(api, rows(np.random.default_rng(40), 200))
    entered, release = threading.Semaphore(0), threading.Event()
    blocking_drift(monkeypatch, entered, release)
    results: list[dict[str, Any]] = []
    settings = Settings(home=tmp_path)
    job = monitor_job(api)
    worker = threading.Thread(
        target=lambda: results.append(monitor.monitor_project(api.store, settings, job))
    )
    worker.start()
    try:
        assert entered.acquire(timeout=30), "the monitor job never started measuring"
        took: list[float] = []

        def write() -> None:
            started = time.perf_counter()
            with api.store.write() as session:
                session.get(Project, job.project_id).guidelines = "written meanwhile"  # type: ignore[union-attr]
            took.append(time.perf_counter() - started)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=5)
        assert not writer.is_alive(), "a write waited for the monitor's computation"
        assert took[0] < 1.0
    finally:
        release.set()
        worker.join(timeout=60)
        if "writer" in locals():
            writer.join(timeout=60)
    [result] = results
    assert result["n"] == 200 and "window" in result
    with api.store.read() as session:
        assert session.scalar(select(func.count()).select_from(MonitorWindow)) == 1


def test_two_workers_closing_one_window_store_it_once(api: Api, tmp_path, monkeypatch) -> None:
    """Two monitor jobs for one project measure the same predictions: the second is a no-op."""
    served_project(api, tmp_path)
    serve(api, rows(np.random.default_rng(41), 200))
    entered, release = threading.Semaphore(0), threading.Event()
    blocking_drift(monkeypatch, entered, release)
    settings = Settings(home=tmp_path)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run(job: Job) -> None:
        out = monitor.monitor_project(api.store, settings, job)
        with lock:
            results.append(out)

    workers = [threading.Thread(target=run, args=(monitor_job(api),)) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        # Both have read the same predictions and are measuring them at once.
        assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
    finally:
        release.set()
        for w in workers:
            w.join(timeout=60)
    closed = [r for r in results if "window" in r]
    assert len(closed) == 1 and closed[0]["n"] == 200, results
    [other] = [r for r in results if "window" not in r]
    assert other == {"skipped": f"window #{closed[0]['window']} was closed by another worker"}
    with api.store.read() as session:
        assert session.scalar(select(func.count()).select_from(MonitorWindow)) == 1
