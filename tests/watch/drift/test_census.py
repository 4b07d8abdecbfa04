"""Real drift: US census employment, Massachusetts, 2015 (reference) against 2016 to 2018.

Needs the data of the ``nannyml`` wheel (``make census`` installs it with ``--no-deps``; or set
``LOOPLAB_NANNYML_WHEEL`` to a downloaded wheel); nannyml itself is never imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from looplab.watch.drift import drift_report

ROOT = Path(__file__).resolve().parents[3]


def source() -> Path:
    wheel = os.environ.get("LOOPLAB_NANNYML_WHEEL")
    if wheel and Path(wheel).exists():
        return Path(wheel)
    spec = importlib.util.find_spec("nannyml")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).parent
    reason = (
        "census data not found: run `make census` (pip install --no-deps nannyml) or set "
        "LOOPLAB_NANNYML_WHEEL to a wheel from `pip download nannyml --no-deps`"
    )
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must run the real-drift test (`make test` installs the data)")
    pytest.skip(reason)


def test_ancestry_drift_grows_year_by_year_up_to_the_floor() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import census_drift
    finally:
        sys.path.pop(0)
    ref, later = census_drift.load(source())
    features = census_drift.FEATURES
    schema = {c: "numeric" if c == "AGEP" else "categorical" for c in features}
    # Like for like: an import keeps one record per distinct content.
    reference = ref[features].drop_duplicates()
    effects, alarms, strict = {}, {}, {}
    for year in (2016, 2017, 2018):
        window = later.loc[later["year"] == year, features].drop_duplicates()
        report = drift_report(reference, window, schema=schema, rng=0)
        anc = next(f for f in report.features if f.name == "ANC")
        assert anc.p_value < 1e-6  # ancestry shares move every year: always significant...
        effects[year], alarms[year] = anc.effect_size, report.alarm
        tighter = drift_report(
            reference, window, schema=schema, rng=0, min_effect={"jensen_shannon": 0.04}
        )
        strict[year] = (tighter.alarm, tighter.blamed)
    # ...but below the default 0.05 Jensen-Shannon floor, growing to reach it in 2018.
    assert effects[2016] < effects[2017] < effects[2018] < 0.055, effects
    assert effects[2018] > 0.045, effects
    assert not alarms[2016] and not alarms[2017], alarms
    # With a floor of 0.04 only 2018 alarms, and blames ancestry alone.
    assert strict[2016] == (False, []) and strict[2017] == (False, [])
    assert strict[2018] == (True, ["ANC"]), strict
