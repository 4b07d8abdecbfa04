"""/metrics in Prometheus text format, read back with prometheus-client's own parser."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from looplab.core import projects
from looplab.core.tables import ModelVersion, MonitorWindow
from tests.api.conftest import Api


def test_metrics_parse_and_count(news: Api) -> None:
    h = news.as_("annotator")
    rid = news.client.get("/api/v1/projects/news/queue/next", headers=h).json()["record"]["id"]
    news.client.post(
        "/api/v1/projects/news/annotations", json={"record_id": rid, "label": "tech"}, headers=h
    )
    response = news.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    records = {
        s.labels["state"]: s.value
        for s in families["looplab_records"].samples
        if s.labels["project"] == "news"
    }
    assert records == {"open": 11, "done": 1}
    latency = families["looplab_http_request_duration_seconds"]
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in latency.samples
        if s.name.endswith("_count")
    }
    assert counts[("/api/v1/projects/{name}/queue/next", "200")] == 1
    assert counts[("/api/v1/projects/{name}/annotations", "201")] == 1


def test_drift_alarm_reads_the_production_versions_latest_window(api: Api) -> None:
    """After a rollback or a promotion, the gauges describe the model in production."""
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    with api.store.write() as session:
        for name, stages, windows in (
            # v2 alarmed in its last window, then v1 was rolled back to: v1's window counts.
            ("rolled", {1: "production", 2: "archived"}, [(1, False, 0.9), (2, True, 0.6)]),
            # v2 was just promoted and has no window yet: no figure rather than v1's.
            ("promoted", {1: "archived", 2: "production"}, [(1, True, 0.7)]),
        ):
            project = projects.create_project(
                session, name, task="tabular", labels=["a", "b"], fields=["x"], actor="test"
            )
            for version, stage in stages.items():
                session.add(
                    ModelVersion(
                        project_id=project.id,
                        version=version,
                        stage=stage,
                        artifact="-",
                        sha256="-",
                        created_by="test",
                    )
                )
            for i, (version, alarm, accuracy) in enumerate(windows):
                session.add(
                    MonitorWindow(
                        project_id=project.id,
                        model_version=version,
                        start=t0 + dt.timedelta(hours=i),
                        end=t0 + dt.timedelta(hours=i, minutes=59),
                        first_seq=1,
                        last_seq=200,
                        n_predictions=200,
                        alarm=alarm,
                        report={"estimate": {"accuracy": accuracy}},
                    )
                )
    families = {f.name: f for f in text_string_to_metric_families(api.client.get("/metrics").text)}
    alarm = {
        (s.labels["project"], s.labels["version"]): s.value
        for s in families["looplab_drift_alarm"].samples
    }
    estimate = {
        (s.labels["project"], s.labels["version"]): s.value
        for s in families["looplab_estimated_accuracy"].samples
    }
    assert alarm == {("rolled", "v1"): 0.0}
    assert estimate == {("rolled", "v1"): 0.9}
