"""feedback counted in its prediction's window; windows per model version

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00

* ``feedback.prediction_at``: the judged prediction's ``created_at``, backfilled from
  ``predictions``. A window's accuracy from feedback is read from the index
  ``ix_feedback_window`` (project, version, prediction_at), so feedback arriving after its
  window closed still counts there, and never in a later window about other traffic.
* ``ix_feedback_prediction_id``: the one-verdict-per-prediction check on every feedback request
  scanned the whole feedback table.
* ``ix_predictions_project_version_time`` replaces ``ix_predictions_project_time``: every reader
  of served predictions now asks for one version in a time range (a window holds one version).
* ``monitor_windows.start`` becomes the window's first prediction's time (inclusive). It was the
  previous window's end (exclusive) for every window but a project's first, so existing rows
  are rewritten to the new meaning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prediction_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE feedback SET prediction_at = "
        "(SELECT created_at FROM predictions WHERE predictions.id = feedback.prediction_id)"
    )
    # Every feedback row has its prediction (a NOT NULL foreign key, cascading deletes).
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.alter_column(
            "prediction_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            "ix_feedback_window", ["project_id", "model_version", "prediction_at"], unique=False
        )
        batch_op.create_index("ix_feedback_prediction_id", ["prediction_id"], unique=False)

    op.execute(
        "CREATE INDEX ix_predictions_project_version_time "
        "ON predictions (project_id, model_version, created_at)"
    )
    _windows_start_at_their_first_prediction()
    op.execute("DROP INDEX ix_predictions_project_time")


def _windows_start_at_their_first_prediction() -> None:
    """Old windows after a project's first: ``start`` was exclusive (the previous window's end)."""
    bind = op.get_bind()
    windows = sa.table(
        "monitor_windows",
        sa.column("id", sa.Integer),
        sa.column("project_id", sa.Integer),
        sa.column("start", sa.DateTime(timezone=True)),
        sa.column("end", sa.DateTime(timezone=True)),
    )
    predictions = sa.table(
        "predictions",
        sa.column("project_id", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(windows.c.id, windows.c.project_id, windows.c.start, windows.c.end).order_by(
            windows.c.project_id, windows.c.end
        )
    ).all()
    seen: set[int] = set()
    for window_id, project_id, start, end in rows:
        if project_id not in seen:  # a project's first window already started inclusively
            seen.add(project_id)
            continue
        # The old ix_predictions_project_time (project, created_at) is still there to read this.
        first = bind.scalar(
            sa.select(sa.func.min(predictions.c.created_at)).where(
                predictions.c.project_id == project_id,
                predictions.c.created_at > start,
                predictions.c.created_at <= end,
            )
        )
        if first is not None:
            bind.execute(windows.update().where(windows.c.id == window_id).values(start=first))


def downgrade() -> None:
    op.execute("CREATE INDEX ix_predictions_project_time ON predictions (project_id, created_at)")
    op.execute("DROP INDEX ix_predictions_project_version_time")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_prediction_id")
        batch_op.drop_index("ix_feedback_window")
        batch_op.drop_column("prediction_at")
