"""The worker: the one place that maps job kinds to their handlers, and runs them.

Stages queue jobs by kind name (:func:`looplab.core.jobs.enqueue`) and never import this module, so
the job queue (:mod:`looplab.core.jobs`) knows no stage and no stage knows another's handlers. The
server's embedded worker, ``looplab worker`` and the commands that run jobs in-process
(``looplab train``, ``looplab monitor --run``) all come here.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

from looplab.ask import scoring
from looplab.collect import imports
from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.learn import labelscan, retention, training
from looplab.watch import alerts, monitor, targeting, trust_triggers

#: Every job kind and the function that runs it: ``handler(store, settings, job) -> result``.
HANDLERS: dict[str, jobs.Handler] = {
    "train": training.train_project,
    "score": scoring.score_pool,
    "monitor": monitor.monitor_project,
    "alert": alerts.send_alert,
    "import": imports.run_import,
    "label_drifted": targeting.label_drifted,
    "reliability": trust_triggers.run_check,
    "label_scan": labelscan.scan_labels,
    "gc": retention.run_job,
}


#: Which queued job a worker takes first (lower first; kinds not named come last). Monitoring
#: and alerts are due every minute and take seconds; an import, a drift-labeling or reliability
#: check has someone waiting; scoring keeps the queue fresh; training takes minutes and its
#: candidate waits for review anyway. A running job is never interrupted for a more urgent one:
#: the monitor is late by at most the job running when it was queued.
PRIORITY: dict[str, int] = {
    "monitor": 0,
    "alert": 0,
    "import": 1,
    "label_drifted": 1,
    "reliability": 1,
    "score": 2,
    "train": 3,
    "label_scan": 3,  # minutes of cross-validation; a reviewer asked, but can review meanwhile
    "gc": 4,  # housekeeping (auto_gc): nobody waits for it
}


def run(
    store: Store,
    settings: Settings,
    stop: threading.Event,
    *,
    poll_seconds: float = 1.0,
    running: jobs.Running | None = None,
    kinds: Collection[str] | None = None,
) -> None:
    """Run jobs until ``stop`` is set, queueing the periodic monitoring of served projects.

    ``kinds`` limits the worker to those job kinds (``looplab worker --kinds score,train``).
    """
    jobs.run_worker(
        store,
        settings,
        stop,
        handlers=HANDLERS,
        periodic=monitor.schedule,
        poll_seconds=poll_seconds,
        priority=PRIORITY,
        running=running,
        kinds=kinds,
    )


def drain(store: Store, settings: Settings) -> int:
    """Run queued jobs until none is left (for the CLI and tests); return how many ran."""
    return jobs.drain(store, settings, handlers=HANDLERS, priority=PRIORITY)
