"""`looplab jobs` lists a project's jobs with who runs them; `looplab worker` checks --kinds."""

from __future__ import annotations

import json
from pathlib import Path

from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from tests.cli.conftest import run
from tests.textdata import add_text_project


def test_jobs_shows_each_jobs_worker_attempt_and_heartbeat(home: Path) -> None:
    store = Store.from_settings(Settings(home=home))
    store.upgrade()
    try:
        with store.write() as session:
            project = add_text_project(session, n=30)
            first = jobs.enqueue(session, "score", project_id=project.id).id
            second = jobs.enqueue(session, "train", project_id=project.id).id
        with store.write() as session:
            claimed = jobs.claim(session, "box:41:7:ab", priority={"score": 0, "train": 1})
            assert claimed is not None and claimed.id == first
    finally:
        store.dispose()
    code, out, err = run("jobs", "news", "--json")
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    assert list(rows) == [second, first]  # newest first
    assert (rows[first]["status"], rows[first]["worker"], rows[first]["attempts"]) == (
        "running", "box:41:7:ab", 1,
    )  # fmt: skip
    assert rows[first]["heartbeat_at"] is not None and rows[second]["worker"] is None
    code, out, _ = run("jobs", "news", "--status", "queued")
    assert code == 0 and "train" in out and "score" not in out
    code, _, err = run("jobs", "news", "--status", "stuck")
    assert code == 2 and "queued, running, done or failed" in err
    code, _, err = run("jobs", "nope")
    assert code == 2


def test_worker_refuses_kinds_it_cannot_run(home: Path) -> None:
    code, _, err = run("worker", "--kinds", "score,dream")
    assert code == 2 and "unknown dream" in err and "train" in err
