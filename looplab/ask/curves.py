"""Results of active-learning simulations and their presentation (table and plot).

:class:`LearningCurve` holds one run; :class:`Comparison` holds several strategies over the same
seeds with a :class:`StrategySummary` each. They are produced by :mod:`looplab.ask.simulate`, which
re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

METRICS = ("accuracy", "balanced_accuracy")


@dataclass(frozen=True)
class LearningCurve:
    """Test scores after each batch of one simulated labeling run."""

    n_labels: NDArray[np.int64]
    accuracy: NDArray[np.float64]
    balanced_accuracy: NDArray[np.float64]
    strategy: str = ""
    seed: int = 0

    def values(self, metric: str = "accuracy") -> NDArray[np.float64]:
        """The curve of ``metric`` ("accuracy" or "balanced_accuracy")."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
        return self.accuracy if metric == "accuracy" else self.balanced_accuracy

    def auc(self, metric: str = "accuracy") -> float:
        """Area under the curve divided by its width: the mean score over the budget, in [0, 1]."""
        values, n = self.values(metric), self.n_labels
        if n.size < 2:
            return float(values[0])
        return float(np.trapezoid(values, n) / (n[-1] - n[0]))

    def labels_to_reach(self, target: float, metric: str = "accuracy") -> int | None:
        """First number of labels at which the score is at least ``target`` (None: never)."""
        hit = np.flatnonzero(self.values(metric) >= target)
        return int(self.n_labels[hit[0]]) if hit.size else None

    def labels_to_hold(self, target: float, metric: str = "accuracy") -> int | None:
        """First number of labels from which every later score is at least ``target``."""
        below = np.flatnonzero(self.values(metric) < target)
        start = 0 if below.size == 0 else below[-1] + 1
        return int(self.n_labels[start]) if start < self.n_labels.size else None


@dataclass(frozen=True)
class StrategySummary:
    """One strategy over all seeds; lists are per seed, in seed order."""

    strategy: str
    labels_to_target: list[int | None]
    labels_to_hold: list[int | None]
    auc: list[float]
    auc_balanced: list[float]
    auc_gain: list[float]
    auc_balanced_gain: list[float]

    @property
    def mean_auc(self) -> float:
        return float(np.mean(self.auc))

    @property
    def mean_auc_balanced(self) -> float:
        return float(np.mean(self.auc_balanced))


@dataclass(frozen=True)
class Comparison:
    """Curves and summaries of several strategies over the same seeds."""

    seeds: list[int]
    budget: int
    batch_size: int
    metric: str
    target: float
    hold: float
    full_accuracy: list[float]
    full_balanced_accuracy: list[float]
    curves: dict[str, list[LearningCurve]]
    summaries: dict[str, StrategySummary] = field(default_factory=dict)
    # The random runs averaged into each seed's random curve, one list per draw, when there is
    # more than one (see looplab.ask.simulate.compare).
    random_runs: list[list[LearningCurve]] = field(default_factory=list)

    @property
    def random_draws(self) -> int:
        """Random runs per seed behind the random curve."""
        return max(1, len(self.random_runs))


def _mean_labels(values: list[int | None], budget: int) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return f">{budget}"
    # Seeds that never got there count as the budget, so the mean is a lower bound: say so.
    mean = np.mean([budget if v is None else v for v in values])
    return (
        f"{mean:.0f}"
        if len(reached) == len(values)
        else f">={mean:.0f} ({len(reached)}/{len(values)})"
    )


def format_table(comparison: Comparison) -> str:
    """Plain-text table: one row per strategy, means over seeds, gains versus random."""
    metric = "acc" if comparison.metric == "accuracy" else "bal.acc"
    full = (
        comparison.full_accuracy
        if comparison.metric == "accuracy"
        else comparison.full_balanced_accuracy
    )
    header = (
        f"{'strategy':<26}{'reach ' + format(comparison.target, '.0%'):>14}"
        f"{'hold ' + format(comparison.hold, '.0%'):>14}{'AUC':>8}{'dAUC':>8}{'min dAUC':>10}"
        f"{'bal.AUC':>9}{'d bal':>8}"
    )
    lines = [
        f"reach/hold use {metric}; full-pool {metric} {np.mean(full):.3f}; "
        f"{len(comparison.seeds)} seeds, batch {comparison.batch_size}, "
        f"budget {comparison.budget}; dAUC = AUC minus random's on the same seed, in points"
        + (
            f"; random = mean of {comparison.random_draws} runs per seed"
            if comparison.random_draws > 1
            else ""
        ),
        header,
        "-" * len(header),
    ]
    for name, s in comparison.summaries.items():
        lines.append(
            f"{name:<26}{_mean_labels(s.labels_to_target, comparison.budget):>14}"
            f"{_mean_labels(s.labels_to_hold, comparison.budget):>14}"
            f"{s.mean_auc:>8.3f}{100 * np.mean(s.auc_gain):>+8.2f}"
            f"{100 * np.min(s.auc_gain):>+10.2f}"
            f"{s.mean_auc_balanced:>9.3f}{100 * np.mean(s.auc_balanced_gain):>+8.2f}"
        )
    return "\n".join(lines)


def plot_curves(
    results: Comparison | Mapping[str, Sequence[LearningCurve]],
    path: str | Path,
    *,
    metric: str = "accuracy",
    title: str = "",
) -> Path:
    """Write a PNG: per strategy the mean curve over seeds with a band from min to max.

    Uses matplotlib's Agg canvas directly (no pyplot), so it works headless and leaves no
    global figure state behind.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = results.curves if isinstance(results, Comparison) else results
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, runs in curves.items():
        n = runs[0].n_labels
        values = np.vstack([np.interp(n, r.n_labels, r.values(metric)) for r in runs])
        (line,) = ax.plot(n, values.mean(axis=0), label=f"{name} (n={len(runs)})")
        ax.fill_between(
            n, values.min(axis=0), values.max(axis=0), alpha=0.15, color=line.get_color()
        )
    if isinstance(results, Comparison):
        full = results.full_accuracy if metric == "accuracy" else results.full_balanced_accuracy
        ax.axhline(float(np.mean(full)), color="grey", linestyle="--", label="full pool")
    ax.set_xlabel("labels")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"learning curves ({metric.replace('_', ' ')})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
