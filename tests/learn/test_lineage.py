"""Compact lineage (issue 19): every lineage answer is the one the row-per-version table gave.

The history below changes what versions see the way a project does: new labels arrive, answers
are superseded (they drop out), repeated rows change an annotation's weight, and a version is
trained on exactly what the one before saw. The answers (which annotations taught each version,
which versions each annotation taught, the model cards, each record's history, the rows a
drift reference is built from) are computed, the store is taken back to the row-per-version
table (0014) and up again, and the answers must not change; the rows 0014 held must be exactly
the rows the compact store reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text, update

from looplab.core import projects
from looplab.core.errors import Conflict
from looplab.core.store import MIGRATIONS_DIR, Store
from looplab.core.tables import Annotation, LineageRun, TrainingLabel
from looplab.govern import card, records
from looplab.learn import lineage, registry
from looplab.watch import reference
from tests.textdata import add_labeled, add_text_project, rows, train


def migrate(store: Store, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
        connection.commit()


def grow_history(store: Store, tmp_path: Path) -> None:
    """Five versions of ``news``: labels added, dropped, reweighted, and one unchanged step."""
    with store.write() as session:
        add_text_project(session, n=120)
    train(store, tmp_path)  # v1
    with store.write() as session:
        project = projects.get_project(session, "news")
        for i, (body, label, source) in enumerate(rows(60, seed=7)):
            add_labeled(session, project, f"more{i}", {"text": body}, label, {"source": source})
    train(store, tmp_path)  # v2: 60 more labels
    with store.write() as session:
        dropped = list(session.scalars(select(Annotation.id).order_by(Annotation.id).limit(10)))
        session.execute(
            update(Annotation).where(Annotation.id.in_(dropped)).values(status="superseded")
        )
    train(store, tmp_path)  # v3: ten answers superseded
    with store.write() as session:
        heavier = list(
            session.scalars(select(Annotation.id).order_by(Annotation.id).offset(20).limit(15))
        )
        session.execute(update(Annotation).where(Annotation.id.in_(heavier)).values(row_count=3))
    train(store, tmp_path)  # v4: fifteen answers stand for three rows each
    train(store, tmp_path)  # v5: nothing new


def lineage_rows(session: Any) -> list[tuple[int, int, str, int | None]]:
    return sorted(
        session.execute(
            select(
                TrainingLabel.model_id,
                TrainingLabel.annotation_id,
                TrainingLabel.split,
                TrainingLabel.weight,
            )
        ).tuples()
    )


def answers(store: Store) -> dict[str, Any]:
    """Every lineage answer looplab gives, as plain data."""
    with store.read() as session:
        project = projects.get_project(session, "news")
        versions = registry.list_versions(session, project)
        ids = list(session.scalars(select(Annotation.id).order_by(Annotation.id)))
        record_ids = list(session.scalars(select(Annotation.record_id).distinct()))
        return {
            "trained_on": {
                (m.name, split): registry.training_annotations(session, m, split)
                for m in versions
                for split in ("train", "test")
            },
            "taught": {a: [m.name for m in registry.models_taught_by(session, a)] for a in ids},
            "cards": {m.name: card.model_card(session, project, m) for m in versions},
            "teachers": {m.name: card.teachers(session, m) for m in versions},
            "histories": {
                r: [a["models"] for a in records.history(session, project, r)["answers"]]
                for r in sorted(record_ids)
            },
            "reference": {
                m.name: reference.training_records(session, m, "train") for m in versions
            },
        }


@pytest.fixture
def history(store: Store, tmp_path: Path) -> Store:
    grow_history(store, tmp_path)
    return store


def test_lineage_answers_are_those_of_the_row_per_version_table(
    history: Store, tmp_path: Path
) -> None:
    before = answers(history)
    with history.read() as session:
        read = lineage_rows(session)
        runs = lineage.stored_rows(session)
    # Each version drops, adds or reweighs a few annotations: far fewer runs than rows.
    assert runs < len(read) / 3

    migrate(history, "0014", down=True)  # back to one row per (version, annotation)
    with history.read() as session:
        stored = sorted(
            session.execute(
                text("SELECT model_id, annotation_id, split, weight FROM training_labels")
            ).tuples()
        )
    assert stored == read

    migrate(history, "head")  # and compacted again
    with history.read() as session:
        assert lineage.stored_rows(session) == runs
        assert lineage_rows(session) == read
    assert answers(history) == before

    # The history covers what compaction must keep apart: drops, new labels, new weights.
    taught = before["taught"]
    assert ["v1", "v2"] in taught.values()  # superseded before v3
    assert ["v2", "v3", "v4", "v5"] in taught.values()  # arrived with v2
    assert before["trained_on"][("v4", "train")] == before["trained_on"][("v5", "train")]
    weights = {w for _, _, _, w in read}
    assert {1, 3} <= weights


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0015_converts_rows_with_gaps_and_nulls_exactly(kind: str, tmp_path: Path) -> None:
    """Rows written by 0014-era code, with a missing version, old NULL weights and two
    projects, come back exactly as they were, through the runs and back to rows."""
    from tests.core.test_migrations import T0, sql, store_at

    with store_at(kind, tmp_path, "0014") as store:
        with store.write() as session:
            run = session.execute
            for pid in (1, 2):
                run(
                    sql(
                        "INSERT INTO projects (id, name, task, annotation_type, labels, fields,"
                        " guidelines, settings, labels_since_model, created_at) VALUES (:p,"
                        " :n, 'text', 'single_label', '[\"a\", \"b\"]', '[\"text\"]', '', '{}',"
                        " 0, :t)",
                        "t",
                    ),
                    {"p": pid, "n": f"p{pid}", "t": T0},
                )
            for rid in range(1, 7):
                pid = 1 if rid <= 4 else 2
                run(
                    sql(
                        "INSERT INTO records (id, project_id, content_hash, payload, meta,"
                        " n_human, needed, score, created_at) VALUES (:r, :p, :h, '{}', '{}',"
                        " 0, 1, 0.5, :t)",
                        "t",
                    ),
                    {"r": rid, "p": pid, "h": bytes([rid]) * 16, "t": T0},
                )
                run(
                    sql(
                        "INSERT INTO annotations (id, project_id, record_id, value, label,"
                        " origin, status, created_at) VALUES (:r, :p, :r, '{}', 'a', 'import',"
                        " 'active', :t)",
                        "t",
                    ),
                    {"r": rid, "p": pid, "t": T0},
                )
            # Project 1 has versions 1, 2, 4, 5 (3 was never registered); project 2 has 1 and 2.
            versions = [(1, 1, 1), (2, 1, 2), (3, 1, 4), (4, 1, 5), (5, 2, 1), (6, 2, 2)]
            for mid, pid, number in versions:
                run(
                    sql(
                        "INSERT INTO model_versions (id, project_id, version, stage, artifact,"
                        " sha256, config, metrics, n_train, n_test, created_by, created_at)"
                        " VALUES (:m, :p, :v, 'candidate', 'x', 'x', '{}', '{}', 0, 0, 't', :t)",
                        "t",
                    ),
                    {"m": mid, "p": pid, "v": number, "t": T0},
                )
            rows_0014 = [
                # annotation 1: NULL weight (before 0010) in v1 and v2, then 2 in v4 and v5
                (1, 1, "train", None),
                (2, 1, "train", None),
                (3, 1, "train", 2),
                (4, 1, "train", 2),
                # annotation 2: in v1, gone in v2, back in v4 (two runs)
                (1, 2, "train", 1),
                (3, 2, "train", 1),
                # annotation 3: test split throughout
                *((m, 3, "test", 1) for m in (1, 2, 3, 4)),
                # annotation 4: weight 0 (behind a label it did not win) then 1
                (3, 4, "train", 0),
                (4, 4, "train", 1),
                # project 2
                (5, 5, "train", 1),
                (6, 5, "train", 1),
                (6, 6, "test", 1),
            ]
            for row in rows_0014:
                run(
                    text(
                        "INSERT INTO training_labels (model_id, annotation_id, split, weight)"
                        " VALUES (:m, :a, :s, :w)"
                    ),
                    dict(zip("masw", row, strict=True)),
                )
        store.upgrade()
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from looplab.core.tables import Base

        with store.write_engine.connect() as connection:  # the table is the ORM's
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "lineage" in str(d) or "training_labels" in str(d)] == []
        with store.read() as session:
            assert lineage_rows(session) == sorted(rows_0014)
            runs = sorted(
                session.execute(
                    select(
                        LineageRun.annotation_id,
                        LineageRun.split,
                        LineageRun.weight,
                        LineageRun.first_version,
                        LineageRun.last_version,
                    )
                ).tuples(),
                key=str,
            )
        assert len(runs) == 9  # from 15 rows
        assert (2, "train", 1, 1, 1) in runs and (2, "train", 1, 4, 4) in runs
        assert (3, "test", 1, 1, 5) in runs  # across the missing version 3
        migrate(store, "0014", down=True)
        with store.read() as session:
            back = session.execute(
                text("SELECT model_id, annotation_id, split, weight FROM training_labels")
            ).tuples()
            assert sorted(back, key=str) == sorted(rows_0014, key=str)


def test_lineage_is_written_in_version_order(history: Store) -> None:
    with history.write() as session:
        project = projects.get_project(session, "news")
        v2 = registry.get_version(session, project, "v2")
        with pytest.raises(Conflict, match="before that of a later version"):
            lineage.record(session, v2, {1: ("train", 1)})
