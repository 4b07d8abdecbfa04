"""A drifted feature's estimated effect on accuracy, with its sign.

A drift test says a feature's mix changed, not whether that matters: traffic moving towards
the cases the model gets right is not a risk. So the reference keeps, per feature, the model's
accuracy on its held-out records in each category (or each fifth of a numeric feature's
training range), and a window's effect of feature ``f`` is

    sum over categories c of (window share of c - reference share of c) * accuracy on c

the change of accuracy the mix change alone would bring if each category kept its accuracy.
Negative means accuracy at risk. It sees one feature at a time and only mix changes: a change of
accuracy *within* a category (P(y|x) moving) is for labels to show.

Held-out accuracies are shrunk towards the overall accuracy (``PRIOR`` pseudo-rows), so a
category seen on three held-out records does not swing the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from looplab.watch.drift import Profile

#: Pseudo-rows at the overall accuracy added to every category's held-out accuracy.
PRIOR = 20.0
#: Numeric features are cut at these quantiles of the training values.
QUANTILES = (0.2, 0.4, 0.6, 0.8)


def _cuts(edges: np.ndarray) -> np.ndarray:
    """Cut points among the sketch's edges (which are training quantiles), so windows' counts
    below each are exact."""
    if edges.size == 0:
        return edges
    idx = np.unique(np.round(np.asarray(QUANTILES) * (edges.size - 1)).astype(int))
    return np.unique(edges[idx])


def _numeric_shares(sketch: Any, cuts: np.ndarray) -> np.ndarray:
    """Share of a sketch's values in (-inf, c1], (c1, c2], ..., (ck, inf)."""
    if sketch.n == 0:
        return np.zeros(len(cuts) + 1)
    _, at = sketch.cdf()
    cum = at[np.searchsorted(sketch.edges, cuts)] if cuts.size else np.zeros(0)
    return np.diff(np.concatenate(([0.0], cum, [1.0])))


def _category_shares(counts: Any) -> np.ndarray:
    c = np.asarray(counts.counts, dtype=float)
    return c / c.sum() if c.sum() else c


def accuracy_by_feature(
    profile: Profile, cells: Mapping[str, Sequence[Any]], correct: Sequence[bool]
) -> dict[str, Any]:
    """Held-out accuracy per category or numeric bin of each numeric or categorical feature.

    ``cells`` holds the held-out records' values as the profile reads them
    (:func:`looplab.watch.reference.frame_of`), ``correct`` whether the model was right on each.
    """
    right = np.asarray(correct, dtype=float)
    if right.size == 0:
        return {}
    overall = float(right.mean())
    out: dict[str, Any] = {"overall": overall, "n": int(right.size), "features": {}}
    for name, kind in profile.schema.items():
        values = cells.get(name)
        if values is None or kind == "text":
            continue
        if kind == "numeric":
            sketch = profile.numeric[name]
            cuts = _cuts(sketch.edges)
            x = np.asarray([np.nan if v is None else v for v in values], dtype=float)
            ok = np.isfinite(x)
            bins = np.searchsorted(cuts, x[ok], side="left")
            size = len(cuts) + 1
            entry: dict[str, Any] = {"kind": "numeric", "cuts": cuts.tolist()}
        else:
            cats = profile.categorical[name].categories
            index = {c: i for i, c in enumerate(cats)}
            ok = np.asarray([v is not None for v in values])
            bins = np.asarray([index.get(str(v), len(cats)) for v in values if v is not None])
            size = len(cats) + 1
            entry = {"kind": "categorical"}
        n = np.bincount(bins, minlength=size).astype(float)
        k = np.bincount(bins, weights=right[ok], minlength=size)
        entry["n"] = n.tolist()
        entry["accuracy"] = ((k + PRIOR * overall) / (n + PRIOR)).tolist()
        out["features"][name] = entry
    return out


def accuracy_effects(
    accuracy_by: dict[str, Any], reference: Profile, window: Profile
) -> dict[str, float]:
    """Each feature's effect on accuracy of its mix change (negative = accuracy at risk)."""
    effects = {}
    for name, entry in (accuracy_by.get("features") or {}).items():
        acc = np.asarray(entry["accuracy"], dtype=float)
        if entry["kind"] == "numeric":
            if name not in window.numeric:
                continue
            cuts = np.asarray(entry["cuts"], dtype=float)
            ref = _numeric_shares(reference.numeric[name], cuts)
            win = _numeric_shares(window.numeric[name], cuts)
        else:
            if name not in window.categorical:
                continue
            ref = _category_shares(reference.categorical[name])
            win = _category_shares(window.categorical[name])
        if ref.size != acc.size or win.size != acc.size or not win.sum():
            continue
        effects[name] = float(np.dot(win - ref, acc))
    return effects
