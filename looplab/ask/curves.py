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

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
_NAMES = {"accuracy": "acc", "balanced_accuracy": "bal.acc", "macro_f1": "macro-F1"}


@dataclass(frozen=True)
class LearningCurve:
    """Test scores after each batch of one simulated labeling run."""

    n_labels: NDArray[np.int64]
    accuracy: NDArray[np.float64]
    balanced_accuracy: NDArray[np.float64]
    strategy: str = ""
    seed: int = 0
    macro_f1: NDArray[np.float64] | None = None

    def values(self, metric: str = "accuracy") -> NDArray[np.float64]:
        """The curve of ``metric`` (one of :data:`METRICS`)."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
        if metric == "macro_f1":
            if self.macro_f1 is None:
                raise ValueError("this curve was recorded without macro-F1")
            return self.macro_f1
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
    # The AUC of the comparison's metric and its gain over random (accuracy's are above), and the
    # metric's value at the budget: what the verdict and the table lead with.
    metric: str = "accuracy"
    auc_metric: list[float] = field(default_factory=list)
    auc_metric_gain: list[float] = field(default_factory=list)
    final_metric: list[float] = field(default_factory=list)

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
    full_macro_f1: list[float] = field(default_factory=list)
    # Per metric, per seed: the score of always answering the majority label of the seed's pool
    # on its test split (what a constant model reaches with no labels at all).
    baselines: dict[str, list[float]] = field(default_factory=dict)
    baseline_label: str = ""

    def full(self, metric: str | None = None) -> list[float]:
        """The full-pool scores of ``metric`` (default: the comparison's), per seed."""
        metric = metric or self.metric
        if metric == "macro_f1":
            return self.full_macro_f1
        return self.full_accuracy if metric == "accuracy" else self.full_balanced_accuracy

    def baseline(self, metric: str | None = None) -> float | None:
        """Mean majority baseline of ``metric`` over the seeds (None when not measured)."""
        values = self.baselines.get(metric or self.metric)
        return float(np.mean(values)) if values else None

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
    """Plain-text table: one row per strategy, means over seeds, gains versus random.

    AUC, dAUC and "final" are of the comparison's metric; bal.AUC is balanced accuracy's (or
    accuracy's, when the metric is balanced accuracy). The heading gives the majority baseline,
    and says when the reach/hold thresholds are so low that a constant model meets them.
    """
    metric = comparison.metric
    name = _NAMES[metric]
    other = "accuracy" if metric == "balanced_accuracy" else "balanced_accuracy"
    full = float(np.mean(comparison.full()))
    header = (
        f"{'strategy':<26}{'reach ' + format(comparison.target, '.0%'):>14}"
        f"{'hold ' + format(comparison.hold, '.0%'):>14}{'AUC':>8}{'dAUC':>8}{'min dAUC':>10}"
        f"{'final':>8}{_NAMES[other] + '.AUC':>12}{'d ' + _NAMES[other]:>10}"
    )
    base = comparison.baseline()
    lines = [
        f"metric {name}; full-pool {name} {full:.3f}"
        + (
            f"; majority baseline {name} {base:.3f} (always {comparison.baseline_label!r})"
            if base is not None
            else ""
        )
        + f"; {len(comparison.seeds)} seeds, batch {comparison.batch_size}, "
        f"budget {comparison.budget}; dAUC = AUC minus random's on the same seed, in points"
        + (
            f"; random = mean of {comparison.random_draws} runs per seed"
            if comparison.random_draws > 1
            else ""
        ),
    ]
    target = comparison.target * full
    if base is not None and target <= base:
        lines.append(
            f"note: reach {comparison.target:.0%} of full-pool {name} is {target:.3f}, at or "
            f"below the majority baseline {base:.3f}: a constant model meets it"
        )
    lines += [header, "-" * len(header)]
    for key, s in comparison.summaries.items():
        auc = s.auc_metric or s.auc
        gain = s.auc_metric_gain or s.auc_gain
        final = f"{np.mean(s.final_metric):>8.3f}" if s.final_metric else f"{'-':>8}"
        o_auc, o_gain = (
            (s.auc, s.auc_gain) if other == "accuracy" else (s.auc_balanced, s.auc_balanced_gain)
        )
        lines.append(
            f"{key:<26}{_mean_labels(s.labels_to_target, comparison.budget):>14}"
            f"{_mean_labels(s.labels_to_hold, comparison.budget):>14}"
            f"{np.mean(auc):>8.3f}{100 * np.mean(gain):>+8.2f}{100 * np.min(gain):>+10.2f}"
            f"{final}{np.mean(o_auc):>12.3f}{100 * np.mean(o_gain):>+10.2f}"
        )
    return "\n".join(lines)


def plot_curves(
    results: Comparison | Mapping[str, Sequence[LearningCurve]],
    path: str | Path,
    *,
    metric: str | None = None,
    title: str = "",
) -> Path:
    """Write a PNG: per strategy the mean curve over seeds with a band from min to max.

    Uses matplotlib's Agg canvas directly (no pyplot), so it works headless and leaves no
    global figure state behind.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = results.curves if isinstance(results, Comparison) else results
    if metric is None:  # a comparison's own metric, else accuracy
        metric = results.metric if isinstance(results, Comparison) else "accuracy"
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
        ax.axhline(
            float(np.mean(results.full(metric))), color="grey", linestyle="--", label="full pool"
        )
        base = results.baseline(metric)
        if base is not None:  # what always answering the majority scores, with no labels at all
            ax.axhline(
                base,
                color="black",
                linestyle=":",
                label=f"majority baseline (always {results.baseline_label!r})",
            )
    ax.set_xlabel("labels")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"learning curves ({metric.replace('_', ' ')})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
