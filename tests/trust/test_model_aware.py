"""Model-aware consensus (CROWDLAB through cleanlab): the weighted average by hand, the
posterior against cleanlab's own scores, and a crowd where a good model should win."""

from __future__ import annotations

import numpy as np
import pytest
from cleanlab.multiannotator import get_label_quality_multiannotator

from looplab.trust import MISSING
from looplab.trust.consensus import _crowdlab_posterior, dawid_skene, model_aware


def crowd(seed: int, n: int = 400, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three annotators right 65% of the time, a model right about 90% (labels, probas, truth)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    labels = np.empty((n, 3), dtype=np.int64)
    for j in range(3):
        wrong = (truth + rng.integers(1, k, n)) % k
        labels[:, j] = np.where(rng.random(n) < 0.65, truth, wrong)
    guess = np.where(rng.random(n) < 0.9, truth, (truth + rng.integers(1, k, n)) % k)
    probas = np.full((n, k), 0.3 / (k - 1))
    probas[np.arange(n), guess] = 0.7
    return labels, probas, truth


def test_weighted_average_by_hand() -> None:
    """One item answered 0 (weight 1) and 1 (weight 2); the model says (.5, .5) with weight 1.

    Agreement 0.8 on the one multi-answer item: an answer puts .8 on its class, .2 elsewhere.
    Sum: model (.5, .5) + annotator 0 (.8, .2) + 2 x annotator 1 (.2, .8) = (1.7, 2.3); / 4.
    """
    posterior = _crowdlab_posterior(
        np.array([[0, 1]]),
        np.array([[0.5, 0.5]]),
        np.array([0.8]),
        1.0,
        np.array([1.0, 2.0]),
    )
    np.testing.assert_allclose(posterior, [[0.425, 0.575]])


def test_posterior_is_what_cleanlab_scored() -> None:
    labels, probas, _ = crowd(0)
    labels[::7, 2] = MISSING  # some items with two answers
    result = model_aware(labels, probas)
    theirs = get_label_quality_multiannotator(
        np.where(labels == MISSING, np.nan, labels.astype(float)),
        probas,
        return_weights=True,
        verbose=False,
    )
    quality = theirs["label_quality"]
    assert result.labels.tolist() == quality["consensus_label"].tolist()
    np.testing.assert_allclose(result.confidence, quality["consensus_quality_score"], atol=1e-9)
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0)
    assert result.model_weight == pytest.approx(theirs["model_weight"])
    np.testing.assert_allclose(result.annotator_weights, theirs["annotator_weight"])


def test_a_good_model_beats_annotators_alone() -> None:
    for seed in range(3):
        labels, probas, truth = crowd(seed)
        mine = (model_aware(labels, probas).labels == truth).mean()
        ds = (dawid_skene(labels).labels == truth).mean()
        assert mine > ds + 0.03, (seed, mine, ds)


def test_an_annotator_without_answers_gets_no_weight() -> None:
    labels, probas, _ = crowd(1)
    padded = np.column_stack([labels, np.full(len(labels), MISSING)])
    result = model_aware(padded, probas)
    assert np.isnan(result.annotator_weights[3])
    assert result.labels.tolist() == model_aware(labels, probas).labels.tolist()


@pytest.mark.parametrize(
    ("labels", "probas", "message"),
    [
        (np.array([[0, 1], [1, 1]]), np.full((3, 2), 0.5), "probas must be"),
        (np.array([[0, 1], [1, 1]]), np.full((2, 2), 0.7), "sum to 1"),
        (np.array([[0, MISSING], [MISSING, 1]]), np.full((2, 2), 0.5), "no item has two"),
        (np.array([[0, 1], [MISSING, MISSING]]), np.full((2, 2), 0.5), "no label"),
        (np.array([[0, 2], [1, 1]]), np.full((2, 2), 0.5), "class"),
    ],
)
def test_bad_input_is_refused(labels: np.ndarray, probas: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_aware(labels, probas)
