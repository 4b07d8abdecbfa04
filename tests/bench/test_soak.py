"""The soak bench's summaries (bench/soak.py): pure functions of calls, samples and job spans."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
    spec = importlib.util.spec_from_file_location("bench_soak", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


soak = _load()
Call, Span = soak.Call, soak.Span


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert soak.pct(values, 50) == pytest.approx(50.5)
    assert soak.pct(values, 99) == pytest.approx(99.01)
    assert soak.pct(list(reversed(values)), 0) == 1.0
    assert soak.pct([7.0], 99) == 7.0
    assert math.isnan(soak.pct([], 50))


def test_slope_of_a_line_and_of_too_little() -> None:
    xs = [0.0, 1.0, 2.0, 3.0]
    assert soak.slope(xs, [2 * x + 1 for x in xs]) == pytest.approx(2.0)
    assert soak.slope(xs, [5.0, 5.0, 5.0, 5.0]) == 0.0
    assert math.isnan(soak.slope([1.0, 1.0], [0.0, 3.0]))
    with pytest.raises(ValueError, match="differ in length"):
        soak.slope([1.0, 2.0], [1.0])


def test_per_minute_percentiles_count_failures_apart() -> None:
    t0 = 1000.0
    calls = [Call(t0 + 1 + i * 0.1, "next", float(i + 1), True) for i in range(100)]
    calls += [Call(t0 + 5, "next", 9999.0, False)]  # failed: counted, not timed
    calls += [Call(t0 + 61, "submit", 30.0, True), Call(t0 + 130, "submit", 50.0, True)]
    rows = soak.per_minute(calls, t0, minutes=2)
    assert [r["minute"] for r in rows] == [1, 2]
    first = rows[0]["next"]
    assert (first["n"], first["failed"]) == (101, 1)
    assert first["p50"] == pytest.approx(50.5)
    assert first["p99"] == pytest.approx(99.01)
    # The call that started after the last whole minute counts in the last minute.
    assert rows[1]["submit"]["n"] == 2
    assert rows[1]["submit"]["p50"] == pytest.approx(40.0)
    assert rows[0]["predict"]["n"] == 0 and math.isnan(rows[0]["predict"]["p99"])


def test_busy_per_minute_splits_a_job_across_minutes() -> None:
    spans = [Span("train", 30.0, 90.0), Span("score", 100.0, 110.0)]
    busy = soak.busy_per_minute(spans, 0.0, minutes=3)
    assert busy[0] == {"train": pytest.approx(0.5)}
    assert busy[1] == {"train": pytest.approx(0.5), "score": pytest.approx(1 / 6)}
    assert busy[2] == {}


def test_calls_are_placed_by_the_job_running_at_their_midpoint() -> None:
    spans = [Span("score", 10.0, 20.0), Span("train", 15.0, 30.0), Span("monitor", 40.0, 41.0)]
    assert soak.phase(12.0, spans) == "score"
    assert soak.phase(16.0, spans) == "train"  # training outranks scoring
    assert soak.phase(40.5, spans) == "other"
    assert soak.phase(50.0, spans) == "idle"
    calls = [
        Call(9.0, "next", 2000.0, True),  # midpoint 10.0: in the scoring
        Call(5.0, "next", 10.0, True),
        Call(25.0, "submit", 100.0, True),
        Call(26.0, "submit", 900.0, False),  # failed calls are not timed
        Call(25.0, "predict", 5.0, True),  # not a labeling op
    ]
    got = soak.by_phase(calls, spans, ("next", "submit"))
    assert got["score"]["next"]["n"] == 1
    assert got["idle"]["next"]["p99"] == 10.0
    assert got["train"] == {"submit": {"n": 1, "p50": 100.0, "p99": 100.0}}
    assert "predict" not in str(got)


def _samples(n: int, busy: set[int]) -> list[dict[str, float]]:
    # RSS grows by 0.1 MB per 1,000 requests; 500 MB more while a job holds memory.
    return [
        {"t": float(t), "requests": 100.0 * t, "rss_mb": 300 + 0.01 * t + (500 if t in busy else 0)}
        for t in range(n)
    ]


def test_rss_slope_leaves_out_the_jobs_and_the_warm_up() -> None:
    spans = [Span("train", 20.0, 40.0), Span("monitor", 60.0, 62.0)]
    samples = _samples(100, busy=set(range(20, 41)))
    samples[2]["rss_mb"] = 50.0  # during the warm-up, left out
    got = soak.rss_slopes(samples, spans, after=10.0)
    assert got["how"] == "idle"
    assert got["mb_per_1k_requests"] == pytest.approx(0.1)
    assert got["mb_per_minute"] == pytest.approx(0.6)
    # A second either side of the training is left out; the monitor job counts as idle.
    assert got["samples"] == 90 - 23


def test_rss_between_back_to_back_jobs_uses_the_samples_before_each_start() -> None:
    spans = [Span("train", 10.0 * k, 10.0 * k + 9.5) for k in range(10)]
    samples = _samples(100, busy=set())
    quiet, how = soak.between_jobs(samples, spans, after=0.0)
    assert how == "job starts"
    assert [s["t"] for s in quiet] == [10.0 * k for k in range(10)]


def test_monitor_lateness_from_the_gaps_between_runs() -> None:
    got = soak.monitor_lateness([-30.0, 30.0, 95.0, 150.0, 260.0], 60.0, 0.0, 300.0)
    # Due at 30 (60 after -30), 90, 155, 210; the last run (260) is on time until 320 > 300.
    assert got["late_s"] == pytest.approx([0.0, 5.0, 0.0, 50.0])
    assert (got["runs"], got["expected"], got["max_late_s"]) == (4, 5, pytest.approx(50.0))
    # No run at all: due from the start, late by the whole soak.
    none = soak.monitor_lateness([], 60.0, 0.0, 300.0)
    assert none["late_s"] == pytest.approx([300.0]) and none["runs"] == 0


def test_growth_exponent_and_the_figure_at_a_number_of_rows() -> None:
    rows = [1000.0, 4000.0, 16000.0]
    assert soak.growth_exponent(rows, [10 * r**0.5 for r in rows]) == pytest.approx(0.5)
    assert soak.growth_exponent(rows, [0.01 * r for r in rows]) == pytest.approx(1.0)
    peaks = [100 + 0.01 * r for r in rows]  # 110, 140, 260 MB
    assert soak.at_rows(rows, peaks, 4000) == (140.0, False)  # measured: the version at 4,000
    assert soak.at_rows(rows, peaks, 3000) == (140.0, False)  # ...the first one past it
    value, extrapolated = soak.at_rows(rows, peaks, 31000)
    assert extrapolated and value == pytest.approx(410.0)
    assert math.isnan(soak.at_rows([5.0], [1.0], 10)[0])


def _trained(rows_and_peaks: list[tuple[int, float | None]]) -> list[dict[str, object]]:
    return [{"n_train": r, "peak_mb": p} for r, p in rows_and_peaks]


def test_training_goal_measures_extrapolates_or_abstains() -> None:
    # Reached 20k rows: the version there is judged, and the growth.
    figure, ok, got = soak.training_goal(_trained([(5000, 200.0), (20000, 700.0)]))
    assert ok is True and not got["extrapolated"] and got["peak_at_goal_mb"] == 700.0
    assert got["exponent"] == pytest.approx(math.log(3.5) / math.log(4))
    # Peaks growing faster than the rows fail even under 1 GB.
    _, ok, got = soak.training_goal(_trained([(1000, 50.0), (4000, 400.0)]))
    assert ok is False and got["extrapolated"] and got["exponent"] > 1
    # Small peaks over a narrow range: no verdict, and why.
    figure, ok, _ = soak.training_goal(_trained([(240, 20.0), (1269, 0.0), (900, 33.0)]))
    assert ok is None and "too little to extrapolate" in figure
    assert soak.training_goal(_trained([(300, None), (600, None)]))[:2] == (
        "not recorded by this code",
        None,
    )
