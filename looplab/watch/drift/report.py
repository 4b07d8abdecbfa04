"""The drift battery: every feature, one multivariate test, one alarm with a known error rate.

:func:`drift_report` tests each column of a window against a reference profile (numeric: KS with
Welch's mean test; categorical: chi-square; text: a TF-IDF domain classifier), adds one
multivariate test over the numeric columns (Hotelling's T^2 by default), and decides:

* **the alarm** controls the family-wise false-alarm rate at ``alpha``. ``alpha`` is split by
  Bonferroni between the univariate family (``alpha_univariate``) and the multivariate test
  (``alpha_multivariate = multivariate_share * alpha``). Within the family, Holm's step-down
  procedure at ``alpha_univariate`` decides which features are significant; a significant
  feature raises the alarm only if its effect size also reaches its floor, and so does the
  multivariate test. Adding the effect condition only removes alarms, so under no drift
  P(alarm) <= alpha_univariate + alpha_multivariate = alpha, whatever the dependence between the
  tests (Bonferroni needs none; it is conservative when the tests agree). Twenty null features do
  not give 1 - 0.95^20 = 64% false alarms but at most 5%, and a window of millions of rows does
  not alarm on a shift too small to matter (see ``min_effect``).
* **blame** names the features to look at: Benjamini-Hochberg over the same univariate p-values
  at false-discovery rate ``blame_fdr``, again with the effect floor. It is computed whether or
  not the alarm fires. The default 0.01 is stricter than the textbook 0.05 on purpose: with three
  of twenty features shifted by 0.2 sd at 1,000 rows, BH at 0.05 names a wrong feature in about
  15% of windows, at 0.01 in about 3%, and still names about 87% of the shifted ones
  (``bench/drift.py``).
* **prediction drift** (the column named by ``prediction``, categorical) is tested on its own
  with the same chi-square detector and reported beside the features, outside the alarm's
  family: it is a consequence of feature drift or of a model change, and worth its own signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from looplab.watch.drift.base import (
    DEFAULT_MIN_EFFECT,
    DriftResult,
    as_generator,
    json_float,
    jsonable,
    one_blas_thread,
)
from looplab.watch.drift.chisquare import categorical_test
from looplab.watch.drift.classifier import classifier_test, standardise
from looplab.watch.drift.hotelling import hotelling_test
from looplab.watch.drift.ks import numeric_test
from looplab.watch.drift.mmd import mmd_test
from looplab.watch.drift.profile import Profile
from looplab.watch.drift.text import text_test

MULTIVARIATE = ("hotelling", "classifier", "mmd")
EFFECT_OF_KIND = {"numeric": "wasserstein_normed", "categorical": "jensen_shannon", "text": "gini"}
TEST_OF_KIND = {"numeric": "ks+welch", "categorical": "chi2", "text": "tfidf-classifier"}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's line in a :class:`DriftReport`."""

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    p_holm: float
    q_value: float
    effect_size: float
    effect_name: str
    min_effect: float
    significant: bool
    drift: bool
    blamed: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": json_float(self.statistic),
            "p_value": json_float(self.p_value),
            "p_holm": json_float(self.p_holm),
            "q_value": json_float(self.q_value),
            "effect_size": json_float(self.effect_size),
            "effect_name": self.effect_name,
            "min_effect": self.min_effect,
            "significant": self.significant,
            "drift": self.drift,
            "blamed": self.blamed,
            "details": jsonable(self.details),
        }


@dataclass(frozen=True)
class DriftReport:
    """The battery's verdict on one window. ``to_dict()`` is what a monitor stores."""

    alarm: bool
    alpha: float
    alpha_univariate: float
    alpha_multivariate: float
    blame_fdr: float
    features: list[FeatureDrift]
    multivariate: DriftResult | None
    prediction: DriftResult | None
    n_reference: int
    n_window: int
    reasons: list[str]

    @property
    def blamed(self) -> list[str]:
        """Names of the blamed features, most significant first."""
        return [f.name for f in sorted(self.features, key=lambda f: f.p_value) if f.blamed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "alpha": self.alpha,
            "alpha_univariate": self.alpha_univariate,
            "alpha_multivariate": self.alpha_multivariate,
            "blame_fdr": self.blame_fdr,
            "blamed": self.blamed,
            "features": [f.to_dict() for f in self.features],
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "n_reference": self.n_reference,
            "n_window": self.n_window,
            "reasons": list(self.reasons),
        }


