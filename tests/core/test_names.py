"""Names and keys are validated whole: no trailing newline slips past a ``$``."""

from __future__ import annotations

from pathlib import Path

import pytest

from looplab.core import projects
from looplab.core.errors import Invalid
from looplab.govern import access
from looplab.watch.overview import parse_span
from tests.conftest import fresh_store

BAD_ENDINGS = ["\n", "\r\n", " ", "\t", "\x00"]


@pytest.mark.parametrize("ending", BAD_ENDINGS)
def test_project_and_user_names_with_a_trailing_character_are_refused(
    tmp_path: Path, ending: str
) -> None:
    with fresh_store("sqlite", tmp_path) as store, store.write() as session:
        projects.create_project(session, "news", task="text", labels=["a", "b"], actor="t")
        access.create_user(session, "bob", "annotator", actor="t")
        with pytest.raises(Invalid, match="invalid project name"):
            projects.create_project(
                session, "news" + ending, task="text", labels=["a", "b"], actor="t"
            )
        with pytest.raises(Invalid, match="invalid user name"):
            access.create_user(session, "bob" + ending, "annotator", actor="t")


@pytest.mark.parametrize("text", ["2h\nx", "\n", "1d\nd", "9999999w", "0d"])
def test_spans_are_matched_whole(text: str) -> None:
    with pytest.raises(Exception, match=r"span|window|duration"):
        parse_span(text)


def test_a_span_with_surrounding_spaces_still_reads() -> None:
    assert parse_span(" 2h ").total_seconds() == 7200
