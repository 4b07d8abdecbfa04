"""Active-learning simulation: would a query strategy have saved labels on this data?

The simulation replays labeling with the true labels as the oracle. For a seed it holds out a
fixed test split, draws the same random seed labels for every strategy, then repeatedly fits the
model, records test accuracy and balanced accuracy, and lets the strategy choose the next batch,
until the label budget is spent. :func:`compare` runs several strategies over the same seeds and
summarises them against the model trained on the whole pool:

- labels to reach 95% of full-pool accuracy (first point at or above it);
- labels to hold 99% (first point after which every later point stays at or above it);
- AUC: the area under the learning curve divided by its width, i.e. the mean accuracy over the
  budget (trapezoids, so it lies in [0, 1] and uneven batch grids compare fairly).

Features are computed once per dataset and reused by every strategy and seed
(:func:`precompute_features`). For text this fits TF-IDF on the whole pool, test split included.
That leaks vocabulary and document frequencies, never labels, and it does so equally for every
strategy, so comparisons between strategies stay fair while the simulation runs many times
faster than refitting the vectoriser at each step.

Strategy specs are names from :data:`looplab.ask.strategies.STRATEGIES`, optionally followed by
``+diversity`` (k-means over a 10x shortlist, :func:`looplab.ask.diversity.diverse_top_k`) and/or
``+balance`` (:func:`looplab.ask.diversity.balance_guard`), e.g. ``"margin+diversity"``. With both,
the batch is built as the labeling server builds it (``looplab.ask.scoring.score_pool``): the
diverse picks rank first, then the rest of the shortlist, and the balance guard chooses from that
ranking. ``"margin+diversity+balance"`` is therefore what a project gets by default.

:func:`load_oracle` takes the true labels from the store (a metadata column, or the labels an
import brought), and :func:`verdict` says in one sentence whether a strategy beat random on the
seeds run, with a paired test over seeds (and says so when there are too few seeds to tell).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from looplab.ask.curves import (
    METRICS,
    Comparison,
    LearningCurve,
    StrategySummary,
    format_table,
    plot_curves,
)
from looplab.ask.diversity import balance_guard, diverse_top_k
from looplab.ask.strategies import STRATEGIES, top_k
from looplab.learn.evaluate import class_balance, label_counts, majority_label
from looplab.learn.sparsefit import UsedColumnsClassifier

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from looplab.core.tables import Project

__all__ = [
    "Comparison",
    "LearningCurve",
    "Oracle",
    "StrategySummary",
    "Verdict",
    "compare",
    "format_table",
    "full_pool_score",
    "load_oracle",
    "majority_baselines",
    "only_the_majority",
    "parse_strategy",
    "plot_curves",
    "precompute_features",
    "resolve_metric",
    "simulate",
    "split_indices",
    "verdict",
]

ModelFactory = Callable[[], Any]
_SPEC_FLAGS = ("diversity", "balance")


def parse_strategy(spec: str) -> tuple[str, bool, bool]:
    """Split ``"margin+diversity+balance"`` into (name, diversity, balance) and validate it."""
    name, *flags = spec.split("+")
    if name not in STRATEGIES or any(f not in _SPEC_FLAGS for f in flags):
        valid = ", ".join(sorted(STRATEGIES))
        raise ValueError(
            f"unknown strategy {spec!r}; use one of {valid}, optionally followed by "
            "'+diversity' and/or '+balance' (e.g. 'margin+diversity')"
        )
    return name, "diversity" in flags, "balance" in flags


def split_indices(
    y: ArrayLike, seed: int, test_size: float = 0.25
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Pool and test indices for a seed (stratified when every class has two members)."""
    labels = np.asarray(y)
    _, counts = np.unique(labels, return_counts=True)
    pool, test = train_test_split(
        np.arange(labels.size),
        test_size=test_size,
        random_state=seed,
        stratify=labels if counts.min() >= 2 else None,
    )
    return np.sort(pool).astype(np.intp), np.sort(test).astype(np.intp)


