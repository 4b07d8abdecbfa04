"""The Examples sections of the drift and performance modules run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "looplab.drift.sketch",
    "looplab.drift.profile",
    "looplab.drift.ks",
    "looplab.drift.chisquare",
    "looplab.drift.hotelling",
    "looplab.drift.classifier",
    "looplab.drift.mmd",
    "looplab.drift.text",
    "looplab.drift.report",
    "looplab.performance",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
