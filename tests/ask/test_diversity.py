"""Batch diversity, cold start and the class-balance guard."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.feature_extraction.text import TfidfVectorizer

from looplab.ask.diversity import balance_guard, diverse_top_k, typical
from looplab.ask.strategies import top_k


def _blobs(n_per: int = 50, centers: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = np.arange(centers)[:, None] * 10.0 * np.ones((1, 2))
    X = np.vstack([m + rng.normal(scale=0.3, size=(n_per, 2)) for m in means])
    return X, np.repeat(np.arange(centers), n_per)


def test_diverse_top_k_spreads_over_clusters() -> None:
    X, blob = _blobs()
    scores = np.zeros(len(X))
    scores[blob == 0] = 1.0 + np.linspace(0, 0.1, 50)  # blob 0 holds every top score
    scores[blob == 1] = 0.9
    scores[blob == 2] = 0.8
    scores[blob >= 3] = 0.1
    plain = top_k(scores, 3, rng=0)
    assert set(blob[plain]) == {0}
    # Shortlist of 150 = blobs 0, 1, 2: one pick from each.
    shortlist = set(top_k(scores, 150, rng=0).tolist())
    for pick in ("central", "best"):
        diverse = diverse_top_k(scores, X, 3, rng=0, shortlist_factor=50, pick=pick)
        assert diverse.size == 3 and np.unique(diverse).size == 3
        assert set(blob[diverse]) == {0, 1, 2}
        assert set(diverse.tolist()) <= shortlist
        assert scores[diverse].tolist() == sorted(scores[diverse], reverse=True)
    best = diverse_top_k(scores, X, 3, rng=0, shortlist_factor=50, pick="best")
    assert best[0] == plain[0]  # each cluster's best member, best first


def test_diverse_top_k_central_picks_the_member_nearest_the_weighted_centre() -> None:
    X, blob = _blobs(centers=2)
    scores = np.where(blob == 0, 0.9, 0.8) + np.linspace(0, 0.01, len(X))
    picked = diverse_top_k(scores, X, 2, rng=0, shortlist_factor=50, weighted=False)
    for p in picked:
        members = np.flatnonzero(blob == blob[p])
        centre = X[members].mean(axis=0)
        assert p == members[np.argmin(((X[members] - centre) ** 2).sum(axis=1))]
    sparse = diverse_top_k(scores, sp.csr_matrix(X), 2, rng=0, shortlist_factor=50, weighted=False)
    assert sorted(sparse.tolist()) == sorted(picked.tolist())
    with pytest.raises(ValueError, match="pick"):
        diverse_top_k(scores, X, 2, rng=0, pick="nearest")


def test_diverse_top_k_is_reproducible_and_sorted() -> None:
    X, _ = _blobs()
    scores = np.random.default_rng(1).random(len(X))
    a = diverse_top_k(scores, X, 10, rng=5)
    assert a.tolist() == diverse_top_k(scores, X, 10, rng=5).tolist()
    assert np.all(np.diff(scores[a]) <= 0)


def test_diverse_top_k_fills_up_when_points_are_duplicates() -> None:
    X = np.zeros((40, 3))  # one distinct point: k-means finds one cluster
    scores = np.linspace(0, 1, 40)
    picked = diverse_top_k(scores, X, 5, rng=0)
    assert sorted(picked.tolist()) == [35, 36, 37, 38, 39]


def test_diverse_top_k_small_pool_and_sparse_features() -> None:
    X = sp.random(30, 200, density=0.1, random_state=0, format="csr")
    scores = np.random.default_rng(0).random(30)
    assert sorted(diverse_top_k(scores, X, 40, rng=0).tolist()) == list(range(30))
    picked = diverse_top_k(scores, X, 4, rng=0)
    assert picked.size == 4 and np.unique(picked).size == 4


def test_diverse_top_k_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="same records"):
        diverse_top_k(np.ones(5), np.ones((4, 2)), 2, rng=0)


def test_typical_dense_covers_the_clusters() -> None:
    X, blob = _blobs()
    picked = typical(X, 5, rng=0)
    assert picked.size == 5 and np.unique(picked).size == 5
    assert set(blob[picked]) == {0, 1, 2, 3, 4}
    assert picked.tolist() == typical(X, 5, rng=0).tolist()


def test_typical_and_diverse_accept_a_dataframe() -> None:
    import pandas as pd

    X, blob = _blobs()
    frame = pd.DataFrame(X, columns=["a", "b"], index=np.arange(len(X)) + 1000)
    assert set(blob[typical(frame, 5, rng=0)]) == {0, 1, 2, 3, 4}
    assert diverse_top_k(np.ones(len(X)), frame, 5, rng=0).max() < len(X)


def test_typical_subsamples_large_pools() -> None:
    X, blob = _blobs(n_per=400)
    picked = typical(X, 5, rng=0, max_samples=300)
    assert picked.max() < len(X) and np.unique(picked).size == 5
    assert set(blob[picked]) == {0, 1, 2, 3, 4}


def test_typical_on_sparse_tfidf() -> None:
    topics = {
        "sport": "match goal team player score league coach season",
        "money": "bank market stock price profit shares trade growth",
        "music": "album song band concert guitar singer chart tour",
    }
    rng = np.random.default_rng(0)
    docs, topic = [], []
    for name, words in topics.items():
        vocab = words.split()
        for _ in range(30):
            docs.append(" ".join(rng.choice(vocab, size=6)))
            topic.append(name)
    X = TfidfVectorizer().fit_transform(docs)
    picked = typical(X, 3, rng=0)
    assert {topic[i] for i in picked} == set(topics)


def test_typical_digits_and_edge_cases() -> None:
    X = load_digits().data[:300] / 16.0
    assert np.unique(typical(X, 10, rng=0)).size == 10
    assert typical(X, 0, rng=0).size == 0
    assert sorted(typical(X[:4], 9, rng=0).tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="NaN"):
        typical(np.array([[np.nan, 1.0], [0.0, 1.0]]), 1, rng=0)


# Records 0-5 predicted as class 0, 6-7 as class 1, 8-9 as class 2.
GUARD_PROBA = np.array([[0.8, 0.1, 0.1]] * 6 + [[0.2, 0.7, 0.1]] * 2 + [[0.2, 0.1, 0.7]] * 2)


def test_balance_guard_reserves_places_for_rare_classes() -> None:
    ranked = np.arange(10)
    # 50 labels of class 0, 2 of class 1, 5 of class 2: classes 1 and 2 are below half their
    # even share (57 / 3 / 2 = 9.5); class 1 is rarer, so it goes first.
    batch = balance_guard(ranked, GUARD_PROBA, [50, 2, 5], k=4, reserve=0.5)
    assert batch.tolist() == [0, 1, 6, 8]


def test_balance_guard_keeps_the_ranking_when_balanced() -> None:
    ranked = np.array([9, 3, 1, 7, 0])
    batch = balance_guard(ranked, GUARD_PROBA, [10, 9, 11], k=3)
    assert batch.tolist() == [9, 3, 1]
    assert balance_guard(ranked, GUARD_PROBA, [0, 0, 0], k=3).tolist() == [9, 3, 1]


def test_balance_guard_falls_back_when_no_candidate_of_a_rare_class() -> None:
    ranked = np.arange(6)  # all predicted class 0
    batch = balance_guard(ranked, GUARD_PROBA, [50, 1, 1], k=3, reserve=1.0)
    assert batch.tolist() == [0, 1, 2]


def test_balance_guard_validates() -> None:
    with pytest.raises(ValueError, match="one per proba column"):
        balance_guard(np.arange(3), GUARD_PROBA, [1, 2], k=2)
    with pytest.raises(ValueError, match="distinct"):
        balance_guard(np.array([1, 1]), GUARD_PROBA, [1, 2, 3], k=2)
    with pytest.raises(ValueError, match="reserve"):
        balance_guard(np.arange(3), GUARD_PROBA, [1, 2, 3], k=2, reserve=2.0)
