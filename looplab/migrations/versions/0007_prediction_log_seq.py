"""monitor windows cut on the prediction log's commit order, not on time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00

* ``predictions.seq``: a row's place in its model version's log, numbered in commit order by
  the prediction log (``looplab.predlog.append``); unique per (project, version). Existing rows
  are numbered by (``created_at``, ``id``), the order the old windows were cut in.
* ``monitor_windows.first_seq`` / ``last_seq``: the range of ``seq`` a window holds. Old windows
  get the range of their version's predictions within their [start, end]; a window with none
  (one closed before windows were per version, over another version's predictions) gets an
  empty range where it stood. ``ix_monitor_windows_version`` lists a version's windows.
* ``feedback.prediction_seq``: the judged prediction's ``seq``; ``ix_feedback_window`` now
  ranges over it instead of ``prediction_at`` (kept, no longer indexed).

No table is copied: the columns are added NOT NULL with a default of 0, then filled in. On
PostgreSQL the defaults are then dropped. SQLite keeps them: dropping one copies the table, and
copying ``predictions`` with foreign keys on would delete every feedback row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


#: The new columns: none may be NULL once filled in.
COLUMNS = (
    ("predictions", "seq"),
    ("feedback", "prediction_seq"),
    ("monitor_windows", "first_seq"),
    ("monitor_windows", "last_seq"),
)


def upgrade() -> None:
    # Added NOT NULL with a default, which neither database needs to copy a table for. SQLite
    # can only make an existing column NOT NULL by copying the table, and copying `predictions`
    # (or `monitor_windows`) drops the old one, which, foreign keys being on, deletes every
    # feedback row (or unlinks every trigger decision).
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))

    # Number every version's predictions in time order, through a keyed scratch table (a
    # window function inside a correlated UPDATE would be computed again for every row).
    op.execute(
        "CREATE TEMPORARY TABLE looplab_seq AS SELECT id, ROW_NUMBER() OVER "
        "(PARTITION BY project_id, model_version ORDER BY created_at, id) AS seq FROM predictions"
    )
    op.execute("CREATE UNIQUE INDEX looplab_seq_id ON looplab_seq (id)")
    op.execute(
        "UPDATE predictions SET seq = (SELECT seq FROM looplab_seq WHERE looplab_seq.id = "
        "predictions.id)"
    )
    op.execute("DROP TABLE looplab_seq")
    op.execute(
        "UPDATE feedback SET prediction_seq = "
        "(SELECT seq FROM predictions WHERE predictions.id = feedback.prediction_id)"
    )
    _window_ranges()

    if op.get_bind().dialect.name == "postgresql":
        # Every row is numbered by looplab.predlog.append: a writer that forgets fails here.
        # SQLite keeps the default (dropping it copies the table); unique seq still catches it.
        for table, column in COLUMNS:
            op.alter_column(table, column, server_default=None)
    op.create_index(
        "ix_predictions_version_seq",
        "predictions",
        ["project_id", "model_version", "seq"],
        unique=True,
    )
    op.drop_index("ix_feedback_window", table_name="feedback")
    op.create_index(
        "ix_feedback_window", "feedback", ["project_id", "model_version", "prediction_seq"]
    )
    op.create_index(
        "ix_monitor_windows_version", "monitor_windows", ["project_id", "model_version", "id"]
    )


def _window_ranges() -> None:
    """Each old window's range of ``seq``: its version's predictions in [start, end]."""
    bind = op.get_bind()
    windows = sa.table(
        "monitor_windows",
        sa.column("id", sa.Integer),
        sa.column("project_id", sa.Integer),
        sa.column("model_version", sa.Integer),
        sa.column("start", sa.DateTime(timezone=True)),
        sa.column("end", sa.DateTime(timezone=True)),
        sa.column("first_seq", sa.BigInteger),
        sa.column("last_seq", sa.BigInteger),
    )
    predictions = sa.table(
        "predictions",
        sa.column("project_id", sa.Integer),
        sa.column("model_version", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("seq", sa.BigInteger),
    )
    rows = bind.execute(
        sa.select(
            windows.c.id,
            windows.c.project_id,
            windows.c.model_version,
            windows.c.start,
            windows.c.end,
        )
    ).all()
    for window_id, project_id, version, start, end in rows:
        of_version = (predictions.c.project_id == project_id) & (
            predictions.c.model_version == version
        )
        # ix_predictions_project_version_time (project, version, created_at) serves these.
        first, last = bind.execute(
            sa.select(sa.func.min(predictions.c.seq), sa.func.max(predictions.c.seq)).where(
                of_version, predictions.c.created_at >= start, predictions.c.created_at <= end
            )
        ).one()
        if first is None:  # none of its version's predictions: an empty range where it stood
            before = bind.scalar(
                sa.select(sa.func.max(predictions.c.seq)).where(
                    of_version, predictions.c.created_at <= end
                )
            )
            first, last = (before or 0) + 1, before or 0
        bind.execute(
            windows.update().where(windows.c.id == window_id).values(first_seq=first, last_seq=last)
        )


def downgrade() -> None:
    op.drop_index("ix_monitor_windows_version", table_name="monitor_windows")
    op.drop_index("ix_feedback_window", table_name="feedback")
    op.create_index(
        "ix_feedback_window", "feedback", ["project_id", "model_version", "prediction_at"]
    )
    op.drop_index("ix_predictions_version_seq", table_name="predictions")
    for table, column in COLUMNS:
        op.drop_column(table, column)
