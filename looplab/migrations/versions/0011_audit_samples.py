"""audit samples: served predictions drawn at random for people to label

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:30:00

* ``audit_samples``: one row per served prediction the monitor drew at the project's
  ``audit_rate``, with the record that carries it to the labeling queue. A window's accuracy on
  its audit sample is counted when read, from the first human answer on that record given after
  the draw, as volunteered feedback is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("prediction_seq", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prediction_id"),
    )
    op.create_index(
        "ix_audit_samples_window",
        "audit_samples",
        ["project_id", "model_version", "prediction_seq"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_samples_window", table_name="audit_samples")
    op.drop_table("audit_samples")
