"""Monitoring: close windows of served predictions, measure them, and let the triggers decide.

A ``monitor`` job reads only the production version's predictions logged since that version's
last window (by ``seq``, the log's commit order, so a replica's late rows are never skipped; see
:func:`window_predictions`), never re-reading history, and closes the windows that are due
(:func:`segments`): with ``window`` = ``count``, each run of ``monitor_min_predictions``
predictions; with a period (``1h``, ``1d``, ``7d``, ``1M``), each period that has ended, by the
request's time or an input's event time (:mod:`looplab.watch.periods`). ``force``
(``looplab monitor --run``) also closes the open one. A window holds one version's predictions,
so after a promotion no figure blends two models; the triggers, too, read the windows of the
version that just closed one. For each window it stores: input drift against the production
model's reference profile (computed once per model version from the exact records it was
trained on), prediction drift, the label-free accuracy estimate, the mean predicted
probabilities, each feature's effect on accuracy, and latency percentiles; and it draws the
window's audit sample (:mod:`looplab.watch.auditing`). Accuracy from labels is not stored:
labels belong to the window of the prediction they judge and often arrive after that window
closed, so they are counted whenever a window is read (:mod:`looplab.watch.windows`), and the
window's level with them (:func:`looplab.watch.levels.assess_window`), by the triggers too. Then,
in the same transaction, every trigger rule decides on the window and acts
(:func:`looplab.watch.triggers.run_triggers`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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
    utcnow,
)
from looplab.learn import registry
from looplab.watch import auditing, levels, periods, triggers
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


#: Windows one monitor run closes at most (a backlog is worked off over the next runs).
MAX_WINDOWS_PER_RUN = 100


@dataclass(frozen=True)
class Served:
    """What the audit draw keeps of a prediction once the read session is closed."""

    id: str
    seq: int
    label: str
    input: dict[str, Any]


@dataclass
class Measured:
    """A window measured on the read session, waiting to be written."""

    report: dict[str, Any]
    n: int
    first_seq: int
    last_seq: int
    start: dt.datetime
    end: dt.datetime
    audit: list[Served]


def segments(
    project: Project,
    predictions: list[Prediction],
    now: dt.datetime,
    *,
    force: bool,
    min_predictions: int | None = None,
) -> list[tuple[int, int, tuple[dt.datetime, dt.datetime] | None]]:
    """``(start, stop, period)`` of each window to close now among the pending predictions.

    ``window`` = ``count``: consecutive runs of ``monitor_min_predictions`` (or
    ``min_predictions``), so the same predictions make the same windows however often the job
    runs; a period: :func:`looplab.watch.periods.cut`. ``force`` also closes the open window.
    """
    if not predictions:
        return []
    window = str(projects.setting(project, "window"))
    if window == "count" or min_predictions:
        size = int(min_predictions or projects.setting(project, "monitor_min_predictions"))
        stops = list(range(size, len(predictions) + 1, size))
        if force and (not stops or stops[-1] < len(predictions)):
            stops.append(len(predictions))
        if not stops:
            return []
        return [(a, b, None) for a, b in zip([0, *stops[:-1]], stops, strict=True)]
    field = projects.setting(project, "window_time_field")
    times: list[dt.datetime | None] = (
        [periods.event_time((p.input or {}).get(field)) for p in predictions]
        if field
        else [p.created_at for p in predictions]
    )
    cuts = periods.cut(times, window, now, by_event=bool(field), force=force)
    if not cuts:
        return []
    starts = [0, *[stop for stop, _ in cuts[:-1]]]
    return [(a, stop, period) for a, (stop, period) in zip(starts, cuts, strict=True)]


def monitor_project(
    store: Store, settings: Settings, job: Job, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Close the project's windows that are due, and run the triggers on each.

    ``now`` is the clock periods are closed by (tests pass their own); ``job.params``
    may hold ``force`` (close the open window too: ``looplab monitor --run``) and
    ``min_predictions`` (a fixed count for this run).

    Measuring a window (up to 200,000 predictions through the drift tests) takes seconds, so it
    is done on a read session, holding no lock: annotators' submits and the prediction log never
    wait for it (on SQLite a write transaction holds the whole database's write lock). Only the
    windows, their audit samples and events and the trigger decisions are written, in one short
    transaction that first checks that the version's last window is still the one the measured
    predictions follow. Two workers may measure the same predictions at once (two monitor jobs
    for one project, on two workers); the second to write finds the window closed and writes
    nothing.
    """
    from looplab.watch import reference as references

    if job.project_id is None:
        return {"skipped": "the job names no project"}
    now = now or utcnow()
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
        cuts = segments(
            project,
            predictions,
            now,
            force=bool(job.params.get("force")),
            min_predictions=job.params.get("min_predictions"),
        )[:MAX_WINDOWS_PER_RUN]
        rate = float(projects.setting(project, "audit_rate"))
        # The open window's audit draw, now: a person labels it while the period runs.
        still_open = predictions[cuts[-1][1] if cuts else 0 :]
        open_audit = [
            Served(p.id, p.seq, p.label, dict(p.input))
            for p in auditing.undrawn(session, project.id, auditing.pick(still_open, rate))
        ]
        if not cuts:
            waiting: dict[str, Any] = {"waiting": _waiting(project, model.name, len(predictions))}
            version = model.version
            del predictions, still_open
            if open_audit:
                waiting.update(_queue_open_audit(store, job.project_id, version, open_audit))
            return waiting
        measured = [
            _measure_segment(session, project, model, predictions[a:b], period, reference, rate)
            for a, b, period in cuts
        ]
        version = model.version
    del predictions, still_open
    done = _write_windows(store, settings, job.project_id, version, last, measured)
    if open_audit and "skipped" not in done:
        done["open_window"] = _queue_open_audit(store, job.project_id, version, open_audit)
    return done


