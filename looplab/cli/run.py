"""``looplab serve`` and ``looplab worker``: the long-running processes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from looplab.cli.app import (
    JsonOpt,
    app,
    emit_json,
    err,
    opened,
    out,
    raise_exit,
)
from looplab.core.settings import Settings


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between polls of an empty queue.")] = 1.0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Jobs this process runs at once (threads).")
    ] = 1,
    kinds: Annotated[
        str | None,
        typer.Option(help="Only these job kinds, comma-separated (e.g. score,train)."),
    ] = None,
) -> None:
    """Run jobs (training, pool scoring) from the store until interrupted.

    Run as many as you like, on any machine that reaches the store; `looplab serve` runs one
    inside the server unless LOOPLAB_RUN_WORKER=false.
    """
    import threading

    from looplab import worker as worker_module
    from looplab.core import jobs

    accepted = _kinds(kinds, set(worker_module.HANDLERS))
    _log_to_stderr()
    settings = Settings()
    stop = threading.Event()
    _stop_on_sigterm()
    with opened() as store:
        err.print(
            f"looplab worker {jobs.worker_name()} on {store.dialect}, {concurrency} at once"
            f"{', kinds ' + ','.join(sorted(accepted)) if accepted else ''}; Ctrl-C or SIGTERM "
            "stops it (a running job goes back to the queue)"
        )
        running = [jobs.Running() for _ in range(concurrency)]
        threads = [
            threading.Thread(
                target=worker_module.run,
                args=(store, settings, stop),
                kwargs={"poll_seconds": poll, "running": r, "kinds": accepted},
                name=f"looplab-worker-{i}",
                daemon=True,
            )
            for i, r in enumerate(running)
        ]
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                stop.wait(0.5)
        except KeyboardInterrupt:
            stop.set()
            # The threads' jobs cannot be interrupted: hand each back for the next worker; twice,
            # for a thread that claimed one just as the stop came.
            for _ in range(2):
                for holder in running:
                    job = holder.job
                    if job is not None:
                        jobs.release(store, job)
                for thread in threads:
                    thread.join(timeout=0.5)


def _kinds(text: str | None, known: set[str]) -> set[str] | None:
    """The job kinds of ``--kinds``, each checked against the kinds workers run."""
    if text is None:
        return None
    asked = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(asked - known)
    if not asked or unknown:
        raise_exit(
            f"--kinds {text!r}: unknown {', '.join(unknown) or 'empty list'}; job kinds are "
            + ", ".join(sorted(known))
        )
    return asked


@app.command()
def jobs(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    status: Annotated[
        str | None, typer.Option(help="Only queued, running, done or failed jobs.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """The project's jobs, newest first: who runs them, their progress and heartbeat."""
    from looplab.collect import imports
    from looplab.core import jobs as job_queue
    from looplab.core import projects
    from looplab.core.tables import utcnow

    if status is not None and status not in ("queued", "running", "done", "failed"):
        raise_exit(f"--status {status!r}: use queued, running, done or failed")
    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        rows = [
            imports.view(store, job, project.name)
            for job in job_queue.list_jobs(session, project.id, status=status, limit=limit)
        ]
    if as_json:
        emit_json(rows)
        return
    now = utcnow()
    table = Table("id", "kind", "status", "worker", "try", "progress", "heartbeat", "took")
    for r in rows:
        beat = r["heartbeat_at"]
        took = (
            (r["finished_at"] - r["started_at"]).total_seconds()
            if r["finished_at"] and r["started_at"]
            else None
        )
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["status"] + (f": {r['error']}" if r["error"] else ""),
            r["worker"] or "-",
            str(r["attempts"] or 0),
            _progress(r["progress"]),
            f"{(now - beat).total_seconds():.0f} s ago"
            if beat and r["status"] == "running"
            else "-",
            f"{took:.1f} s" if took is not None else "-",
        )
    out.print(table)


def _progress(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    done, total = figures.get("done"), figures.get("total")
    if isinstance(done, int | float) and isinstance(total, int | float) and total:
        return f"{done / total:.0%}"
    return ", ".join(f"{k} {v}" for k, v in figures.items())


def _stop_on_sigterm() -> None:
    """SIGTERM (a supervisor stopping the worker) stops it as Ctrl-C does: the job it runs is
    handed back to the queue at once (:func:`looplab.core.jobs.run_one`)."""
    import signal

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _log_to_stderr() -> None:
    """Long-running commands (serve, worker) say what their jobs did: one line per job."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("looplab")  # ours only: alembic and others stay quiet
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(help="HTTP worker processes.")] = 1,
) -> None:
    """Run the HTTP API, the web UI and (by default) a job worker."""
    import uvicorn

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    err.print(f"looplab on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    _log_to_stderr()
    if workers > 1:
        uvicorn.run(
            "looplab.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        from looplab.api import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
