"""The scoring job writes only what moved, in bounded transactions (issue 19: labeling keeps its
pace while the pool is scored)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from looplab.ask import scoring
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, Record
from tests import textdata


def _open_pool(store: Store, n: int) -> int:
    with store.write() as session:
        project = projects.get_project(session, "news")
        for i, (text, _, _) in enumerate(textdata.rows(n, seed=5)):
            session.add(
                Record(
                    project_id=project.id,
                    content_hash=hashlib.blake2b(f"open{i}".encode(), digest_size=16).digest(),
                    payload={"text": f"{text} open{i}"},
                    meta={},
                )
            )
        return project.id


def test_rescoring_writes_only_records_that_moved_in_chunks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.write() as session:
        textdata.add_text_project(session, n=300)
    textdata.train(store, tmp_path)
    project_id = _open_pool(store, 2_500)
    monkeypatch.setattr(scoring, "SCORE_CHUNK", 400)
    chunks: list[int] = []

    def count(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith("UPDATE RECORDS"):
            chunks.append(len(params) if many else 1)

    event.listen(store.write_engine, "before_cursor_execute", count)
    try:
        job = Job(id=7, kind="score", project_id=project_id, params={})
        first = scoring.score_pool(store, Settings(home=tmp_path), job)
        pool = first["scored"]  # the imported records are open too (no person answered them)
        assert pool == first["written"] == 2_800
        assert max(chunks) <= 400 and sum(chunks) == pool
        chunks.clear()
        # The same model and draw again: nothing moved, nothing is written.
        again = scoring.score_pool(store, Settings(home=tmp_path), job)
        assert (again["scored"], again["written"], chunks) == (pool, 0, [])
        # Another draw of the diverse batch on top moves only the batches' records.
        other = Job(id=8, kind="score", project_id=project_id, params={})
        third = scoring.score_pool(store, Settings(home=tmp_path), other)
        assert 0 < third["written"] <= 2 * third["batch"]
        assert sum(chunks) == third["written"]
    finally:
        event.remove(store.write_engine, "before_cursor_execute", count)


def test_changed_rows_keep_a_suggestion_a_newer_model_repeats() -> None:
    stored: dict[int, scoring.Stored] = {1: (0.5, "a", 0.80, 3), 2: (0.5, "a", 0.80, 3)}
    rows = [
        {"rid": 1, "score": 0.505, "pl": "a", "pc": 0.805, "pm": 4},  # the same, from v4
        {"rid": 2, "score": 0.505, "pl": "b", "pc": 0.805, "pm": 4},  # another label
        {"rid": 3, "score": 0.1, "pl": "a", "pc": 0.9, "pm": 4},  # new to the pool
    ]
    assert [r["rid"] for r in scoring.changed_rows(rows, stored)] == [2, 3]