def _resolve_split(
    y: NDArray, seed: int, test_size: float, test_indices: ArrayLike | None
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    if test_indices is None:
        return split_indices(y, seed, test_size)
    test = np.unique(np.asarray(test_indices, dtype=np.intp))
    if test.size == 0 or test[0] < 0 or test[-1] >= y.size:
        raise ValueError("test_indices must be non-empty valid row indices")
    return np.setdiff1d(np.arange(y.size), test).astype(np.intp), test


def _scores(y_true: NDArray, y_pred: NDArray) -> tuple[float, float, float]:
    """Accuracy, balanced accuracy and macro-F1 (over the labels in the truth or predictions)."""
    with warnings.catch_warnings():
        # A young model may predict classes absent from the test split; that is not an error.
        warnings.simplefilter("ignore", UserWarning)
        return (
            accuracy_score(y_true, y_pred),
            balanced_accuracy_score(y_true, y_pred),
            f1_score(y_true, y_pred, average="macro", zero_division=0),
        )


def resolve_metric(metric: str, y: ArrayLike) -> str:
    """``auto`` is balanced accuracy when the labels are imbalanced, else accuracy.

    Imbalanced as :func:`looplab.learn.evaluate.class_balance` says (the rarest class holds
    less than half an equal share). There, a model that answers the majority reaches a high
    accuracy at a handful of labels, so "labels to reach 95%" and accuracy AUC reward the
    strategy that collapses to it fastest; balanced accuracy starts at chance and only a model
    that finds the rare classes raises it.
    """
    if metric != "auto":
        if metric not in METRICS:
            valid = ", ".join(("auto", *METRICS))
            raise ValueError(f"unknown metric {metric!r}; valid metrics: {valid}")
        return metric
    return "balanced_accuracy" if class_balance(label_counts(y))["imbalanced"] else "accuracy"


def majority_baselines(
    y: ArrayLike, seeds: Sequence[int], test_size: float = 0.25
) -> tuple[dict[str, list[float]], str]:
    """Per metric, per seed: the score of always answering the pool's majority on its test split."""
    labels = np.asarray(y)
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    label = ""
    for seed in seeds:
        pool, test = split_indices(labels, seed, test_size)
        label = majority_label(labels[pool])
        constant = np.full(test.size, label, dtype=labels.dtype)
        for metric, value in zip(METRICS, _scores(labels[test], constant), strict=True):
            out[metric].append(float(value))
    return out, label


def simulate(
    X: Any,
    y: ArrayLike,
    *,
    make_model: ModelFactory,
    strategy: str | Callable[..., NDArray[np.float64]],
    budget: int,
    batch_size: int,
    seed: int,
    initial: int = 20,
    test_size: float = 0.25,
    test_indices: ArrayLike | None = None,
    features_for_diversity: Any = None,
    diversity: bool = False,
    balance: bool = False,
    shortlist_factor: int = 10,
    draw: int = 0,
) -> LearningCurve:
    """Simulate one labeling run and return its learning curve.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Precomputed features (see :func:`precompute_features`).
    y : array-like of shape (n_samples,)
        True labels, used as the oracle.
    make_model : callable
        Returns a fresh unfitted classifier with ``predict_proba``.
    strategy : str or callable
        A spec such as ``"margin"`` or ``"margin+diversity"``, or a function
        ``(proba, rng) -> scores``.
    budget : int
        Total labels, seed labels included (clipped to the pool size).
    batch_size : int
        Labels asked per round.
    seed : int
        Fixes the test split, the seed labels (same for every strategy) and tie breaking.
    initial : int, default=20
        Random seed labels before the first model.
    test_size : float, default=0.25
        Held-out share, ignored when ``test_indices`` is given.
    test_indices : array-like of int, optional
        Explicit test rows; the pool is every other row.
    features_for_diversity : ndarray or sparse matrix, optional
        Representation for k-means diversity; defaults to ``X``.
    diversity, balance : bool, default=False
        Also apply ``+diversity`` / ``+balance`` (may also be given in the spec).
    shortlist_factor : int, default=10
        Shortlist size for diversity and for the balance guard's candidates, as a multiple of
        ``batch_size``.
    draw : int, default=0
        Which stream of query randomness to use (tie breaking, k-means, random picks) while
        the test split and seed labels stay those of ``seed``: repeated draws of one seed
        measure how much a run varies by chance alone.

    Returns
    -------
    LearningCurve
        One point after the seed labels and after every batch, the last at ``budget``.

    Notes
    -----
    BLAS and OpenMP are limited to one thread while the run lasts (``threadpoolctl``; the
    limit is process-wide). The models are refitted hundreds of times on small data, where
    extra threads do not help, and on a busy machine spinning BLAS threads made a run 15x
    slower. Run seeds in parallel processes instead (``compare(n_jobs=...)``).
    """
    with threadpool_limits(limits=1):
        return _simulate(
            X,
            y,
            make_model=make_model,
            strategy=strategy,
            budget=budget,
            batch_size=batch_size,
            seed=seed,
            initial=initial,
            test_size=test_size,
            test_indices=test_indices,
            features_for_diversity=features_for_diversity,
            diversity=diversity,
            balance=balance,
            shortlist_factor=shortlist_factor,
            draw=draw,
        )


def _simulate(
    X: Any,
    y: ArrayLike,
    *,
    make_model: ModelFactory,
    strategy: str | Callable[..., NDArray[np.float64]],
    budget: int,
    batch_size: int,
    seed: int,
    initial: int,
    test_size: float,
    test_indices: ArrayLike | None,
    features_for_diversity: Any,
    diversity: bool,
    balance: bool,
    shortlist_factor: int,
    draw: int,
) -> LearningCurve:
    labels = np.asarray(y)
    name = getattr(strategy, "__name__", "custom")
    if isinstance(strategy, str):
        base, div, bal = parse_strategy(strategy)
        score_fn, name = STRATEGIES[base], strategy
        diversity, balance = diversity or div, balance or bal
    else:
        score_fn = strategy
    if batch_size < 1 or initial < 1:
        raise ValueError("batch_size and initial must be at least 1")
    pool, test = _resolve_split(labels, seed, test_size, test_indices)
    budget = min(int(budget), pool.size)
    if budget < initial:
        raise ValueError(f"budget ({budget}) must be at least the seed labels ({initial})")
    div_features = X if features_for_diversity is None else features_for_diversity
    # Separate streams: the seed labels must not depend on what the strategy draws later.
    labeled = np.random.default_rng([seed, 1]).choice(pool, size=initial, replace=False)
    query_rng = np.random.default_rng([seed, 2] if draw == 0 else [seed, 2, draw])
    is_labeled = np.zeros(labels.size, dtype=bool)
    is_labeled[labeled] = True
    points: list[tuple[int, float, float, float]] = []
    while True:
        lab = np.flatnonzero(is_labeled)
        model = None
        if np.unique(labels[lab]).size >= 2:
            model = make_model().fit(X[lab], labels[lab])
            predicted = model.predict(X[test])
        else:  # one class seen so far: predict it, query at random
            predicted = np.full(test.size, labels[lab[0]])
        points.append((lab.size, *_scores(labels[test], predicted)))
        if lab.size >= budget:
            break
        candidates = pool[~is_labeled[pool]]
        k = min(batch_size, budget - lab.size, candidates.size)
        if model is None:
            chosen = query_rng.choice(candidates, size=k, replace=False)
        else:
            proba = model.predict_proba(X[candidates])
            scores = score_fn(proba, query_rng)
            if diversity or balance:
                shortlist = top_k(scores, k * shortlist_factor, query_rng)
                picked = shortlist[:k]
                if diversity:
                    local = diverse_top_k(
                        scores[shortlist], div_features[candidates[shortlist]], k, query_rng
                    )
                    picked = shortlist[local]
                if balance:
                    # Diverse picks first, then the rest of the shortlist in score order.
                    ranked = np.concatenate([picked, shortlist[~np.isin(shortlist, picked)]])
                    counts = np.array([np.sum(labels[lab] == c) for c in model.classes_])
                    picked = balance_guard(ranked, proba, counts, k)
            else:
                picked = top_k(scores, k, query_rng)
            chosen = candidates[picked]
        is_labeled[chosen] = True
    n, acc, bacc, f1 = (np.array(v) for v in zip(*points, strict=True))
    return LearningCurve(n.astype(np.int64), acc, bacc, strategy=name, seed=seed, macro_f1=f1)


def full_pool_score(
    X: Any,
    y: ArrayLike,
    *,
    make_model: ModelFactory,
    seed: int,
    test_size: float = 0.25,
    test_indices: ArrayLike | None = None,
) -> tuple[float, float, float]:
    """Accuracy, balanced accuracy and macro-F1 of the model trained on a seed's whole pool."""
    labels = np.asarray(y)
    pool, test = _resolve_split(labels, seed, test_size, test_indices)
    with threadpool_limits(limits=1):  # see simulate()
        model = make_model().fit(X[pool], labels[pool])
        return _scores(labels[test], model.predict(X[test]))


def precompute_features(
    task: str, fields: Sequence[str], records: Any, estimator: str | None = None
) -> tuple[Any, ModelFactory]:
    """Fit the default pipeline's feature steps once on all ``records``; split off the model.

    Returns the feature matrix and a picklable factory of fresh copies of the pipeline's final
    classifier, ready for :func:`simulate` and :func:`compare`. With sparse features and the
    default logistic regression, the classifier is wrapped in
    :class:`~looplab.learn.sparsefit.UsedColumnsClassifier` (same predictions, fits 2-5x faster).
    """
    # train pulls pandas and skops; only needed here
    from looplab.learn.train import build_pipeline

    pipeline = build_pipeline(task, fields, estimator)
    features = pipeline[:-1].fit_transform(records)
    classifier = pipeline[-1]
    if (
        estimator is None
        and sp.issparse(features)
        and not isinstance(classifier, UsedColumnsClassifier)
    ):
        classifier = UsedColumnsClassifier(classifier)
    return features, functools.partial(clone, classifier)


def _summarise(
    name: str,
    curves: list[LearningCurve],
    baseline: list[LearningCurve],
    full: list[float],
    comparison: dict[str, Any],
) -> StrategySummary:
    metric, target, hold = comparison["metric"], comparison["target"], comparison["hold"]
    auc = np.array([c.auc("accuracy") for c in curves])
    bal = np.array([c.auc("balanced_accuracy") for c in curves])
    mine = np.array([c.auc(metric) for c in curves])
    # Same seed, same test split and seed labels: the per-seed difference is the paired gain.
    base = np.array([c.auc("accuracy") for c in baseline])
    base_bal = np.array([c.auc("balanced_accuracy") for c in baseline])
    base_mine = np.array([c.auc(metric) for c in baseline])
    return StrategySummary(
        strategy=name,
        labels_to_target=[
            c.labels_to_reach(target * f, metric) for c, f in zip(curves, full, strict=True)
        ],
        labels_to_hold=[
            c.labels_to_hold(hold * f, metric) for c, f in zip(curves, full, strict=True)
        ],
        auc=auc.tolist(),
        auc_balanced=bal.tolist(),
        auc_gain=(auc - base).tolist(),
        auc_balanced_gain=(bal - base_bal).tolist(),
        metric=metric,
        auc_metric=mine.tolist(),
        auc_metric_gain=(mine - base_mine).tolist(),
        final_metric=[float(c.values(metric)[-1]) for c in curves],
    )


def _mean_curve(curves: list[LearningCurve]) -> LearningCurve:
    """Pointwise mean of runs on one label grid (random's grid never depends on its picks)."""
    grid = curves[0].n_labels
    if any(not np.array_equal(c.n_labels, grid) for c in curves):
        raise ValueError("cannot average learning curves measured at different label counts")
    return LearningCurve(
        grid,
        np.mean([c.accuracy for c in curves], axis=0),
        np.mean([c.balanced_accuracy for c in curves], axis=0),
        strategy=curves[0].strategy,
        seed=curves[0].seed,
        macro_f1=np.mean([c.values("macro_f1") for c in curves], axis=0),
    )


def _check_runs(strategies: Sequence[str], random_draws: int) -> None:
    if isinstance(random_draws, bool) or not isinstance(random_draws, int) or random_draws < 1:
        raise ValueError(f"random_draws must be a positive integer, got {random_draws!r}")
    for spec in strategies:
        parse_strategy(spec)


def compare(
    X: Any,
    y: ArrayLike,
    *,
    make_model: ModelFactory,
    strategies: Sequence[str],
    seeds: int | Sequence[int],
    budget: int,
    batch_size: int,
    initial: int = 20,
    test_size: float = 0.25,
    features_for_diversity: Any = None,
    metric: str = "auto",
    target: float = 0.95,
    hold: float = 0.99,
    shortlist_factor: int = 10,
    random_draws: int = 1,
    n_jobs: int | None = 1,
) -> Comparison:
    """Run every strategy on the same seeds and summarise them against random and the full pool.

    ``"random"`` is always run as the baseline for the per-seed gains. ``seeds`` is a count
    (seeds ``0..n-1``) or an explicit list. ``metric`` (``auto``: :func:`resolve_metric`)
    selects what the reach/hold thresholds (``target`` and ``hold`` times the full-pool score),
    the leading AUC and the verdict use; AUC is reported for accuracy and balanced accuracy
    too, with the majority baseline of every metric per seed (:func:`majority_baselines`).
    ``shortlist_factor`` is passed to :func:`simulate`. ``n_jobs`` runs (strategy, seed) pairs
    in parallel processes with joblib.

    ``random_draws`` runs the random baseline that many times per seed (same split and seed
    labels, other random picks) and compares every strategy with their pointwise mean curve.
    One random run is a noisy baseline: on digits its AUC moves by 0.5 to 1 point between
    draws of one seed, as much as the per-seed differences one wants to judge; the mean of 5
    cuts that noise by more than half. Other strategies still run once per seed; the runs
    behind the mean are kept in ``Comparison.random_runs``.
    """
    metric = resolve_metric(metric, y)
    _check_runs(strategies, random_draws)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    names = list(dict.fromkeys(["random", *strategies]))
    labels = np.asarray(y)
    common = dict(test_size=test_size, make_model=make_model)
    jobs = [delayed(full_pool_score)(X, labels, seed=s, **common) for s in seed_list]
    runs_of = [(name, d) for name in names for d in range(random_draws if name == "random" else 1)]
    jobs += [
        delayed(simulate)(
            X,
            labels,
            strategy=name,
            budget=budget,
            batch_size=batch_size,
            seed=s,
            initial=initial,
            features_for_diversity=features_for_diversity,
            shortlist_factor=shortlist_factor,
            draw=d,
            **common,
        )
        for name, d in runs_of
        for s in seed_list
    ]
    out = Parallel(n_jobs=n_jobs)(jobs)
    fulls, runs = out[: len(seed_list)], out[len(seed_list) :]
    by_run = {
        run: runs[i * len(seed_list) : (i + 1) * len(seed_list)] for i, run in enumerate(runs_of)
    }
    curves = {name: by_run[(name, 0)] for name in names}
    draws = [by_run[("random", d)] for d in range(random_draws)] if random_draws > 1 else []
    if draws:
        curves["random"] = [_mean_curve([run[i] for run in draws]) for i in range(len(seed_list))]
    full_acc, full_bal, full_f1 = ([f[i] for f in fulls] for i in range(3))
    reference = {"accuracy": full_acc, "balanced_accuracy": full_bal, "macro_f1": full_f1}[metric]
    baselines, majority = majority_baselines(labels, seed_list, test_size)
    settings = {"metric": metric, "target": target, "hold": hold}
    summaries = {n: _summarise(n, curves[n], curves["random"], reference, settings) for n in names}
    return Comparison(
        seeds=seed_list,
        budget=budget,
        batch_size=batch_size,
        metric=metric,
        target=target,
        hold=hold,
        full_accuracy=full_acc,
        full_balanced_accuracy=full_bal,
        curves=curves,
        summaries=summaries,
        random_runs=draws,
        full_macro_f1=full_f1,
        baselines=baselines,
        baseline_label=majority,
    )


# -- the oracle and the verdict -------------------------------------------------------------------


@dataclass(frozen=True)
class Oracle:
    """The true labels a simulation replays: inputs, labels, and where the labels came from."""

    payloads: list[dict[str, Any]]
    truth: NDArray[np.str_]
    source: str  # "metadata column 'topic'" or "imported labels (column 'topic')"


def load_oracle(session: Session, project: Project, column: str | None) -> Oracle:
    """The records with a true label, from metadata ``column`` or the labels imports brought.

    Without ``column``, or when it names the label column of an import rather than a metadata
    column, the oracle is the imported labels (origin ``import``; a record with several takes
    the first). Raises :class:`~looplab.core.errors.Invalid` naming what there is when neither
    holds.
    """
    from sqlalchemy import select

    from looplab.core.errors import Invalid, did_you_mean
    from looplab.core.tables import Annotation, ImportBatch, Record

    rows = session.execute(
        select(Record.id, Record.payload, Record.meta)
        .where(Record.project_id == project.id)
        .order_by(Record.id)
    ).tuples()
    records = [(rid, payload, meta or {}) for rid, payload, meta in rows]
    if column is not None:
        kept = [(p, m[column]) for _, p, m in records if m.get(column) not in (None, "")]
        if kept:
            return Oracle(
                [p for p, _ in kept],
                np.array([str(v) for _, v in kept]),
                f"metadata column {column!r}",
            )
    label_columns = {
        str(mapping.get("label"))
        for mapping in session.scalars(
            select(ImportBatch.mapping).where(ImportBatch.project_id == project.id)
        )
        if mapping and mapping.get("label")
    }
    if column is None or column in label_columns:
        labels: dict[int, str] = {}
        for rid, label in session.execute(
            select(Annotation.record_id, Annotation.label)
            .where(
                Annotation.project_id == project.id,
                Annotation.origin == "import",
                Annotation.status == "active",
                Annotation.label.is_not(None),
            )
            .order_by(Annotation.id)
        ).tuples():
            labels.setdefault(rid, str(label))
        if labels:
            kept_ids = [(p, labels[rid]) for rid, p, _ in records if rid in labels]
            named = ", ".join(repr(c) for c in sorted(label_columns)) or "Label Studio"
            return Oracle(
                [p for p, _ in kept_ids],
                np.array([label for _, label in kept_ids]),
                f"imported labels (column {named})",
            )
    keys = sorted({k for _, _, m in records for k in m})
    if column is None:
        raise Invalid(
            f"project {project.name!r} has no imported labels to replay; import a file with"
            " --label, or name a metadata column holding the true labels with --oracle-column"
            + (f" (metadata columns: {', '.join(keys)})" if keys else ""),
            details={"field": "oracle_column"},
        )
    raise Invalid(
        f"no record has a value in metadata column {column!r}"
        + (did_you_mean(column, keys, "metadata columns") or "; the records have no metadata")
        + f". Import it with --meta {column}, or leave out --oracle-column to replay the"
        " imported labels",
        details={"field": "oracle_column", "value": column},
    )


_METRIC_NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced-accuracy",
    "macro_f1": "macro-F1",
}
#: Within this many points of the majority baseline's balanced accuracy (or macro-F1), a model
#: has learned nothing beyond answering the majority.
MAJORITY_MARGIN = 0.02