def _queue_open_audit(
    store: Store, project_id: int, version: int, picked: list[Served]
) -> dict[str, int]:
    """Queue the open window's audit draw in a short write of its own."""
    with store.write() as session:
        _serialise(session, project_id)
        project = session.get(Project, project_id)
        if project is None:
            return {"audited": 0, "new_records": 0}
        return auditing.queue_audit(session, project, version, picked)


def _waiting(project: Project, model_name: str, pending: int) -> str:
    window = str(projects.setting(project, "window"))
    if window == "count":
        minimum = int(projects.setting(project, "monitor_min_predictions"))
        return f"{pending} of {minimum} predictions of {model_name} for a window"
    return f"{pending} predictions of {model_name} in the open {window} window"


def _measure_segment(
    session: Session,
    project: Project,
    model: ModelVersion,
    predictions: list[Prediction],
    period: tuple[dt.datetime, dt.datetime] | None,
    reference: ReferenceProfile,
    rate: float,
) -> Measured:
    report = measure(session, project, model, predictions, reference=reference.profile)
    if period is not None:
        report["period"] = {
            "window": projects.setting(project, "window"),
            "by": projects.setting(project, "window_time_field") or "request time",
            "start": period[0].isoformat(),
            "end": period[1].isoformat(),
        }
    # The level as far as it is known at closing time (no labels yet): the estimate's part.
    report["level_at_close"] = levels.assess_window(
        report, None, None, margin=float(projects.setting(project, "alarm_margin"))
    )["level"]
    times = [p.created_at for p in predictions]
    return Measured(
        report,
        len(predictions),
        predictions[0].seq,
        predictions[-1].seq,
        min(times),
        max(times),
        [Served(p.id, p.seq, p.label, dict(p.input)) for p in auditing.pick(predictions, rate)],
    )


def _write_windows(
    store: Store,
    settings: Settings,
    project_id: int,
    version: int,
    last: tuple[int, int] | None,
    measured: list[Measured],
) -> dict[str, Any]:
    with store.write() as session:
        _serialise(session, project_id)
        now = last_window(session, project_id, version)
        if now != last:
            return {"skipped": f"window #{now[0] if now else None} was closed by another worker"}
        project = session.get(Project, project_id)
        if project is None:
            return {"skipped": "project no longer exists"}
        closed = []
        for m in measured:
            window = MonitorWindow(
                project_id=project.id,
                model_version=version,
                # Feedback is matched to windows by seq; the times are for people. A late row
                # from another replica may be older than the previous window's end.
                first_seq=m.first_seq,
                last_seq=m.last_seq,
                start=m.start,
                end=m.end,
                n_predictions=m.n,
                alarm=m.report["level_at_close"] == "performance",
                report=m.report,
            )
            session.add(window)
            session.flush()
            audited = auditing.queue_audit(session, project, version, m.audit)
            audit.record(
                session,
                actor="monitor",
                action="monitor.window",
                entity_type="window",
                entity_id=window.id,
                project_id=project.id,
                details={
                    "n": window.n_predictions,
                    "alarm": window.alarm,
                    "level": m.report["level_at_close"],
                    **audited,
                },
            )
            fired = triggers.run_triggers(session, project, window, settings)
            closed.append(
                {
                    "window": window.id,
                    "n": m.n,
                    "alarm": window.alarm,
                    "level": m.report["level_at_close"],
                    "fired": fired,
                    **audited,
                }
            )
    return {**closed[-1], "windows": closed}


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
