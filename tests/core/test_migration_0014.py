"""Migration 0014 (the review queue): the table is the ORM's, and going back drops only it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tests.core.test_migrations import T0, _migrate, add_project_and_user, sql, store_at


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0014_adds_review_items_and_goes_back_without_losing_answers(
    kind: str, tmp_path: Path
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from looplab.core.tables import Base

    with store_at(kind, tmp_path, "0013") as store:
        with store.write() as session:
            run = session.execute
            add_project_and_user(run)
            run(
                sql(
                    "INSERT INTO records (id, project_id, content_hash, payload, meta, n_human,"
                    " needed, score, created_at) VALUES (1, 1, :h, '{}', '{}', 1, 1, 0.5, :t)",
                    "t",
                ),
                {"h": b"0" * 16, "t": T0},
            )
            run(
                sql(
                    "INSERT INTO annotations (id, project_id, record_id, annotator_id, value,"
                    " label, origin, status, created_at) VALUES (1, 1, 1, 1,"
                    " '{\"label\": \"a\"}', 'a', 'human', 'active', :t)",
                    "t",
                ),
                {"t": T0},
            )
        store.upgrade()
        with store.write_engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "review" in str(d)] == []
        with store.write() as session:
            session.execute(
                sql(
                    "INSERT INTO review_items (project_id, record_id, reason, score, given_label,"
                    " suggested_label, annotation_ids, status, decision_id, created_at) VALUES"
                    " (1, 1, 'label_error', 0.02, 'a', 'b', '[1]', 'relabeled', 1, :t)",
                    "t",
                ),
                {"t": T0},
            )
        with store.write() as session:  # a decision's annotation may go; the item stays
            session.execute(text("DELETE FROM annotations WHERE id = 1"))
        with store.read() as session:
            assert session.scalar(text("SELECT decision_id FROM review_items")) is None
        _migrate(store, "0013", down=True)
        assert "review_items" not in set(inspect(store.read_engine).get_table_names())
        with store.read() as session:
            assert session.scalar(text("SELECT count(*) FROM records")) == 1
