"""job leases with a heartbeat; model artifacts stored relative to the workspace

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00

* ``jobs.attempts``, ``jobs.lease_until``, ``jobs.heartbeat_at``: a claimed job holds a lease that
  its worker renews; an expired lease puts the job back in the queue (or gives up after the
  configured number of attempts). A job left ``running`` by an older release gets no lease, so
  the first worker of this release reclaims it at once: its worker is gone (it ran the old code).
* ``model_versions.artifact``: a path relative to the workspace's ``artifacts`` folder, so a
  copied or restored workspace serves its own files. An absolute path is rewritten from its last
  ``artifacts`` folder on (``/old/home/artifacts/news/v2.skops`` becomes ``news/v2.skops``); one
  with no such folder (a hand-made row) is kept as it is, and still loads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def relative_artifact(path: str) -> str:
    """The part of an absolute artifact path below its last ``artifacts`` folder.

    >>> relative_artifact("/srv/looplab/artifacts/news/v2.skops")
    'news/v2.skops'
    >>> relative_artifact("C:\\\\ws\\\\artifacts\\\\news\\\\v2.skops")
    'news/v2.skops'
    >>> relative_artifact("news/v2.skops")
    'news/v2.skops'
    >>> relative_artifact("/elsewhere/v2.skops")
    '/elsewhere/v2.skops'
    """
    parts = path.replace("\\", "/").split("/")
    if "artifacts" not in parts[:-1]:
        return path
    last = len(parts) - 1 - parts[::-1].index("artifacts", 1)
    return "/".join(parts[last + 1 :])


def upgrade() -> None:
    op.add_column("jobs", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    # A job that ran under the old code counted one attempt.
    op.execute("UPDATE jobs SET attempts = 1 WHERE status IN ('running', 'done', 'failed')")

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, artifact FROM model_versions")).tuples().all()
    update = sa.text("UPDATE model_versions SET artifact = :artifact WHERE id = :id")
    for model_id, artifact in rows:
        rewritten = relative_artifact(artifact)
        if rewritten != artifact:
            connection.execute(update, {"id": model_id, "artifact": rewritten})


def downgrade() -> None:
    # Relative artifact paths stay relative: the old code resolved them against its working
    # directory, so run it from the workspace's artifacts folder, or restore a backup.
    for column in ("heartbeat_at", "lease_until", "attempts"):
        op.drop_column("jobs", column)
