"""Windows cut by time on a clock the test controls: periods close when they end, not when the
job happens to run, and the same predictions always make the same windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select

from looplab.core.errors import Invalid
from looplab.core.store import Store
from looplab.core.tables import AuditSample
from looplab.watch import periods
from tests.watch import replay

DAY = dt.timedelta(days=1)


def test_periods_align_on_utc_calendars() -> None:
    at = dt.datetime(2026, 3, 18, 15, 40, tzinfo=dt.UTC)
    assert periods.period_of(at, "1h")[0] == dt.datetime(2026, 3, 18, 15, tzinfo=dt.UTC)
    assert periods.period_of(at, "1d") == (
        dt.datetime(2026, 3, 18, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 19, tzinfo=dt.UTC),
    )
    week = periods.period_of(at, "7d")  # weeks start on Mondays
    assert week[0].weekday() == 0 and week[0] <= at < week[1]
    assert periods.period_of(at, "1M") == (
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
    )
    assert periods.period_of(dt.datetime(2026, 12, 5, tzinfo=dt.UTC), "1M")[1].year == 2027
    assert periods.event_time("2016-05-01") == dt.datetime(2016, 5, 1, tzinfo=dt.UTC)
    assert periods.event_time(0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert periods.event_time("soon") is None
    for bad in ("daily", "0d", "1y", 3):
        with pytest.raises(Invalid, match="'count' or a period"):
            periods.check(bad)


def test_windows_close_when_their_day_ends(store: Store, tmp_path) -> None:
    replay.served(store, tmp_path, window="1d")
    rng = np.random.default_rng(3)
    day1 = replay.T0
    minutes = dt.timedelta(minutes=4)
    replay.replay(store, replay.rows(rng, 150), start=day1, step=minutes)
    # Nothing closes before its day ends: no window at start-up, whatever is pending.
    assert "waiting" in replay.run(store, tmp_path, now=day1 + dt.timedelta(hours=12))
    # 300 predictions on each of two days, then 100 on a third, 4 minutes apart.
    replay.replay(store, replay.rows(rng, 150), start=day1 + 150 * minutes, step=minutes)
    for d in (1, 2):
        n = 300 if d < 2 else 100
        replay.replay(store, replay.rows(rng, n), start=day1 + d * DAY, step=minutes)
    result = replay.run(store, tmp_path, now=day1 + 2 * DAY + dt.timedelta(hours=12))
    assert [w["n"] for w in result["windows"]] == [300, 300]
    windows = replay.state(store)["windows"]
    assert [w["period"]["start"][:10] for w in windows] == ["2026-03-01", "2026-03-02"]
    assert [w["period"]["end"][:10] for w in windows] == ["2026-03-02", "2026-03-03"]
    assert "waiting" in replay.run(store, tmp_path, now=day1 + 2 * DAY + dt.timedelta(hours=23))
    third = replay.run(store, tmp_path, now=day1 + 3 * DAY)
    assert third["n"] == 100 and len(third["windows"]) == 1


def test_monitor_run_closes_the_open_period_at_once(store: Store, tmp_path) -> None:
    replay.served(store, tmp_path, window="7d")
    replay.replay(store, replay.rows(np.random.default_rng(4), 50))
    now = replay.T0 + dt.timedelta(hours=1)
    assert "waiting" in replay.run(store, tmp_path, now=now)
    forced = replay.run(store, tmp_path, now=now, force=True)
    assert forced["n"] == 50


def test_event_time_windows_follow_the_inputs_field(store: Store, tmp_path) -> None:
    """A replay of months sent in seconds: windows by the event's month, not by the clock."""
    replay.served(store, tmp_path, window="1M", window_time_field="ts")
    rng = np.random.default_rng(5)
    for month, n in ((1, 200), (2, 300), (3, 100)):
        batch = [{**r, "ts": f"2016-{month:02d}-15"} for r in replay.rows(rng, n)]
        replay.replay(store, batch, start=replay.T0, step=dt.timedelta(milliseconds=10))
    # The wall clock is far past: only months a later month's events have followed close.
    result = replay.run(store, tmp_path, now=replay.T0 + 400 * DAY)
    assert [w["n"] for w in result["windows"]] == [200, 300]
    spans = [(w["period"]["start"][:10], w["period"]["by"]) for w in replay.state(store)["windows"]]
    assert spans == [("2016-01-01", "ts"), ("2016-02-01", "ts")]


def test_the_open_windows_audit_sample_is_queued_while_its_period_runs(
    store: Store, tmp_path
) -> None:
    """A weekly window's audit tasks reach people during the week, and are drawn once."""
    replay.served(store, tmp_path, window="7d", audit_rate=0.2)
    rng = np.random.default_rng(5)
    monday = replay.T0 + DAY  # weeks start on Mondays (UTC)
    replay.replay(store, replay.rows(rng, 200), start=monday)
    waiting = replay.run(store, tmp_path, now=monday + DAY)
    assert "waiting" in waiting and waiting["audited"] > 20
    with store.read() as session:
        drawn = session.scalar(select(func.count()).select_from(AuditSample))
        assert drawn == waiting["audited"]
    # The same predictions again, then the window closes: nothing is drawn twice.
    again = replay.run(store, tmp_path, now=monday + 2 * DAY)
    assert "waiting" in again and "audited" not in again  # no write when nothing is new
    closed = replay.run(store, tmp_path, now=monday + 7 * DAY)
    assert closed["n"] == 200 and closed["audited"] == 0
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditSample)) == drawn
