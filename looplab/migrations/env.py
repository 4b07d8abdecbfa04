"""Alembic environment: runs on the connection that ``Store.upgrade`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from looplab.core.tables import Base

connection = context.config.attributes["connection"]
is_postgres = connection.dialect.name == "postgresql"
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    if is_postgres:
        # Many stateless replicas may start at once: let exactly one migrate, the rest wait.
        connection.execute(text("SELECT pg_advisory_xact_lock(7420111)"))
    context.run_migrations()
