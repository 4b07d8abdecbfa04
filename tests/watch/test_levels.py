"""Alarm levels on real windows: what each signal can see, end to end through the monitor job.

Project "shop" (``tests/watch/replay.py``): the label is ``hi`` when ``x0 + x1 > 0``; ``x2`` and
``color`` play no part. Windows close every 500 predictions; feedback is volunteered on 20%.
"""

from __future__ import annotations

import numpy as np

from looplab.core.store import Store
from tests.watch import replay


def test_a_replay_of_the_training_rows_is_quiet(store: Store, tmp_path) -> None:
    data = replay.served(store, tmp_path)
    replay.replay(store, data[:500], feedback=0.2)
    result = replay.run(store, tmp_path)
    latest = replay.state(store)["latest"]
    assert result["n"] == 500 and latest["feedback"]["n"] > 50
    assert latest["level"] == "none" and latest["alarm"] is False, latest["level_reasons"]
    assert latest["estimate"]["status"] in ("trusted", "untrusted")
    assert latest["input_drift"] is False


def test_a_concept_shift_with_feedback_is_contradicted_and_alarms(store: Store, tmp_path) -> None:
    """Same inputs, new labels where x0 > 0.5: the estimate cannot see it, feedback can."""
    replay.served(store, tmp_path)
    rng = np.random.default_rng(1)

    def shifted(row: dict) -> str:
        return (
            ("lo" if replay.truth(row) == "hi" else "hi") if row["x0"] > 0.5 else replay.truth(row)
        )

    replay.replay(store, replay.rows(rng, 500), label=shifted, feedback=0.2, rng=rng)
    replay.run(store, tmp_path)
    latest = replay.state(store)["latest"]
    assert latest["input_drift"] is False  # the inputs did not change
    assert latest["estimate"]["status"] == "contradicted"
    reason = latest["estimate"]["reason"]
    assert f"{latest['feedback']['accuracy']:.1%}" in reason
    assert f"{latest['estimate']['accuracy']:.1%}" in reason
    assert latest["level"] == "performance" and latest["alarm"] is True
    assert latest["alarm_source"] == "feedback" and latest["labels_used"] == "feedback"


def test_a_covariate_shift_that_does_not_hurt_accuracy_stays_at_inputs(
    store: Store, tmp_path
) -> None:
    """x2 moves by 1.5 sd: the inputs changed, the answers and their accuracy did not."""
    replay.served(store, tmp_path)
    rng = np.random.default_rng(2)
    replay.replay(store, replay.rows(rng, 500, shift={"x2": 1.5}), feedback=0.2, rng=rng)
    replay.run(store, tmp_path)
    latest = replay.state(store)["latest"]
    assert latest["input_drift"] is True and "x2" in latest["blamed"]
    assert latest["level"] == "inputs" and latest["alarm"] is False, latest["level_reasons"]
    assert latest["estimate"]["status"] != "contradicted"
