"""``looplab serve`` and ``looplab worker``: the long-running processes."""

from __future__ import annotations

from typing import Annotated

import typer

from looplab.cli.app import (
    app,
    err,
    opened,
)
from looplab.core.settings import Settings


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between polls of an empty queue.")] = 1.0,
) -> None:
    """Run jobs (training, pool scoring) from the store until interrupted.

    Run as many as you like, on any machine that reaches the store; `looplab serve` runs one
    inside the server unless LOOPLAB_RUN_WORKER=false.
    """
    import threading

    from looplab import worker as worker_module
    from looplab.core import jobs

    _log_to_stderr()
    settings = Settings()
    stop = threading.Event()
    _stop_on_sigterm()
    with opened() as store:
        err.print(
            f"looplab worker {jobs.worker_name()} on {store.dialect}; Ctrl-C or SIGTERM stops "
            "it (a running job goes back to the queue)"
        )
        try:
            worker_module.run(store, settings, stop, poll_seconds=poll)
        except KeyboardInterrupt:
            stop.set()


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
