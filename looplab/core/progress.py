"""How far a running job has come, readable by any server while the job runs.

A handler calls :func:`report` as it goes; ``GET /api/v1/jobs/{id}`` calls :func:`read`. Where the
figures live depends on the store, because a job's own transaction may hold the store:

* **PostgreSQL**: on the job row, as ``result["progress"]``, written in a short transaction of its
  own beside the handler's (an import's one long transaction touches other rows only).
* **SQLite**: in a small JSON file beside the store file (``progress/job-<id>.json``, replaced
  atomically). SQLite has one writer at a time, and an import holds that lock from its first row
  to its commit, so no other transaction could record progress until the import is over. Every
  process that opens a SQLite store shares its folder, so every server sees the file.

When the job ends the handler returns its final figures in the result; :func:`clear` removes the
file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import update

from looplab.core.store import Store
from looplab.core.tables import Job


def _file(store: Store, job_id: int) -> Path | None:
    database = store.write_engine.url.database
    if store.dialect != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).parent / "progress" / f"job-{int(job_id)}.json"


def report(store: Store, job: Job, figures: dict[str, Any]) -> None:
    """Record ``figures`` (JSON-able) as the progress of running job ``job``."""
    path = _file(store, job.id)
    if store.dialect == "sqlite":
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_text(json.dumps(figures), encoding="utf-8")
        os.replace(part, path)
        return
    job.result = {**(job.result or {}), "progress": figures}
    with store.write() as session:
        session.execute(
            update(Job).where(Job.id == job.id, Job.status == "running").values(result=job.result)
        )


def read(store: Store, job: Job) -> dict[str, Any] | None:
    """The latest progress of ``job``: while it runs, what :func:`report` wrote; after, the
    figures its result keeps."""
    kept = (job.result or {}).get("progress")
    path = _file(store, job.id)
    if job.status != "running" or path is None:
        return kept
    try:
        figures: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return kept
    return figures


def clear(store: Store, job_id: int) -> None:
    """Remove the progress file of a finished job (SQLite); a no-op elsewhere."""
    path = _file(store, job_id)
    if path is not None:
        path.unlink(missing_ok=True)
