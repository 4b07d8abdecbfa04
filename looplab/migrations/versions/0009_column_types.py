"""column types of a project's fields; unseen categories of each prediction

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:30:00

* ``projects.field_types``: each input field's type (numeric, categorical, boolean, date, text,
  identifier) with its evidence, decided at import (:mod:`looplab.collect.schema`). Null for
  existing projects until their next import or ``looplab schema NAME --infer``; until then
  training infers the types from its own records, as it did.
* ``predictions.unknown``: the fields of a served record whose category the model never saw;
  null when none (every existing row).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("projects", sa.Column("field_types", JSONType, nullable=True))
    op.add_column("predictions", sa.Column("unknown", JSONType, nullable=True))


def downgrade() -> None:
    op.drop_column("predictions", "unknown")
    op.drop_column("projects", "field_types")
