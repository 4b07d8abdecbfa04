"""The micro-batcher: concurrent calls share one model call, and each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from looplab.serve.batching import Batcher


def run(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: a browser test's Playwright (sync API) may hold a
    running event loop in this thread when pytest-xdist puts both files on one worker."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Model:
    """Doubles its rows; counts its calls; fails on a row equal to ``bad``."""

    def __init__(self, bad: int | None = None, seconds: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[str] = set()
        self.bad = bad
        self.seconds = seconds

    def __call__(self, rows: list[int]) -> np.ndarray:
        self.calls.append(list(rows))
        self.threads.add(threading.current_thread().name)
        if self.bad in rows:
            raise ValueError(f"cannot score {self.bad}")
        if self.seconds:
            threading.Event().wait(self.seconds)
        return np.asarray(rows).reshape(-1, 1) * 2


def gather(batcher: Batcher, model: Model, calls: list[list[int]], key: str = "m") -> list:
    async def main() -> list:
        return await asyncio.gather(
            *(batcher.run(key, model, rows) for rows in calls), return_exceptions=True
        )

    return run(main())


def test_concurrent_calls_share_a_model_call_and_get_their_own_rows() -> None:
    model = Model(seconds=0.01)
    calls = [[i, i + 100] for i in range(20)]
    out = gather(Batcher(), model, calls)
    assert [o.ravel().tolist() for o in out] == [[2 * i, 2 * i + 200] for i in range(20)]
    assert len(model.calls) < 20  # batched
    assert sorted(r for c in model.calls for r in c) == sorted(r for c in calls for r in c)
    assert threading.current_thread().name not in model.threads  # run in a worker thread


def test_a_failing_record_fails_only_its_own_call() -> None:
    model = Model(bad=7)
    out = gather(Batcher(), model, [[1], [7], [3, 4]])
    assert out[0].ravel().tolist() == [2]
    assert isinstance(out[1], ValueError) and str(out[1]) == "cannot score 7"
    assert out[2].ravel().tolist() == [6, 8]


def test_max_rows_bounds_a_batch_but_a_bigger_call_runs_alone() -> None:
    model = Model()
    out = gather(Batcher(max_rows=4), model, [[1, 2, 3], [4, 5], list(range(10))])
    assert [len(o) for o in out] == [3, 2, 10]
    assert all(len(c) <= 4 or len(c) == 10 for c in model.calls)


def test_different_keys_are_never_mixed() -> None:
    first, second = Model(), Model()
    batcher = Batcher()

    async def main() -> list:
        return await asyncio.gather(
            *(batcher.run("a", first, [i]) for i in range(5)),
            *(batcher.run("b", second, [i + 10]) for i in range(5)),
        )

    out = run(main())
    assert [o.item() for o in out] == [0, 2, 4, 6, 8, 20, 22, 24, 26, 28]
    assert all(r < 10 for c in first.calls for r in c)
    assert all(r >= 10 for c in second.calls for r in c)


@pytest.mark.parametrize("window", [0.0, 0.001])
def test_a_lone_sequential_caller_is_answered_call_by_call(window: float) -> None:
    model = Model()
    batcher = Batcher(window_seconds=window)

    async def main() -> list[int]:
        return [int((await batcher.run("m", model, [i])).item()) for i in range(5)]

    assert run(main()) == [0, 2, 4, 6, 8]
    assert model.calls == [[0], [1], [2], [3], [4]]
    assert not batcher._lanes  # nothing left behind
