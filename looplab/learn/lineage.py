"""Writing lineage compactly: which annotations each version saw, as runs over versions.

A version is registered with the exact annotations it was trained and tested on (and the rows
each stood for). Stored as a row per (version, annotation), that grows with versions x labels;
stored here as :class:`~looplab.core.tables.LineageRun` rows, an annotation seen by versions 3
to 8 with one split and weight is one row, and a new version only extends the runs of the
version before it and opens runs for what changed. Reading goes through
:class:`~looplab.core.tables.TrainingLabel`, which gives back one row per (version,
annotation) exactly as before.

Why runs rather than label sets shared by content hash: a new version almost always adds
labels, so two versions rarely see exactly one set and a content-addressed set would be stored
once per version anyway; a run stays one row however many versions keep the label.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from looplab.core.errors import Conflict
from looplab.core.tables import LineageRun, ModelVersion

#: Run ids per UPDATE: well under SQLite's and PostgreSQL's limits on bound parameters.
_CHUNK = 5000


def record(
    session: Session,
    model: ModelVersion,
    seen: Mapping[int, tuple[str, int | None]],
) -> dict[str, int]:
    """Store that ``model`` saw each annotation of ``seen`` (id -> (split, weight)).

    ``model`` must be its project's newest version: runs are extended from the version just
    before it, and a run must never cover a number a later version already holds. Returns how
    many runs were extended and opened.
    """
    later = session.scalar(
        select(func.max(ModelVersion.version)).where(
            ModelVersion.project_id == model.project_id, ModelVersion.version > model.version
        )
    )
    if later is not None:
        raise Conflict(
            f"lineage of {model.name} must be written before that of a later version "
            f"(v{later} exists)",
            details={"model": model.name},
        )
    before = session.scalar(
        select(func.max(ModelVersion.version)).where(
            ModelVersion.project_id == model.project_id, ModelVersion.version < model.version
        )
    )
    open_runs: dict[int, tuple[int, str, int | None]] = {}
    if before is not None:
        rows = session.execute(
            select(
                LineageRun.annotation_id, LineageRun.id, LineageRun.split, LineageRun.weight
            ).where(LineageRun.project_id == model.project_id, LineageRun.last_version == before)
        ).tuples()
        open_runs = {aid: (rid, split, weight) for aid, rid, split, weight in rows}
    ended = [
        rid for aid, (rid, split, weight) in open_runs.items() if seen.get(aid) != (split, weight)
    ]
    opened = [
        {
            "project_id": model.project_id,
            "annotation_id": aid,
            "split": split,
            "weight": weight,
            "first_version": model.version,
            "last_version": model.version,
        }
        for aid, (split, weight) in seen.items()
        if (run := open_runs.get(aid)) is None or (run[1], run[2]) != (split, weight)
    ]
    if before is not None:
        # Most runs go on: extend them all in one statement, then end the few that stopped
        # (an answer replaced, a weight changed) at the version before.
        session.execute(
            update(LineageRun)
            .where(LineageRun.project_id == model.project_id, LineageRun.last_version == before)
            .values(last_version=model.version)
            .execution_options(synchronize_session=False)
        )
    for start in range(0, len(ended), _CHUNK):
        session.execute(
            update(LineageRun)
            .where(LineageRun.id.in_(ended[start : start + _CHUNK]))
            .values(last_version=before)
            .execution_options(synchronize_session=False)
        )
    if opened:
        session.execute(insert(LineageRun), opened)
    return {"extended": len(open_runs) - len(ended), "opened": len(opened)}


def covering(project_id: int, version: int) -> ColumnElement[bool]:
    """The condition on :class:`LineageRun` rows that hold version ``version``'s annotations.

    For queries that read the runs directly rather than the
    :class:`~looplab.core.tables.TrainingLabel` view, such as the records of a version's split
    (:mod:`looplab.govern.browse`).
    """
    return (
        (LineageRun.project_id == project_id)
        & (LineageRun.last_version >= version)
        & (LineageRun.first_version <= version)
    )


def prune(session: Session, project_id: int) -> int:
    """Delete the runs of ``project_id`` that cover no existing version; how many were deleted.

    After versions are removed (:mod:`looplab.learn.retention`), a run that covered only them
    answers no lineage question any more. A run that still covers a kept version stays as it
    is: the removed numbers inside it are never given to a new version.
    """
    covered = exists().where(
        ModelVersion.project_id == LineageRun.project_id,
        ModelVersion.version >= LineageRun.first_version,
        ModelVersion.version <= LineageRun.last_version,
    )
    result = session.execute(
        delete(LineageRun)
        .where(LineageRun.project_id == project_id, ~covered)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def stored_rows(session: Session, project_id: int | None = None) -> int:
    """How many lineage rows are stored (runs), for one project or all of them."""
    query = select(func.count()).select_from(LineageRun)
    if project_id is not None:
        query = query.where(LineageRun.project_id == project_id)
    return int(session.scalar(query) or 0)
