"""Reference profiles and window summaries: what a monitor stores instead of rows.

A :class:`Profile` summarises a frame column by column according to a schema
(``{"age": "numeric", "country": "categorical", "body": "text"}``):

* numeric columns: a :class:`~looplab.watch.drift.sketch.NumericSketch` (counts on ``bins`` quantile
  edges of the reference, tail sums, mean and M2);
* categorical columns: :class:`~looplab.watch.drift.sketch.CategoryCounts` over the reference's
  ``max_categories`` most frequent values;
* all numeric columns together: :class:`~looplab.watch.drift.sketch.Moments` (for Hotelling's test);
* a :class:`~looplab.watch.drift.sketch.RowSample` of ``sample_size`` rows of the numeric and text
  columns (for the text test, the domain classifier and MMD).

The reference profile is built once per model version from its training inputs
(:meth:`Profile.from_frame`) and stored as JSON (:meth:`Profile.to_dict`; with 20 numeric
columns, 256 bins and 1,000 sampled rows it is about 0.5 MB). A window starts empty from it
(:meth:`Profile.new_window`, which copies the edges and categories), takes batches as they come
(:meth:`Profile.update`) and can be merged with another window (:meth:`Profile.merge`, e.g.
hours into a day). Counts and samples come out identical however the rows were batched, moments
equal up to rounding, so a monitor never re-reads the prediction log. Columns a window batch
lacks count as missing there; the reference must have every column of the schema.

Examples
--------
>>> import pandas as pd
>>> rng = np.random.default_rng(0)
>>> train = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
>>> ref = Profile.from_frame(train, {"x": "numeric", "c": "categorical"}, seed=0)
>>> window = ref.new_window(seed=1)
>>> for batch in range(3):
...     window = window.update(train.sample(100, random_state=batch))
>>> window.n, Profile.from_dict(ref.to_dict()).n
(300, 500)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from looplab.watch.drift.sketch import CategoryCounts, Moments, NumericSketch, RowSample

KINDS = ("numeric", "categorical", "text")
FORMAT = 1


def check_schema(schema: Mapping[str, str]) -> dict[str, str]:
    """Validate a column -> kind mapping; raise ``ValueError`` naming the bad entry."""
    if not schema:
        raise ValueError("schema is empty: map each column to one of " + ", ".join(KINDS))
    out = {}
    for column, kind in schema.items():
        if kind not in KINDS:
            raise ValueError(f"column {column!r} has kind {kind!r}: use one of {', '.join(KINDS)}")
        out[str(column)] = str(kind)
    return out


@dataclass
class Profile:
    """Mergeable summary of a frame: a reference profile or a monitor window (see module doc)."""

    schema: dict[str, str]
    n: int = 0
    numeric: dict[str, NumericSketch] = field(default_factory=dict)
    categorical: dict[str, CategoryCounts] = field(default_factory=dict)
    text_missing: dict[str, int] = field(default_factory=dict)
    moments: Moments | None = None
    sample: RowSample | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def numeric_columns(self) -> list[str]:
        return [c for c, k in self.schema.items() if k == "numeric"]

    @property
    def text_columns(self) -> list[str]:
        return [c for c, k in self.schema.items() if k == "text"]

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        schema: Mapping[str, str],
        *,
        bins: int | None = 256,
        max_categories: int = 50,
        sample_size: int = 1000,
        seed: int | None = 0,
    ) -> Profile:
        """Profile a reference frame (a DataFrame or a mapping of column -> 1-D array).

        Parameters
        ----------
        frame : DataFrame or mapping
            The reference rows, e.g. a model version's training inputs.
        schema : mapping
            Column -> ``"numeric"``, ``"categorical"`` or ``"text"``.
        bins : int or None
            Quantile intervals per numeric column (``None``: every distinct value, exact KS).
        max_categories : int
            Categories kept by name per categorical column; the rest are pooled.
        sample_size : int
            Rows kept for the sample-based tests (0 for none).
        seed : int or None
            Salt of the row sample (``None``: fresh entropy).
        """
        schema = check_schema(schema)
        missing = [c for c in schema if c not in frame]
        if missing:
            raise ValueError(f"reference frame lacks columns {missing} named in the schema")
        columns = {c: _column(frame, c, schema[c]) for c in schema}
        n = _length(columns, frame)
        profile = cls(
            schema,
            settings={"bins": bins, "max_categories": max_categories, "sample_size": sample_size},
        )
        for c, kind in schema.items():
            if kind == "numeric":
                profile.numeric[c] = NumericSketch.reference(columns[c], bins=bins)
            elif kind == "categorical":
                profile.categorical[c] = CategoryCounts.reference(
                    columns[c], max_categories=max_categories
                )
            else:
                profile.text_missing[c] = 0
        profile.moments = Moments.empty(len(profile.numeric_columns))
        profile.sample = RowSample.empty(
            sample_size,
            salt=_salt(seed),
            numeric_columns=profile.numeric_columns,
            text_columns=profile.text_columns,
        )
        profile._add_rows(columns, n, sketches=False)
        return profile

    def new_window(self, *, seed: int | None = None) -> Profile:
        """An empty summary on this profile's edges and categories, ready for :meth:`update`.

        ``seed`` salts the window's row sample; leave it ``None`` (fresh entropy) for windows you
        may later merge, which need distinct salts.
        """
        return Profile(
            dict(self.schema),
            numeric={c: s.empty() for c, s in self.numeric.items()},
            categorical={c: s.empty() for c, s in self.categorical.items()},
            text_missing={c: 0 for c in self.text_missing},
            moments=Moments.empty(len(self.numeric)),
            sample=RowSample.empty(
                self.settings.get("sample_size", 1000),
                salt=_salt(seed),
                numeric_columns=self.numeric_columns,
                text_columns=self.text_columns,
            ),
            settings=dict(self.settings),
        )

    def update(self, frame: Any) -> Profile:
        """Add a batch of rows in place and return ``self``."""
        columns = {
            c: _column(frame, c, kind) if c in frame else None for c, kind in self.schema.items()
        }
        n = _length(columns, frame)
        filled = {
            c: (v if v is not None else _missing(kind, n))
            for (c, kind), v in zip(self.schema.items(), columns.values(), strict=True)
        }
        self._add_rows(filled, n, sketches=True)
        return self

    def _add_rows(self, columns: dict[str, Any], n: int, *, sketches: bool) -> None:
        self.n += n
        for c, kind in self.schema.items():
            if kind == "numeric" and sketches:
                self.numeric[c].update(columns[c])
            elif kind == "categorical" and sketches:
                self.categorical[c].update(columns[c])
            elif kind == "text":
                self.text_missing[c] += sum(1 for v in columns[c] if v is None or v != v)
        num = self.numeric_columns
        assert self.moments is not None and self.sample is not None
        # Row blocks are built a chunk at a time so a big frame is never copied whole.
        if num:
            chunk = 65_536
            for start in range(0, n, chunk):
                self.moments.update(
                    np.column_stack([columns[c][start : start + chunk] for c in num])
                )
        self.sample.update(
            {c: columns[c] for c in num}, {c: columns[c] for c in self.text_columns}, n=n
        )

    def merge(self, other: Profile) -> Profile:
        """A new summary of both sets of rows (two windows of one reference)."""
        if self.schema != other.schema:
            raise ValueError("cannot merge summaries of different schemas")
        assert self.moments is not None and other.moments is not None
        assert self.sample is not None and other.sample is not None
        return Profile(
            dict(self.schema),
            self.n + other.n,
            {c: s.merge(other.numeric[c]) for c, s in self.numeric.items()},
            {c: s.merge(other.categorical[c]) for c, s in self.categorical.items()},
            {c: v + other.text_missing[c] for c, v in self.text_missing.items()},
            self.moments.merge(other.moments),
            self.sample.merge(other.sample),
            dict(self.settings),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (store it as is; :meth:`from_dict` restores it)."""
        assert self.moments is not None and self.sample is not None
        return {
            "format": FORMAT,
            "schema": dict(self.schema),
            "n": self.n,
            "numeric": {c: s.to_dict() for c, s in self.numeric.items()},
            "categorical": {c: s.to_dict() for c, s in self.categorical.items()},
            "text_missing": dict(self.text_missing),
            "moments": self.moments.to_dict(),
            "sample": self.sample.to_dict(),
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        if d.get("format") != FORMAT:
            raise ValueError(
                f"profile format {d.get('format')!r} is not {FORMAT}: rebuild the profile"
            )
        return cls(
            check_schema(d["schema"]),
            int(d["n"]),
            {c: NumericSketch.from_dict(s) for c, s in d["numeric"].items()},
            {c: CategoryCounts.from_dict(s) for c, s in d["categorical"].items()},
            {c: int(v) for c, v in d["text_missing"].items()},
            Moments.from_dict(d["moments"]),
            RowSample.from_dict(d["sample"]),
            dict(d.get("settings", {})),
        )


def _column(frame: Any, name: str, kind: str) -> np.ndarray:
    values = frame[name]
    if kind == "numeric":
        try:
            # A float64 column of a DataFrame comes back as a view, not a copy.
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"column {name!r} is declared numeric but holds non-numbers: {exc}"
            ) from None
    return np.asarray(values, dtype=object)


def _missing(kind: str, n: int) -> np.ndarray:
    return np.full(n, np.nan) if kind == "numeric" else np.full(n, None, dtype=object)


def _length(columns: Mapping[str, Any], frame: Any) -> int:
    lengths = {len(v) for v in columns.values() if v is not None}
    if len(lengths) > 1:
        raise ValueError(f"columns have different lengths {sorted(lengths)}")
    if lengths:
        return lengths.pop()
    return len(frame)


def _salt(seed: int | None) -> int:
    return int(np.random.SeedSequence(seed).generate_state(2, dtype=np.uint32).view(np.uint64)[0])
