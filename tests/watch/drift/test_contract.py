"""One contract, every detector (as scikit-learn's test_common and river's test_estimators)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from looplab.watch.drift import DETECTORS, Detector, DriftResult, NotFittedError

from .conftest import CASES, sample

NAMES = sorted(DETECTORS)


def make(name: str, **kw: object) -> Detector:
    return DETECTORS[name](**{**CASES[name][3], **kw})


def test_every_detector_has_a_case() -> None:
    assert set(CASES) == set(DETECTORS)


@pytest.mark.parametrize("name", NAMES)
def test_contract(name: str) -> None:
    det = make(name)
    ref, win = sample(name, seed=1)
    with pytest.raises(NotFittedError, match="fit"):
        det.test(win)
    assert det.fit(ref) is det
    result = det.test(win)
    assert isinstance(result, DriftResult)
    assert 0.0 <= result.p_value <= 1.0
    assert np.isfinite(result.statistic) and np.isfinite(result.effect_size)
    assert result.effect_name and result.name
    assert isinstance(result.drift, bool)
    assert result.drift == (result.p_value <= det.alpha and result.effect_size >= det._floor())
    d = json.loads(json.dumps(result.to_dict()))
    assert set(d) == {
        "name",
        "statistic",
        "p_value",
        "effect_size",
        "effect_name",
        "drift",
        "details",
    }


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_with_a_seed(name: str) -> None:
    ref, win = sample(name, seed=2, shift=CASES[name][2] / 2)
    first = make(name).fit(ref).test(win)
    again = make(name).fit(ref).test(win)
    assert first == again


@pytest.mark.parametrize("name", NAMES)
def test_init_only_stores(name: str) -> None:
    det = make(name, alpha=2.0)  # invalid, but only fit checks
    assert det.alpha == 2.0
    with pytest.raises(ValueError, match="alpha"):
        det.fit(sample(name, seed=0)[0])


@pytest.mark.parametrize("name", NAMES)
def test_detects_its_shift(name: str) -> None:
    ref, win = sample(name, seed=3, shift=CASES[name][2])
    result = make(name).fit(ref).test(win)
    assert result.drift, result


@pytest.mark.parametrize("name", NAMES)
def test_null_false_alarm_rate_within_binomial_bound(name: str) -> None:
    trials, alpha = 100, 0.05
    p = np.array(
        [
            make(name, random_state=s).fit(a).test(b).p_value
            if "random_state" in CASES[name][3]
            else make(name).fit(a).test(b).p_value
            for s in range(trials)
            for a, b in [sample(name, seed=1000 + s)]
        ]
    )
    # P(Binomial(100, 0.05) > bound) < 0.1%: a correct detector fails this once in 1,000 runs.
    bound = stats.binom.isf(1e-3, trials, alpha)
    assert np.sum(p <= alpha) <= bound, np.sort(p)[:10]
    assert 0.35 < p.mean() < 0.65  # roughly uniform, not piled at 0 or 1
