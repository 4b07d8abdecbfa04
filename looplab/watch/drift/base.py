"""The detector contract: fit a reference, test a window, get a :class:`DriftResult`.

Every detector in :mod:`looplab.watch.drift` follows it (``tests/watch/drift/test_contract.py``
checks each):

* ``__init__`` takes keyword-only settings and only stores them;
* ``fit(reference)`` validates the reference, keeps a compact summary of it and returns ``self``;
* ``test(window)`` raises :class:`NotFittedError` before ``fit``, otherwise returns a
  :class:`DriftResult`: the statistic, its p-value under "the window comes from the reference's
  distribution", an effect size on a scale where 0 means no change, and ``drift``, which needs
  both ``p_value <= alpha`` and ``effect_size >= min_effect`` (so a huge window does not alarm
  on a trivial change);
* randomness (subsamples, folds, permutations) comes from ``random_state``, so a seed makes a
  result reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """``test`` was called before ``fit`` (same bases as scikit-learn's, so either catches it)."""


@dataclass(frozen=True)
class DriftResult:
    """What one test says about one window.

    Attributes
    ----------
    name : str
        The test, e.g. ``"ks+welch"`` or ``"hotelling"``.
    statistic : float
        The test statistic (its meaning depends on the test; see ``details``).
    p_value : float
        P-value under the null hypothesis of no drift.
    effect_size : float
        Size of the change, 0 when none; ``effect_name`` says on which scale.
    effect_name : str
        ``"wasserstein_normed"`` (Wasserstein distance over the reference's standard deviation),
        ``"jensen_shannon"`` (distance, base 2, in [0, 1]), ``"mahalanobis"`` (bias-corrected
        distance between the means, in standard deviations), ``"gini"`` (2 AUC - 1 of a domain
        classifier) or ``"mmd"`` (root of the unbiased MMD^2).
    drift : bool
        ``p_value <= alpha and effect_size >= min_effect``.
    details : dict
        Test-specific numbers (sample sizes, component p-values, ...), JSON-serialisable.
    """

    name: str
    statistic: float
    p_value: float
    effect_size: float
    effect_name: str
    drift: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN and infinities become ``None``."""
        return {
            "name": self.name,
            "statistic": json_float(self.statistic),
            "p_value": json_float(self.p_value),
            "effect_size": json_float(self.effect_size),
            "effect_name": self.effect_name,
            "drift": bool(self.drift),
            "details": jsonable(self.details),
        }


#: Effect-size floors: below these a change is called trivial whatever its p-value. All are
#: "small but real": 5% of a standard deviation, a few points of category share, a domain
#: classifier barely better than chance.
DEFAULT_MIN_EFFECT: dict[str, float] = {
    "wasserstein_normed": 0.05,
    "jensen_shannon": 0.05,
    "mahalanobis": 0.05,
    "gini": 0.03,
    "mmd": 0.0,
}


class Detector:
    """Base class: settings, the fitted check and the decision rule.

    Subclasses set ``name`` and ``effect_name`` and implement ``_fit`` and ``_test``.
    """

    name: ClassVar[str] = "detector"
    effect_name: ClassVar[str] = ""

    def __init__(self, *, alpha: float = 0.05, min_effect: float | None = None) -> None:
        self.alpha = alpha
        self.min_effect = min_effect

    def fit(self, reference: Any) -> Detector:
        """Summarise ``reference`` and return ``self``."""
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        with one_blas_thread():
            self._fit(reference)
        self.fitted_ = True
        return self

    def test(self, window: Any) -> DriftResult:
        """Test ``window`` against the fitted reference."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(reference) first"
            )
        with one_blas_thread():
            return self._test(window)

    def _fit(self, reference: Any) -> None:
        raise NotImplementedError

    def _test(self, window: Any) -> DriftResult:
        raise NotImplementedError

    def _floor(self) -> float:
        if self.min_effect is not None:
            return float(self.min_effect)
        return DEFAULT_MIN_EFFECT.get(self.effect_name, 0.0)

    def _result(
        self, statistic: float, p_value: float, effect: float, details: dict[str, Any]
    ) -> DriftResult:
        drift = bool(p_value <= self.alpha and effect >= self._floor())
        return DriftResult(
            self.name,
            float(statistic),
            float(p_value),
            float(effect),
            self.effect_name,
            drift,
            details,
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({args})"


_CONTROLLER: Any = None


def one_blas_thread() -> Any:
    """Context manager: BLAS on one thread for the small products drift tests make.

    Their matrices (20 x 65,536, 1,000 x 1,000) are too small to share: on a busy machine a
    threaded BLAS waits on its threads far longer than it computes (measured on 2 loaded cores:
    a 400 x 400 by 400 x 100 product took 67 ms threaded, 7 ms on one thread). The controller is
    built once; entering the context costs about 10 microseconds.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def as_generator(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from a seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def as_1d(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_2d(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array of rows x features, got shape {arr.shape}")
    return arr


def json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def jsonable(obj: Any) -> Any:
    """Nested dicts/lists of numpy scalars and arrays to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return json_float(float(obj))
    return obj
