"""monitoring and triggers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 11:16:49.655320
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("alarm", sa.Boolean(), nullable=False),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("monitor_windows", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_windows_project_end", ["project_id", "end"], unique=False)

    op.create_table(
        "reference_profiles",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column(
            "profile",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_table(
        "trigger_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=100), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "actions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["window_id"], ["monitor_windows.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trigger_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trigger_decisions_project", ["project_id", "trigger"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("trigger_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_decisions_project")

    op.drop_table("trigger_decisions")
    op.drop_table("reference_profiles")
    with op.batch_alter_table("monitor_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_windows_project_end")

    op.drop_table("monitor_windows")
