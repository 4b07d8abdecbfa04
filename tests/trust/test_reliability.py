"""Per-annotator evidence and the flags: a flipped class, random answers, answers faster than
anyone reads and failed gold are caught, with the numbers; careful people are left alone."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.trust import MISSING
from looplab.trust.consensus import dawid_skene
from looplab.trust.reliability import FlagRule, annotator_evidence, others_consensus


def crowd(
    seed: int, n: int = 600, k: int = 4, per_item: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5 careful annotators (0.9 .. 0.8), each item answered by ``per_item`` of them, with
    seconds per answer around 4-8 s; adversaries are written over a column by each test."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    accuracies = np.array([0.9, 0.88, 0.85, 0.82, 0.8])
    answers = np.where(
        rng.random((n, 5)) < accuracies,
        truth[:, None],
        (truth[:, None] + rng.integers(1, k, (n, 5))) % k,
    )
    chosen = rng.permuted(np.tile(np.arange(5), (n, 1)), axis=1)[:, :per_item]
    mask = np.zeros((n, 5), dtype=bool)
    mask[np.repeat(np.arange(n), per_item), chosen.ravel()] = True
    labels = np.where(mask, answers, MISSING)
    seconds = np.where(mask, rng.lognormal(np.log([4.0, 5.0, 6.0, 7.0, 8.0]), 0.4, (n, 5)), np.nan)
    return labels, truth, seconds


def reasons(evidence: list, j: int) -> set[str]:  # type: ignore[type-arg]
    return {flag.reason for flag in evidence[j].flags}


def test_careful_annotators_are_not_flagged() -> None:
    for seed in range(5):
        labels, _, seconds = crowd(seed)
        evidence = annotator_evidence(labels, seconds=seconds)
        assert not any(e.flagged for e in evidence), [e.flags for e in evidence]
        assert all(e.kappa > 0.5 for e in evidence)  # against two others, not the truth


def test_a_flipped_class_is_caught_with_the_class_and_the_rate() -> None:
    labels, truth, seconds = crowd(1)
    answered = labels[:, 4] != MISSING
    labels[answered & (truth == 2), 4] = 3  # annotator 4 calls every 2 a 3
    evidence = annotator_evidence(labels, seconds=seconds)
    flagged = evidence[4]
    assert reasons(evidence, 4) == {"flipped_class"}  # otherwise careful: kappa stays high
    assert (flagged.worst_class, flagged.worst_answer) == (2, 3)
    assert flagged.worst_rate > 0.9 and flagged.worst_support > 20
    assert flagged.confusion[2, 3] > 0.9
    (flag,) = flagged.flags
    assert flag.value > flag.threshold == 0.5
    assert "answers class 3" in flag.detail and "of class 2" in flag.detail
    assert not any(e.flagged for e in evidence[:4])
    named = annotator_evidence(labels, class_names=["a", "b", "sport", "politics"])
    assert "answers 'politics'" in named[4].flags[0].detail
    assert "items of 'sport'" in named[4].flags[0].detail


def test_random_answers_are_caught_near_chance() -> None:
    labels, _, seconds = crowd(2)
    answered = labels[:, 0] != MISSING
    labels[answered, 0] = np.random.default_rng(0).integers(0, 4, answered.sum())
    evidence = annotator_evidence(labels, seconds=seconds)
    assert "near_chance" in reasons(evidence, 0)
    assert abs(evidence[0].kappa) < 0.1 and evidence[0].kappa_high < 0.2
    assert evidence[0].estimated_accuracy < 0.4
    assert not any(e.flagged for e in evidence[1:])


def test_answers_faster_than_anyone_reads_are_caught() -> None:
    labels, _, seconds = crowd(3)
    seconds[:, 1] = np.where(labels[:, 1] != MISSING, 0.6, np.nan)
    evidence = annotator_evidence(labels, seconds=seconds)
    assert reasons(evidence, 1) == {"too_fast"}
    (flag,) = evidence[1].flags
    assert evidence[1].median_seconds == pytest.approx(0.6)
    assert flag.value == pytest.approx(0.6 / evidence[1].others_median_seconds)
    assert not any(e.flagged for e in evidence if e.annotator != 1)


def test_failed_gold_is_caught_and_gold_accuracy_is_evidence() -> None:
    labels, truth, _ = crowd(4, k=2)
    answered = labels[:, 3] != MISSING
    labels[answered, 3] = 1 - truth[answered]  # every answer wrong: a full flip
    gold = np.where(np.arange(len(truth)) < 60, truth, MISSING)
    evidence = annotator_evidence(labels, gold=gold)
    assert {"gold_below", "flipped_class", "near_chance"} <= reasons(evidence, 3)
    assert evidence[3].gold is not None and evidence[3].gold.rate == 0.0
    assert evidence[0].gold is not None and evidence[0].gold.low > 0.7
    assert not any(e.flagged for e in evidence if e.annotator != 3)


def test_thin_evidence_is_shown_not_judged() -> None:
    labels, _, _ = crowd(5)
    rare = np.full((len(labels), 1), MISSING)
    rare[:12, 0] = (labels[:12].max(axis=1) + 1) % 4  # 12 answers, all against the others
    labels = np.hstack([labels, rare])
    evidence = annotator_evidence(labels)
    assert evidence[5].n_labels == 12 and not evidence[5].flagged
    assert evidence[5].agreement.rate < 0.2
    strict = annotator_evidence(labels, rule=FlagRule(min_labels=10, min_class_support=2))
    assert strict[5].flagged


def test_the_others_consensus_leaves_the_persons_own_answer_out() -> None:
    labels, _, _ = crowd(6, n=200)
    result = dawid_skene(labels, tol=1e-10, max_iter=5000)
    items, posterior = others_consensus(labels, result, 2)
    assert set(items) == set(np.flatnonzero(labels[:, 2] != MISSING))
    for row, i in zip(posterior, items, strict=True):
        expected = result.priors.copy()
        for j in np.flatnonzero(labels[i] != MISSING):
            if j != 2:
                expected = expected * result.confusion[j][:, labels[i, j]]
        np.testing.assert_allclose(row, expected / expected.sum(), atol=1e-6)


def test_bad_input_is_refused() -> None:
    labels, _, seconds = crowd(7, n=50)
    with pytest.raises(ValueError, match=r"seconds must have the label matrix's shape \(50, 5\)"):
        annotator_evidence(labels, seconds=seconds[:, :4])
    with pytest.raises(ValueError, match="must not be negative"):
        annotator_evidence(labels, seconds=-seconds)
    with pytest.raises(ValueError, match="consensus was fitted on another matrix"):
        annotator_evidence(labels, consensus=dawid_skene(labels[:, :4]))
    with pytest.raises(ValueError, match="class_names must name the 4 classes; got 2"):
        annotator_evidence(labels, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"gold must hold one entry per item \(50\)"):
        annotator_evidence(labels, gold=np.zeros(3, dtype=int))
