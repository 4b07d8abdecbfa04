"""Seeded data for the drift tests: a reference, a like window and a shifted one per detector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

SPORT = [
    "the home side won the match with a late goal",
    "the coach praised the defence after the draw",
    "a striker scored twice in the cup final",
    "the team trained hard before the derby",
    "fans cheered as the captain lifted the trophy",
    "the referee sent off a defender in the second half",
]
TECH = [
    "the new chip doubles battery life in phones",
    "a software update fixed the security bug",
    "the startup released an open source database",
    "engineers tested the cloud service under load",
]


def _numeric(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    return rng.normal(shift, 1.0, n)


def _categorical(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    p = np.array([0.5, 0.3, 0.2]) + shift * np.array([-1.0, 0.5, 0.5])
    return rng.choice(["a", "b", "c"], n, p=p / p.sum())


def _rows(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    x = rng.normal(size=(n, 5))
    x[:, :2] += shift
    return x


def _texts(rng: np.random.Generator, n: int, shift: float) -> list[str]:
    pool = np.array(SPORT + TECH)
    p = np.r_[np.full(len(SPORT), 1.0), np.full(len(TECH), shift)]
    return rng.choice(pool, n, p=p / p.sum()).tolist()


#: detector name -> (data maker, rows per sample, shift that must be detected, constructor kwargs)
CASES: dict[str, tuple[Callable[[np.random.Generator, int, float], Any], int, float, dict]] = {
    "ks": (_numeric, 300, 0.5, {}),
    "chi2": (_categorical, 300, 0.3, {}),
    "text": (_texts, 100, 1.0, {"random_state": 0}),
    "hotelling": (_rows, 300, 0.4, {}),
    "classifier": (_rows, 300, 0.5, {"random_state": 0}),
    "mmd": (_rows, 200, 0.6, {"random_state": 0, "n_permutations": 100, "max_samples": 200}),
}


def sample(name: str, seed: int, shift: float = 0.0) -> tuple[Any, Any]:
    """A reference and a window for detector ``name``, the window shifted by ``shift``."""
    make, n, _, _ = CASES[name]
    rng = np.random.default_rng(seed)
    return make(rng, n, 0.0), make(rng, n, shift)
