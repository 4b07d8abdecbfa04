"""Imports over HTTP: an uploaded file, kept in the workspace, imported by an ``import`` job.

The upload route streams the request body to ``<home>/uploads/<random>/<file name>``
(:func:`upload_path`); :func:`queue_import` checks the column mapping against the project (a bad
mapping is refused before any work), queues the job and audits the upload, in one transaction. A
worker runs :func:`run_import`: the CLI's import (:func:`looplab.collect.ingest.import_file`), all
or nothing in one transaction, reporting how many records it has read
(:mod:`looplab.core.progress`).

* Bad input fails the job with the message ``looplab import`` prints (file, line, field), the
  file named as uploaded; ``result["error"]`` keeps the code and details. Nothing is written and
  the uploaded file is deleted.
* On success the file stays in the workspace: it is the import batch's ``source``. The job's
  result is the CLI's ``--json`` report plus the file name, and a ``score`` job ranks the pool.
* A job whose worker died mid-import is claimed again (:mod:`looplab.core.jobs`): the uncommitted
  import was rolled back, so it runs from the start. One that died after its commit finds the
  report it checkpointed with the commit and does not import twice.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from looplab.collect import ingest
from looplab.collect.readers import resolve_spec
from looplab.core import audit, jobs, progress
from looplab.core.errors import LooplabError, NotFound
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, Project

UPLOADS = "uploads"
_UNSAFE = re.compile(r"[^\w.-]+")  # \w: letters and digits of any script, and "_"


class TooLarge(LooplabError):
    """An upload over ``LOOPLAB_UPLOAD_MAX_BYTES``."""

    status = 413
    default_code = "too_large"


def safe_name(filename: str) -> str:
    """The last part of ``filename``, other characters than letters, digits, ``.``, ``_`` and ``-``
    replaced by ``_`` (so it can name a file, and the import's messages name it as uploaded)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    name = _UNSAFE.sub("_", base).lstrip(".")[-100:]
    return name or "upload"


def upload_path(settings: Settings, filename: str) -> Path:
    """A fresh path for an uploaded file, in a folder of its own so it keeps its name."""
    folder = settings.home / UPLOADS / secrets.token_hex(8)
    folder.mkdir(parents=True)
    return folder / safe_name(filename)


def discard(path: Path) -> None:
    """Delete an uploaded file and its folder."""
    shutil.rmtree(path.parent, ignore_errors=True)


def queue_import(
    session: Session,
    project: Project,
    path: Path,
    *,
    settings: Settings,
    size: int,
    fmt: str | None = None,
    text: str | None = None,
    fields: list[str] | None = None,
    label: str | None = None,
    meta: list[str] | None = None,
    id_column: str | None = None,
    encoding: str = "utf-8",
    from_name: str | None = None,
    actor: str,
) -> Job:
    """Check the mapping, queue an ``import`` job for the uploaded ``path`` and audit it.

    Raises
    ------
    Invalid
        The format or the mapping does not fit the project (the checks ``looplab import`` makes
        before reading a row).
    """
    resolve_spec(project, Path(path.name), fmt, text, fields, label, meta, encoding)
    mapping = {
        "format": fmt,
        "text": text,
        "fields": fields,
        "label": label,
        "meta": meta,
        "id": id_column,
        "encoding": encoding,
        "from_name": from_name,
    }
    params = {
        "path": str(path.relative_to(settings.home)),
        "filename": path.name,
        "bytes": size,
        "actor": actor,
        **mapping,
    }
    job = jobs.enqueue(session, "import", project_id=project.id, params=params, dedupe=False)
    audit.record(
        session,
        actor=actor,
        action="records.upload",
        entity_type="job",
        entity_id=job.id,
        project_id=project.id,
        details={"file": path.name, "bytes": size, "job": job.id, "mapping": mapping},
    )
    return job


def run_import(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """The ``import`` job's handler: import the uploaded file, all or nothing."""
    done_before = (job.result or {}).get("report")
    if done_before is not None:  # an earlier attempt committed, then its worker died
        return dict(done_before)
    params = job.params
    path = settings.home / params["path"]
    filename = params["filename"]
    parquet = (params.get("format") or path.suffix.lower().lstrip(".")) in ("parquet", "pq")
    calls = 0

    def on_progress(done: int, total: int | None) -> None:
        # import_file reports once before the first row and then after every BATCH_ROWS rows
        # (and at the end): rows read is exact at each batch, and the final figure is the report's.
        nonlocal calls
        rows = done if parquet else calls * ingest.BATCH_ROWS
        if not parquet and calls and total is not None and done >= total:
            rows = (calls - 1) * ingest.BATCH_ROWS  # the last call: at least this many
        calls += 1
        unit = "rows" if parquet else "bytes"
        progress.report(store, job, {"rows": rows, "done": done, "total": total, "unit": unit})

    try:
        with store.write() as session:
            project = session.get(Project, job.project_id)
            if project is None:
                raise NotFound(f"project {job.project_id} no longer exists")
            report = ingest.import_file(
                session,
                project,
                path,
                fmt=params.get("format"),
                text=params.get("text"),
                fields=params.get("fields"),
                label=params.get("label"),
                meta=params.get("meta"),
                id_column=params.get("id"),
                encoding=params.get("encoding") or "utf-8",
                actor=params.get("actor", "worker"),
                progress=on_progress,
                from_name=params.get("from_name"),
            )
            result = {"file": filename, **report.to_dict()}
            result["progress"] = {"rows": report.rows, "done": 1, "total": 1, "unit": "rows"}
            jobs.hold(
                session,
                job,
                lease_seconds=settings.job_lease_seconds,
                checkpoint={"report": result},
            )
            jobs.enqueue(session, "score", project_id=project.id)
        # A whole file in one transaction grew SQLite's WAL by its size: give that back now.
        store.checkpoint()
        return result
    except jobs.LeaseLost:
        raise
    except LooplabError as exc:
        discard(path)
        named = _as_uploaded(exc, path, filename)
        with store.write() as session:
            jobs.hold(
                session,
                job,
                lease_seconds=settings.job_lease_seconds,
                checkpoint={"error": named.to_dict()["error"]},
            )
        raise named from None
    except Exception:
        discard(path)
        raise
    finally:
        progress.clear(store, job.id)


def _as_uploaded(exc: LooplabError, path: Path, filename: str) -> LooplabError:
    """``exc`` naming the file as it was uploaded, not its place in the workspace."""
    message = exc.message.replace(str(path), filename)
    details = dict(exc.details)
    if details.get("file") == str(path):
        details["file"] = filename
    return type(exc)(message, code=exc.code, details=details)


def view(store: Store, job: Job, project: str | None) -> dict[str, Any]:
    """A job as the API shows it: status, progress, result and the error with its details."""
    result = dict(job.result or {})
    result.pop("progress", None)
    error = result.pop("error", None)
    result.pop("report", None)
    message = job.error
    if job.status == "failed" and isinstance(error, dict):
        message = error.get("message") or message
    return {
        "id": job.id,
        "kind": job.kind,
        "project": project,
        "status": job.status,
        "progress": progress.read(store, job),
        "result": result if job.status == "done" else None,
        "error": message if job.status == "failed" else None,
        "error_code": (error or {}).get("code") if job.status == "failed" else None,
        "error_details": (error or {}).get("details") if job.status == "failed" else None,
        "attempts": getattr(job, "attempts", None),
        "worker": job.worker,
        "heartbeat_at": job.heartbeat_at,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
