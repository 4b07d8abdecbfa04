"""Prometheus metrics: request latency and counts from a middleware, the rest read from the store.

Each app has its own registry (no process-global state), so tests and several apps in one process
do not collide. Counts that matter across replicas (predictions, feedback, open records, jobs,
drift alarms) are read from the store at scrape time, so every replica reports the same truth;
request latency is per replica, as Prometheus expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import ColumnExpressionArgument, SQLColumnExpression, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from looplab.core.store import Store
from looplab.core.tables import (
    Feedback,
    Job,
    ModelVersion,
    MonitorWindow,
    Prediction,
    Project,
    Record,
    TriggerDecision,
    version_name,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _counts(
    session: Any,
    name: str,
    documentation: str,
    by: dict[str, tuple[SQLColumnExpression[Any], Callable[[Any], str]]],
    where: ColumnExpressionArgument[bool] | None = None,
) -> GaugeMetricFamily:
    """A gauge of row counts grouped by ``by``: label name -> (column, how its value reads)."""
    columns = [column for column, _ in by.values()]
    query = select(*columns, func.count()).group_by(*columns)
    if where is not None:
        query = query.where(where)
    gauge = GaugeMetricFamily(name, documentation, labels=list(by))
    for *values, n in session.execute(query).tuples():
        gauge.add_metric([show(v) for (_, show), v in zip(by.values(), values, strict=True)], n)
    return gauge


def _flag(yes: str, no: str) -> Callable[[Any], str]:
    return lambda value: yes if value else no


class StoreCollector(Collector):
    """Gauges computed from the store when Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.store.read() as session:
            names = dict(session.execute(select(Project.id, Project.name)).tuples().all())

            def project(pid: int) -> str:
                return names.get(pid, str(pid))

            yield _counts(
                session,
                "looplab_records",
                "Records per project and state.",
                {
                    "project": (Record.project_id, project),
                    "state": (Record.n_human < Record.needed, _flag("open", "done")),
                },
            )
            yield _counts(
                session,
                "looplab_predictions",
                "Logged predictions per project and model version.",
                {
                    "project": (Prediction.project_id, project),
                    "version": (Prediction.model_version, version_name),
                },
            )
            yield _counts(
                session,
                "looplab_feedback",
                "Feedback on predictions per project and verdict.",
                {
                    "project": (Feedback.project_id, project),
                    "verdict": (Feedback.accepted, _flag("accepted", "corrected")),
                },
            )
            yield _counts(
                session,
                "looplab_jobs",
                "Jobs per kind and status.",
                {"kind": (Job.kind, str), "status": (Job.status, str)},
            )
            yield from self._extra(session, project)

    def _extra(self, session: Any, project: Callable[[int], str]) -> Iterator[GaugeMetricFamily]:
        """Monitoring gauges: the production version's last window, windows, triggers fired."""
        yield _counts(
            session,
            "looplab_monitor_windows",
            "Monitor windows closed per project, by alarm (level performance when closed).",
            {
                "project": (MonitorWindow.project_id, project),
                "alarm": (MonitorWindow.alarm, _flag("true", "false")),
            },
        )
        # Windows are per version: the gauges describe the production version's latest window.
        # Right after a promotion (or a rollback) the project's latest window is the previous
        # version's, whose alarm says nothing about the model now answering; until the
        # production version closes a window, the project has no sample.
        latest = (
            select(func.max(MonitorWindow.id).label("id"))
            .join(
                ModelVersion,
                (ModelVersion.project_id == MonitorWindow.project_id)
                & (ModelVersion.version == MonitorWindow.model_version)
                & (ModelVersion.stage == "production"),
            )
            .group_by(MonitorWindow.project_id)
            .subquery()
        )
        alarm_now = GaugeMetricFamily(
            "looplab_drift_alarm",
            "1 when the production version's last monitor window raised the input drift alarm "
            "(a warning, level inputs; see looplab_monitor_windows for the alarm).",
            labels=["project", "version"],
        )
        estimate = GaugeMetricFamily(
            "looplab_estimated_accuracy",
            "Label-free (CBPE) accuracy estimate of the production version's last monitor window.",
            labels=["project", "version"],
        )
        for pid, version, report in session.execute(
            select(
                MonitorWindow.project_id,
                MonitorWindow.model_version,
                MonitorWindow.report,
            ).join(latest, latest.c.id == MonitorWindow.id)
        ).tuples():
            labels = [project(pid), version_name(version)]
            drifted = ((report or {}).get("drift") or {}).get("alarm")
            alarm_now.add_metric(labels, float(bool(drifted)))
            accuracy = ((report or {}).get("estimate") or {}).get("accuracy")
            if accuracy is not None:
                estimate.add_metric(labels, float(accuracy))
        yield alarm_now
        yield estimate
        yield _counts(
            session,
            "looplab_trigger_fired",
            "Times each trigger rule fired.",
            {
                "project": (TriggerDecision.project_id, project),
                "trigger": (TriggerDecision.trigger, str),
            },
            where=TriggerDecision.fired.is_(True),
        )


class ModelLoadCollector(Collector):
    """Per replica: the production models this replica could not load, and why.

    ``unavailable`` is the model cache's map of project -> (version, reason); the gauge is 1 for
    each, so ``looplab_model_unavailable == 1`` is an alert rule of its own.
    """

    def __init__(self, unavailable: dict[str, tuple[str, str]]) -> None:
        self.unavailable = unavailable

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "looplab_model_unavailable",
            "1 while this replica cannot load the project's production model (missing, "
            "modified, untrusted or unreadable file); it keeps serving the last good one it holds.",
            labels=["project", "model_version", "reason"],
        )
        for project, (version, reason) in list(self.unavailable.items()):
            gauge.add_metric([project, version, reason], 1)
        yield gauge


def make_registry(
    store: Store, unavailable: dict[str, tuple[str, str]] | None = None
) -> tuple[CollectorRegistry, Histogram]:
    # No auto-describe: it would query the store at registration, before it is migrated.
    registry = CollectorRegistry(auto_describe=False)
    if unavailable is not None:
        registry.register(ModelLoadCollector(unavailable))
    latency = Histogram(
        "looplab_http_request_duration_seconds",
        "HTTP request latency by route.",
        labelnames=["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    registry.register(StoreCollector(store))
    return registry, latency


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) timing every HTTP request."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # The route template, not the raw path, keeps label cardinality bounded.
            path = getattr(route, "path", "unmatched")
            self.latency.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - started
            )
