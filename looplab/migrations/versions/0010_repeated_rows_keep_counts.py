"""repeated rows keep their counts: records.row_count, annotations.row_count, training weights

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07 14:30:00

* ``records.row_count``: how many imported rows the record stands for (identical inputs are one
  record under ``dedupe=content``). Existing records get 1: the rows an older import dropped as
  duplicates were not counted anywhere, so 1 is all that is known.
* ``annotations.row_count``: for an imported label, how many rows of its batch gave the record
  this label (one annotation per record, batch and label); 1 for every other answer.
* ``training_labels.weight``: the training rows an annotation stood for in that version (0 for
  an answer that was outvoted); NULL for versions trained before counts, which weighed every
  record once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "records", sa.Column("row_count", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "annotations", sa.Column("row_count", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("training_labels", sa.Column("weight", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_labels") as batch_op:
        batch_op.drop_column("weight")
    with op.batch_alter_table("annotations") as batch_op:
        batch_op.drop_column("row_count")
    with op.batch_alter_table("records") as batch_op:
        batch_op.drop_column("row_count")
