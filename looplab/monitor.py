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
(:func:`looplab.overview.window_feedback`), by the triggers too. Then every trigger rule decides,
and its decision is stored and audited.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from looplab import audit, jobs, projects, registry, triggers
from looplab.settings import Settings
from looplab.store import Store
from looplab.tables import (
    Feedback,
    Job,
    ModelVersion,
    MonitorWindow,
    Prediction,
    Project,
    ReferenceProfile,
    TriggerDecision,
)

log = logging.getLogger("looplab.monitor")


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
    (:func:`looplab.predlog.append`), they are the next window's. No grace period would do: no
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


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(latencies_ms, dtype=float), [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def mix(predicted: Sequence[str]) -> dict[str, float]:
    labels, counts = np.unique(np.asarray(predicted, dtype=str), return_counts=True)
    return {str(label): float(c / counts.sum()) for label, c in zip(labels, counts, strict=True)}


def measure(
    session: Session,
    project: Project,
    model: ModelVersion,
    predictions: list[Prediction],
    *,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a window stores; drift and the estimate come from ``looplab.watch``.

    Reads only, given the version's stored ``reference`` (else it is built if missing).
    """
    from looplab import watch

    report: dict[str, Any] = {
        "n": len(predictions),
        "latency": latency_summary([p.latency_ms for p in predictions]),
        "mix": mix([p.label for p in predictions]),
    }
    report.update(watch.window_drift(session, project, model, predictions, ref=reference))
    return report


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
    from looplab import watch

    if job.project_id is None:
        return {"skipped": "the job names no project"}
    watch.ensure_reference(store, job.project_id)
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
        last = _last_window(session, project.id, model.version)
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
        now = _last_window(session, job.project_id, version)
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
        fired = run_triggers(session, project, window, settings)
    return {"window": window.id, "n": n, "alarm": window.alarm, "fired": fired}


def _last_window(session: Session, project_id: int, version: int) -> tuple[int, int] | None:
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
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        key = zlib.crc32(f"looplab.monitor.{project_id}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def run_triggers(
    session: Session, project: Project, window: MonitorWindow, settings: Settings
) -> list[str]:
    """Let every rule decide on the windows of ``window``'s version, just after it closed.

    Each report carries its window's accuracy from feedback as of now
    (:func:`looplab.overview.window_feedback`), so labels that arrived late for earlier windows
    count. A decision is stored against the window it judged: ``window`` itself, except for
    ``accuracy_below``, which judges the latest window with ``min_n`` observations.

    It runs in the monitor's write transaction, so it reads only the windows the rules decide
    on (:func:`_windows_to_judge`), a handful whatever the version's history: reading every
    window's report took 0.3 s at 2,000 windows and 3.8 s at 20,000, holding SQLite's lock.
    """
    from looplab import overview

    rules = triggers.parse_rules(projects.setting(project, "triggers"))
    if not rules:
        return []
    # A new version starts a new history: a drift streak or an accuracy crossing of the old
    # version, measured against the old reference, says nothing about the new one.
    ids = _windows_to_judge(session, project.id, window, rules)
    history = list(
        session.scalars(
            select(MonitorWindow).where(MonitorWindow.id.in_(ids)).order_by(MonitorWindow.id)
        )
    )
    feedback = overview.window_feedback(session, project.id, version=window.model_version, ids=ids)
    alarms = [w.alarm for w in history]
    reports = [
        {**w.report, "feedback": feedback.get(w.id, overview.NO_FEEDBACK), "window": w.id}
        for w in history
    ]
    here = next(i for i, w in enumerate(history) if w.id == window.id)
    fired = []
    for rule in rules:
        last_fired = session.execute(
            select(TriggerDecision.created_at, TriggerDecision.window_id)
            .where(
                TriggerDecision.project_id == project.id,
                TriggerDecision.trigger == rule.name,
                TriggerDecision.fired.is_(True),
            )
            .order_by(TriggerDecision.id.desc())
            .limit(1)
        ).first()
        corrections = 0
        if rule.when == "corrections":
            corrections_query = select(func.count()).where(
                Feedback.project_id == project.id, Feedback.accepted.is_(False)
            )
            if last_fired is not None:
                corrections_query = corrections_query.where(Feedback.created_at > last_fired[0])
            corrections = session.scalar(corrections_query) or 0
        decision, reason = triggers.decide(
            rule,
            alarms,
            reports,
            corrections,
            last_fired_window=last_fired[1] if last_fired is not None else None,
        )
        judged = triggers.judged(rule, reports)
        at = judged if judged is not None else here
        target, report = history[at], reports[at]
        actions: dict[str, Any] = {}
        if decision:
            fired.append(rule.name)
            actions = act(session, project, target, report, rule, reason, settings)
        row = TriggerDecision(
            project_id=project.id,
            trigger=rule.name,
            window_id=target.id,
            fired=decision,
            reason=reason,
            actions=actions,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor="monitor",
            action="trigger.decide",
            entity_type="trigger",
            entity_id=row.id,
            project_id=project.id,
            details={"trigger": rule.name, "fired": decision, "reason": reason, "actions": actions},
        )
    return fired


def _windows_to_judge(
    session: Session, project_id: int, window: MonitorWindow, rules: list[triggers.Rule]
) -> set[int]:
    """Ids of the windows of ``window``'s version the rules decide on: a few, not the history.

    ``drift`` with ``windows`` k needs the last k + 1 (a streak of k fires, a longer one is
    already known); ``accuracy_below`` the two latest windows with ``min_n`` observations (the
    one it judges and the one before it, for "still below"), or, when there is none, the window
    with the most, which the decision's reason quotes. ``window``, just closed, is the latest.
    Each is one statement returning at most a few ids; feedback is counted in the database.
    """
    of_version = (
        MonitorWindow.project_id == project_id,
        MonitorWindow.model_version == window.model_version,
    )
    recent = max((int(r.params["windows"]) + 1 for r in rules if r.when == "drift"), default=1)
    ids = {window.id}
    ids.update(
        session.scalars(
            select(MonitorWindow.id)
            .where(*of_version)
            .order_by(MonitorWindow.id.desc())
            .limit(recent)
        )
    )
    for rule in rules:
        if rule.when != "accuracy_below":
            continue
        min_n = int(rule.params["min_n"])
        if rule.params["source"] == "feedback":
            n: Any = func.count(Feedback.id)
            counted = (
                select(MonitorWindow.id)
                .join(
                    Feedback,
                    (Feedback.project_id == MonitorWindow.project_id)
                    & (Feedback.model_version == MonitorWindow.model_version)
                    & (Feedback.prediction_seq >= MonitorWindow.first_seq)
                    & (Feedback.prediction_seq <= MonitorWindow.last_seq),
                )
                .where(*of_version)
                .group_by(MonitorWindow.id)
            )
            enough = counted.having(n >= min_n)
        else:  # the estimate's n is the window's number of predictions
            n = MonitorWindow.n_predictions
            counted = select(MonitorWindow.id).where(*of_version)
            enough = counted.where(n >= min_n)
        found = list(session.scalars(enough.order_by(MonitorWindow.id.desc()).limit(2)))
        if not found:
            found = list(session.scalars(counted.order_by(n.desc()).limit(1)))
        ids.update(found)
    return ids


def act(
    session: Session,
    project: Project,
    window: MonitorWindow,
    report: dict[str, Any],
    rule: triggers.Rule,
    reason: str,
    settings: Settings,
) -> dict[str, Any]:
    """Carry out a fired rule's actions on the window it judged; return what was done.

    ``report`` is the window's report with its accuracy from feedback as of now. What was done
    is stored with the decision. Every action is a job queued in this transaction and run by a
    worker after it commits: targeted labeling runs the model over the window (seconds for
    text), alerts retry a webhook, and neither may hold the store's write lock meanwhile.
    """
    done: dict[str, Any] = {}
    if "label" in rule.actions:
        job = jobs.enqueue(
            session,
            "label_drifted",
            project_id=project.id,
            params={"window": window.id, "trigger": rule.name},
        )
        done["label"] = {"job": job.id, "window": job.params.get("window")}
    if "retrain" in rule.actions:
        job = jobs.enqueue(
            session,
            "train",
            project_id=project.id,
            params={"actor": f"trigger:{rule.name}", "from_trigger": True},
        )
        done["retrain"] = {"job": job.id}
    if "alert" in rule.actions:
        payload = {
            "project": project.name,
            "trigger": rule.name,
            "reason": reason,
            "window": window.id,
            "model_version": f"v{window.model_version}",
            "window_end": str(window.end),
            "report": {k: report.get(k) for k in ("n", "feedback", "estimate")},
        }
        job = jobs.enqueue(session, "alert", project_id=project.id, params=payload, dedupe=False)
        done["alert"] = {"job": job.id}
    return done


def send_alert(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Job handler: deliver one alert to the project's webhook (always also to the log)."""
    from looplab import alerts

    with store.read() as session:
        project = session.get(Project, job.project_id)
        url = projects.setting(project, "webhook_url") if project is not None else None
    if not url:
        log.warning("alert (no webhook_url set): %s", job.params)
        return {"logged_only": True}
    delivery = alerts.send(url, dict(job.params), secret=settings.webhook_secret)
    if not delivery.ok:
        raise RuntimeError(
            f"webhook delivery failed after {delivery.attempts} attempts: {delivery.error}"
        )
    return delivery.to_dict()


def schedule(session: Session) -> int:
    """Queue a monitor job for every project that has a production model."""
    project_ids = session.scalars(
        select(ModelVersion.project_id).where(ModelVersion.stage == "production")
    ).all()
    for pid in set(project_ids):
        jobs.enqueue(session, "monitor", project_id=pid)
    return len(set(project_ids))
