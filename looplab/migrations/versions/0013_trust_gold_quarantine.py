"""trust: gold answers and annotator quarantine

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:30:00

* ``gold_answers``: a record's known answer (one per record), imported with ``looplab gold`` or
  set by a reviewer. A record with one is a gold record: handed out at the project's
  ``gold_rate``, graded against, and trained on once with this label.
* ``annotator_standings``: per project and person, the latest decision about their labels
  (``flagged``, ``quarantined``, ``released`` or ``confirmed``), why, the evidence the
  reliability check measured, the policy it ran under and who decided. Each change is also an
  audit event; this row is what the queue and the training set read. A quarantined person's
  annotations carry status ``quarantined`` (a status 0001 already allowed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gold_answers",
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
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("import_batches.id"), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("record_id", name="uq_gold_answers_record"),
    )
    op.create_index("ix_gold_answers_project", "gold_answers", ["project_id", "record_id"])
    op.create_table(
        "annotator_standings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("policy", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("evidence", JSONType, nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "user_id", name="uq_annotator_standings_project_user"),
    )


def downgrade() -> None:
    op.drop_table("annotator_standings")
    op.drop_index("ix_gold_answers_project", table_name="gold_answers")
    op.drop_table("gold_answers")
