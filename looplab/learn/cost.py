"""What a piece of work costs: wall time and the resident memory it added at its peak.

A training job records both with its model version (``config["training"]``), so `looplab
models` can show how cost grows with the labels. :class:`Meter` measures the process, not a
thread: requests served by other threads while a training runs count too, which is what the
machine has to hold.

How the peak is read, best first (``method`` says which one a figure came from):

- ``hwm``: Linux's high-water mark of resident memory (``VmHWM``), reset at the start by writing
  ``5`` to ``/proc/self/clear_refs``; exact, at no cost while the work runs.
- ``maxrss``: the lifetime maximum (``ru_maxrss``) where the mark cannot be reset; exact when the
  work set a new maximum, unknown (``peak_mb`` None) when the process once held more before.

Examples
--------
>>> from looplab.learn.cost import Meter
>>> meter = Meter.start()
>>> block = bytearray(50 * 2**20)
>>> spent = meter.stop()
>>> spent.seconds >= 0 and (spent.peak_mb is None or spent.peak_mb >= 0)
True
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MB = 2**20


def _status_kb(field: str) -> int | None:
    """A ``kB`` figure of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _maxrss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:  # not Linux, or a kernel/container that refuses it
        return False
    return True


@dataclass(frozen=True)
class Spent:
    """The cost of one piece of work.

    Attributes
    ----------
    seconds : float
        Wall time.
    peak_mb : float or None
        Resident memory (MiB) the process held at its peak beyond what it held at the start;
        None if it cannot be known (see the module docstring).
    start_mb : float or None
        Resident memory (MiB) at the start.
    method : str
        ``hwm`` or ``maxrss``: how ``peak_mb`` was read.
    """

    seconds: float
    peak_mb: float | None
    start_mb: float | None
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Meter:
    """Started before the work, stopped after it: :meth:`stop` returns its :class:`Spent`."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        rss_kb = _status_kb("VmRSS")
        self._start_bytes = rss_kb * 1024 if rss_kb is not None else None
        self._hwm = rss_kb is not None and _reset_high_water_mark()
        self._maxrss = _maxrss_bytes()

    @classmethod
    def start(cls) -> Meter:
        return cls()

    def stop(self) -> Spent:
        seconds = time.perf_counter() - self._started
        start = self._start_bytes
        peak: float | None = None
        if self._hwm:
            hwm_kb = _status_kb("VmHWM")
            if hwm_kb is not None and start is not None:
                peak = max(0, hwm_kb * 1024 - start) / _MB
            method = "hwm"
        else:
            method = "maxrss"
            now = _maxrss_bytes()
            if now > self._maxrss:  # a new lifetime maximum was set during the work
                base = start if start is not None else self._maxrss
                peak = max(0, now - base) / _MB
        return Spent(
            seconds=round(seconds, 3),
            peak_mb=None if peak is None else round(peak, 1),
            start_mb=None if start is None else round(start / _MB, 1),
            method=method,
        )
