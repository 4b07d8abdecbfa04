"""Micro-batching: concurrent predict calls on one model share one ``predict_proba`` call.

A scikit-learn pipeline spends most of a single-record call checking its input (column names,
dtypes, finiteness, at every step), so eight records cost about what one does. The
:class:`Batcher` runs the calls for one model one batch at a time, in a worker thread (the event
loop keeps reading requests meanwhile): calls that arrive while a batch runs wait for the next
one and go in together. Under concurrency it also holds a new batch open for ``window_seconds``
(1 ms by default) so more calls can join; a lone sequential client never waits, because the
window only opens once a batch has held more than one call.

Running a lone small call on the event loop itself (no thread switch) was measured and was
slower: single-record p50 about 12 ms against 4 to 8 ms in a worker thread, on this 2-core box
under a load average of 11 (three server pairs, interleaved).

If a batch fails, its calls are retried one by one, so a record that breaks the model fails
only its own request.

Examples
--------
>>> import asyncio
>>> import numpy as np
>>> def double(rows):
...     return np.asarray(rows) * 2
>>> async def main():
...     batcher = Batcher()
...     return await asyncio.gather(*(batcher.run("m", double, [i, i]) for i in range(3)))
>>> [a.tolist() for a in asyncio.run(main())]
[[0, 0], [2, 2], [4, 4]]
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class _Lane:
    """The calls waiting for one model, and whether a batch of them is running."""

    pending: deque[tuple[Sequence[Any], asyncio.Future[np.ndarray]]] = field(default_factory=deque)
    running: bool = False
    concurrent: bool = False  # the last batch held more than one call


class Batcher:
    """Gather concurrent calls of ``fn(rows) -> array`` per key into one call run in a thread.

    Parameters
    ----------
    window_seconds : float
        How long a batch stays open for more calls once concurrency has been seen; 0 takes
        only the calls that queued while the previous batch ran.
    max_rows : int
        At most this many rows per call of ``fn`` (a bigger single call runs alone).
    """

    def __init__(self, *, window_seconds: float = 0.001, max_rows: int = 1000) -> None:
        self.window_seconds = window_seconds
        self.max_rows = max_rows
        self._lanes: dict[Hashable, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def run(
        self, key: Hashable, fn: Callable[[list[Any]], np.ndarray], rows: Sequence[Any]
    ) -> np.ndarray:
        """``fn(rows)``, possibly computed together with other calls under the same ``key``.

        ``fn`` must map each row to one row of its result, independently of the other rows;
        calls with the same ``key`` must pass the same ``fn``.
        """
        loop = asyncio.get_running_loop()
        lane = self._lanes.setdefault(key, _Lane())
        done: asyncio.Future[np.ndarray] = loop.create_future()
        lane.pending.append((rows, done))
        if not lane.running:
            lane.running = True
            task = loop.create_task(self._drive(key, lane, fn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _drive(
        self, key: Hashable, lane: _Lane, fn: Callable[[list[Any]], np.ndarray]
    ) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[Sequence[Any], asyncio.Future[np.ndarray]]] = []
        try:
            while lane.pending:
                # Requests already read from their sockets run up to here first and join; under
                # concurrency the batch is also held open for the window.
                await asyncio.sleep(self.window_seconds if lane.concurrent else 0)
                batch = self._take(lane)
                lane.concurrent = len(batch) > 1
                rows = [row for call, _ in batch for row in call]
                try:
                    out = await loop.run_in_executor(None, fn, rows)
                except Exception:
                    await self._one_by_one(batch, fn)
                    continue
                start = 0
                for call, done in batch:
                    if not done.done():
                        done.set_result(out[start : start + len(call)])
                    start += len(call)
        except BaseException as exc:  # cancelled, or a bug: nobody may wait forever
            for _, done in [*batch, *lane.pending]:
                if not done.done():
                    done.set_exception(RuntimeError(f"prediction batch aborted: {exc!r}"))
            lane.pending.clear()
            raise
        finally:
            lane.running = False
            if not lane.pending and self._lanes.get(key) is lane:
                del self._lanes[key]

    def _take(self, lane: _Lane) -> list[tuple[Sequence[Any], asyncio.Future[np.ndarray]]]:
        """The next batch: waiting calls in order, up to ``max_rows`` rows (at least one call)."""
        batch = [lane.pending.popleft()]
        size = len(batch[0][0])
        while lane.pending and size + len(lane.pending[0][0]) <= self.max_rows:
            batch.append(lane.pending.popleft())
            size += len(batch[-1][0])
        return batch

    @staticmethod
    async def _one_by_one(
        batch: list[tuple[Sequence[Any], asyncio.Future[np.ndarray]]],
        fn: Callable[[list[Any]], np.ndarray],
    ) -> None:
        loop = asyncio.get_running_loop()
        for call, done in batch:
            try:
                out = await loop.run_in_executor(None, fn, list(call))
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(out)
