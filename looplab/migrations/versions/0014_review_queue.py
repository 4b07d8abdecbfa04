"""review queue: records a reviewer should look at, and what they decided

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 17:40:00

* ``review_items``: one row per record queued for review (by the label-error scan, a low
  consensus or a flagged annotator), with its score, the given and the suggested label, the
  answers it judges, and the decision (``kept``, ``relabeled``, ``ambiguous``), who made it and
  when. The decision is also an annotation of the new origin ``review`` (origins are plain
  strings: no DDL for that).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("given_label", sa.String(length=200), nullable=True),
        sa.Column("suggested_label", sa.String(length=200), nullable=True),
        sa.Column("annotation_ids", JSONType, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["decision_id"], ["annotations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_review_items_queue", "review_items", ["project_id", "status", "score"], unique=False
    )
    op.create_index("ix_review_items_record", "review_items", ["record_id"], unique=False)
    op.create_index("ix_review_items_job_id", "review_items", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_review_items_job_id", table_name="review_items")
    op.drop_index("ix_review_items_record", table_name="review_items")
    op.drop_index("ix_review_items_queue", table_name="review_items")
    op.drop_table("review_items")
