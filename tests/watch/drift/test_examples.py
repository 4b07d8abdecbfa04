"""The Examples sections of the drift and performance modules run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "looplab.watch.drift.sketch",
    "looplab.watch.drift.profile",
    "looplab.watch.drift.ks",
    "looplab.watch.drift.chisquare",
    "looplab.watch.drift.hotelling",
    "looplab.watch.drift.classifier",
    "looplab.watch.drift.mmd",
    "looplab.watch.drift.text",
    "looplab.watch.drift.report",
    "looplab.watch.performance",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
