"""What a simulated crowd teaches the model, by consensus method (looplab simulate --annotators)."""

from __future__ import annotations

import functools

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from looplab.ask import crowds
from looplab.trust.crowd import parse_crowd


def test_quarantine_of_a_random_adversary_restores_the_labels_dawid_skene_loses() -> None:
    X, y = load_digits(return_X_y=True)
    X, y = X[:900] / 16.0, y[:900]
    classes = [str(c) for c in range(10)]
    make_model = functools.partial(clone, LogisticRegression(max_iter=300))
    crowd = parse_crowd(5, "0.8", "random", classes)
    result = crowds.compare_crowds(X, y, classes, make_model, crowd, overlap=3, seeds=2)
    methods = result["methods"]
    assert result["adversary_flagged"] == 2 and result["honest_flagged"] == 0
    assert methods["truth"]["label_accuracy"] == 1.0
    # Majority vote with one random voter in three is wrong far more often than the crowd's
    # 0.8 suggests; Dawid-Skene reads the voter as noise; quarantine asks someone else.
    assert methods["majority"]["label_accuracy"] < methods["dawid_skene"]["label_accuracy"]
    assert methods["quarantine"]["label_accuracy"] > methods["dawid_skene"]["label_accuracy"] + 0.03
    assert 0 < result["extra_answers"] < result["answers"]
    assert "adversary flagged on 2 of 2 seeds" in crowds.format_crowd_table(result)
    assert np.isfinite(methods["quarantine"]["model_accuracy"])
