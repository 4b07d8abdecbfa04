"""Mergeable summaries of columns: the state a reference profile and a monitor window keep.

Every summary here is built from a batch, updated with the next batch and merged with a summary
of other rows, and the result does not depend on how the rows were split into batches (exactly
for counts and samples, up to float rounding for moments). That is what lets a monitor keep one
small summary per window instead of re-reading the prediction log.

=================  =======================================================  ===================
summary            holds                                                    feeds
=================  =======================================================  ===================
``NumericSketch``  counts at and between fixed edges (the reference's        KS, normed
                   quantiles), tail sums, n, mean and M2                    Wasserstein, Welch
``CategoryCounts`` counts of the reference's categories and of the rest     chi-square, JS
``Moments``        n, mean vector and co-moment matrix of numeric columns   Hotelling's T^2
``RowSample``      a fixed-size uniform sample of rows (bottom-k of a        domain classifier,
                   salted hash of the row's position)                       MMD, text
=================  =======================================================  ===================

Each has ``to_dict``/``from_dict`` (plain JSON types) and ``merge``; the ones a window fills
have ``update``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Values seen in a window but not in the reference, kept by name (the rest are only counted).
MAX_UNSEEN_NAMES = 50
OTHER = "__other__"


@dataclass
class NumericSketch:
    """Counts of one numeric column on fixed edges, plus its first two moments.

    The edges are sorted values of the reference. ``at[k]`` counts values equal to ``edges[k]``
    and ``between[k]`` values strictly between ``edges[k-1]`` and ``edges[k]`` (``between[0]``
    below the first edge, ``between[-1]`` above the last), so both empirical CDFs are known
    exactly at every edge and just before it. When the edges are all of the reference's
    distinct values (``bins=None``) that is enough for the exact two-sample KS statistic; with
    quantile edges the statistic is taken over the edges only, which can only make it smaller,
    so the test stays valid (conservative). Non-finite values count as missing.

    Examples
    --------
    >>> ref = NumericSketch.reference(np.arange(10.0), bins=None)
    >>> win = ref.empty().update(np.array([2.0, 2.5, 11.0]))
    >>> win.at.tolist()[:4], win.between.tolist()[-1], win.n
    ([0, 0, 1, 0], 1, 3)
    """

    edges: np.ndarray
    at: np.ndarray
    between: np.ndarray
    below_sum: float = 0.0
    above_sum: float = 0.0
    n: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def reference(cls, x: np.ndarray, *, bins: int | None = 256) -> NumericSketch:
        """Edges from ``x`` (every distinct value, or ``bins`` quantile intervals); count ``x``."""
        x = np.asarray(x, dtype=np.float64)
        xs = np.sort(x[np.isfinite(x)])
        if xs.size == 0:
            edges = np.empty(0)
        elif bins is None:
            edges = np.unique(xs)
        else:
            # Quantiles are read off the sorted values, so edges are data values and include the
            # minimum and maximum: the reference then has no mass outside them.
            idx = np.unique(np.round(np.linspace(0, xs.size - 1, bins + 1)).astype(np.int64))
            edges = np.unique(xs[idx])
        sketch = cls.empty_on(edges)
        sketch._add_sorted(xs, missing=int(x.size - xs.size))
        return sketch

    @classmethod
    def empty_on(cls, edges: np.ndarray) -> NumericSketch:
        k = len(edges)
        return cls(
            np.asarray(edges, dtype=np.float64), np.zeros(k, np.int64), np.zeros(k + 1, np.int64)
        )

    def empty(self) -> NumericSketch:
        """An empty sketch on the same edges (a new window)."""
        return NumericSketch.empty_on(self.edges)

    def update(self, x: np.ndarray) -> NumericSketch:
        """Add a batch of values in place; returns ``self``."""
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        # Sorting then locating the K edges is about twice as fast as locating each of n values.
        xs = np.sort(x if finite.all() else x[finite])
        self._add_sorted(xs, missing=int(x.size - xs.size))
        return self

    def _add_sorted(self, xs: np.ndarray, *, missing: int) -> None:
        self.missing += missing
        if xs.size == 0:
            return
        left = np.searchsorted(xs, self.edges, side="left")
        right = np.searchsorted(xs, self.edges, side="right")
        at = right - left
        if self.edges.size:
            between = np.concatenate(([left[0]], left[1:] - right[:-1], [xs.size - right[-1]]))
        else:
            between = np.array([xs.size])
        self.at += at
        self.between += between
        lo = int(left[0]) if left.size else xs.size
        hi = int(right[-1]) if right.size else xs.size
        self.below_sum += float(xs[:lo].sum())
        self.above_sum += float(xs[hi:].sum())
        mean = float(xs.mean())
        m2 = float(np.square(xs - mean).sum())
        self.n, self.mean, self.m2 = _chan(self.n, self.mean, self.m2, xs.size, mean, m2)

    def merge(self, other: NumericSketch) -> NumericSketch:
        """A new sketch of both sets of rows (same edges required)."""
        if not np.array_equal(self.edges, other.edges):
            raise ValueError(
                "cannot merge sketches on different edges: build both from one profile"
            )
        n, mean, m2 = _chan(self.n, self.mean, self.m2, other.n, other.mean, other.m2)
        return NumericSketch(
            self.edges,
            self.at + other.at,
            self.between + other.between,
            self.below_sum + other.below_sum,
            self.above_sum + other.above_sum,
            n,
            self.missing + other.missing,
            mean,
            m2,
        )

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else 0.0

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """Empirical CDF just before each edge and at each edge."""
        total = max(self.n, 1)
        before = np.cumsum(self.between[:-1]) + np.concatenate(([0], np.cumsum(self.at)[:-1]))
        return before / total, (before + self.at) / total

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "at": self.at.tolist(),
            "between": self.between.tolist(),
            "below_sum": self.below_sum,
            "above_sum": self.above_sum,
            "n": self.n,
            "missing": self.missing,
            "mean": self.mean,
            "m2": self.m2,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSketch:
        return cls(
            np.asarray(d["edges"], dtype=np.float64),
            np.asarray(d["at"], dtype=np.int64),
            np.asarray(d["between"], dtype=np.int64),
            float(d["below_sum"]),
            float(d["above_sum"]),
            int(d["n"]),
            int(d["missing"]),
            float(d["mean"]),
            float(d["m2"]),
        )


@dataclass
class CategoryCounts:
    """Counts of one categorical column over the reference's categories.

    ``counts`` has one entry per category and a last one for everything else: the reference's
    tail beyond ``max_categories``, or, in a window, values the reference never had (also kept
    by name in ``unseen``, up to :data:`MAX_UNSEEN_NAMES` names). Values are compared as strings;
    ``None`` and NaN count as missing.

    Examples
    --------
    >>> ref = CategoryCounts.reference(["a", "a", "b", "c"], max_categories=2)
    >>> ref.categories, ref.counts.tolist()
    (['a', 'b'], [2, 1, 1])
    >>> win = ref.empty().update(["b", "z", None])
    >>> win.counts.tolist(), win.unseen, win.missing
    ([0, 1, 1], {'z': 1}, 1)
    """

    categories: list[str]
    counts: np.ndarray
    missing: int = 0
    unseen: dict[str, int] = field(default_factory=dict)

    @classmethod
    def reference(
        cls, values: Sequence[Any] | np.ndarray, *, max_categories: int = 50
    ) -> CategoryCounts:
        """Keep the ``max_categories`` most frequent values of ``values`` (ties by name)."""
        names, counts, missing = _value_counts(values)
        order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
        keep = order[:max_categories]
        rest = int(sum(counts[i] for i in order[max_categories:]))
        return cls(
            [names[i] for i in keep],
            np.asarray([counts[i] for i in keep] + [rest], dtype=np.int64),
            missing,
        )

    def empty(self) -> CategoryCounts:
        return CategoryCounts(list(self.categories), np.zeros(len(self.categories) + 1, np.int64))

    def update(self, values: Sequence[Any] | np.ndarray) -> CategoryCounts:
        """Add a batch in place; returns ``self``."""
        names, counts, missing = _value_counts(values)
        index = {c: i for i, c in enumerate(self.categories)}
        self.missing += missing
        for name, count in zip(names, counts, strict=True):
            i = index.get(name)
            if i is not None:
                self.counts[i] += count
                continue
            self.counts[-1] += count
            if name in self.unseen or len(self.unseen) < MAX_UNSEEN_NAMES:
                self.unseen[name] = self.unseen.get(name, 0) + count
        return self

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        if self.categories != other.categories:
            raise ValueError(
                "cannot merge counts over different categories: build both from one profile"
            )
        unseen = dict(self.unseen)
        for name, count in other.unseen.items():
            if name in unseen or len(unseen) < MAX_UNSEEN_NAMES:
                unseen[name] = unseen.get(name, 0) + count
        return CategoryCounts(
            list(self.categories), self.counts + other.counts, self.missing + other.missing, unseen
        )

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "counts": self.counts.tolist(),
            "missing": self.missing,
            "unseen": dict(self.unseen),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoryCounts:
        return cls(
            [str(c) for c in d["categories"]],
            np.asarray(d["counts"], dtype=np.int64),
            int(d["missing"]),
            {str(k): int(v) for k, v in d.get("unseen", {}).items()},
        )


@dataclass
class Moments:
    """Count, mean vector and co-moment matrix of complete numeric rows (Chan et al.'s merge).

    Examples
    --------
    >>> x = np.arange(12.0).reshape(6, 2)
    >>> a = Moments.empty(2).update(x[:2]).update(x[2:])
    >>> np.allclose(a.covariance(), np.cov(x.T)), a.n
    (True, 6)
    """

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, p: int) -> Moments:
        return cls(0, np.zeros(p), np.zeros((p, p)))

    def update(self, x: np.ndarray, *, chunk: int = 65_536) -> Moments:
        """Add the rows of ``x`` with no missing value, in place; returns ``self``."""
        from looplab.watch.drift.base import one_blas_thread

        x = np.asarray(x, dtype=np.float64)
        with one_blas_thread():
            for start in range(0, len(x), chunk):
                block = x[start : start + chunk]
                finite = np.isfinite(block).all(axis=1)
                if not finite.all():
                    block = block[finite]
                if len(block) == 0:
                    continue
                mean = block.mean(axis=0)
                centred = block - mean
                self._merge_in(len(block), mean, centred.T @ centred)
        return self

    def _merge_in(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.m2 = self.m2 + m2 + np.outer(delta, delta) * (self.n * n / total)
        self.mean = self.mean + delta * (n / total)
        self.n = total

    def merge(self, other: Moments) -> Moments:
        out = Moments(self.n, self.mean.copy(), self.m2.copy())
        if other.n:
            out._merge_in(other.n, other.mean, other.m2)
        return out

    def covariance(self) -> np.ndarray:
        return self.m2 / max(self.n - 1, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Moments:
        p = len(d["mean"])
        return cls(
            int(d["n"]), np.asarray(d["mean"], dtype=np.float64), np.asarray(d["m2"]).reshape(p, p)
        )


@dataclass
class RowSample:
    """A uniform sample of at most ``size`` rows that updates and merges exactly.

    Row ``i`` of the stream (counting from 0 over all updates) gets the priority
    ``splitmix64(salt, i)`` mapped to [0, 1), and the sample is the ``size`` rows of lowest
    priority (bottom-k sampling). Priorities are independent uniforms, so the sample is a simple
    random sample of the rows seen; updating batch by batch selects the same rows as one update
    with everything; merging two samples with different salts keeps the bottom ``size`` of the
    union, a uniform sample of both streams. A row's position, not its content, is hashed, so
    duplicated rows are sampled like any others.

    ``numeric`` holds the sampled rows' numeric columns, ``text`` their text columns.

    Examples
    --------
    >>> x = np.arange(100.0).reshape(50, 2)
    >>> a = RowSample.empty(5, salt=7, numeric_columns=["u", "v"])
    >>> a.update(x[:20]).update(x[20:])  # doctest: +ELLIPSIS
    RowSample(...)
    >>> b = RowSample.empty(5, salt=7, numeric_columns=["u", "v"]).update(x)
    >>> np.array_equal(a.numeric, b.numeric), a.seen
    (True, 50)
    """

    size: int
    salt: int
    numeric_columns: list[str]
    text_columns: list[str] = field(default_factory=list)
    seen: int = 0
    priority: np.ndarray = field(default_factory=lambda: np.empty(0))
    numeric: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    text: dict[str, list[str | None]] = field(default_factory=dict)

    @classmethod
    def empty(
        cls,
        size: int,
        *,
        salt: int,
        numeric_columns: Sequence[str] = (),
        text_columns: Sequence[str] = (),
    ) -> RowSample:
        return cls(
            size,
            int(salt) % 2**64,
            list(numeric_columns),
            list(text_columns),
            numeric=np.empty((0, len(numeric_columns))),
            text={c: [] for c in text_columns},
        )

    def update(
        self,
        numeric: Mapping[str, np.ndarray] | np.ndarray | None = None,
        text: Mapping[str, Sequence[Any]] | None = None,
        *,
        n: int | None = None,
    ) -> RowSample:
        """Offer a batch of rows: numeric columns (a 2-D array or a name -> 1-D array mapping)
        and text columns, all of the same length ``n``."""
        if n is None:
            if isinstance(numeric, np.ndarray):
                n = len(numeric)
            elif numeric:
                n = len(next(iter(numeric.values())))
            else:
                n = len(next(iter((text or {}).values()), []))
        prio = _priorities(self.salt, self.seen, n)
        self.seen += n
        if n == 0 or self.size == 0:
            return self
        # Only rows that can enter the sample are gathered, so a big batch costs one hash pass.
        if len(self.priority) >= self.size:
            cand = np.flatnonzero(prio < self.priority.max())
        else:
            cand = np.arange(n)
        if len(cand) > self.size:
            cand = cand[np.argpartition(prio[cand], self.size - 1)[: self.size]]
        if isinstance(numeric, np.ndarray):
            rows = np.asarray(numeric, dtype=np.float64)[cand].reshape(len(cand), -1)
        elif numeric and self.numeric_columns:
            rows = np.column_stack(
                [np.asarray(numeric[c], dtype=np.float64)[cand] for c in self.numeric_columns]
            )
        else:
            rows = np.empty((len(cand), len(self.numeric_columns)))
        texts: dict[str, list[str | None]] = {}
        for c in self.text_columns:
            if text and c in text:
                texts[c] = [_text(text[c][int(i)]) for i in cand]
            else:
                texts[c] = [None] * len(cand)
        self._keep(
            np.concatenate([self.priority, prio[cand]]),
            np.concatenate([self.numeric, rows]),
            {c: self.text[c] + texts[c] for c in self.text_columns},
        )
        return self

    def _keep(
        self, prio: np.ndarray, numeric: np.ndarray, text: dict[str, list[str | None]]
    ) -> None:
        order = np.argsort(prio, kind="stable")[: self.size]
        self.priority = prio[order]
        self.numeric = numeric[order]
        self.text = {c: [v[i] for i in order] for c, v in text.items()}

    def merge(self, other: RowSample) -> RowSample:
        if self.numeric_columns != other.numeric_columns or self.text_columns != other.text_columns:
            raise ValueError("cannot merge samples of different columns")
        if self.salt == other.salt and self.seen and other.seen:
            raise ValueError(
                "cannot merge samples drawn with the same salt: give windows distinct seeds"
            )
        out = RowSample.empty(
            max(self.size, other.size),
            salt=self.salt,
            numeric_columns=self.numeric_columns,
            text_columns=self.text_columns,
        )
        out.seen = self.seen + other.seen
        out._keep(
            np.concatenate([self.priority, other.priority]),
            np.concatenate([self.numeric, other.numeric]),
            {c: self.text[c] + other.text[c] for c in self.text_columns},
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "salt": self.salt,
            "numeric_columns": self.numeric_columns,
            "text_columns": self.text_columns,
            "seen": self.seen,
            "priority": self.priority.tolist(),
            # JSON has no NaN: missing numbers travel as null.
            "numeric": [[None if v != v else v for v in row] for row in self.numeric.tolist()],
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RowSample:
        cols = list(d["numeric_columns"])
        rows = [[np.nan if v is None else v for v in row] for row in d["numeric"]]
        return cls(
            int(d["size"]),
            int(d["salt"]),
            cols,
            list(d["text_columns"]),
            int(d["seen"]),
            np.asarray(d["priority"], dtype=np.float64),
            np.asarray(rows, dtype=np.float64).reshape(len(rows), len(cols)),
            {c: list(v) for c, v in d["text"].items()},
        )


def _chan(
    na: int, ma: float, m2a: float, nb: int, mb: float, m2b: float
) -> tuple[int, float, float]:
    n = na + nb
    if n == 0:
        return 0, 0.0, 0.0
    delta = mb - ma
    return n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _priorities(salt: int, start: int, n: int) -> np.ndarray:
    """splitmix64 of (salt, position) for positions start..start+n-1, as floats in [0, 1)."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) * _GOLDEN + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _value_counts(values: Sequence[Any] | np.ndarray) -> tuple[list[str], list[int], int]:
    import pandas as pd

    s = pd.Series(np.asarray(values, dtype=object) if not isinstance(values, pd.Series) else values)
    vc = s.value_counts(dropna=True)
    missing = int(len(s) - vc.sum())
    merged: dict[str, int] = {}
    for k, v in vc.items():
        key = str(k)
        merged[key] = merged.get(key, 0) + int(v)
    return list(merged), list(merged.values()), missing


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    return str(v)
