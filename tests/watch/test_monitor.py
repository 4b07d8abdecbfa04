"""Trigger decisions read only the windows the rules need, however long the version's history."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from looplab import configure
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Feedback, MonitorWindow, Project, TriggerDecision
from looplab.govern import access
from looplab.serve import predlog
from looplab.watch import triggers
from tests.predictions import prediction_row

PER_WINDOW = 10
RULES = [
    {"name": "drift", "when": "drift", "windows": 3, "level": "inputs", "actions": ["alert"]},
    {
        "name": "low-accuracy",
        "when": "accuracy_below",
        "threshold": 0.8,
        "min_n": 5,
        "actions": ["alert"],
    },
]


def history(store: Store, n: int, judged: dict[int, tuple[int, int]]) -> list[int]:
    """Project "p": ``n`` windows of v1, the last 11 alarmed, ``PER_WINDOW`` predictions each.

    ``judged`` maps a window's index to (accepted, verdicts) on its predictions. Returns the
    windows' ids, oldest first.
    """
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    with store.write() as session:
        project = projects.create_project(
            session, "p", task="tabular", labels=["a", "b"], fields=["x"], actor="test"
        )
        configure.update_settings(session, project, {"triggers": RULES}, actor="test")
        user, _ = access.create_user(session, "u", "annotator", actor="test")
        ids = [uuid.uuid4().hex for _ in range(n * PER_WINDOW)]
        predlog.append(
            session,
            [
                prediction_row(project.id, i, t0 + dt.timedelta(seconds=i), pid=pid)
                for i, pid in enumerate(ids)
            ],
        )
        windows = [
            MonitorWindow(
                project_id=project.id,
                model_version=1,
                start=t0 + dt.timedelta(seconds=PER_WINDOW * i),
                end=t0 + dt.timedelta(seconds=PER_WINDOW * i + PER_WINDOW - 1),
                first_seq=PER_WINDOW * i + 1,
                last_seq=PER_WINDOW * (i + 1),
                n_predictions=PER_WINDOW,
                alarm=False,
                # The last 11 windows' inputs changed: warnings at level "inputs".
                report={"n": PER_WINDOW, "drift": {"alarm": i >= n - 11, "blamed": ["x"]}},
            )
            for i in range(n)
        ]
        session.add_all(windows)
        for i, (accepted, verdicts) in judged.items():
            for j in range(verdicts):
                session.add(
                    Feedback(
                        project_id=project.id,
                        prediction_id=ids[PER_WINDOW * i + j],
                        model_version=1,
                        prediction_at=t0 + dt.timedelta(seconds=PER_WINDOW * i + j),
                        prediction_seq=PER_WINDOW * i + j + 1,
                        user_id=user.id,
                        accepted=j < accepted,
                        label="a",
                    )
                )
        session.flush()
        return [w.id for w in windows]


@contextmanager
def reads(store: Store) -> Iterator[dict[str, int]]:
    """Count statements reading ``monitor_windows`` and the windows they load."""
    seen = {"statements": 0, "windows": 0}

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if "FROM monitor_windows" in sql:
            seen["statements"] += 1

    def loaded(_target: Any, _context: Any) -> None:
        seen["windows"] += 1

    event.listen(store.write_engine, "before_cursor_execute", statement)
    event.listen(MonitorWindow, "load", loaded)
    try:
        yield seen
    finally:
        event.remove(store.write_engine, "before_cursor_execute", statement)
        event.remove(MonitorWindow, "load", loaded)


def decide_on_latest(store: Store, tmp_path) -> tuple[dict[str, int], dict[str, tuple]]:
    """Run the triggers as the monitor does once the latest window has closed."""
    with store.write() as session:
        project = session.scalar(select(Project).where(Project.name == "p"))
        window = session.scalars(select(MonitorWindow).order_by(MonitorWindow.id.desc())).first()
        assert project is not None and window is not None
        session.expunge(window)  # so that every window run_triggers reads is counted
        with reads(store) as seen:
            triggers.run_triggers(session, project, window, Settings(home=tmp_path))
        decisions = {
            d.trigger: (d.fired, d.reason, d.window_id)
            for d in session.scalars(select(TriggerDecision).order_by(TriggerDecision.id))
        }
    return seen, decisions


def test_triggers_read_the_windows_the_rules_need_not_the_history(store: Store, tmp_path) -> None:
    # 200 windows; the latest with 5 answers are the 3rd and 2nd to last (labels come late).
    ids = history(store, 200, judged={150: (5, 5), 197: (5, 5), 198: (2, 5)})
    seen, decisions = decide_on_latest(store, tmp_path)
    # The last 4 (the drift rule's 3, plus 1) hold the two latest windows with 5 answers; one
    # statement each reads their feedback and their audit samples.
    # Each run of judged windows adds two id-only statements and its 7 predecessors, read in
    # one statement: the label tests pool up to 8 windows (looplab.watch.levels.POOLS).
    assert seen == {"statements": 5 + 2 + 1, "windows": 4 + 7}
    assert decisions == {
        "drift": (False, "drift persists (more than 3 windows); already fired at 3", ids[199]),
        "low-accuracy": (
            True,
            f"feedback accuracy 0.400 < 0.8 (n=5) in window #{ids[198]}",
            ids[198],
        ),
    }


def test_triggers_read_as_far_back_as_the_rules_need(store: Store, tmp_path) -> None:
    """The latest windows with 5 answers are long ago: those two are read, not those between."""
    ids = history(store, 200, judged={20: (5, 5), 150: (1, 5), 190: (4, 4)})
    seen, decisions = decide_on_latest(store, tmp_path)
    # 196-199, 150 and 20, and the 7 windows before each of the three runs
    assert seen == {"statements": 5 + 3 * 2 + 1, "windows": 6 + 3 * 7}
    # Window 150 is below, and the window with 5 answers before it (20) was not: it fires.
    assert decisions["low-accuracy"] == (
        True,
        f"feedback accuracy 0.200 < 0.8 (n=5) in window #{ids[150]}",
        ids[150],
    )


def test_without_enough_feedback_the_reason_quotes_the_most_any_window_has(
    store: Store, tmp_path
) -> None:
    ids = history(store, 200, judged={30: (2, 3), 120: (4, 4), 180: (1, 1)})
    seen, decisions = decide_on_latest(store, tmp_path)
    # 196-199, and 120 with the most; the 7 windows before each run
    assert seen == {"statements": 6 + 2 * 2 + 1, "windows": 5 + 2 * 7}
    assert decisions["low-accuracy"] == (
        False,
        "feedback accuracy needs 5 observations in a window, has 4",
        ids[199],
    )


def test_a_first_window(store: Store, tmp_path) -> None:
    ids = history(store, 1, judged={})
    seen, decisions = decide_on_latest(store, tmp_path)
    assert seen == {"statements": 6 + 2, "windows": 1}  # nothing before it to pool
    assert decisions == {
        "drift": (False, "1 of 3 consecutive drift windows", ids[0]),
        "low-accuracy": (
            False,
            "feedback accuracy needs 5 observations in a window, has 0",
            ids[0],
        ),
    }
