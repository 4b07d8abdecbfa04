"""Profiles and windows: incremental equals batch, merges, JSON round trips, exact KS."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from looplab.watch.drift import DriftReport, KSDetector, Profile, drift_report
from looplab.watch.drift.sketch import CategoryCounts, NumericSketch, RowSample

SCHEMA = {"a": "numeric", "b": "numeric", "c": "categorical", "t": "text"}


def frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    a[rng.uniform(size=n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "a": a,
            "b": np.round(rng.exponential(size=n), 1),  # ties
            "c": rng.choice(["x", "y", "z", "w"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "t": rng.choice(["red apple", "green pear", None, "blue plum"], n),
        }
    )


def same(p: Profile, q: Profile) -> None:
    assert p.n == q.n
    for c in p.numeric:
        x, y = p.numeric[c], q.numeric[c]
        assert np.array_equal(x.at, y.at) and np.array_equal(x.between, y.between)
        assert (x.n, x.missing) == (y.n, y.missing)
        assert x.mean == pytest.approx(y.mean) and x.m2 == pytest.approx(y.m2)
        assert x.below_sum == pytest.approx(y.below_sum) and x.above_sum == pytest.approx(
            y.above_sum
        )
    for c in p.categorical:
        assert np.array_equal(p.categorical[c].counts, q.categorical[c].counts)
        assert p.categorical[c].unseen == q.categorical[c].unseen
    assert p.text_missing == q.text_missing
    assert p.moments is not None and q.moments is not None
    assert p.moments.n == q.moments.n
    assert np.allclose(p.moments.mean, q.moments.mean) and np.allclose(p.moments.m2, q.moments.m2)


def same_report(a: DriftReport, b: DriftReport) -> None:
    """Equal decisions; numbers equal up to the float rounding of merged moments."""
    assert (a.alarm, a.blamed, a.n_window) == (b.alarm, b.blamed, b.n_window)
    for f, g in zip(a.features, b.features, strict=True):
        assert (f.name, f.significant, f.blamed) == (g.name, g.significant, g.blamed)
        assert f.p_value == pytest.approx(g.p_value, rel=1e-9, abs=1e-300)
        assert f.effect_size == pytest.approx(g.effect_size, rel=1e-9)
    assert a.multivariate is not None and b.multivariate is not None
    assert a.multivariate.p_value == pytest.approx(b.multivariate.p_value, rel=1e-6)


def test_incremental_window_equals_batch() -> None:
    ref = Profile.from_frame(frame(0, 3000), SCHEMA, bins=32, sample_size=200)
    data = frame(1, 2500)
    batch = ref.new_window(seed=5).update(data)
    incremental = ref.new_window(seed=5)
    for start in range(0, 2500, 333):
        incremental.update(data.iloc[start : start + 333])
    same(batch, incremental)
    assert batch.sample is not None and incremental.sample is not None
    assert np.array_equal(batch.sample.priority, incremental.sample.priority)
    assert np.array_equal(batch.sample.numeric, incremental.sample.numeric, equal_nan=True)
    assert batch.sample.text == incremental.sample.text
    same_report(drift_report(ref, batch, rng=0), drift_report(ref, incremental, rng=0))


def test_merged_windows_equal_one_window() -> None:
    ref = Profile.from_frame(frame(0, 3000), SCHEMA, sample_size=300)
    data = frame(2, 2000)
    whole = ref.new_window(seed=1).update(data)
    left = ref.new_window(seed=2).update(data.iloc[:700])
    right = ref.new_window(seed=3).update(data.iloc[700:])
    merged = left.merge(right)
    same(whole, merged)
    assert merged.sample is not None and len(merged.sample.priority) == 300
    # the merged sample is the bottom 300 of both samples' priorities
    assert left.sample is not None and right.sample is not None
    both = np.sort(np.r_[left.sample.priority, right.sample.priority])[:300]
    assert np.array_equal(merged.sample.priority, both)


def test_merging_samples_with_one_salt_is_refused() -> None:
    ref = Profile.from_frame(frame(0, 500), SCHEMA)
    a = ref.new_window(seed=1).update(frame(1, 100))
    b = ref.new_window(seed=1).update(frame(2, 100))
    with pytest.raises(ValueError, match="distinct seeds"):
        a.merge(b)


def test_profile_json_round_trip() -> None:
    ref = Profile.from_frame(frame(0, 2000), SCHEMA, sample_size=100)
    window = ref.new_window(seed=4).update(frame(3, 800))
    ref2 = Profile.from_dict(json.loads(json.dumps(ref.to_dict())))
    window2 = Profile.from_dict(json.loads(json.dumps(window.to_dict())))
    same(ref, ref2)
    same(window, window2)
    assert ref2.to_dict() == ref.to_dict()
    a = drift_report(ref, window, rng=0).to_dict()
    b = drift_report(ref2, window2, rng=0).to_dict()
    assert json.dumps(a) == json.dumps(b)
    # a restored window keeps taking batches
    window2.update(frame(5, 10))
    assert window2.n == 810


def test_profile_is_compact() -> None:
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(50_000, 20)))
    data.columns = [f"x{i}" for i in range(20)]
    ref = Profile.from_frame(data, dict.fromkeys(data.columns, "numeric"))
    assert len(json.dumps(ref.to_dict())) < 700_000  # not proportional to the rows


def test_unknown_format_is_refused() -> None:
    d = Profile.from_frame(frame(0, 100), SCHEMA).to_dict()
    d["format"] = 99
    with pytest.raises(ValueError, match="rebuild"):
        Profile.from_dict(d)


def test_window_batch_lacking_a_column_counts_it_missing() -> None:
    ref = Profile.from_frame(frame(0, 500), SCHEMA)
    window = ref.new_window(seed=1).update(frame(1, 100).drop(columns=["a", "c"]))
    assert window.numeric["a"].missing == 100 and window.categorical["c"].missing == 100


def test_numeric_column_with_text_is_refused() -> None:
    bad = frame(0, 10).assign(a=["x"] * 10)
    with pytest.raises(ValueError, match="declared numeric"):
        Profile.from_frame(bad, SCHEMA)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=2, max_size=60),
    st.lists(st.integers(-7, 7), min_size=2, max_size=60),
    st.integers(1, 5),
)
def test_exact_ks_matches_scipy_and_batching_does_not_matter(
    ref: list[int], win: list[int], pieces: int
) -> None:
    r, w = np.array(ref, float) / 2, np.array(win, float) / 2
    result = KSDetector(bins=None, welch=False).fit(r).test(w)
    expected = stats.ks_2samp(r, w, method="asymp")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    sketch = NumericSketch.reference(r, bins=None)
    whole = sketch.empty().update(w)
    parts = sketch.empty()
    for chunk in np.array_split(w, pieces):
        parts.update(chunk)
    assert np.array_equal(whole.at, parts.at) and np.array_equal(whole.between, parts.between)


def test_wasserstein_effect_close_to_scipy() -> None:
    rng = np.random.default_rng(0)
    r, w = rng.normal(size=5000), rng.normal(0.3, 1.5, size=5000)
    exact = stats.wasserstein_distance(r, w) / r.std(ddof=1)
    for bins in (None, 256, 64):
        effect = KSDetector(bins=bins).fit(r).test(w).effect_size
        assert effect == pytest.approx(exact, rel=0.03)


def test_category_counts_cap_unseen_names() -> None:
    counts = CategoryCounts.reference(["a"] * 5).empty()
    counts.update([f"new{i}" for i in range(200)])
    assert counts.counts.tolist() == [0, 200] and len(counts.unseen) == 50


def test_row_sample_is_uniform() -> None:
    # positions of a 100-row sample from 1,000 rows, over salts: every position equally likely
    hits = np.zeros(1000)
    for salt in range(200):
        s = RowSample.empty(100, salt=salt, numeric_columns=["p"]).update({"p": np.arange(1000.0)})
        hits[s.numeric[:, 0].astype(int)] += 1
    expected = 200 * 100 / 1000
    assert stats.chisquare(hits.reshape(10, 100).sum(1), np.full(10, expected * 100)).pvalue > 1e-3
