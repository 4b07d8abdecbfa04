"""Upgrading a store that already holds data: what the migrations rewrite, on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, bindparam, inspect, text
from sqlalchemy.sql.elements import TextClause

from looplab.core.store import MIGRATIONS_DIR, Store
from looplab.watch import windows
from tests.conftest import pg_schema


@contextmanager
def store_at(kind: str, tmp_path: Path, revision: str) -> Iterator[Store]:
    """A store of ``kind`` migrated only up to ``revision`` (an older release's schema)."""
    with ExitStack() as stack:
        if kind == "sqlite":
            store = Store(f"sqlite:///{tmp_path / 'old.db'}")
        else:
            store = Store(stack.enter_context(pg_schema()))
        try:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            with store.write_engine.connect() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
            yield store
        finally:
            store.dispose()


T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def sql(statement: str, *times: str) -> TextClause:
    """Raw SQL whose ``times`` parameters are stored as the ORM stores times (SQLite: text)."""
    return text(statement).bindparams(
        *(bindparam(name, type_=DateTime(timezone=True)) for name in times)
    )


def add_project_and_user(run: Callable[..., Any], *, typed_time: bool = True) -> None:
    """Project 1 ("p", tabular, labels a and b) and annotator 1 ("u"), both made at ``T0``.

    ``typed_time=False`` binds the project's time untyped, as the 0006 test always has.
    """
    run(
        sql(
            "INSERT INTO projects (id, name, task, annotation_type, labels, fields, "
            "guidelines, settings, labels_since_model, created_at) VALUES (1, 'p', "
            "'tabular', 'single_label', '[\"a\", \"b\"]', '[\"x\"]', '', '{}', 0, :t)",
            *(["t"] if typed_time else []),
        ),
        {"t": T0},
    )
    run(
        sql(
            "INSERT INTO users (id, name, role, token_hash, active, created_at) "
            "VALUES (1, 'u', 'annotator', 'h', true, :t)",
            "t",
        ),
        {"t": T0},
    )


def add_prediction(run: Callable[..., Any], pid: str, version: int, when: dt.datetime) -> None:
    """Prediction ``pid`` of project 1 by model ``version``, made at ``when``."""
    run(
        sql(
            "INSERT INTO predictions (id, project_id, model_version, input, label, "
            "confidence, proba, latency_ms, created_at) VALUES (:id, 1, :v, '{}', "
            "'a', 0.9, '{}', 1.0, :t)",
            "t",
        ),
        {"id": pid, "v": version, "t": when},
    )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0006_counts_old_feedback_in_its_predictions_window(kind: str, tmp_path: Path) -> None:
    with store_at(kind, tmp_path, "0005") as store:
        with store.write() as session:
            run = session.execute
            add_project_and_user(run, typed_time=False)
            # Four predictions of v1 at minutes 1 to 4; windows of the old kind: the first
            # starts at its first prediction, the second at the first one's end (exclusive).
            for i in range(1, 5):
                add_prediction(run, f"p{i}", 1, at(i))
            for wid, start, end in ((1, at(1), at(2)), (2, at(2), at(4))):
                run(
                    sql(
                        'INSERT INTO monitor_windows (id, project_id, model_version, start, "end",'
                        " n_predictions, alarm, report, created_at) VALUES (:id, 1, 1, :s, :e, 2,"
                        " false, '{}', :e)",
                        "s",
                        "e",
                    ),
                    {"id": wid, "s": start, "e": end},
                )
            # Feedback on p2 (window 1) and p3 (window 2), both given after window 2 closed.
            for fid, pid, accepted in ((1, "p2", False), (2, "p3", True)):
                run(
                    sql(
                        "INSERT INTO feedback (id, project_id, prediction_id, model_version, "
                        "user_id, accepted, label, created_at) VALUES (:id, 1, :p, 1, 1, :ok, "
                        "'a', :t)",
                        "t",
                    ),
                    {"id": fid, "p": pid, "ok": accepted, "t": at(10)},
                )

        store.upgrade()  # what `looplab` and the server do on start

        with store.read() as session:
            prediction_at = dict(
                session.execute(text("SELECT prediction_id, prediction_at FROM feedback"))
                .tuples()
                .all()
            )
            starts = dict(
                session.execute(text("SELECT id, start FROM monitor_windows")).tuples().all()
            )
            feedback = windows.window_feedback(session, 1)
        # SQLite hands back the stored UTC wall time as text through raw SQL.
        assert {k: str(v)[:16] for k, v in prediction_at.items()} == {
            "p2": "2026-06-01 12:02",
            "p3": "2026-06-01 12:03",
        }
        assert {k: str(v)[:16] for k, v in starts.items()} == {
            1: "2026-06-01 12:01",
            2: "2026-06-01 12:03",  # its first prediction, no longer the first window's end
        }
        assert {w: (f["n"], f["accepted"]) for w, f in feedback.items()} == {1: (1, 0), 2: (1, 1)}

        indexes = {
            table: {ix["name"] for ix in inspect(store.read_engine).get_indexes(table)}
            for table in ("feedback", "predictions")
        }
        assert {"ix_feedback_window", "ix_feedback_prediction_id"} <= indexes["feedback"]
        assert "ix_predictions_project_version_time" in indexes["predictions"]
        assert "ix_predictions_project_time" not in indexes["predictions"]
        columns = {c["name"]: c for c in inspect(store.read_engine).get_columns("feedback")}
        assert columns["prediction_at"]["nullable"] is False


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0007_numbers_old_predictions_and_keeps_windows_and_feedback(
    kind: str, tmp_path: Path
) -> None:
    with store_at(kind, tmp_path, "0006") as store:
        with store.write() as session:
            run = session.execute
            add_project_and_user(run)
            # v1 at minutes 1, 2, 2, 3, 4 (two rows of one call share a time), v2 at minute 3.
            for pid, version, minute in (
                ("p1", 1, 1),
                ("p2b", 1, 2),
                ("p2a", 1, 2),
                ("p3", 1, 3),
                ("p4", 1, 4),
                ("q1", 2, 3),
            ):
                add_prediction(run, pid, version, at(minute))
            # Windows of v1 over minutes 1-2 and 3-4, and an old one closed while v2 served
            # but holding only v1's predictions (before windows were per version).
            for wid, version, start, end in ((1, 1, 1, 2), (2, 1, 3, 4), (3, 2, 1, 2)):
                run(
                    sql(
                        'INSERT INTO monitor_windows (id, project_id, model_version, start, "end",'
                        " n_predictions, alarm, report, created_at) VALUES (:id, 1, :v, :s, :e,"
                        " 2, false, '{}', :e)",
                        "s",
                        "e",
                    ),
                    {"id": wid, "v": version, "s": at(start), "e": at(end)},
                )
            run(
                sql(
                    "INSERT INTO trigger_decisions (id, project_id, trigger, window_id, fired, "
                    "reason, actions, created_at) VALUES (1, 1, 'd', 2, true, 'r', '{}', :t)",
                    "t",
                ),
                {"t": at(5)},
            )
            for fid, pid, version, minute, accepted in (
                (1, "p2a", 1, 2, False),
                (2, "p3", 1, 3, True),
                (3, "q1", 2, 3, True),
            ):
                run(
                    sql(
                        "INSERT INTO feedback (id, project_id, prediction_id, model_version, "
                        "prediction_at, user_id, accepted, label, created_at) VALUES (:id, 1, "
                        ":p, :v, :pt, 1, :ok, 'a', :t)",
                        "pt",
                        "t",
                    ),
                    {
                        "id": fid,
                        "p": pid,
                        "v": version,
                        "pt": at(minute),
                        "ok": accepted,
                        "t": at(10),
                    },
                )

        store.upgrade()

        with store.read() as session:
            seq = dict(session.execute(text("SELECT id, seq FROM predictions")).tuples().all())
            ranges = {
                wid: (first, last)
                for wid, first, last in session.execute(
                    text("SELECT id, first_seq, last_seq FROM monitor_windows")
                ).tuples()
            }
            judged = dict(
                session.execute(text("SELECT prediction_id, prediction_seq FROM feedback"))
                .tuples()
                .all()
            )
            decision = session.scalar(text("SELECT window_id FROM trigger_decisions"))
            feedback = windows.window_feedback(session, 1)
        # Each version's rows in time order, ties by id.
        assert seq == {"p1": 1, "p2a": 2, "p2b": 3, "p3": 4, "p4": 5, "q1": 1}
        # Window 3 (v2) held none of v2's predictions: an empty range where it stood.
        assert ranges == {1: (1, 3), 2: (4, 5), 3: (1, 0)}
        # No feedback row or trigger decision was lost to the upgrade.
        assert judged == {"p2a": 2, "p3": 4, "q1": 1} and decision == 2
        assert {w: (f["n"], f["accepted"]) for w, f in feedback.items()} == {1: (1, 0), 2: (1, 1)}

        inspector = inspect(store.read_engine)
        indexes = {
            table: {ix["name"]: ix for ix in inspector.get_indexes(table)}
            for table in ("predictions", "feedback", "monitor_windows")
        }
        assert indexes["predictions"]["ix_predictions_version_seq"]["unique"]
        assert indexes["feedback"]["ix_feedback_window"]["column_names"] == [
            "project_id",
            "model_version",
            "prediction_seq",
        ]
        assert "ix_monitor_windows_version" in indexes["monitor_windows"]
        for table, column in (
            ("predictions", "seq"),
            ("feedback", "prediction_seq"),
            ("monitor_windows", "first_seq"),
            ("monitor_windows", "last_seq"),
        ):
            info = {c["name"]: c for c in inspector.get_columns(table)}[column]
            assert info["nullable"] is False
            # PostgreSQL refuses a row without its number; SQLite keeps the default it was
            # added with (dropping it would copy the table).
            assert (info["default"] is None) == (kind == "postgresql")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0008_stores_artifacts_relative_to_the_workspace_and_leases_old_jobs(
    kind: str, tmp_path: Path
) -> None:
    with store_at(kind, tmp_path, "0007") as store:
        with store.write() as session:
            run = session.execute
            add_project_and_user(run)
            for mid, version, artifact in (
                (1, 1, "/old/home/.looplab/artifacts/p/v1.skops"),
                (2, 2, "C:\\ws\\artifacts\\p\\v2.skops"),
                (3, 3, "/srv/models/v3.skops"),  # outside any artifacts folder: kept
            ):
                run(
                    sql(
                        "INSERT INTO model_versions (id, project_id, version, stage, artifact, "
                        "sha256, config, metrics, n_train, n_test, created_by, created_at) "
                        "VALUES (:id, 1, :v, 'candidate', :a, 'x', '{}', '{}', 0, 0, 't', :t)",
                        "t",
                    ),
                    {"id": mid, "v": version, "a": artifact, "t": T0},
                )
            for jid, status in ((1, "running"), (2, "queued"), (3, "done")):
                run(
                    sql(
                        "INSERT INTO jobs (id, project_id, kind, status, params, result, "
                        "created_at) VALUES (:id, 1, 'train', :s, '{}', '{}', :t)",
                        "t",
                    ),
                    {"id": jid, "s": status, "t": T0},
                )
        store.upgrade()
        with store.read() as session:
            artifacts = dict(
                session.execute(text("SELECT version, artifact FROM model_versions")).tuples().all()
            )
            attempts = dict(session.execute(text("SELECT id, attempts FROM jobs")).tuples().all())
        assert artifacts == {1: "p/v1.skops", 2: "p/v2.skops", 3: "/srv/models/v3.skops"}
        assert attempts == {1: 1, 2: 0, 3: 1}
        # The old release's running job has no lease: the first worker reclaims it.
        from looplab.core import jobs

        with store.write() as session:
            claimed = jobs.claim(session, "new-worker")
            assert claimed is not None and (claimed.id, claimed.attempts) == (1, 2)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0012_keeps_old_answers_and_users_and_keys_label_studio_ids(
    kind: str, tmp_path: Path
) -> None:
    from sqlalchemy.exc import IntegrityError

    with store_at(kind, tmp_path, "0011") as store:
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
            for aid in (1, 2):  # two answers of the old kind: no external id, twice
                run(
                    sql(
                        "INSERT INTO annotations (id, project_id, record_id, annotator_id, value,"
                        " label, origin, status, created_at) VALUES (:id, 1, 1, 1,"
                        " '{\"label\": \"a\"}', 'a', 'human', 'active', :t)",
                        "t",
                    ),
                    {"id": aid, "t": T0},
                )
        store.upgrade()
        with store.read() as session:
            rows = session.execute(
                text("SELECT id, external_id, ground_truth FROM annotations ORDER BY id")
            ).all()
            email = session.scalar(text("SELECT email FROM users WHERE id = 1"))
            record = session.scalar(text("SELECT external_id FROM records WHERE id = 1"))
        assert [(r[0], r[1], bool(r[2])) for r in rows] == [(1, None, False), (2, None, False)]
        assert email is None and record is None
        # A Label Studio answer id is unique per project: a second copy is refused.
        insert = sql(
            "INSERT INTO annotations (id, project_id, record_id, value, label, origin, status,"
            " external_id, created_at) VALUES (:id, 1, 1, '{}', 'a', 'import', 'active', '17',"
            " :t)",
            "t",
        )
        with store.write() as session:
            session.execute(insert, {"id": 3, "t": T0})
        with pytest.raises(IntegrityError), store.write() as session:
            session.execute(insert, {"id": 4, "t": T0})
        tables = set(inspect(store.read_engine).get_table_names())
        assert "external_predictions" in tables


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0009_adds_column_types_and_unknown_categories_as_nulls(kind: str, tmp_path: Path) -> None:
    with store_at(kind, tmp_path, "0008") as store:
        with store.write() as session:
            run = session.execute
            add_project_and_user(run)
            run(
                sql(
                    "INSERT INTO predictions (id, project_id, model_version, seq, input, label, "
                    "confidence, proba, latency_ms, created_at) VALUES ('p1', 1, 1, 1, '{}', "
                    "'a', 0.9, '{}', 1.0, :t)",
                    "t",
                ),
                {"t": at(1)},
            )
        store.upgrade()
        with store.read() as session:
            assert session.execute(text("SELECT field_types FROM projects")).scalar() is None
            assert session.execute(text("SELECT unknown FROM predictions")).scalar() is None
            from looplab.collect import schema
            from looplab.core.tables import Project

            project = session.get(Project, 1)
            assert project is not None and schema.of_project(project) is None


def _migrate(store: Store, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
        connection.commit()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0013_adds_gold_and_standings_and_goes_back_without_losing_answers(
    kind: str, tmp_path: Path
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.exc import IntegrityError

    from looplab.core.tables import Base

    with store_at(kind, tmp_path, "0012") as store:
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
        # The new tables are the ORM's: nothing left for autogenerate to add or drop.
        with store.write_engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "gold" in str(d) or "standing" in str(d)] == []

        gold = sql(
            "INSERT INTO gold_answers (project_id, record_id, label, source, created_by,"
            " created_at) VALUES (1, 1, 'a', 'import', 'u', :t)",
            "t",
        )
        with store.write() as session:
            session.execute(gold, {"t": T0})
            session.execute(
                sql(
                    "INSERT INTO annotator_standings (project_id, user_id, status, policy,"
                    " reason, evidence, decided_by, decided_at) VALUES (1, 1, 'quarantined',"
                    " 'flag', 'flips', '{}', 'admin', :t)",
                    "t",
                ),
                {"t": T0},
            )
        with pytest.raises(IntegrityError), store.write() as session:
            session.execute(gold, {"t": T0})  # one known answer per record

        _migrate(store, "0012", down=True)
        tables = set(inspect(store.read_engine).get_table_names())
        assert not {"gold_answers", "annotator_standings"} & tables
        with store.read() as session:
            assert session.scalar(text("SELECT label FROM annotations WHERE id = 1")) == "a"
        _migrate(store, "head")
        assert {"gold_answers", "annotator_standings"} <= set(
            inspect(store.read_engine).get_table_names()
        )
