"""model versions and lineage

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:06:00.168112
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "version", name="uq_model_project_version"),
    )
    op.create_table(
        "training_labels",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(["annotation_id"], ["annotations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "annotation_id"),
    )
    with op.batch_alter_table("training_labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_labels_annotation_id"), ["annotation_id"], unique=False
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("labels_since_model", sa.Integer(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pred_label", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("pred_confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("pred_model", sa.Integer(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("pred_model")
        batch_op.drop_column("pred_confidence")
        batch_op.drop_column("pred_label")

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("labels_since_model")

    with op.batch_alter_table("training_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_labels_annotation_id"))

    op.drop_table("training_labels")
    op.drop_table("model_versions")