def only_the_majority(comparison: Comparison, strategy: str) -> str | None:
    """A warning when ``strategy``'s model ends no better than always answering the majority.

    Judged on balanced accuracy and macro-F1 at the budget (mean over seeds), which a constant
    model cannot raise: if both stay within :data:`MAJORITY_MARGIN` of the majority baseline,
    any gain in accuracy only means the strategy converged to the majority faster.
    """
    curves = comparison.curves.get(strategy) or []
    near = []
    for metric in ("balanced_accuracy", "macro_f1"):
        base = comparison.baseline(metric)
        if base is None or not curves or (curves[0].macro_f1 is None and metric == "macro_f1"):
            return None
        final = float(np.mean([c.values(metric)[-1] for c in curves]))
        if final > base + MAJORITY_MARGIN:
            return None
        near.append(f"{_METRIC_NAMES[metric]} {final:.3f} vs {base:.3f}")
    return (
        f"but at {comparison.budget} labels its model is no better than always answering "
        f"{comparison.baseline_label!r} ({'; '.join(near)} for the majority baseline): it only "
        "converges to the majority faster"
    )


#: Fewest seeds for which a two-sided paired test (sign or signed-rank) can reach p < 0.05:
#: with n seeds all on one side, p = 2 / 2**n.
MIN_SEEDS_TO_TELL = 6


