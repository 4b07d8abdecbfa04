"""What monitoring reads back for people: the trigger view's content and its cost in statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from looplab import configure
from looplab.core import projects
from looplab.core.store import Store
from looplab.core.tables import MonitorWindow, TriggerDecision
from looplab.watch import overview

RULES = [
    {"name": "persistent-drift", "when": "drift", "windows": 2, "actions": ["label", "alert"]},
    {"name": "low-accuracy", "when": "accuracy_below", "threshold": 0.8, "actions": ["alert"]},
    {"name": "corrections", "when": "corrections", "count": 10, "actions": ["retrain"]},
    {"name": "never-decided", "when": "drift", "windows": 5, "actions": ["alert"]},
]


@contextmanager
def counted(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store's read engine runs inside the block."""
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.read_engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(store.read_engine, "before_cursor_execute", before)


def decided_project(store: Store) -> None:
    """Three windows; decisions fired and not, in an order where id and time agree."""
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    with store.write() as session:
        project = projects.create_project(
            session, "p", task="tabular", labels=["a", "b"], fields=["x"], actor="test"
        )
        configure.update_settings(session, project, {"triggers": RULES}, actor="test")
        for i in range(3):
            window = MonitorWindow(
                project_id=project.id,
                model_version=1,
                start=t0 + dt.timedelta(hours=i),
                end=t0 + dt.timedelta(hours=i, minutes=59),
                first_seq=200 * i + 1,
                last_seq=200 * (i + 1),
                n_predictions=200,
                alarm=i > 0,
                report={},
            )
            session.add(window)
            session.flush()
            for rule, fired in (
                ("persistent-drift", i == 2),
                ("low-accuracy", i in (0, 1)),
                ("corrections", False),
                ("a-removed-rule", True),  # decided once, no longer in force: not listed
            ):
                session.add(
                    TriggerDecision(
                        project_id=project.id,
                        trigger=rule,
                        window_id=window.id,
                        fired=fired,
                        reason=f"{rule} on window {i}",
                        actions={"alert": {"job": i}} if fired else {},
                        created_at=t0 + dt.timedelta(hours=i, minutes=59, seconds=1),
                    )
                )


def test_trigger_view_reads_two_statements_however_many_rules(store: Store) -> None:
    decided_project(store)
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    with store.read() as session:
        project = projects.get_project(session, "p")
        window_ids = sorted(w.id for w in session.query(MonitorWindow))
        with counted(store) as statements:
            state = overview.trigger_state(session, project)
    assert len(statements) == 2, statements

    def at(hour: int) -> dt.datetime:
        # Both databases hand back aware UTC times (tables.UTCDateTime).
        return t0 + dt.timedelta(hours=hour, minutes=59, seconds=1)

    by_name = {rule["name"]: rule for rule in state}
    assert [rule["name"] for rule in state] == [r["name"] for r in RULES]
    drift = by_name["persistent-drift"]
    assert drift["when"] == "drift" and drift["params"] == {"windows": 2, "level": "performance"}
    assert drift["actions"] == ["label", "alert"]
    assert drift["times_fired"] == 1 and drift["last_fired_at"] == at(2)
    assert drift["last_decision"] == {
        "window": window_ids[2],
        "fired": True,
        "reason": "persistent-drift on window 2",
        "actions": {"alert": {"job": 2}},
        "at": at(2),
    }
    low = by_name["low-accuracy"]
    assert low["times_fired"] == 2 and low["last_fired_at"] == at(1)
    assert low["last_decision"]["fired"] is False
    assert low["last_decision"]["reason"] == "low-accuracy on window 2"
    corrections = by_name["corrections"]
    assert corrections["times_fired"] == 0 and corrections["last_fired_at"] is None
    assert corrections["last_decision"]["window"] == window_ids[2]
    never = by_name["never-decided"]
    assert never["times_fired"] == 0 and never["last_fired_at"] is None
    assert never["last_decision"] is None


def test_trigger_view_without_rules_reads_nothing(store: Store) -> None:
    with store.write() as session:
        projects.create_project(
            session, "p", task="tabular", labels=["a", "b"], fields=["x"], actor="test"
        )
    with store.read() as session:
        project = projects.get_project(session, "p")
        with counted(store) as statements:
            assert overview.trigger_state(session, project) == []
    assert statements == []
