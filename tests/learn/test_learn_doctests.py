"""The docstring examples of the evaluation, gate and split modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "looplab.serve.batching",
    "looplab.learn.calibration",
    "looplab.learn.dataset",
    "looplab.trust.labels",
    "looplab.learn.evaluate",
    "looplab.learn.gate",
    "looplab.learn.neardup",
    "looplab.learn.slices",
    "looplab.ask.suggestions",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
