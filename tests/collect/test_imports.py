"""The upload's file name: kept as given where it can name a file, never a path."""

from __future__ import annotations

import pytest

from looplab.collect.imports import safe_name


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("articles.csv", "articles.csv"),
        ("статья.csv", "статья.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\data\\loans.parquet", "loans.parquet"),
        ("my file (2).jsonl", "my_file_2_.jsonl"),
        (".hidden.csv", "hidden.csv"),
        ("....", "upload"),
        ("", "upload"),
    ],
)
def test_safe_name(given: str, kept: str) -> None:
    assert safe_name(given) == kept
