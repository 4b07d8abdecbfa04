"""The docstring examples of the evaluation, gate and split modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "looplab.batching",
    "looplab.calibration",
    "looplab.dataset",
    "looplab.evaluate",
    "looplab.gate",
    "looplab.neardup",
    "looplab.slices",
    "looplab.suggestions",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
