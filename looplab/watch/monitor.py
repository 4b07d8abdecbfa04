"""Monitoring: close windows of served predictions, measure them, and let the triggers decide.

A ``monitor`` job reads only the production version's predictions logged since that version's
last window (by ``seq``, the log's commit order, so a replica's late rows are never skipped; see
:func:`window_predictions`), never re-reading history, and closes a window once it holds
``monitor_min_predictions``. A window holds one version's predictions, so after a promotion no
figure blends two models; the triggers, too, read the windows of the version that just closed
one. For each window it stores: input drift against the production model's reference profile
(computed once per model version from the exact records it was trained on), prediction drift,
the label-free accuracy estimate, and latency percentiles. Accuracy from feedback is not
stored: feedback belongs to the window of the prediction it judges and often arrives after that
window closed, so it is counted whenever a window is read
(:func:`looplab.watch.windows.window_feedback`), by the triggers too. Then, in the same transaction,
every trigger rule decides on the window and acts (:func:`looplab.watch.triggers.run_triggers`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import audit, jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store, advisory_lock, lock_key
from looplab.core.tables import (
    Job,
    ModelVersion,
    MonitorWindow,
    Prediction,
    Project,
    ReferenceProfile,
)
from looplab.learn import registry
from looplab.watch import triggers
from looplab.watch.windows import latency_summary, mix


def window_predictions(
    session: Session,
    project: Project,
    version: int,
    after: int,
    limit: int = 200_000,
) -> list[Prediction]:
    """The next predictions of one model version: ``seq`` above ``after``, in ``seq`` order.

    At most ``limit``. Cut on ``seq``, not on time: a replica flushes its buffered rows every
    ``LOOPLAB_PREDICTION_FLUSH_SECONDS`` (longer while the store is away or SQLite's write lock
    is busy), so rows answered before a window's last prediction may be committed after the
    window closed. By time they would fall before the next window's start and never be
    monitored, nor their feedback counted; by ``seq``, numbered in commit order
    (:func:`looplab.serve.predlog.append`), they are the next window's. No grace period would do: no
    delay bounds how late a buffered row can be committed, nor how far replicas' clocks differ.
    """
    query = (
        select(Prediction)
        .where(
            Prediction.project_id == project.id,
            Prediction.model_version == version,
            Prediction.seq > after,
        )
        .order_by(Prediction.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


def measure(
    session: Session,
    project: Project,
    model: ModelVersion,
    predictions: list[Prediction],
    *,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a window stores; drift and the estimate come from ``looplab.watch.reference``.

    Reads only, given the version's stored ``reference`` (else it is built if missing).
    """
    from looplab.watch import reference as references

    report: dict[str, Any] = {
        "n": len(predictions),
        "latency": latency_summary([p.latency_ms for p in predictions]),
        "mix": mix([p.label for p in predictions]),
        "unknown": unknown_categories(predictions),
    }
    report.update(references.window_drift(session, project, model, predictions, ref=reference))
    return report


def unknown_categories(predictions: list[Prediction]) -> dict[str, int]:
    """Per field, the window's predictions whose category the model never saw in training."""
    counts: dict[str, int] = {}
    for prediction in predictions:
        for name in prediction.unknown or ():
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def monitor_project(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Close the project's next window if it is full, and run the triggers on it.

    Measuring a window (up to 200,000 predictions through the drift tests) takes seconds, so it
    is done on a read session, holding no lock: annotators' submits and the prediction log never
    wait for it (on SQLite a write transaction holds the whole database's write lock). Only the
    window, its audit event and the trigger decisions are written, in one short transaction that
    first checks that the version's last window is still the one the measured predictions
    follow. Two workers may measure the same predictions at once (two monitor jobs for one
    project, on two workers); the second to write finds the window closed and writes nothing.
    """
    from looplab.watch import reference as references

    if job.project_id is None:
        return {"skipped": "the job names no project"}
    references.ensure_reference(store, job.project_id)
    with store.read() as session:
        project = session.get(Project, job.project_id)
        if project is None:
            return {"skipped": "project no longer exists"}
        model = registry.production(session, project)
        if model is None:
            return {"skipped": "no production model"}
        reference = session.get(ReferenceProfile, model.id)
        if reference is None:  # promoted since ensure_reference() ran: the next run measures it
            return {"skipped": f"{model.name} was promoted while the monitor started"}
        # Windows are per version: one never blends two versions' drift or accuracy (right
        # after a promotion, replicas answer with both for a moment). Predictions of a version
        # no longer in production wait for it to return and are otherwise left out.
        last = last_window(session, project.id, model.version)
        after = last[1] if last is not None else 0
        predictions = window_predictions(session, project, model.version, after)
        minimum = int(
            job.params.get("min_predictions")
            or projects.setting(project, "monitor_min_predictions")
        )
        if len(predictions) < minimum:
            return {
                "waiting": f"{len(predictions)} of {minimum} predictions of {model.name} "
                "for a window"
            }
        report = measure(session, project, model, predictions, reference=reference.profile)
        version, n = model.version, len(predictions)
        times = [p.created_at for p in predictions]
        first_seq, last_seq = predictions[0].seq, predictions[-1].seq
    del predictions
    with store.write() as session:
        _serialise(session, job.project_id)
        now = last_window(session, job.project_id, version)
        if now != last:
            return {"skipped": f"window #{now[0] if now else None} was closed by another worker"}
        project = session.get(Project, job.project_id)
        if project is None:
            return {"skipped": "project no longer exists"}
        window = MonitorWindow(
            project_id=project.id,
            model_version=version,
            # Feedback is matched to windows by seq; the times are for people. A late row from
            # another replica may be older than the previous window's end.
            first_seq=first_seq,
            last_seq=last_seq,
            start=min(times),
            end=max(times),
            n_predictions=n,
            alarm=bool(report.get("drift", {}).get("alarm")),
            report=report,
        )
        session.add(window)
        session.flush()
        audit.record(
            session,
            actor="monitor",
            action="monitor.window",
            entity_type="window",
            entity_id=window.id,
            project_id=project.id,
            details={"n": window.n_predictions, "alarm": window.alarm},
        )
        fired = triggers.run_triggers(session, project, window, settings)
    return {"window": window.id, "n": n, "alarm": window.alarm, "fired": fired}


def last_window(session: Session, project_id: int, version: int) -> tuple[int, int] | None:
    """``(id, last_seq)`` of the version's latest window; windows close in ``seq`` order."""
    row = session.execute(
        select(MonitorWindow.id, MonitorWindow.last_seq)
        .where(MonitorWindow.project_id == project_id, MonitorWindow.model_version == version)
        .order_by(MonitorWindow.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def _serialise(session: Session, project_id: int) -> None:
    """Let one transaction at a time close a window of the project (SQLite: its write lock)."""
    advisory_lock(session, lock_key(f"looplab.monitor.{project_id}"))


def schedule(session: Session) -> int:
    """Queue a monitor job for every project that has a production model."""
    project_ids = session.scalars(
        select(ModelVersion.project_id).where(ModelVersion.stage == "production")
    ).all()
    for pid in set(project_ids):
        jobs.enqueue(session, "monitor", project_id=pid)
    return len(set(project_ids))
