"""The FastAPI app factory. The app holds a Store and Settings and nothing else."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from looplab import __version__, web
from looplab import worker as job_worker
from looplab.api.deps import TokenCache
from looplab.api.errors import add_exception_handlers
from looplab.api.metrics import MetricsMiddleware, make_registry
from looplab.api.responses import document_errors
from looplab.api.routes import (
    admin,
    audit,
    labeling,
    models,
    monitor,
    projects,
    review,
    serve,
    transfer,
    trust,
    users,
)
from looplab.api.routes import jobs as job_routes
from looplab.core import jobs
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.serve.batching import Batcher
from looplab.serve.predlog import PredictionLog
from looplab.serve.serving import ModelCache
from looplab.serve.spool import folder_for
from looplab.watch import alerts


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    store = store or Store.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.upgrade()
        app.state.prediction_log.start()
        stop = threading.Event()
        worker = None
        running = jobs.Running()
        if settings.run_worker:
            # The embedded worker: one machine needs no separate process for training jobs.
            worker = threading.Thread(
                target=job_worker.run,
                args=(store, settings, stop),
                kwargs={"running": running},
                name="looplab-worker",
                daemon=True,
            )
            worker.start()
        yield
        stop.set()
        if worker is not None:
            worker.join(timeout=settings.job_shutdown_grace_seconds)
            # A training outlives any grace a supervisor allows: hand it back to the queue now,
            # for the next worker, instead of leaving it until its lease expires.
            job = running.job
            if worker.is_alive() and job is not None:
                jobs.release(store, job)
        app.state.prediction_log.close()
        store.dispose()

    app = FastAPI(
        title="looplab",
        version=__version__,
        description="Human-in-the-loop machine learning: label, trust, learn, serve, watch.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.token_cache = TokenCache(settings.token_cache_seconds)
    app.state.models = ModelCache(
        store,
        check_seconds=settings.model_check_seconds,
        on_unavailable=functools.partial(alerts.queue_model_unavailable, store),
    )
    app.state.prediction_log = PredictionLog(
        store,
        flush_seconds=settings.prediction_flush_seconds,
        spool_dir=folder_for(settings.home, store.url),
    )
    app.state.batcher = Batcher(window_seconds=settings.predict_batch_window_ms / 1000)
    add_exception_handlers(app)
    document_errors(app)
    registry, latency = make_registry(store, app.state.models.unavailable)
    app.add_middleware(MetricsMiddleware, latency=latency)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics() -> Response:
        # Unauthenticated like /healthz: Prometheus scrapers rarely carry bearer tokens; it
        # exposes counts, never records. Put it behind the network, not a token.
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__, "store": store.dialect}

    for module in (users, projects, labeling, review, models, serve, audit, monitor, admin):
        app.include_router(module.router)
    for module in (transfer, trust, job_routes):
        app.include_router(module.router)
    app.include_router(job_routes.project_router)
    web.mount(app)
    return app
