"""Krippendorff's alpha against the ``krippendorff`` package and Krippendorff's own example;
Cohen's kappa per pair against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from looplab.trust import MISSING
from looplab.trust.agreement import (
    alpha_per_batch,
    alpha_per_label,
    krippendorff_alpha,
    pairwise_kappa,
)

krippendorff = pytest.importorskip("krippendorff", reason="pip install -e '.[dev]' brings it")

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1-5, nominal alpha = 0.743. Rows are observers there; here items x annotators.
_K2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, 0, 0, 0],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, 0, 3],
        [0, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 0],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, 0],
    ]
).T
KRIPPENDORFF_2011 = np.where(_K2011 == 0, MISSING, _K2011 - 1)


def reference(labels: np.ndarray) -> float:
    """The ``krippendorff`` package's nominal alpha (it wants annotators x items, NaN missing)."""
    data = np.where(labels == MISSING, np.nan, labels).T.astype(float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def random_matrix(seed: int, n_items: int = 60, n_annotators: int = 5, k: int = 4) -> np.ndarray:
    """Noisy annotators around a truth, about a third of the entries missing."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    labels = np.where(rng.random((n_items, n_annotators)) < 0.7, truth[:, None], 0)
    noise = rng.integers(0, k, (n_items, n_annotators))
    labels = np.where(labels == truth[:, None], labels, noise)
    return np.where(rng.random((n_items, n_annotators)) < 0.35, MISSING, labels)


def test_krippendorffs_published_example() -> None:
    result = krippendorff_alpha(KRIPPENDORFF_2011, n_boot=0)
    assert round(result.alpha, 3) == 0.743
    assert result.alpha == pytest.approx(reference(KRIPPENDORFF_2011), abs=1e-12)
    # Unit 12 has one value only: not pairable. 11 units, 40 pairable values (Krippendorff's n).
    assert (result.n_items, result.n_labels) == (11, 40)
    assert np.isnan(result.low) and np.isnan(result.high)


@pytest.mark.parametrize("seed", range(12))
def test_alpha_matches_the_krippendorff_package(seed: int) -> None:
    labels = random_matrix(seed, n_items=20 + 7 * seed, n_annotators=2 + seed % 5, k=2 + seed % 4)
    assert krippendorff_alpha(labels, n_boot=0).alpha == pytest.approx(reference(labels), abs=1e-9)


def test_perfect_agreement_is_one_and_a_single_class_is_undefined() -> None:
    perfect = np.array([[0, 0, MISSING], [1, 1, 1], [2, MISSING, 2]])
    assert krippendorff_alpha(perfect).alpha == pytest.approx(1.0)
    single = np.array([[1, 1], [1, 1], [1, MISSING]])
    assert np.isnan(krippendorff_alpha(single).alpha)
    lonely = np.array([[0, MISSING], [MISSING, 1]])  # no item has two labels
    result = krippendorff_alpha(lonely)
    assert np.isnan(result.alpha) and result.n_items == 0


def test_the_bootstrap_interval_is_seeded_holds_alpha_and_narrows_with_more_items() -> None:
    small = random_matrix(1, n_items=40)
    big = random_matrix(1, n_items=800)
    a = krippendorff_alpha(small, seed=3)
    assert a == krippendorff_alpha(small, seed=3)
    assert a != krippendorff_alpha(small, seed=4)
    assert a.low < a.alpha < a.high
    b = krippendorff_alpha(big, seed=3)
    assert b.low < b.alpha < b.high
    assert (b.high - b.low) < 0.5 * (a.high - a.low)


def test_the_interval_covers_the_population_alpha_about_as_often_as_it_says() -> None:
    """Coverage over 40 draws of a population whose alpha is known from a huge sample."""
    truth = krippendorff_alpha(random_matrix(999, n_items=40_000), n_boot=0).alpha
    covered = 0
    for seed in range(40):
        r = krippendorff_alpha(random_matrix(seed, n_items=150), n_boot=300, seed=seed)
        covered += r.low <= truth <= r.high
    assert covered >= 33  # nominal 95%: 38 of 40; percentile bootstraps run a little short


def test_alpha_per_label_is_the_one_vs_rest_alpha() -> None:
    labels = random_matrix(5, k=3)
    per_label = alpha_per_label(labels, n_boot=50)
    assert sorted(per_label) == [0, 1, 2]
    for c, result in per_label.items():
        binary = np.where(labels == MISSING, MISSING, (labels == c).astype(int))
        assert result.alpha == pytest.approx(reference(binary), abs=1e-9)


def test_a_flipped_class_shows_in_its_own_alpha() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 400)
    labels = np.repeat(truth[:, None], 3, axis=1)
    labels[truth == 2, 0] = 3  # annotator 0 calls every 2 a 3
    per_label = alpha_per_label(labels, n_boot=0)
    assert per_label[0].alpha == pytest.approx(1.0) == per_label[1].alpha
    assert per_label[2].alpha < 0.5 and per_label[3].alpha < 0.7


def test_alpha_per_batch_is_alpha_on_each_batchs_items() -> None:
    labels = random_matrix(7, n_items=90)
    batches = np.array(["2026-03", "2026-01", "2026-02"] * 30)
    per_batch = alpha_per_batch(labels, batches, n_boot=0)
    assert list(per_batch) == ["2026-01", "2026-02", "2026-03"]
    for key, result in per_batch.items():
        subset = labels[batches == key]
        assert result.alpha == pytest.approx(reference(subset), abs=1e-9)


def test_pairwise_kappa_matches_sklearn_and_skips_pairs_with_few_shared_items() -> None:
    rng = np.random.default_rng(2)
    labels = random_matrix(2, n_items=120, n_annotators=4, k=3)
    labels[rng.random(120) < 0.9, 3] = MISSING  # annotator 3 shares ~12 items with each other
    pairs = pairwise_kappa(labels, min_shared=20, n_boot=200)
    assert {(p.a, p.b) for p in pairs} == {(0, 1), (0, 2), (1, 2)}
    for p in pairs:
        both = (labels[:, p.a] != MISSING) & (labels[:, p.b] != MISSING)
        assert p.n_shared == both.sum()
        expected = cohen_kappa_score(labels[both, p.a], labels[both, p.b])
        assert p.kappa == pytest.approx(expected, abs=1e-12)
        assert p.low < p.kappa < p.high


def test_kappa_by_hand() -> None:
    # 10 shared items: agree on 8; marginals a = (5, 5), b = (5, 5): p_e = 0.5, kappa = 0.6.
    a = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    b = [0, 0, 0, 0, 1, 0, 1, 1, 1, 1]
    (pair,) = pairwise_kappa(np.array([a, b]).T, min_shared=10, n_boot=0)
    assert pair.kappa == pytest.approx(0.6)
    constant = np.zeros((10, 2), dtype=int)
    (pair,) = pairwise_kappa(constant, min_shared=10, n_boot=0)
    assert np.isnan(pair.kappa)


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (np.array([0, 1, 2]), {}, "2-D items x annotators"),
        (np.array([[0, -2]]), {}, r"labels\[0, 1\] = -2"),
        (np.array([[0, 3]]), {"n_classes": 3}, r"labels\[0, 1\] = 3 is not a class index"),
        (np.array([[0.5, 1.0]]), {}, "integer class indices"),
        (np.array([[0, 1]]), {"level": 95}, "level must be between 0 and 1"),
    ],
)
def test_bad_input_is_refused_with_where_and_what(
    labels: np.ndarray, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        krippendorff_alpha(labels, **kwargs)  # type: ignore[arg-type]


def test_batches_must_name_one_batch_per_item() -> None:
    with pytest.raises(ValueError, match="one batch per item: 3 items"):
        alpha_per_batch(np.zeros((3, 2), dtype=int), np.array([1, 2]))
