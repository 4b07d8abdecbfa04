"""/metrics in Prometheus text format, read back with prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

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
