"""A monitor window holds one model version's predictions: a promotion never blends two."""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
from sqlalchemy import func, select
from typer.testing import CliRunner

from looplab import worker
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import MonitorWindow, Prediction, TriggerDecision, utcnow
from looplab.learn import registry
from looplab.serve import predlog
from looplab.watch import monitor
from tests.api.conftest import Api
from tests.api.test_monitor import BASE, rows, served_project
from tests.api.test_monitor import monitor as run_monitor
from tests.api.test_monitor_feedback import judge, predict
from tests.predictions import prediction_row


def promote_v2(api: Api, tmp_path) -> None:
    """Train v2 on the same labels, promote it, and wait until the server answers with it."""
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        jobs.enqueue(session, "train", project_id=project.id)
    worker.drain(api.store, Settings(home=tmp_path))
    with api.store.write() as session:
        project = projects.get_project(session, "shop")
        registry.promote(
            session, project, registry.get_version(session, project, "v2"), actor="test"
        )
    deadline = time.monotonic() + 30
    probe = {"records": rows(np.random.default_rng(0), 1)}
    while True:
        answer = api.client.post(f"{BASE}/predict", json=probe, headers=api.as_("annotator"))
        if answer.json()["model_version"] == "v2":
            break
        assert time.monotonic() < deadline, "the server never switched to v2"
        time.sleep(0.1)
    api.client.app.state.prediction_log.flush()  # type: ignore[attr-defined]


def served(api: Api, version: int) -> int:
    with api.store.read() as session:
        return session.scalar(select(func.count()).where(Prediction.model_version == version)) or 0


def test_a_window_after_a_promotion_holds_only_the_new_versions_predictions(
    api: Api, tmp_path, monkeypatch
) -> None:
    served_project(api, tmp_path)  # v1 in production; windows close at 200 predictions
    rng = np.random.default_rng(31)
    # v1 answers drifted traffic just before the promotion: 120 predictions, no window yet.
    old = predict(api, rows(rng, 120, shift=1.5))
    assert "waiting" in run_monitor(api, tmp_path)
    promote_v2(api, tmp_path)
    new = predict(api, rows(rng, 200))
    judge(api, old[:10], wrong=10)  # feedback on v1's answers: not about v2
    judge(api, new[:8], wrong=2)

    # v2's first 200 answers, then (forced) the probes that saw it switch.
    result = run_monitor(api, tmp_path, force=True)
    state = api.client.get(f"{BASE}/monitor", headers=api.as_("reviewer")).json()
    window = state["windows"][0]
    assert [w["id"] for w in state["windows"]] == [w["window"] for w in result["windows"]]
    assert {w["model_version"] for w in state["windows"]} == {"v2"}
    # Only v2's answers, and only v2's drift: the shifted traffic v1 answered is not blamed on
    # v2.
    assert sum(w["n"] for w in state["windows"]) == served(api, 2) and served(api, 1) >= 120
    assert result["alarm"] is False and window["blamed"] == []
    assert window["feedback"]["n"] == 8 and window["feedback"]["accepted"] == 6
    assert state["production_model"] == "v2" and state["pending_predictions"] == 0

    # The command line says which version the latest window's figures belong to.
    monkeypatch.setenv("LOOPLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLAB_DATABASE_URL", api.store.url)
    from looplab.cli.app import app

    printed = CliRunner().invoke(app, ["monitor", "shop"])
    assert printed.exit_code == 0, printed.output
    latest = state["latest"]
    assert f"latest window #{latest['id']} (v2: {latest['n']:,} predictions" in printed.stdout
    as_json = json.loads(CliRunner().invoke(app, ["monitor", "shop", "--json"]).stdout)
    assert as_json["latest"]["model_version"] == "v2"


def test_a_drift_streak_does_not_run_across_versions(api: Api, tmp_path) -> None:
    """v1 drifted once, then v2's first window drifts: 1 of 2 windows for v2, not 2 in a row."""
    served_project(api, tmp_path)  # persistent-drift fires after 2 windows at level inputs
    rng = np.random.default_rng(32)
    predict(api, rows(rng, 200, shift=1.5))
    assert run_monitor(api, tmp_path)["level"] in ("inputs", "predictions")
    promote_v2(api, tmp_path)
    predict(api, rows(rng, 200, shift=1.5))
    second = run_monitor(api, tmp_path)
    assert second["level"] in ("inputs", "predictions") and second["fired"] == []
    with api.store.read() as session:
        decision = session.scalars(
            select(TriggerDecision)
            .where(TriggerDecision.trigger == "persistent-drift")
            .order_by(TriggerDecision.id.desc())
        ).first()
    assert decision is not None and decision.reason == "1 of 2 consecutive drift windows"
    state = api.client.get(f"{BASE}/monitor", headers=api.as_("reviewer")).json()
    assert [w["model_version"] for w in state["windows"]] == ["v1", "v2"]  # probes wait
    assert {w["level"] for w in state["windows"]} <= {"inputs", "predictions"}
    assert state["alarms"] == 0 and state["warnings"] == 2


def test_windows_are_cut_in_the_logs_order_not_by_time(store: Store) -> None:
    """A row committed later is read after the rows before it, whatever its time says."""
    with store.write() as session:
        project = projects.create_project(
            session, "p", task="tabular", labels=["a", "b"], fields=["x"], actor="test"
        )
        t0 = utcnow()
        times = [t0 + dt.timedelta(seconds=s) for s in (1, 1, 1, 2, 2, 0, 0)]  # 2 late rows

        for i, at in enumerate(times):  # one flush each, in this order
            predlog.append(session, [prediction_row(project.id, i, at)])
        session.flush()
        first = monitor.window_predictions(session, project, 1, 0, limit=4)
        assert [p.input["x"] for p in first] == [0, 1, 2, 3]
        rest = monitor.window_predictions(session, project, 1, first[-1].seq, limit=4)
        assert [p.input["x"] for p in rest] == [4, 5, 6]  # the late rows are not skipped
        assert [p.seq for p in [*first, *rest]] == [1, 2, 3, 4, 5, 6, 7]
        assert monitor.window_predictions(session, project, 2, 0) == []
        assert session.scalar(select(func.count()).select_from(MonitorWindow)) == 0