@dataclass(frozen=True)
class Verdict:
    """Did ``strategy`` beat random here? The per-seed AUC gains, tested in pairs."""

    strategy: str
    labels: int
    seeds: int
    gain_points: float  # mean AUC gain over random on the same seeds, in points
    ci_points: tuple[float, float] | None  # 95% t-interval of the mean gain (None: 1 seed)
    better: int  # seeds where it beat random
    worse: int
    test: str  # "wilcoxon signed-rank (exact)"
    p_value: float | None  # None when there are too few seeds or no differences
    significant: bool
    too_few_seeds: bool
    text: str


def verdict(comparison: Comparison, strategy: str, alpha: float = 0.05) -> Verdict:
    """One plain sentence on ``strategy`` against random, with a paired test over the seeds.

    The test is Wilcoxon's signed-rank test on the per-seed AUC gains (exact two-sided p):
    each seed shares its split and seed labels between the two strategies, so the seeds are
    the pairs. With fewer than :data:`MIN_SEEDS_TO_TELL` seeds no outcome can reach p < 0.05,
    and the verdict says so instead of quoting a p-value that cannot mean anything.
    """
    from scipy import stats

    summary = comparison.summaries[strategy]
    gains = 100 * np.asarray(summary.auc_metric_gain or summary.auc_gain, dtype=float)
    n = gains.size
    mean = float(gains.mean())
    ci: tuple[float, float] | None = None
    if n >= 2:
        half = float(stats.t.ppf(0.975, n - 1) * gains.std(ddof=1) / math.sqrt(n))
        ci = (mean - half, mean + half)
    better, worse = int(np.sum(gains > 0)), int(np.sum(gains < 0))
    too_few = n < MIN_SEEDS_TO_TELL
    p_value: float | None = None
    if not too_few and np.any(gains != 0):
        p_value = float(stats.wilcoxon(gains, zero_method="zsplit", method="exact").pvalue)
    significant = p_value is not None and p_value < alpha
    labels = comparison.budget
    of = "AUC" if summary.metric == "accuracy" else f"{_METRIC_NAMES[summary.metric]} AUC"
    head = (
        f"on this data, {strategy} beat random by {mean:.2f} points of {of}"
        if mean > 0
        else f"on this data, {strategy} did worse than random by {-mean:.2f} points of {of}"
        if mean < 0
        else f"on this data, {strategy} matched random's {of}"
    )
    head += f" with {labels} labels (mean of {n} seed{'s' * (n != 1)}"
    if too_few:  # a t-interval on 2 to 5 points leans on normality nobody can check: show them
        head += "; per seed: " + ", ".join(f"{g:+.2f}" for g in gains) + ")"
    else:
        head += f", 95% CI {ci[0]:+.2f} to {ci[1]:+.2f})" if ci else ")"
    head += f"; better on {better} of {n} seeds"
    if too_few:
        tail = (
            f"; {n} seed{'s are' if n != 1 else ' is'} too few to tell: a paired test over"
            f" seeds needs at least {MIN_SEEDS_TO_TELL} to reach p < {alpha:g}"
            f" (run --seeds {MIN_SEEDS_TO_TELL} or more)"
        )
    elif p_value is None:
        tail = "; no difference on any seed"
    else:
        tail = (
            f"; {'significant' if significant else 'not significant'} on {n} seeds"
            f" (Wilcoxon signed-rank p = {p_value:.3g})"
        )
    majority = only_the_majority(comparison, strategy)
    if majority:
        tail += f"; {majority}"
    return Verdict(
        strategy=strategy,
        labels=labels,
        seeds=n,
        gain_points=mean,
        ci_points=ci,
        better=better,
        worse=worse,
        test="wilcoxon signed-rank (exact, two-sided)",
        p_value=p_value,
        significant=significant,
        too_few_seeds=too_few,
        text=head + tail,
    )
