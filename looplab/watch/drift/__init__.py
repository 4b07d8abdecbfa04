"""Drift detection: is the data a model sees still like the data it learned from?

Layout (after river's ``river/drift``): :mod:`~looplab.watch.drift.base` holds the detector contract
and :class:`DriftResult`; one module per detector; :mod:`~looplab.watch.drift.sketch` and
:mod:`~looplab.watch.drift.profile` the mergeable summaries a monitor stores;
:mod:`~looplab.watch.drift.report` the battery that turns a window into one alarm.

=============================  ==================  ==========================  ===============
detector                       data                test                        effect size
=============================  ==================  ==========================  ===============
:class:`KSDetector`            one numeric column  KS + Welch (Bonferroni)     normed Wasserstein
:class:`ChiSquareDetector`     one categorical     chi-square contingency      Jensen-Shannon
:class:`TextDetector`          texts / embeddings  TF-IDF domain classifier    gini (2 AUC - 1)
:class:`HotellingDetector`     numeric rows        Hotelling's T^2 (F)         Mahalanobis
:class:`DomainClassifierDetector`  numeric rows    held-out classifier AUC     gini
:class:`MMDDetector`           numeric rows        RBF MMD, permutations       root MMD^2
=============================  ==================  ==========================  ===============
"""

from __future__ import annotations

from looplab.watch.drift.base import DEFAULT_MIN_EFFECT, Detector, DriftResult, NotFittedError
from looplab.watch.drift.chisquare import ChiSquareDetector
from looplab.watch.drift.classifier import DomainClassifierDetector
from looplab.watch.drift.hotelling import HotellingDetector
from looplab.watch.drift.ks import KSDetector
from looplab.watch.drift.mmd import MMDDetector
from looplab.watch.drift.profile import KINDS, Profile
from looplab.watch.drift.report import DriftReport, FeatureDrift, drift_report, prediction_drift
from looplab.watch.drift.text import TextDetector

#: Every detector, for the contract test and for lookup by name.
DETECTORS: dict[str, type[Detector]] = {
    "ks": KSDetector,
    "chi2": ChiSquareDetector,
    "text": TextDetector,
    "hotelling": HotellingDetector,
    "classifier": DomainClassifierDetector,
    "mmd": MMDDetector,
}

__all__ = [
    "DEFAULT_MIN_EFFECT",
    "DETECTORS",
    "KINDS",
    "ChiSquareDetector",
    "Detector",
    "DomainClassifierDetector",
    "DriftReport",
    "DriftResult",
    "FeatureDrift",
    "HotellingDetector",
    "KSDetector",
    "MMDDetector",
    "NotFittedError",
    "Profile",
    "TextDetector",
    "drift_report",
    "prediction_drift",
]
