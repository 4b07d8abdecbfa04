"""Label Studio migration without loss: annotators by e-mail, answers keyed by their source id

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 14:20:00

* ``users.email`` (unique where set): how an imported Label Studio answer finds its annotator, and
  how an export names them to Label Studio (``completed_by: {"email": ...}``).
* ``annotations.external_id`` (unique per project where set): the Label Studio annotation id, so
  re-importing the same export adds nothing instead of doubling every answer.
* ``annotations.ground_truth``: Label Studio's reviewed mark, kept so an export does not promote
  every answer to ground truth (Label Studio's import default).
* ``records.external_id``: the Label Studio task id a record came from (provenance).
* ``external_predictions``: predictions made outside looplab (a Label Studio ``model_version``)
  with their scores: kept, shown in exports, never mixed with looplab's own model versions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable or with a default) on both databases: no table copy.
    op.add_column("users", sa.Column("email", sa.String(length=254), nullable=True))
    op.create_index("ix_users_email", "users", ["email"], unique=True)
    op.add_column("annotations", sa.Column("external_id", sa.String(length=100), nullable=True))
    op.add_column(
        "annotations",
        sa.Column("ground_truth", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "uq_annotations_project_external", "annotations", ["project_id", "external_id"], unique=True
    )
    op.add_column("records", sa.Column("external_id", sa.String(length=100), nullable=True))
    op.create_table(
        "external_predictions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "record_id",
            sa.Integer(),
            sa.ForeignKey("records.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("result", JSONType, nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("import_batches.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "uq_external_predictions_project_external",
        "external_predictions",
        ["project_id", "external_id"],
        unique=True,
    )
    op.create_index("ix_external_predictions_record_id", "external_predictions", ["record_id"])


def downgrade() -> None:
    op.drop_table("external_predictions")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("external_id")
    op.drop_index("uq_annotations_project_external", table_name="annotations")
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("ground_truth")
        batch.drop_column("external_id")
    op.drop_index("ix_users_email", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
