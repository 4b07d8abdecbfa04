"""Prometheus metrics: request latency and counts from a middleware, the rest read from the store.

Each app has its own registry (no process-global state), so tests and several apps in one process
do not collide. Counts that matter across replicas (predictions, feedback, open records, jobs,
drift alarms) are read from the store at scrape time, so every replica reports the same truth;
request latency is per replica, as Prometheus expects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from looplab.store import Store
from looplab.tables import Feedback, Job, Prediction, Project, Record

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class StoreCollector(Collector):
    """Gauges computed from the store when Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.store.read() as session:
            names = dict(session.execute(select(Project.id, Project.name)).tuples().all())
            records = GaugeMetricFamily(
                "looplab_records", "Records per project and state.", labels=["project", "state"]
            )
            rows = session.execute(
                select(Record.project_id, Record.n_human < Record.needed, func.count()).group_by(
                    Record.project_id, Record.n_human < Record.needed
                )
            ).tuples()
            for pid, is_open, n in rows:
                records.add_metric([names.get(pid, str(pid)), "open" if is_open else "done"], n)
            yield records
            predictions = GaugeMetricFamily(
                "looplab_predictions",
                "Logged predictions per project and model version.",
                labels=["project", "version"],
            )
            for pid, version, n in session.execute(
                select(Prediction.project_id, Prediction.model_version, func.count()).group_by(
                    Prediction.project_id, Prediction.model_version
                )
            ).tuples():
                predictions.add_metric([names.get(pid, str(pid)), f"v{version}"], n)
            yield predictions
            feedback = GaugeMetricFamily(
                "looplab_feedback",
                "Feedback on predictions per project and verdict.",
                labels=["project", "verdict"],
            )
            for pid, accepted, n in session.execute(
                select(Feedback.project_id, Feedback.accepted, func.count()).group_by(
                    Feedback.project_id, Feedback.accepted
                )
            ).tuples():
                verdict = "accepted" if accepted else "corrected"
                feedback.add_metric([names.get(pid, str(pid)), verdict], n)
            yield feedback
            jobs = GaugeMetricFamily(
                "looplab_jobs", "Jobs per kind and status.", labels=["kind", "status"]
            )
            for kind, status, n in session.execute(
                select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
            ).tuples():
                jobs.add_metric([kind, status], n)
            yield jobs
            yield from self._extra(session, names)

    def _extra(self, session: Any, names: dict[int, str]) -> Iterator[GaugeMetricFamily]:
        """Monitoring gauges: the last window's alarm, windows closed, triggers fired."""
        from looplab.tables import MonitorWindow, TriggerDecision

        windows = GaugeMetricFamily(
            "looplab_monitor_windows",
            "Monitor windows closed per project, by drift alarm.",
            labels=["project", "alarm"],
        )
        for pid, alarm, n in session.execute(
            select(MonitorWindow.project_id, MonitorWindow.alarm, func.count()).group_by(
                MonitorWindow.project_id, MonitorWindow.alarm
            )
        ).tuples():
            windows.add_metric([names.get(pid, str(pid)), "true" if alarm else "false"], n)
        yield windows
        latest = (
            select(MonitorWindow.project_id, func.max(MonitorWindow.end).label("end"))
            .group_by(MonitorWindow.project_id)
            .subquery()
        )
        alarm_now = GaugeMetricFamily(
            "looplab_drift_alarm",
            "1 when the project's last monitor window raised the drift alarm.",
            labels=["project"],
        )
        estimate = GaugeMetricFamily(
            "looplab_estimated_accuracy",
            "Label-free (CBPE) accuracy estimate of the last monitor window.",
            labels=["project"],
        )
        for pid, alarm, report in session.execute(
            select(MonitorWindow.project_id, MonitorWindow.alarm, MonitorWindow.report).join(
                latest,
                (latest.c.project_id == MonitorWindow.project_id)
                & (latest.c.end == MonitorWindow.end),
            )
        ).tuples():
            alarm_now.add_metric([names.get(pid, str(pid))], float(bool(alarm)))
            accuracy = ((report or {}).get("estimate") or {}).get("accuracy")
            if accuracy is not None:
                estimate.add_metric([names.get(pid, str(pid))], float(accuracy))
        yield alarm_now
        yield estimate
        fired = GaugeMetricFamily(
            "looplab_trigger_fired",
            "Times each trigger rule fired.",
            labels=["project", "trigger"],
        )
        for pid, trigger, n in session.execute(
            select(TriggerDecision.project_id, TriggerDecision.trigger, func.count())
            .where(TriggerDecision.fired.is_(True))
            .group_by(TriggerDecision.project_id, TriggerDecision.trigger)
        ).tuples():
            fired.add_metric([names.get(pid, str(pid)), trigger], n)
        yield fired


def make_registry(store: Store) -> tuple[CollectorRegistry, Histogram]:
    # No auto-describe: it would query the store at registration, before it is migrated.
    registry = CollectorRegistry(auto_describe=False)
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
