"""lineage stored as runs of versions instead of a row per (version, annotation)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 18:00:00

* ``lineage_runs`` replaces ``training_labels`` (issue 19): one row per annotation, split and
  weight over consecutive versions of its project (``first_version`` to ``last_version``).
  Versions mostly see what the one before saw plus new labels, so a project's lineage grows
  with its labels, not with versions x labels (50.8k rows after 8 versions in the soak).
* The conversion is lossless both ways: each version's (annotation, split, weight) rows are
  grouped into runs over the versions that exist (a gaps-and-islands query: a version's rank
  among its project's versions minus its rank among the annotation's versions is constant
  along a run), and the downgrade expands every run back into one row per version it covers.
  Both are single ``INSERT ... SELECT`` statements with window functions (SQLite >= 3.25 and
  PostgreSQL), so a big store converts inside the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TO_RUNS = """
INSERT INTO lineage_runs (project_id, annotation_id, split, weight, first_version, last_version)
SELECT project_id, annotation_id, split, weight, MIN(version), MAX(version)
FROM (
    SELECT mv.project_id AS project_id, tl.annotation_id AS annotation_id, tl.split AS split,
           tl.weight AS weight, mv.version AS version,
           ranked.place - ROW_NUMBER() OVER (
               PARTITION BY tl.annotation_id, tl.split, tl.weight ORDER BY mv.version
           ) AS island
    FROM training_labels tl
    JOIN model_versions mv ON mv.id = tl.model_id
    JOIN (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY version) AS place
        FROM model_versions
    ) ranked ON ranked.id = mv.id
) numbered
GROUP BY project_id, annotation_id, split, weight, island
"""

_TO_ROWS = """
INSERT INTO training_labels (model_id, annotation_id, split, weight)
SELECT mv.id, r.annotation_id, r.split, r.weight
FROM lineage_runs r
JOIN model_versions mv ON mv.project_id = r.project_id
    AND mv.version >= r.first_version AND mv.version <= r.last_version
"""


def upgrade() -> None:
    op.create_table(
        "lineage_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=10), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=True),
        sa.Column("first_version", sa.Integer(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["annotation_id"], ["annotations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lineage_runs_project_last", "lineage_runs", ["project_id", "last_version"])
    op.create_index("ix_lineage_runs_annotation_id", "lineage_runs", ["annotation_id"])
    op.execute(_TO_RUNS)
    op.drop_index("ix_training_labels_annotation_id", table_name="training_labels")
    op.drop_table("training_labels")


def downgrade() -> None:
    op.create_table(
        "training_labels",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=10), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["annotation_id"], ["annotations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "annotation_id"),
    )
    op.create_index("ix_training_labels_annotation_id", "training_labels", ["annotation_id"])
    op.execute(_TO_ROWS)
    op.drop_index("ix_lineage_runs_annotation_id", table_name="lineage_runs")
    op.drop_index("ix_lineage_runs_project_last", table_name="lineage_runs")
    op.drop_table("lineage_runs")