def drift_report(
    reference: Profile | Any,
    window: Profile | Any,
    *,
    schema: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    min_effect: float | Mapping[str, float] | None = None,
    multivariate: bool | str = True,
    multivariate_share: float = 0.5,
    blame_fdr: float = 0.01,
    prediction: str | None = None,
    rng: int | np.random.Generator | None = None,
) -> DriftReport:
    """Test a window against a reference, feature by feature and jointly; one alarm.

    Parameters
    ----------
    reference : Profile or DataFrame
        A stored reference profile, or the reference rows (profiled here with ``schema``).
    window : Profile or DataFrame
        A window summary built from the reference (:meth:`Profile.new_window`), or the rows.
    schema : mapping, optional
        Column -> ``"numeric"``, ``"categorical"`` or ``"text"``; needed when ``reference`` is a
        frame, else taken from the profile.
    alpha : float
        Family-wise false-alarm rate of ``alarm`` when nothing drifted.
    min_effect : float or mapping, optional
        Effect-size floors below which a significant change does not alarm nor get blamed: one
        number for every effect, or a mapping from effect name (``"wasserstein_normed"``,
        ``"jensen_shannon"``, ``"mahalanobis"``, ``"gini"``, ``"mmd"``) to floor; defaults in
        :data:`looplab.watch.drift.base.DEFAULT_MIN_EFFECT`.
    multivariate : bool or {"hotelling", "classifier", "mmd"}
        The joint test over numeric columns (``True``: Hotelling, on all rows from moments;
        ``"classifier"`` and ``"mmd"`` run on the row samples). Needs two numeric columns.
    multivariate_share : float
        Share of ``alpha`` given to the multivariate test.
    blame_fdr : float
        Benjamini-Hochberg false-discovery rate of ``blamed``.
    prediction : str, optional
        A categorical column of predicted labels, tested apart from the features.
    rng : int, Generator or None
        Seeds the sample-based tests and, for frames, the row samples.

    Returns
    -------
    DriftReport

    Examples
    --------
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> cols = [f"x{i}" for i in range(20)]
    >>> ref = pd.DataFrame(rng.normal(size=(1000, 20)), columns=cols)
    >>> win = pd.DataFrame(rng.normal(size=(1000, 20)), columns=cols)
    >>> schema = dict.fromkeys(cols, "numeric")
    >>> drift_report(ref, win, schema=schema, rng=0).alarm
    False
    >>> win[["x0", "x1", "x2"]] += 0.5
    >>> r = drift_report(ref, win, schema=schema, rng=0)
    >>> r.alarm, sorted(r.blamed)
    (True, ['x0', 'x1', 'x2'])
    """
    method = _checked(alpha, blame_fdr, multivariate_share, multivariate)
    with one_blas_thread():
        return _report(
            reference,
            window,
            schema,
            alpha,
            min_effect,
            method,
            multivariate_share,
            blame_fdr,
            prediction,
            as_generator(rng),
        )


