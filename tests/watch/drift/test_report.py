"""The battery: multiple testing, the effect floor, blame, mixed schemas, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from looplab.watch.drift import Profile, drift_report, prediction_drift
from looplab.watch.drift.report import _holm

from .conftest import SPORT, TECH

COLS = [f"x{i}" for i in range(20)]
SCHEMA = dict.fromkeys(COLS, "numeric")


def frames(seed: int, n: int = 1000, shift: float = 0.0, shifted: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, len(COLS)))
    win = rng.normal(size=(n, len(COLS)))
    win[:, list(shifted)] += shift
    return pd.DataFrame(ref, columns=COLS), pd.DataFrame(win, columns=COLS)


# Windows of 300 rows: below about 280 per side scipy's exact KS distribution (Pomeranz) makes
# each p-value cost ~15 ms instead of ~0.1 ms.


def test_twenty_null_features_alarm_at_alpha_not_64_percent() -> None:
    trials, alpha = 120, 0.05
    alarms = sum(drift_report(*frames(s, n=300), schema=SCHEMA, rng=s).alarm for s in range(trials))
    # Uncorrected, 20 tests at 5% would alarm 1 - 0.95^20 = 64% of the time.
    assert alarms <= stats.binom.isf(1e-3, trials, alpha)


def test_univariate_family_alone_also_holds_alpha() -> None:
    trials, alpha = 120, 0.05
    alarms = sum(
        drift_report(*frames(s, n=300), schema=SCHEMA, multivariate=False, rng=s).alarm
        for s in range(trials)
    )
    assert alarms <= stats.binom.isf(1e-3, trials, alpha)


def test_huge_window_does_not_alarm_on_a_trivial_shift() -> None:
    rng = np.random.default_rng(0)
    n, cols = 200_000, COLS[:10]
    ref = pd.DataFrame(rng.normal(size=(n, 10)), columns=cols)
    win = pd.DataFrame(rng.normal(size=(n, 10)) + 0.01, columns=cols)
    report = drift_report(ref, win, schema=dict.fromkeys(cols, "numeric"), rng=0)
    assert report.multivariate is not None
    assert report.multivariate.p_value < report.alpha_multivariate  # detected...
    assert report.multivariate.effect_size < 0.05  # ...but 0.03 sd of Mahalanobis distance
    assert not report.alarm
    assert "trivial" in " ".join(report.reasons)
    assert report.blamed == []


def test_blame_names_the_shifted_features() -> None:
    report = drift_report(*frames(0, shift=0.5, shifted=(3, 7, 11)), schema=SCHEMA, rng=0)
    assert report.alarm
    assert sorted(report.blamed) == ["x11", "x3", "x7"]
    named = wrong = 0
    for s in range(20):
        r = drift_report(*frames(s, shift=0.3, shifted=(0, 1, 2)), schema=SCHEMA, rng=s)
        named += len(set(r.blamed) & {"x0", "x1", "x2"})
        wrong += len(set(r.blamed) - {"x0", "x1", "x2"})
    assert named >= 0.9 * 60 and wrong <= 2


def test_small_spread_shift_needs_the_multivariate_test() -> None:
    # 0.25 sd in 3 of 20 features at 500 rows: no single feature is convincing, the joint test is.
    report = drift_report(*frames(4, n=500, shift=0.25, shifted=(0, 1, 2)), schema=SCHEMA, rng=0)
    assert report.multivariate is not None and report.multivariate.drift
    assert report.alarm


def test_holm_adjusts_like_the_textbook() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06 (monotone), back in place
    assert np.allclose(_holm(p), [0.03, 0.06, 0.06, 0.02])


def mixed(seed: int, n: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pool = np.array(SPORT + TECH)
    texts = rng.choice(
        pool, n, p=np.r_[np.full(6, 1.0), np.full(4, 1.0 if drift else 0.0)] / (10 if drift else 6)
    )
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "country": rng.choice(["fr", "de", "it", "es"] if drift else ["fr", "de", "it"], n),
            "body": texts,
            "label": rng.choice(["pos", "neg"], n, p=[0.8, 0.2] if drift else [0.5, 0.5]),
        }
    )


MIXED = {
    "age": "numeric",
    "income": "numeric",
    "country": "categorical",
    "body": "text",
    "label": "categorical",
}


def test_mixed_schema_with_prediction_drift() -> None:
    ref = Profile.from_frame(mixed(0, 1500, False), MIXED, sample_size=400)
    quiet = drift_report(ref, mixed(1, 600, False), prediction="label", rng=0)
    assert not quiet.alarm
    assert quiet.prediction is not None and not quiet.prediction.drift
    loud = drift_report(ref, mixed(2, 600, True), prediction="label", rng=0)
    assert loud.alarm
    assert set(loud.blamed) == {"country", "body"}
    assert loud.prediction is not None and loud.prediction.drift
    assert "label" not in {f.name for f in loud.features}
    country = next(f for f in loud.features if f.name == "country")
    assert country.details["unseen"] == {"es": pytest.approx(150, rel=0.3)}
    d = json.loads(json.dumps(loud.to_dict()))
    assert d["alarm"] is True and d["prediction"]["effect_name"] == "jensen_shannon"
    assert {f["name"] for f in d["features"]} == {"age", "income", "country", "body"}


@pytest.mark.parametrize("method", ["classifier", "mmd"])
def test_other_multivariate_tests(method: str) -> None:
    ref, win = frames(5, n=600, shift=0.5, shifted=(0, 1, 2))
    report = drift_report(ref, win, schema=SCHEMA, multivariate=method, rng=0)
    assert report.multivariate is not None and report.multivariate.drift
    quiet = drift_report(*frames(6, n=600), schema=SCHEMA, multivariate=method, rng=0)
    assert not quiet.alarm


def test_min_effect_floors() -> None:
    ref, win = frames(7, shift=0.5, shifted=(0,))
    assert drift_report(ref, win, schema=SCHEMA, rng=0).alarm
    assert not drift_report(ref, win, schema=SCHEMA, min_effect=0.9, rng=0).alarm
    high = {"wasserstein_normed": 0.9, "mahalanobis": 0.9}
    assert not drift_report(ref, win, schema=SCHEMA, min_effect=high, rng=0).alarm


def test_prediction_drift_helper() -> None:
    assert not prediction_drift(["a", "b"] * 200, ["b", "a"] * 200).drift
    assert prediction_drift(["a", "b"] * 200, ["a"] * 300 + ["b"] * 100).drift


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schema": {"x0": "float"}}, "numeric, categorical, text"),
        ({"schema": None}, "schema is needed"),
        ({"schema": SCHEMA, "multivariate": "pca"}, "hotelling, classifier, mmd"),
        ({"schema": SCHEMA, "alpha": 0}, "alpha"),
        ({"schema": SCHEMA, "min_effect": {"cohen": 1}}, "unknown effect"),
        ({"schema": SCHEMA, "prediction": "x0"}, "categorical"),
    ],
)
def test_bad_arguments_say_how_to_fix(kwargs: dict, message: str) -> None:
    ref, win = frames(8, n=50)
    with pytest.raises(ValueError, match=message):
        drift_report(ref, win, **kwargs)


def test_frame_lacking_a_column() -> None:
    ref, win = frames(9, n=50)
    with pytest.raises(ValueError, match="lacks columns"):
        drift_report(ref.drop(columns="x3"), win, schema=SCHEMA)


def test_empty_window_does_not_alarm() -> None:
    ref, _ = frames(10, n=200)
    profile = Profile.from_frame(ref, SCHEMA)
    report = drift_report(profile, profile.new_window(seed=1))
    assert not report.alarm and report.n_window == 0 and report.multivariate is None
