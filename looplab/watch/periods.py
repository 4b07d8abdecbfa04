"""Where monitor windows are cut: a fixed count of predictions, or calendar periods.

The project setting ``window`` is ``"count"`` (a window every ``monitor_min_predictions``
predictions) or a period: ``"1h"``, ``"6h"``, ``"1d"``, ``"7d"``, ``"1M"`` (a number and a
unit: ``h`` hours, ``d`` days, ``w`` weeks, ``M`` calendar months). Periods are aligned on UTC
(hours and days on the epoch, weeks and multiples of 7d on Mondays, months on the 1st), so the
same predictions always fall in the same windows, however often the monitor runs.

A prediction's time is the request's time (``created_at``), or, when the project names an
input field in ``window_time_field``, that field's value: an ISO 8601 date or time, or a Unix
time in seconds. Replays of historical data are then cut by when the events happened.

Windows stay ranges of the prediction log's ``seq`` (feedback is matched to windows by it), so
a window holds the predictions from the first pending one up to the last one of its period
before the first of a later period; a row that comes later still, from a replica's late flush
or an event out of order, counts in the next window. A period closes when the clock passes
its end (request time) or when a prediction of a later period has arrived (event time: the
wall clock says nothing about events).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from looplab.core.errors import Invalid

_PERIOD = re.compile(r"([1-9][0-9]{0,3})([hdwM])")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MONDAY = dt.datetime(1970, 1, 5, tzinfo=dt.UTC)


def check(value: Any, field: str = "window") -> None:
    """Raise :class:`Invalid` unless ``value`` is ``"count"`` or a period such as ``"1d"``."""
    if value == "count" or (isinstance(value, str) and _PERIOD.fullmatch(value)):
        return
    raise Invalid(
        f"{field} must be 'count' or a period: a number and h, d, w or M (e.g. 1h, 1d, 7d, 1M), "
        f"got {value!r}",
        details={"field": field, "value": value},
    )


def period_of(when: dt.datetime, window: str) -> tuple[dt.datetime, dt.datetime]:
    """The ``[start, end)`` of the period of ``window`` (e.g. ``"1d"``) holding ``when``."""
    match = _PERIOD.fullmatch(window)
    if match is None:
        raise ValueError(f"not a period: {window!r}")
    n, unit = int(match.group(1)), match.group(2)
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if unit == "M":
        index = (when.year * 12 + when.month - 1) // n * n
        start = dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)
        end_index = index + n
        return start, dt.datetime(end_index // 12, end_index % 12 + 1, 1, tzinfo=dt.UTC)
    step = (
        dt.timedelta(hours=n) if unit == "h" else dt.timedelta(days=n * (7 if unit == "w" else 1))
    )
    # Weeks (7d is one) start on Mondays; hours and days count from the epoch.
    origin = _MONDAY if unit == "w" or (unit == "d" and n % 7 == 0) else _EPOCH
    k = (when - origin) // step
    start = origin + k * step
    return start, start + step


def event_time(value: Any) -> dt.datetime | None:
    """An input field's value as a UTC time: ISO 8601 text or Unix seconds; None if neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return _EPOCH + dt.timedelta(seconds=float(value))
        except (OverflowError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def cut(
    times: list[dt.datetime | None],
    window: str,
    now: dt.datetime,
    *,
    by_event: bool,
    force: bool = False,
) -> list[tuple[int, tuple[dt.datetime, dt.datetime] | None]]:
    """Where to cut pending predictions (in ``seq`` order) into closed windows.

    ``times`` are the predictions' times (None when an event-time field is missing: such a row
    goes with its neighbours). Returns ``(stop, period)`` pairs: window k holds rows
    ``[previous stop, stop)`` and belongs to ``period``. ``force`` closes the open period too
    (``looplab monitor --run``).
    """
    out: list[tuple[int, tuple[dt.datetime, dt.datetime] | None]] = []
    i, n = 0, len(times)
    while i < n:
        first = next((t for t in times[i:] if t is not None), None)
        if first is None:
            if force:
                out.append((n, None))
            break
        period = period_of(first, window)
        j = i
        while j < n and (times[j] is None or times[j] < period[1]):  # type: ignore[operator]
            j += 1
        later_arrived = j < n
        ended = (not by_event) and now >= period[1]
        if not (later_arrived or ended or force):
            break
        out.append((j, period))
        i = j
    return out
