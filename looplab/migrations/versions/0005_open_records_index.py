"""queue index over open records only

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:45:00

``next_record`` walked ``ix_records_queue`` (project, score) from the best score down and skipped
every record already answered: after 20,000 answers a hand-out read 20,000 rows (69 ms on
SQLite, holding the write lock). The partial index holds open records only (an answer that fills
a record removes it), ordered as the query orders, so a hand-out reads a few entries.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain SQL: the same statement works on SQLite and PostgreSQL, and a batch (table copy)
    # is not needed to add or drop an index.
    op.execute(
        "CREATE INDEX ix_records_open ON records (project_id, score DESC, id) "
        "WHERE n_human < needed"
    )
    op.execute("DROP INDEX ix_records_queue")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_records_queue ON records (project_id, score)")
    op.execute("DROP INDEX ix_records_open")
