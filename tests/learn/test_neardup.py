"""Near-duplicate groups, and the split that keeps each group on one side."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.learn.dataset import group_splits, split_of
from looplab.learn.neardup import jaccard, lsh_bands, near_duplicate_groups


def article(rng: np.random.Generator, n: int = 30) -> str:
    return " ".join(f"w{rng.integers(1_000_000)}" for _ in range(n))


def test_edits_are_grouped_and_distinct_texts_are_not() -> None:
    base = (
        "The quarterly results beat forecasts as sales in Asia grew faster than expected, the "
        "company said on Monday, and it raised its outlook for the rest of the year"
    )
    texts = [
        base,
        base.upper() + "!!",  # case and punctuation
        base.replace("faster", "quicker"),  # one word in twenty-seven
        "A completely different story about football transfers and a new stadium",
    ]
    groups = near_duplicate_groups(texts)
    assert groups[0] == groups[1] == groups[2] != groups[3]
    assert jaccard(texts[0], texts[2]) == pytest.approx(25 / 27)


def test_random_texts_stay_singletons_and_results_are_stable() -> None:
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{rng.integers(100_000)}" for _ in range(30)) for _ in range(500)]
    groups = near_duplicate_groups(texts)
    assert len(set(groups.tolist())) == 500
    assert near_duplicate_groups(texts, seed=0).tolist() == groups.tolist()
    assert lsh_bands(0.8, 128) == (14, 9)


def test_no_group_straddles_the_split() -> None:
    rng = np.random.default_rng(1)
    texts, hashes = [], []
    for _ in range(300):
        text = article(rng)
        copies = [text, text.replace(text.split()[0], "breaking", 1) + " update"]
        for copy in copies:
            texts.append(copy)
            hashes.append(rng.bytes(16))
    splits = group_splits(hashes, texts)
    pairs = list(zip(splits[::2], splits[1::2], strict=True))
    assert all(a == b for a, b in pairs)
    plain = [split_of(h) for h in hashes]
    # Without grouping about a third of the pairs would straddle train and test.
    assert sum(a != b for a, b in zip(plain[::2], plain[1::2], strict=True)) > 50
    assert 0.12 < splits.count("test") / len(splits) < 0.28  # still about 20% held out
    assert group_splits(hashes, None) == plain


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_groups(["a"], threshold=0)
    with pytest.raises(ValueError, match="num_perm"):
        near_duplicate_groups(["a"], num_perm=8)
