"""Slice evaluation: which metadata slices are significantly worse than the rest."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.learn.slices import MISSING, slice_masks, slice_metrics


def test_flags_only_the_slice_that_is_worse() -> None:
    rng = np.random.default_rng(0)
    n = 900
    meta = [
        {"source": ["web", "mail", "app"][i % 3], "lang": "en" if i % 2 else "fr"} for i in range(n)
    ]
    y = np.array(["x"] * n)
    mail = np.array([m["source"] == "mail" for m in meta])
    right = rng.random(n) < np.where(mail, 0.70, 0.92)
    pred = np.where(right, "x", "z")
    rows = slice_metrics(y, pred, meta)
    assert rows[0].name == "source=mail" and rows[0].flagged
    assert [r.name for r in rows if r.flagged] == ["source=mail"]
    worst = rows[0]
    assert worst.ci_low < worst.accuracy < worst.ci_high
    assert worst.n == 300 and worst.rest_n == 600
    assert worst.q_value >= worst.p_value


def test_equal_slices_are_not_flagged() -> None:
    rng = np.random.default_rng(1)
    meta = [{"group": str(i % 8)} for i in range(1600)]
    y = np.array(["x"] * 1600)
    pred = np.where(rng.random(1600) < 0.85, "x", "z")
    assert not any(r.flagged for r in slice_metrics(y, pred, meta))


def test_numeric_fields_are_binned_and_missing_values_are_a_slice() -> None:
    meta = [{"length": float(i)} for i in range(100)] + [{}] * 40
    names = [(f, v, int(m.sum())) for f, v, m in slice_masks(meta, min_size=20)]
    assert ("length", MISSING, 40) in names
    assert [n for _, v, n in names if v != MISSING] == [25, 25, 25, 25]
    assert any(v.startswith("[0, ") for _, v, _ in names)


def test_small_slices_are_skipped_and_bad_input_is_refused() -> None:
    meta = [{"src": "a"}] * 50 + [{"src": "b"}] * 5
    assert [v for _, v, _ in slice_masks(meta, min_size=30)] == ["a"]
    with pytest.raises(ValueError, match="one entry per record"):
        slice_metrics(["x"], ["x", "y"], [{}])
    with pytest.raises(ValueError, match="min_size"):
        slice_masks(meta, min_size=0)
