"""A replica's late rows (answered earlier, committed after a window closed) are monitored."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from looplab.api import create_app
from looplab.core.settings import Settings
from looplab.core.tables import MonitorWindow, Prediction
from tests.api.conftest import Api
from tests.api.test_monitor import BASE, monitor, rows, served_project
from tests.api.test_monitor_feedback import judge, predict, windows


def test_a_late_replicas_rows_fall_in_the_next_window(api: Api, tmp_path) -> None:
    served_project(api, tmp_path)  # v1 in production; windows close at 200 predictions
    rng = np.random.default_rng(50)
    # A second replica whose prediction log has not flushed yet (as if its 200 ms had not come).
    late_settings = Settings(home=tmp_path, run_worker=False, prediction_flush_seconds=3600)
    with TestClient(create_app(late_settings, store=api.store)) as replica:
        log = replica.app.state.prediction_log  # type: ignore[attr-defined]
        early = predict(api, rows(rng, 100))
        answered = replica.post(
            f"{BASE}/predict", json={"records": rows(rng, 50)}, headers=api.as_("annotator")
        )
        assert answered.status_code == 200, answered.text
        buffered = answered.json()["predictions"]
        predict(api, rows(rng, 100))
        assert log.pending == 50
        first = monitor(api, tmp_path)  # closes over this replica's 200 committed rows
        assert first["n"] == 200
        log.flush()  # committed now, though answered before the first window's end
    with api.store.read() as session:
        late_times = session.scalars(
            select(Prediction.created_at).where(Prediction.id.in_([p["id"] for p in buffered]))
        ).all()
        first_window = session.get(MonitorWindow, first["window"])
        assert first_window is not None
        assert all(first_window.start < t < first_window.end for t in late_times)

    later = predict(api, rows(rng, 100))
    second = monitor(api, tmp_path, force=True)  # 150 of 200: closed by force (monitor --run)
    # Every committed prediction is in a window: the late 50 are in the next one.
    assert second["n"] == 150
    with api.store.read() as session:
        logged = session.scalar(select(func.count()).select_from(Prediction))
        monitored = session.scalar(select(func.sum(MonitorWindow.n_predictions)))
    assert logged == monitored == 350

    # Feedback counts in the window that measured its prediction, late rows included.
    judge(api, buffered[:6], wrong=6)
    judge(api, early[:4], wrong=0)
    judge(api, later[:2], wrong=0)
    seen = windows(api)
    assert seen[first["window"]]["feedback"]["n"] == 4
    assert seen[first["window"]]["feedback"]["accuracy"] == 1.0
    assert seen[second["window"]]["feedback"]["n"] == 8
    assert seen[second["window"]]["feedback"]["accepted"] == 2
    state = api.client.get(f"{BASE}/monitor", headers=api.as_("reviewer")).json()
    assert state["pending_predictions"] == 0
