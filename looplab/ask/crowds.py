"""What a crowd teaches the model, by consensus method: ``looplab simulate --annotators``.

On a project's own records and true labels, a crowd of simulated people
(:mod:`looplab.trust.crowd`) answers the training part, ``overlap`` answers per record. Each
method turns the answers into training labels; a model is fitted on them and scored on the
held-out part, the same rows for every method:

* ``majority``: the majority vote (ties at random);
* ``dawid_skene``: Dawid-Skene consensus (:func:`looplab.trust.consensus.dawid_skene`);
* ``quarantine``: the people the reliability check flags
  (:func:`looplab.trust.reliability.annotator_evidence`) lose their answers and their records
  go back to the queue, where someone else answers them (:func:`looplab.trust.crowd.reanswer`),
  as ``quarantine_policy=auto`` does; then Dawid-Skene. ``extra_answers`` is what that costs;
* ``truth``: the true labels, the ceiling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from looplab.trust import MISSING
from looplab.trust.consensus import dawid_skene, majority_vote
from looplab.trust.crowd import SimulatedAnnotator, answers, reanswer
from looplab.trust.reliability import annotator_evidence

METHODS = ("majority", "dawid_skene", "quarantine", "truth")


def _split(y: np.ndarray, seed: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(y))
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def _labels_by_method(
    matrix: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    crowd: Sequence[SimulatedAnnotator],
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], list[int], int]:
    """Each method's training labels, the flagged people's columns, the answers asked again."""
    k = len(classes)
    ds = dawid_skene(matrix, n_classes=k)
    evidence = annotator_evidence(matrix, n_classes=k, consensus=ds, class_names=classes)
    flagged = [e.annotator for e in evidence if e.flagged]
    again, extra = reanswer(matrix, y, k, crowd, flagged, rng)
    answered = (again != MISSING).any(axis=1)
    after = dawid_skene(again[answered], n_classes=k).labels if flagged else ds.labels
    quarantined = ds.labels.copy()
    quarantined[answered] = after
    return (
        {
            "majority": majority_vote(matrix, n_classes=k, rng=rng).labels,
            "dawid_skene": ds.labels,
            "quarantine": quarantined,
            "truth": y,
        },
        flagged,
        extra,
    )


def run_crowd(
    X: Any,
    y: np.ndarray,
    classes: Sequence[str],
    make_model: Callable[[], Any],
    crowd: Sequence[SimulatedAnnotator],
    *,
    overlap: int,
    seed: int,
    test_size: float = 0.25,
) -> dict[str, Any]:
    """One seed: training-label accuracy and held-out accuracy of each method, and the flags."""
    k = len(classes)
    train, test = _split(y, seed, test_size)
    rng = np.random.default_rng(seed)
    matrix = answers(y[train], k, crowd, overlap, rng)
    by_method, flagged, extra = _labels_by_method(matrix, y[train], classes, crowd, rng)
    out: dict[str, Any] = {"seed": seed, "labels": {}, "model": {}, "extra_answers": extra}
    for method, labels in by_method.items():
        out["labels"][method] = float(np.mean(labels == y[train]))
        if len(np.unique(labels)) < 2:
            out["model"][method] = None  # nothing to learn from one class
            continue
        model = make_model().fit(X[train], labels)
        out["model"][method] = float(np.mean(model.predict(X[test]) == y[test]))
    out["flagged"] = [crowd[j].name for j in flagged]
    out["adversary_flagged"] = any(crowd[j].adversary for j in flagged)
    out["honest_flagged"] = [crowd[j].name for j in flagged if not crowd[j].adversary]
    out["answers"] = int((matrix != MISSING).sum())
    return out


def compare_crowds(
    X: Any,
    y: np.ndarray,
    classes: Sequence[str],
    make_model: Callable[[], Any],
    crowd: Sequence[SimulatedAnnotator],
    *,
    overlap: int,
    seeds: int,
    test_size: float = 0.25,
) -> dict[str, Any]:
    """:func:`run_crowd` over ``seeds`` seeds, with each method's mean and spread."""
    runs = [
        run_crowd(X, y, classes, make_model, crowd, overlap=overlap, seed=s, test_size=test_size)
        for s in range(seeds)
    ]
    summary: dict[str, Any] = {}
    for method in METHODS:
        labels = [r["labels"][method] for r in runs if r["labels"][method] is not None]
        model = [r["model"][method] for r in runs if r["model"][method] is not None]
        summary[method] = {
            "label_accuracy": float(np.mean(labels)) if labels else None,
            "model_accuracy": float(np.mean(model)) if model else None,
            "model_accuracy_sd": float(np.std(model)) if model else None,
        }
    has_adversary = any(p.adversary for p in crowd)
    return {
        "annotators": [
            {"name": p.name, "accuracy": p.accuracy, "adversary": p.adversary} for p in crowd
        ],
        "overlap": overlap,
        "seeds": seeds,
        "methods": summary,
        "adversary_flagged": sum(r["adversary_flagged"] for r in runs) if has_adversary else None,
        "honest_flagged": sum(len(r["honest_flagged"]) for r in runs),
        "answers": int(np.mean([r["answers"] for r in runs])),
        "extra_answers": float(np.mean([r["extra_answers"] for r in runs])),
        "runs": runs,
    }


def format_crowd_table(result: dict[str, Any]) -> str:
    """The comparison as people read it."""
    lines = [
        f"{'method':<12} {'training labels right':>22} {'held-out accuracy':>20}",
    ]
    for method, figures in result["methods"].items():
        label = figures["label_accuracy"]
        model = figures["model_accuracy"]
        lines.append(
            f"{method:<12} {'-' if label is None else f'{label:.1%}':>22} "
            + (
                f"{model:>14.1%} ± {figures['model_accuracy_sd']:.1%}"
                if model is not None
                else f"{'-':>20}"
            )
        )
    seeds = result["seeds"]
    if result["adversary_flagged"] is not None:
        lines.append(f"adversary flagged on {result['adversary_flagged']} of {seeds} seeds")
    lines.append(f"honest annotators flagged: {result['honest_flagged']} in {seeds} seeds")
    if result["extra_answers"]:
        lines.append(
            f"quarantine asked {result['extra_answers']:,.0f} answers again on average "
            f"({result['extra_answers'] / result['answers']:.0%} more than the "
            f"{result['answers']:,} given)"
        )
    return "\n".join(lines)
