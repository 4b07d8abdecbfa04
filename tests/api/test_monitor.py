"""Monitoring end to end: serve predictions over HTTP, run the monitor job, read what it decided."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from fastapi.encoders import jsonable_encoder
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import func, select

from looplab import configure, worker
from looplab.api import schemas
from looplab.core import audit, jobs, projects
from looplab.core.settings import Settings
from looplab.core.tables import (
    AuditEvent,
    Job,
    MonitorWindow,
    Record,
    ReferenceProfile,
    TriggerDecision,
)
from looplab.learn import registry
from looplab.serve import serving
from looplab.watch import overview, targeting
from tests.api.conftest import Api
from tests.textdata import add_labeled

FIELDS = ["x0", "x1", "x2", "color"]
BASE = "/api/v1/projects/shop"
RULES = [
    {
        "name": "persistent-drift",
        "when": "drift",
        "windows": 2,
        "level": "inputs",  # acts on the warning, not only on the alarm
        "actions": ["label", "alert"],
    },
    {"name": "corrections", "when": "corrections", "count": 1000, "actions": ["retrain"]},
]


def rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, Any]]:
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift
    p = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    colors = rng.choice(["red", "green", "blue"], n, p=p)
    return [
        {"x0": float(a), "x1": float(b), "x2": float(c), "color": str(k)}
        for (a, b, c), k in zip(x, colors, strict=True)
    ]


def label(row: dict[str, Any]) -> str:
    return "hi" if row["x0"] + row["x1"] > 0 else "lo"


def served_project(api: Api, tmp_path) -> None:
    """A tabular project with 400 imported labels, v1 trained and in production, rules set."""
    rng = np.random.default_rng(10)
    with api.store.write() as session:
        project = projects.create_project(
            session, "shop", task="tabular", labels=["hi", "lo"], fields=FIELDS, actor="test"
        )
        for i, row in enumerate(rows(rng, 400)):
            add_labeled(session, project, str(i), row, label(row))
        for i, row in enumerate(rows(rng, 30)):  # an open pool for the queue
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=hashlib.blake2b(f"pool{i}".encode(), digest_size=16).digest(),
                    payload=row,
                    meta={},
                    score=0.5,
                )
            )
        configure.update_settings(
            session,
            project,
            {"triggers": RULES, "monitor_min_predictions": 200},
            actor="test",
        )
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(api.store, Settings(home=tmp_path))
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        registry.promote(
            session, project, registry.get_version(session, project, "v1"), actor="test"
        )


def serve(api: Api, batch: list[dict[str, Any]], feedback: int = 0) -> None:
    h = api.as_("annotator")
    response = api.client.post(f"{BASE}/predict", json={"records": batch}, headers=h)
    assert response.status_code == 200, response.text
    for row, pred in list(zip(batch, response.json()["predictions"], strict=True))[:feedback]:
        body = {"prediction_id": pred["id"], "label": label(row)}
        assert api.client.post(f"{BASE}/feedback", json=body, headers=h).status_code == 201
    api.client.app.state.prediction_log.flush()  # type: ignore[attr-defined]


def monitor(api: Api, tmp_path, *, force: bool = False) -> dict[str, Any]:
    """Run a monitor job; ``force`` closes the open window too, as ``looplab monitor --run``."""
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        params = {"force": True} if force else {}
        job_id = jobs.enqueue(session, "monitor", project_id=project.id, params=params).id
    worker.drain(api.store, Settings(home=tmp_path))
    with api.store.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "done", job.error if job else None
        return dict(job.result)


def test_monitor_job_end_to_end(api: Api, tmp_path, monkeypatch) -> None:
    served_project(api, tmp_path)
    rng = np.random.default_rng(11)
    serve(api, rows(rng, 100))
    assert "waiting" in monitor(api, tmp_path)  # 100 of 200: no window yet

    serve(api, rows(rng, 100), feedback=40)
    first = monitor(api, tmp_path)
    assert first["n"] == 200 and first["alarm"] is False and first["fired"] == []

    fired = []
    for _ in range(3):  # the inputs move: x0 by one sd, colours towards blue
        serve(api, rows(rng, 200, shift=1.0), feedback=20)
        fired.append(monitor(api, tmp_path))
    # The inputs changed, and so did the predicted labels (warnings); accuracy did not: no alarm.
    assert [(w["level"], w["alarm"]) for w in fired] == [("predictions", False)] * 3
    # Persistent drift over 2 windows fires once, on the second alarmed window.
    assert [w["fired"] for w in fired] == [[], ["persistent-drift"], []]

    with api.store.read() as session:
        windows = session.scalars(select(MonitorWindow).order_by(MonitorWindow.end)).all()
        assert len(windows) == 4
        report = windows[1].report
        assert "x0" in report["drift"]["blamed"] and "color" in report["drift"]["blamed"]
        assert "x2" not in report["drift"]["blamed"]
        assert report["estimate"]["n"] == 200 and 0.5 < report["estimate"]["accuracy"] <= 1
        # Accuracy from feedback is counted when read, never frozen in the stored report.
        assert "feedback" not in report
        assert session.scalar(select(func.count()).select_from(ReferenceProfile)) == 1
        decisions = session.scalars(
            select(TriggerDecision).where(TriggerDecision.trigger == "persistent-drift")
        ).all()
        assert [d.fired for d in decisions] == [False, False, True, False]
        done = next(d for d in decisions if d.fired)
        assert "alert" in done.actions and done.actions["label"]["window"] == windows[2].id
        # Targeted labeling is a job of its own, run after the monitor job's transaction.
        labeling = session.get(Job, done.actions["label"]["job"])
        assert labeling is not None and labeling.kind == "label_drifted"
        assert labeling.status == "done", labeling.error
        assert labeling.result["window"] == windows[2].id and labeling.result["targeted"] > 0
        # The window's inputs are now at the top of the queue.
        targeted = session.scalars(select(Record).where(Record.score >= 4.0)).all()
        assert len(targeted) == labeling.result["targeted"]
        assert any((r.meta or {}).get("source") == "monitor" for r in targeted)
        alert = session.scalar(select(Job).where(Job.kind == "alert"))
        assert alert is not None and alert.status == "done" and alert.result["logged_only"]
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"monitor.window", "trigger.decide", "queue.target_drift"} <= actions
        assert audit.verify(session).ok

    h = api.as_("annotator")
    nxt = api.client.get(f"{BASE}/queue/next", headers=h).json()["record"]
    assert nxt["id"] in {r.id for r in targeted}

    state = api.client.get(f"{BASE}/monitor", headers=api.as_("reviewer")).json()
    assert [w["alarm"] for w in state["windows"]] == [False] * 4
    assert [w["input_drift"] for w in state["windows"]] == [False, True, True, True]
    assert [w["level"] for w in state["windows"]] == ["none"] + ["predictions"] * 3
    # Feedback counts in the window of the prediction it judges (40 answers on window 1's, 20 on
    # each later one's), though each arrived after its prediction's window had ended.
    assert [w["feedback"]["n"] for w in state["windows"]] == [40, 20, 20, 20]
    assert state["alarms"] == 0 and state["warnings"] == 3 and state["alarm_streak"] == 0
    assert state["latest"]["features"]["x0"]["drift"] is True
    assert state["latest"]["latency"]["p50_ms"] > 0
    assert set(state["latest"]["mix"]) <= {"hi", "lo"}
    rules = {t["name"]: t for t in state["triggers"]}
    assert rules["persistent-drift"]["times_fired"] == 1
    assert "already fired" in rules["persistent-drift"]["last_decision"]["reason"]
    assert api.client.get(f"{BASE}/monitor", headers=h).status_code == 403

    triggers = api.client.get(f"{BASE}/triggers", headers=api.as_("reviewer")).json()
    assert [t["name"] for t in triggers] == ["persistent-drift", "corrections"]

    drift = api.client.get(f"{BASE}/drift?window=1d", headers=api.as_("reviewer")).json()
    assert drift["n"] == 800 and drift["drift"]["alarm"] is True
    bad = api.client.get(f"{BASE}/drift?window=yesterday", headers=api.as_("reviewer"))
    assert bad.status_code == 422 and "e.g. 30m, 12h, 1d" in bad.json()["error"]["message"]

    families = {f.name: f for f in text_string_to_metric_families(api.client.get("/metrics").text)}
    alarm = {s.labels["project"]: s.value for s in families["looplab_drift_alarm"].samples}
    assert alarm["shop"] == 1
    windows_total = families["looplab_monitor_windows"].samples
    assert {(s.labels["project"], s.labels["alarm"]): s.value for s in windows_total} == {
        ("shop", "false"): 4,
    }
    fired_total = {s.labels["trigger"]: s.value for s in families["looplab_trigger_fired"].samples}
    assert fired_total == {"persistent-drift": 1}

    # The same through the command line, on the same store.
    from typer.testing import CliRunner

    from looplab.cli.app import app

    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", api.store.url)
    runner = CliRunner()
    result = runner.invoke(app, ["drift", "shop", "--window", "1d", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drift"]["alarm"] is True
    result = runner.invoke(app, ["drift", "shop", "--window", "1d"])
    assert "ALARM" in result.stdout and "x0" in result.stdout
    result = runner.invoke(app, ["monitor", "shop", "--json"])
    state = json.loads(result.stdout)
    assert state["alarm_streak"] == 0 and state["latest"]["level"] == "predictions"
    assert state["latest"]["alarm"] is False and state["latest"]["estimate"]["status"] in (
        "trusted",
        "untrusted",
    )
    result = runner.invoke(app, ["monitor", "shop"])
    assert (
        result.exit_code == 0
        and "predictions" in result.stdout
        and "persistent-drift" in result.stdout
    )
    result = runner.invoke(app, ["triggers", "shop", "--json"])
    assert [t["times_fired"] for t in json.loads(result.stdout)] == [1, 0]
    result = runner.invoke(app, ["drift", "shop", "--window", "soon"])
    assert result.exit_code == 2 and "e.g. 30m, 12h, 1d or 2w" in result.stderr


#: The monitoring routes and the model each answers with (a list of it when ``many``).
MONITORING: dict[str, tuple[type[BaseModel], bool]] = {
    "monitor": (schemas.MonitorState, False),
    "triggers": (schemas.TriggerState, True),
    "drift": (schemas.DriftNow, False),
    "online-metrics": (schemas.OnlineMetric, True),
}


def keys(value: Any) -> Any:
    """The shape of a JSON value: its keys at every depth, the values left out."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys(v) for v in value]
    return None


