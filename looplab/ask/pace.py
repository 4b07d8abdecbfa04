"""The pace of the jobs people's answers set off: retraining and the reliability check.

Called by :func:`looplab.ask.queue.annotate` inside its serialised section, so each costs an
answer as little as it can: one counter update for retraining, a hash draw for the check.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from looplab.core import jobs
from looplab.core.projects import setting
from looplab.core.tables import Base, Job, ModelVersion, Project, utcnow

_projects = Base.metadata.tables["projects"]
_COUNT_LABEL = (
    update(_projects)
    .where(_projects.c.id == bindparam("project_id"))
    .values(labels_since_model=_projects.c.labels_since_model + 1)
    .returning(_projects.c.labels_since_model)
)


def count_towards_retraining(session: Session, project: Project) -> None:
    """Queue a training job once enough new answers have come in since the last one started.

    Enough means ``retrain_every`` answers *and* ``retrain_min_share`` of the rows the latest
    version was trained on (:func:`retrain_due`): on a 78k-row training set, 5% is about 3,100
    labels, where ``retrain_every`` alone queued a version every 50. The training job resets the
    count when it starts; until then the count keeps growing, and the conditions are looked at
    again at each further multiple of ``retrain_every`` (not at every answer, which would cost
    each answer two queries).
    """
    pending = session.scalar(_COUNT_LABEL, {"project_id": project.id})
    loaded = session.identity_map.get(session.identity_key(Project, project.id))
    if loaded is not None:  # mirror the Core UPDATE onto the session's copy
        set_committed_value(loaded, "labels_since_model", pending)
    every = max(1, int(setting(project, "retrain_every")))
    at_step = pending is not None and pending >= every and pending % every == 0
    if at_step and retrain_due(session, project, int(pending or 0)):
        jobs.enqueue(session, "train", project_id=project.id)


def check_reliability_now_and_then(session: Session, project: Project, annotation_id: int) -> None:
    """Queue a ``reliability`` check after about every ``reliability_every`` people's answers.

    A draw from the answer's id (one in ``reliability_every``) instead of a stored counter: no
    extra write on the hot path, and a check comes as often on average.
    """
    every = int(setting(project, "reliability_every") or 0)
    key = f"looplab.reliability:{project.id}:{annotation_id}".encode()
    draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest()) / 2.0**64
    if every > 0 and draw < 1.0 / every:
        jobs.enqueue(session, "reliability", project_id=project.id)


def retrain_due(session: Session, project: Project, pending: int) -> bool:
    """Whether ``pending`` new answers call for a new candidate now.

    Not while a training job is queued or running: the running one already trains on most of
    them, and a version per batch of answers is churn nobody can review (issue 17 saw 65
    candidates from 5,507 feedback labels). Otherwise when ``pending`` reaches
    ``retrain_min_share`` of the latest version's training rows (every answer counts when there
    is no version yet).
    """
    if jobs.active(session, "train", project.id) is not None:
        return False
    if not _worker_has_time(session, project):
        return False
    share = float(setting(project, "retrain_min_share") or 0.0)
    latest = session.execute(
        select(ModelVersion.n_train, ModelVersion.config)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).first()
    if latest is None or share <= 0:
        return True
    n_train, config = latest
    # Rows, not records: a record standing for 40 identical imported rows weighs 40.
    rows = (config or {}).get("train_rows") or n_train or 0
    return pending >= share * float(rows)


def _worker_has_time(session: Session, project: Project) -> bool:
    """Whether background training may take the worker again: ``retrain_worker_share`` caps it.

    After a training that took ``T`` the next one waits ``T (1 / share - 1)`` from its end (at
    0.5, as long as it took), so monitoring, scoring and imports keep the rest of the worker's
    time however fast labels arrive. Share 0: no background retraining (``looplab train`` and
    triggers still train).
    """
    cap = float(setting(project, "retrain_worker_share"))
    if cap <= 0:
        return False
    if cap >= 1:
        return True
    last = session.execute(
        select(Job.started_at, Job.finished_at)
        .where(Job.project_id == project.id, Job.kind == "train", Job.status == "done")
        .order_by(Job.id.desc())
        .limit(1)
    ).first()
    if last is None or last[0] is None or last[1] is None:
        return True
    took = (last[1] - last[0]).total_seconds()
    return utcnow() >= last[1] + dt.timedelta(seconds=took * (1.0 / cap - 1.0))
