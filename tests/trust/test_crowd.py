"""Simulated annotators: the crowd parses, answers as its profiles say, and quarantine re-asks."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.core.errors import Invalid
from looplab.trust import MISSING
from looplab.trust.crowd import answers, parse_crowd, reanswer

CLASSES = ["sport", "politics", "tech"]


def test_the_crowd_parses_and_bad_specs_say_what_to_write() -> None:
    crowd = parse_crowd(5, "0.9,0.85,0.8,0.75", "flip:sport>politics", CLASSES)
    assert [p.accuracy for p in crowd[:4]] == [0.9, 0.85, 0.8, 0.75]
    assert crowd[4].flip == (0, 1) and crowd[4].adversary
    assert all(p.accuracy == 0.8 for p in parse_crowd(3, "0.8", None, CLASSES))
    assert parse_crowd(4, "0.9", "random", CLASSES)[3].random
    for n, acc, adv, field in [
        (5, "0.9,0.8", "random", "annotator_accuracy"),  # 2 accuracies for 4 honest
        (4, "1.5", None, "annotator_accuracy"),
        (4, "ninety", None, "annotator_accuracy"),
        (4, "0.9", "flip:sport>weather", "adversary"),
        (4, "0.9", "flip:sport>sport", "adversary"),
        (4, "0.9", "lazy", "adversary"),
        (2, "0.9", "random", "annotators"),
    ]:
        with pytest.raises(Invalid) as caught:
            parse_crowd(n, acc, adv, CLASSES)
        assert caught.value.details["field"] == field


def test_answers_follow_each_profile() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 20_000)
    crowd = parse_crowd(4, "0.9,0.7,0.8", "flip:sport>politics", CLASSES)
    matrix = answers(truth, 3, crowd, 2, rng)
    assert ((matrix != MISSING).sum(axis=1) == 2).all()  # exactly `overlap` people per item
    for j, expected in enumerate([0.9, 0.7, 0.8]):
        given = matrix[:, j] != MISSING
        assert abs(np.mean(matrix[given, j] == truth[given]) - expected) < 0.02
    flipper = matrix[:, 3]
    assert (flipper[(flipper != MISSING) & (truth == 0)] == 1).all()
    with pytest.raises(Invalid, match="overlap 5"):
        answers(truth, 3, crowd, 5, rng)


def test_reanswer_replaces_the_dropped_persons_answers_with_someone_elses() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 1_000)
    crowd = parse_crowd(5, "0.9", "random", CLASSES)
    matrix = answers(truth, 3, crowd, 3, rng)
    again, extra = reanswer(matrix, truth, 3, crowd, [4], rng)
    assert (again[:, 4] == MISSING).all()
    assert extra == int((matrix[:, 4] != MISSING).sum())
    assert ((again != MISSING).sum(axis=1) == 3).all()  # two people were free on every item
    kept = matrix[:, :4] != MISSING
    assert (again[:, :4][kept] == matrix[:, :4][kept]).all()  # nobody else's answer changed
