"""The items x annotators label matrix every trust function reads, and its one check.

Entry ``[i, j]`` is the class index (``0 .. n_classes - 1``) annotator ``j`` gave item ``i``, or
:data:`~looplab.trust.MISSING` (``-1``) where ``j`` did not label ``i``. Names of items,
annotators and classes stay with the caller (:class:`LabelMatrix` keeps them beside the array),
so the maths below works on plain integers.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from looplab.trust import MISSING


@dataclass(frozen=True)
class LabelMatrix:
    """A label matrix with the names of its rows, columns and classes."""

    values: np.ndarray
    """``(n_items, n_annotators)`` int array of class indices, ``MISSING`` where unlabeled."""
    items: list[Hashable]
    annotators: list[Hashable]
    classes: list[Hashable]


def from_triples(
    items: Sequence[Hashable],
    annotators: Sequence[Hashable],
    labels: Sequence[Hashable],
    classes: Sequence[Hashable] | None = None,
) -> LabelMatrix:
    """Build a :class:`LabelMatrix` from ``(item, annotator, label)`` triples (one per answer).

    Rows, columns and classes are numbered in sorted order of their names (``classes`` fixes the
    class order when given, and then a label outside it is an error). When an annotator answered
    the same item twice, the later answer wins, as a superseding answer does in the store.

    Examples
    --------
    >>> m = from_triples(["q1", "q1", "q2"], ["ann", "bob", "ann"], ["yes", "no", "no"])
    >>> m.values.tolist(), m.classes
    ([[1, 0], [0, -1]], ['no', 'yes'])
    """
    if not len(items) == len(annotators) == len(labels):
        raise ValueError(
            f"items, annotators and labels must have one entry per answer; got lengths "
            f"{len(items)}, {len(annotators)} and {len(labels)}"
        )
    item_names = sorted(set(items), key=str)
    annotator_names = sorted(set(annotators), key=str)
    if classes is None:
        class_names = sorted(set(labels), key=str)
    else:
        class_names = list(classes)
        unknown = sorted({str(label) for label in labels} - {str(c) for c in class_names})
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not among the classes {class_names}")
    row = {name: i for i, name in enumerate(item_names)}
    col = {name: j for j, name in enumerate(annotator_names)}
    cls = {name: k for k, name in enumerate(class_names)}
    values = np.full((len(item_names), len(annotator_names)), MISSING, dtype=np.int64)
    for item, annotator, label in zip(items, annotators, labels, strict=True):
        values[row[item], col[annotator]] = cls[label]
    return LabelMatrix(values, item_names, annotator_names, class_names)


def check_matrix(labels: np.ndarray, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Validate a label matrix at a public edge; return it as int64 and its number of classes.

    ``n_classes`` defaults to the largest class index seen plus one.
    """
    array = np.asarray(labels)
    if array.ndim != 2:
        raise ValueError(f"labels must be a 2-D items x annotators matrix; got shape {array.shape}")
    if (
        array.size
        and not np.issubdtype(array.dtype, np.integer)
        and (not np.issubdtype(array.dtype, np.floating) or not np.all(array == np.round(array)))
    ):
        raise ValueError(
            f"labels must hold integer class indices (and {MISSING} for missing); "
            f"got dtype {array.dtype}"
        )
    array = array.astype(np.int64, copy=False)
    if array.size and array.min() < MISSING:
        i, j = np.argwhere(array < MISSING)[0]
        raise ValueError(
            f"labels[{i}, {j}] = {array[i, j]}: class indices start at 0, {MISSING} is missing"
        )
    seen = int(array.max()) + 1 if array.size else 0
    if n_classes is None:
        n_classes = max(seen, 1)
    elif seen > n_classes:
        i, j = np.argwhere(array >= n_classes)[0]
        raise ValueError(
            f"labels[{i}, {j}] = {array[i, j]} is not a class index below n_classes={n_classes}"
        )
    return array, n_classes


def counts_per_item(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_items, n_classes)`` how many annotators gave each class to each item."""
    rows, cols = np.nonzero(labels != MISSING)
    counts = np.zeros((labels.shape[0], n_classes), dtype=np.float64)
    np.add.at(counts, (rows, labels[rows, cols]), 1.0)
    return counts