def _checked(
    alpha: float, blame_fdr: float, multivariate_share: float, multivariate: bool | str
) -> bool | str:
    """:func:`drift_report`'s rates checked; the multivariate method by name (or False)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < blame_fdr < 1.0:
        raise ValueError(f"blame_fdr must be in (0, 1), got {blame_fdr}")
    if not 0.0 < multivariate_share < 1.0:
        raise ValueError(f"multivariate_share must be in (0, 1), got {multivariate_share}")
    method = "hotelling" if multivariate is True else multivariate
    if method is not False and method not in MULTIVARIATE:
        raise ValueError(f"multivariate must be True, False or one of {', '.join(MULTIVARIATE)}")
    return method


def _report(
    reference: Any,
    window: Any,
    schema: Mapping[str, str] | None,
    alpha: float,
    min_effect: float | Mapping[str, float] | None,
    method: bool | str,
    multivariate_share: float,
    blame_fdr: float,
    prediction: str | None,
    gen: np.random.Generator,
) -> DriftReport:
    ref = _as_profile(reference, schema, gen)
    win = window if isinstance(window, Profile) else ref.new_window(seed=_seed(gen)).update(window)
    if win.schema != ref.schema:
        raise ValueError(
            "window and reference have different schemas: build the window from the profile"
        )
    if prediction is not None and ref.schema.get(prediction) != "categorical":
        raise ValueError(f"prediction column {prediction!r} must be categorical in the schema")
    floors = _floors(min_effect)

    # Bonferroni between the two families: the multivariate test's share only when it runs.
    use_multi = isinstance(method, str) and len(ref.numeric_columns) >= 2 and win.n > 0
    alpha_m = alpha * multivariate_share if use_multi else 0.0
    alpha_u = alpha - alpha_m

    # The order matters for reproducibility: the tests draw from ``gen`` features first.
    features, reasons = _feature_drift(ref, win, prediction, alpha_u, blame_fdr, floors, gen)
    multi = None
    if use_multi and isinstance(method, str):
        multi, reason = _multivariate_drift(ref, win, method, alpha_m, floors, gen)
        reasons += [reason] if reason else []
    pred = (
        _prediction_drift(ref, win, prediction, alpha, floors) if prediction is not None else None
    )

    alarm = any(f.drift for f in features) or bool(multi and multi.drift)
    return DriftReport(
        alarm, alpha, alpha_u, alpha_m, blame_fdr, features, multi, pred, ref.n, win.n, reasons
    )


def _feature_drift(
    ref: Profile,
    win: Profile,
    prediction: str | None,
    alpha_u: float,
    blame_fdr: float,
    floors: dict[str, float],
    gen: np.random.Generator,
) -> tuple[list[FeatureDrift], list[str]]:
    """Every feature tested; Holm at ``alpha_u`` decides drift, BH at ``blame_fdr`` blames.

    Returns the features in schema order and a reason per significant one.
    """
    raw = [
        (c, kind, *_feature_test(ref, win, c, kind, gen))
        for c, kind in ref.schema.items()
        if c != prediction
    ]
    p = np.array([r[4] for r in raw], dtype=np.float64)
    holm = _holm(p) if len(p) else p
    q = stats.false_discovery_control(p, method="bh") if len(p) else p
    features, reasons = [], []
    for (c, kind, name, stat, pv, effect, details), ph, qv in zip(raw, holm, q, strict=True):
        effect_name = EFFECT_OF_KIND[kind]
        floor = floors[effect_name]
        significant = bool(ph <= alpha_u)
        big = bool(effect >= floor)
        features.append(
            FeatureDrift(
                c,
                kind,
                name,
                stat,
                pv,
                float(ph),
                float(qv),
                effect,
                effect_name,
                floor,
                significant,
                significant and big,
                bool(qv <= blame_fdr and big),
                details,
            )
        )
        if significant:
            verdict = ">=" if big else "< (trivial)"
            reasons.append(
                f"{c}: {name} Holm p {ph:.3g} <= {alpha_u:.3g}, {effect_name} {effect:.3g} "
                f"{verdict} {floor:g}"
            )
    return features, reasons


def _multivariate_drift(
    ref: Profile,
    win: Profile,
    method: str,
    alpha_m: float,
    floors: dict[str, float],
    gen: np.random.Generator,
) -> tuple[DriftResult, str | None]:
    """The joint test over the numeric columns, and its reason when significant."""
    mstat, mp, meffect, mdetails, mname, meffect_name = _multivariate(ref, win, method, gen)
    mfloor = floors[meffect_name]
    multi = DriftResult(
        mname,
        mstat,
        mp,
        meffect,
        meffect_name,
        bool(mp <= alpha_m and meffect >= mfloor),
        {**mdetails, "alpha": alpha_m, "min_effect": mfloor},
    )
    if mp > alpha_m:
        return multi, None
    verdict = ">=" if meffect >= mfloor else "< (trivial)"
    return multi, (
        f"multivariate {mname} p {mp:.3g} <= {alpha_m:.3g}, {meffect_name} {meffect:.3g} "
        f"{verdict} {mfloor:g}"
    )


def _prediction_drift(
    ref: Profile, win: Profile, prediction: str, alpha: float, floors: dict[str, float]
) -> DriftResult:
    """The predicted labels' chi-square test, outside the alarm's family, at ``alpha``."""
    chi2, pp, js, pdetails = categorical_test(
        ref.categorical[prediction], win.categorical[prediction]
    )
    pfloor = floors["jensen_shannon"]
    return DriftResult(
        "chi2", chi2, pp, js, "jensen_shannon", bool(pp <= alpha and js >= pfloor), pdetails
    )


def _as_profile(
    reference: Any, schema: Mapping[str, str] | None, gen: np.random.Generator
) -> Profile:
    if isinstance(reference, Profile):
        if schema is not None and dict(schema) != reference.schema:
            raise ValueError(
                "schema differs from the profile's: rebuild the profile or drop schema"
            )
        return reference
    if schema is None:
        raise ValueError("schema is needed when the reference is a frame, not a Profile")
    return Profile.from_frame(reference, schema, seed=_seed(gen))


def _feature_test(
    ref: Profile, win: Profile, column: str, kind: str, gen: np.random.Generator
) -> tuple[str, float, float, float, dict[str, Any]]:
    if kind == "numeric":
        stat, p, effect, details = numeric_test(ref.numeric[column], win.numeric[column])
    elif kind == "categorical":
        stat, p, effect, details = categorical_test(
            ref.categorical[column], win.categorical[column]
        )
    else:
        assert ref.sample is not None and win.sample is not None
        stat, p, effect, details = text_test(
            ref.sample.text[column], win.sample.text[column], rng=gen
        )
    return TEST_OF_KIND[kind], stat, p, effect, details


def _multivariate(
    ref: Profile, win: Profile, method: str, gen: np.random.Generator
) -> tuple[float, float, float, dict[str, Any], str, str]:
    assert ref.moments is not None and win.moments is not None
    if method == "hotelling":
        stat, p, effect, details = hotelling_test(
            ref.moments, win.moments, columns=ref.numeric_columns
        )
        return stat, p, effect, details, "hotelling", "mahalanobis"
    assert ref.sample is not None and win.sample is not None
    mean = ref.moments.mean
    sd = np.sqrt(np.clip(np.diag(ref.moments.covariance()), 0.0, None))
    scale = np.where(sd > 0, sd, 1.0)
    x_ref = standardise(ref.sample.numeric, mean, scale)
    x_win = standardise(win.sample.numeric, mean, scale)
    if method == "classifier":
        stat, p, effect, details = classifier_test(x_ref, x_win, rng=gen)
        return stat, p, effect, details, "domain-classifier", "gini"
    stat, p, effect, details = mmd_test(x_ref, x_win, rng=gen)
    return stat, p, effect, details, "mmd", "mmd"


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values: reject feature j at level a iff adjusted p_j <= a."""
    m = len(p)
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def _floors(min_effect: float | Mapping[str, float] | None) -> dict[str, float]:
    floors = dict(DEFAULT_MIN_EFFECT)
    if isinstance(min_effect, Mapping):
        unknown = set(min_effect) - set(floors)
        if unknown:
            raise ValueError(f"unknown effect names {sorted(unknown)}: use {', '.join(floors)}")
        floors.update({k: float(v) for k, v in min_effect.items()})
    elif min_effect is not None:
        floors = dict.fromkeys(floors, float(min_effect))
    return floors


def _seed(gen: np.random.Generator) -> int:
    return int(gen.integers(2**63 - 1))


def prediction_drift(
    reference_labels: Any,
    window_labels: Any,
    *,
    alpha: float = 0.05,
    min_effect: float | None = None,
) -> DriftResult:
    """Drift of the predicted labels alone: chi-square and Jensen-Shannon distance.

    Examples
    --------
    >>> prediction_drift(["a"] * 50 + ["b"] * 50, ["a"] * 90 + ["b"] * 10).drift
    True
    """
    from looplab.watch.drift.chisquare import ChiSquareDetector

    det = ChiSquareDetector(alpha=alpha, min_effect=min_effect).fit(reference_labels)
    return det.test(window_labels)
