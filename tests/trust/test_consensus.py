"""Majority vote and Dawid-Skene: hand-computed cases, a loop-by-loop reference of the EM
equations, crowd-kit's result on a fixed matrix, and the published figures of a real crowd."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from looplab.trust import MISSING
from looplab.trust.consensus import dawid_skene, majority_vote
from tests.trust.crowds import ROOT, crowd_dir, load_crowd

FIXED = Path(__file__).parent / "data" / "crowdkit_dawid_skene.json"
CROWDKIT_PYTHON = ROOT / "bench" / ".peers" / "crowdkit" / "bin" / "python"


def simulate(
    seed: int, n: int = 300, k: int = 3, accuracies: tuple[float, ...] = (0.9, 0.75, 0.7)
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    labels = np.empty((n, len(accuracies)), dtype=np.int64)
    for j, accuracy in enumerate(accuracies):
        wrong = (truth + rng.integers(1, k, n)) % k
        labels[:, j] = np.where(rng.random(n) < accuracy, truth, wrong)
    return labels, truth


def test_majority_vote_by_hand() -> None:
    labels = np.array([[0, 0, 1], [2, 1, MISSING], [1, 1, 1], [MISSING, MISSING, 2]])
    result = majority_vote(labels, n_classes=3)
    assert result.labels.tolist() == [0, 1, 1, 2]  # item 1 ties 1-2: lowest index
    np.testing.assert_allclose(result.posterior[0], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(result.confidence, [2 / 3, 1 / 2, 1, 1])
    weighted = majority_vote(labels, n_classes=3, weights=np.array([1.0, 1.0, 3.0]))
    assert weighted.labels.tolist() == [1, 1, 1, 2]  # item 1: annotator 2 is absent, a tie
    # Random tie-breaking picks each tied class, and only tied classes.
    picks = {int(majority_vote(labels, rng=np.random.default_rng(s)).labels[1]) for s in range(20)}
    assert picks == {1, 2}


def test_dawid_skene_one_em_step_by_hand() -> None:
    """max_iter=1: the M-step from the soft majority vote, then one E-step.

    labels [[0,0],[1,0],[1,1],[0,0]] -> start T = [1,0],[.5,.5],[0,1],[1,0]; priors (.625, .375).
    Annotator 0: truth 0 -> answers (2, .5) -> (.8, .2); truth 1 -> (0, 1.5) -> (0, 1).
    Annotator 1: truth 0 -> (2.5, 0) -> (1, 0);      truth 1 -> (.5, 1) -> (1/3, 2/3).
    Item 1 (answers 1, 0): class 0 .625 * .2 * 1 = .125, class 1 .375 * 1 * 1/3 = .125 -> (.5, .5).
    Item 2 (answers 1, 1): class 0 .625 * .2 * 0 = 0 -> (0, 1).
    """
    labels = np.array([[0, 0], [1, 0], [1, 1], [0, 0]])
    result = dawid_skene(labels, smoothing=0.0, max_iter=1)
    np.testing.assert_allclose(result.posterior[1], [0.5, 0.5], atol=1e-9)
    np.testing.assert_allclose(result.posterior[2], [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(result.posterior[0], [1.0, 0.0], atol=1e-9)
    assert result.n_iter == 1


def reference_dawid_skene(
    labels: np.ndarray, k: int, smoothing: float, iterations: int
) -> np.ndarray:
    """The EM equations written out item by item, annotator by annotator (slow, obvious)."""
    n, m = labels.shape
    T = np.zeros((n, k))
    for i in range(n):
        for j in range(m):
            if labels[i, j] != MISSING:
                T[i, labels[i, j]] += 1
        T[i] /= T[i].sum()
    for _ in range(iterations):
        priors = np.maximum(T.mean(axis=0), 1e-10)
        priors /= priors.sum()
        counts = np.zeros((m, k, k))
        for i in range(n):
            for j in range(m):
                if labels[i, j] != MISSING:
                    counts[j, :, labels[i, j]] += T[i]
        pooled = counts.sum(axis=0)
        pooled /= pooled.sum(axis=1, keepdims=True)
        confusion = counts + smoothing * pooled
        confusion = np.maximum(confusion / confusion.sum(axis=2, keepdims=True), 1e-10)
        confusion /= confusion.sum(axis=2, keepdims=True)
        for i in range(n):
            log_p = np.log(priors).copy()
            for j in range(m):
                if labels[i, j] != MISSING:
                    log_p += np.log(confusion[j, :, labels[i, j]])
            p = np.exp(log_p - log_p.max())
            T[i] = p / p.sum()
    return T


@pytest.mark.parametrize(("seed", "smoothing"), [(0, 0.0), (1, 1.0), (2, 0.3), (3, 5.0)])
def test_dawid_skene_follows_the_em_equations(seed: int, smoothing: float) -> None:
    labels, _ = simulate(seed, n=40, k=3)
    labels[np.random.default_rng(seed).random(labels.shape) < 0.3] = MISSING
    labels[(labels == MISSING).all(axis=1), 0] = 0
    result = dawid_skene(labels, n_classes=3, smoothing=smoothing, max_iter=7, tol=1e-300)
    expected = reference_dawid_skene(labels, 3, smoothing, 7)
    np.testing.assert_allclose(result.posterior, expected, atol=1e-9)
    assert result.n_iter == 7 and not result.converged


def test_dawid_skene_reads_a_flipper_through_their_flip() -> None:
    """Annotator 2 answers 2 for every 1: majority vote loses items DS keeps."""
    labels, truth = simulate(4, n=600, k=3, accuracies=(0.85, 0.7, 0.9))
    labels[truth == 1, 2] = 2
    mv = (majority_vote(labels).labels == truth).mean()
    ds = dawid_skene(labels)
    assert (ds.labels == truth).mean() > mv + 0.03
    assert ds.confusion[2, 1, 2] > 0.9 and ds.confusion[2, 1, 1] < 0.05
    assert ds.converged
    np.testing.assert_allclose(ds.posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(ds.confusion.sum(axis=2), 1.0)
    np.testing.assert_allclose(ds.priors, np.bincount(truth) / len(truth), atol=0.05)


def test_smoothing_keeps_a_rare_worker_near_the_pool() -> None:
    labels, _ = simulate(5, n=200, k=3)
    rare = np.full((200, 1), MISSING)
    rare[0, 0] = (labels[0, 0] + 1) % 3  # one answer, and it disagrees with everyone
    labels = np.hstack([labels, rare])
    plain = dawid_skene(labels, smoothing=0.0).confusion[3]
    smoothed = dawid_skene(labels, smoothing=1.0).confusion[3]
    assert plain.max() > 0.999  # one answer became a certainty
    assert smoothed.max() < 0.95 and smoothed.min() > 0.01
    # Frequent workers barely move.
    a = dawid_skene(labels, smoothing=0.0).confusion[:3]
    b = dawid_skene(labels, smoothing=1.0).confusion[:3]
    assert np.abs(a - b).max() < 0.03


def test_known_answers_stay_fixed_and_teach_the_confusions() -> None:
    labels, truth = simulate(6, n=120, k=2, accuracies=(0.3, 0.3, 0.3))  # all mostly flipped
    unsupervised = dawid_skene(labels)
    assert (unsupervised.labels == truth).mean() < 0.5  # label switching: no way to know
    known = np.full(120, MISSING)
    known[:20] = truth[:20]
    guided = dawid_skene(labels, known=known)
    assert (guided.labels[:20] == truth[:20]).all()
    np.testing.assert_allclose(guided.confidence[:20], 1.0)
    assert (guided.labels == truth).mean() > 0.7


def test_matches_crowdkit_on_the_fixed_matrix() -> None:
    """crowd-kit's posteriors, computed once in its own venv (see the data file's ``how``)."""
    data = json.loads(FIXED.read_text())
    labels = np.array(data["labels"])
    result = dawid_skene(labels, smoothing=0.0, tol=1e-10, max_iter=2000)
    assert result.labels.tolist() == data["crowdkit_labels"]
    np.testing.assert_allclose(result.posterior, data["crowdkit_posterior"], atol=1e-6)


@pytest.mark.skipif(
    not CROWDKIT_PYTHON.exists(),
    reason="crowd-kit's peer venv is absent (make bench-peers builds bench/.peers/crowdkit)",
)
def test_matches_crowdkit_run_now() -> None:
    out = subprocess.run(
        [str(CROWDKIT_PYTHON), str(Path(__file__).parent / "crowdkit_reference.py"), str(FIXED)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    crowdkit = json.loads(out.stdout)
    labels = np.array(json.loads(FIXED.read_text())["labels"])
    result = dawid_skene(labels, smoothing=0.0, tol=1e-10, max_iter=2000)
    assert result.labels.tolist() == crowdkit["labels"]
    np.testing.assert_allclose(result.posterior, crowdkit["posterior"], atol=1e-6)


@pytest.mark.skipif(crowd_dir() is None, reason="shared/crowd is not beside this checkout")
def test_real_crowds_reach_the_published_figures() -> None:
    """D_Product: majority 0.897, Dawid-Skene 0.940 (crowd-kit's paper); Duck: no collapse.

    Run to convergence, plain DS lands at 0.9393 on D_Product (0.9397 after 100 iterations,
    where crowd-kit stops by default): the published 0.940 within rounding of the iteration count.
    """
    labels, truth, _ = load_crowd("jn-product")
    assert (majority_vote(labels).labels == truth).mean() == pytest.approx(0.8966, abs=5e-4)
    assert (dawid_skene(labels, smoothing=0.0).labels == truth).mean() >= 0.939
    labels, truth, _ = load_crowd("Duck_Identification")
    assert (majority_vote(labels).labels == truth).mean() == pytest.approx(0.759, abs=1e-3)
    assert (dawid_skene(labels).labels == truth).mean() > 0.85


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: dawid_skene(np.array([[0, 1], [MISSING, MISSING]])),
            r"have no label \(rows \[1\]",
        ),
        (lambda: dawid_skene(np.zeros((0, 3), dtype=int)), r"needs items and annotators"),
        (lambda: majority_vote(np.zeros((2, 0), dtype=int)), r"needs items and annotators"),
        (lambda: dawid_skene(np.array([[0, 1]]), smoothing=-1), "smoothing must be"),
        (lambda: dawid_skene(np.array([[0, 1]]), known=np.array([0, 1])), "known must hold"),
        (lambda: dawid_skene(np.array([[0, 1]]), known=np.array([2])), "known must hold"),
        (lambda: majority_vote(np.array([[0, 1]]), weights=np.array([1.0])), "one per annotator"),
        (lambda: majority_vote(np.array([[0, 1]]), weights=np.zeros(2)), "weight 0"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