def undeclared(value: Any, path: str = "") -> list[str]:
    """Paths of keys in a validated answer that its models let through without declaring."""
    if isinstance(value, BaseModel):
        found = [f"{path}.{k}" for k in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in undeclared(v, f"{path}[{k!r}]")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in undeclared(v, f"{path}[{i}]")]
    return []


def test_monitoring_routes_answer_with_their_response_models(api: Api, tmp_path) -> None:
    """OpenAPI names a model for each monitoring route; the real answers are exactly what the
    services return (nothing dropped, nothing added, same times), and every key of them is one
    the models declare, so the schema describes all the dashboard can read."""
    spec = api.client.get("/openapi.json").json()
    for route, (model, many) in MONITORING.items():
        operation = spec["paths"][f"/api/v1/projects/{{name}}/{route}"]["get"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert (schema["items"] if many else schema)["$ref"].endswith(f"/{model.__name__}")
    window = spec["components"]["schemas"]["WindowSummary"]["properties"]
    # What monitor.js draws from each window.
    assert {"features", "feedback", "estimate", "latency", "mix", "model_version"} <= set(window)

    served_project(api, tmp_path)
    rng = np.random.default_rng(12)
    serve(api, rows(rng, 200), feedback=30)
    monitor(api, tmp_path)
    serve(api, rows(rng, 200, shift=1.0), feedback=10)
    monitor(api, tmp_path)
    serve(api, rows(rng, 20))  # pending: no window yet

    reviewer = api.as_("reviewer")
    answers = {}
    for route, (model, many) in MONITORING.items():
        response = api.client.get(f"{BASE}/{route}", headers=reviewer)
        assert response.status_code == 200, response.text
        answers[route] = response.json()
        validated = TypeAdapter(list[model] if many else model).validate_python(answers[route])
        missing = undeclared(validated)
        assert missing == [], f"declare in looplab/api/schemas.py ({route}): {missing}"

    with api.store.read() as session:
        project = projects.get_project(session, "shop")
        state = jsonable_encoder(overview.monitor_state(session, project))
        rules = jsonable_encoder(overview.trigger_state(session, project))
        online = jsonable_encoder(serving.online_metrics(session, project))
    assert len(state["windows"]) == 2 and state["pending_predictions"] == 20
    assert state["windows"][0]["estimate"]["calibration_note"] is None  # a null stays a null
    answered = answers["monitor"]
    assert answered.pop("checked_at") != state.pop("checked_at")  # its own clock
    assert answered == state
    assert answers["triggers"] == rules and rules[0]["last_decision"] is not None
    assert answers["online-metrics"] == online
    drift = jsonable_encoder(overview.drift_now(api.store, "shop", "1d"))
    assert keys(answers["drift"]) == keys(drift) and "reference_n" in drift
    assert answers["drift"]["since"].endswith("+00:00")  # times as they always were written


def test_label_drifted_computes_outside_the_write_lock(api: Api, tmp_path, monkeypatch) -> None:
    """The model and the domain classifier run on a read session; only the writes take the lock."""
    served_project(api, tmp_path)
    serve(api, rows(np.random.default_rng(12), 200, shift=1.0))
    first = monitor(api, tmp_path)
    # The rule needs 2 windows at level inputs.
    assert first["level"] in ("inputs", "predictions") and first["fired"] == []

    open_writes: list[int] = []
    write = api.store.write

    @contextlib.contextmanager
    def counted_write() -> Iterator[Any]:
        open_writes.append(1)
        try:
            with write() as session:
                yield session
        finally:
            open_writes.pop()

    seen: list[tuple[int, bool]] = []
    plan = targeting.plan_targets

    def spied_plan(session: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((len(open_writes), session.bind is api.store.read_engine))
        return plan(session, *args, **kwargs)

    monkeypatch.setattr(api.store, "write", counted_write)
    monkeypatch.setattr(targeting, "plan_targets", spied_plan)
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        job_id = jobs.enqueue(
            session, "label_drifted", project_id=project.id, params={"window": first["window"]}
        ).id
    assert worker.drain(api.store, Settings(home=tmp_path)) == 1
    assert seen == [(0, True)]  # computed once, with no write transaction open, on a reader

    with api.store.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "done", job.error if job else None
        assert job.result["targeted"] > 0 and job.result["new_records"] > 0
        targeted = session.scalars(select(Record).where(Record.score >= 4.0)).all()
        assert len(targeted) == job.result["targeted"]
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "queue.target_drift")
        ).one()
        assert event.entity_id == str(first["window"])
        assert event.details["targeted"] == job.result["targeted"]

    # queue_drifted plans and applies on the caller's session (one transaction), within budget.
    monkeypatch.undo()
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        window = session.get(MonitorWindow, first["window"])
        assert window is not None
        assert 0 < targeting.queue_drifted(session, project, window, budget=5) <= 5
