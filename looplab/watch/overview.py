"""What monitoring knows, read back for people: the CLI (`looplab monitor`, `looplab triggers`,
`looplab drift`), the ``/monitor`` API route and the dashboard all print these dictionaries.

Nothing here writes on a read session: windows are closed by the ``monitor`` job
(:mod:`looplab.watch.monitor`), drift is measured by :mod:`looplab.watch.reference`, and the one
write, :func:`drift_now` having a missing reference built, is a transaction of its own. A
window's accuracy from feedback is the one figure counted when read rather than stored
(:func:`looplab.watch.windows.window_feedback`), because its labels keep arriving after the
window closed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.core import projects
from looplab.core.errors import Conflict, Invalid
from looplab.core.tables import (
    MonitorWindow,
    Prediction,
    Project,
    ReferenceProfile,
    TriggerDecision,
    utcnow,
    version_name,
)
from looplab.learn import registry
from looplab.watch import levels, triggers
from looplab.watch.windows import NO_AUDIT, NO_FEEDBACK, judge_windows

_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


#: The longest span a window may reach back (100,000 weeks, about 1,900 years).
MAX_SPAN_SECONDS = 100_000 * 7 * 86400


def parse_span(text: str) -> dt.timedelta:
    """``"30m"``, ``"12h"``, ``"1d"``, ``"2w"`` as a timedelta; :class:`Invalid` otherwise."""
    match = _SPAN.fullmatch(text or "")
    seconds = float(match.group(1)) * _UNIT[match.group(2)] if match else 0.0
    # The HTTP schema allows up to 99,999.x weeks; past that, "now minus the span" would fall
    # before the year 1 and overflow.
    if not 0 < seconds < MAX_SPAN_SECONDS:
        raise Invalid(
            f"window {text!r}: use a number and a unit, e.g. 30m, 12h, 1d or 2w (under "
            "100,000 weeks)",
            details={"field": "window"},
        )
    return dt.timedelta(seconds=seconds)


def _features(drift: dict[str, Any], effects: dict[str, Any]) -> dict[str, Any]:
    """Each feature's drift test, as the dashboard plots it, with its effect on accuracy."""
    return {
        f["name"]: {
            "kind": f["kind"],
            "test": f["test"],
            "p_value": f["p_value"],
            "p_holm": f["p_holm"],
            "effect_size": f["effect_size"],
            "effect_name": f["effect_name"],
            "min_effect": f["min_effect"],
            "drift": f["drift"],
            "blamed": f["blamed"],
            "accuracy_effect": effects.get(f["name"]),
        }
        for f in drift.get("features", [])
    }


def window_summary(
    w: MonitorWindow,
    feedback: dict[str, Any] | None = None,
    audit: dict[str, Any] | None = None,
    *,
    margin: float = 0.03,
    judged: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One window as a point of the dashboard's time series (the full report stays in the row).

    ``feedback`` and ``audit`` are the window's entries of :func:`window_feedback` and
    :func:`window_audit` (none yet when missing). ``level``, ``alarm`` and the estimate's
    ``status`` are judged now, on those labels (:func:`looplab.watch.levels.assess_window`);
    ``alarm`` is true only at level ``performance``. ``judged`` is that verdict when the caller
    has it, pooled with the windows before (:func:`looplab.watch.windows.judge_windows`).
    """
    report = w.report or {}
    drift = report.get("drift") or {}
    feedback = dict(feedback or NO_FEEDBACK)
    audit = dict(audit or NO_AUDIT)
    if judged is None:
        judged = levels.assess_window(report, feedback, audit, margin=margin)
    effects = report.get("effects") or {}
    features = _features(drift, effects)
    multi = drift.get("multivariate")
    prediction = drift.get("prediction")
    return {
        "id": w.id,
        "model_version": version_name(w.model_version) if w.model_version is not None else None,
        "start": w.start,
        "end": w.end,
        "period": report.get("period"),
        "n": w.n_predictions,
        "level": judged["level"],
        "alarm": judged["alarm"],
        "alarm_source": judged["alarm_source"],
        "alarm_windows": judged["alarm_windows"],
        "labels_used": judged["labels_used"],
        "level_reasons": judged["reasons"],
        "input_drift": bool(drift.get("alarm")),
        "blamed": drift.get("blamed", []),
        # Drifted or blamed features, the most harmful mix change first (negative: accuracy at
        # risk; positive: traffic moved towards cases the model gets right).
        "risk": sorted(
            (
                {"feature": f["name"], "accuracy_effect": effects[f["name"]]}
                for f in drift.get("features", [])
                if (f["drift"] or f["blamed"]) and f["name"] in effects
            ),
            key=lambda r: r["accuracy_effect"],
        ),
        "reasons": drift.get("reasons", []),
        "features": features,
        "multivariate": (
            {k: multi.get(k) for k in ("name", "p_value", "effect_size", "effect_name", "drift")}
            if multi
            else None
        ),
        "prediction_drift": (
            {k: prediction.get(k) for k in ("p_value", "effect_size", "drift")}
            if prediction
            else None
        ),
        "feedback": feedback,
        "audit": audit,
        "estimate": judged["estimate"] if report.get("estimate") else None,
        "latency": report.get("latency"),
        "mix": report.get("mix", {}),
        "unknown": report.get("unknown", {}),  # per field: categories unseen in training
    }


def trigger_state(session: Session, project: Project) -> list[dict[str, Any]]:
    """Every rule in force, with its last decision and how often it fired.

    Two statements whatever the number of rules: one aggregate grouped by rule (times fired, last
    fired, id of the last decision), then those last decisions by id.
    """
    rules = triggers.parse_rules(projects.setting(project, "triggers"))
    if not rules:
        return []
    fired = TriggerDecision.fired.is_(True)
    stats = {
        name: (times, last_at, last_id)
        for name, times, last_at, last_id in session.execute(
            select(
                TriggerDecision.trigger,
                func.count().filter(fired),
                func.max(TriggerDecision.created_at).filter(fired),
                func.max(TriggerDecision.id),
            )
            .where(
                TriggerDecision.project_id == project.id,
                TriggerDecision.trigger.in_([rule.name for rule in rules]),
            )
            .group_by(TriggerDecision.trigger)
        ).tuples()
    }
    last_ids = [last_id for _, _, last_id in stats.values()]
    lasts = (
        {
            d.trigger: d
            for d in session.scalars(
                select(TriggerDecision).where(TriggerDecision.id.in_(last_ids))
            )
        }
        if last_ids
        else {}
    )
    out = []
    for rule in rules:
        times, last_fired, _ = stats.get(rule.name, (0, None, None))
        last = lasts.get(rule.name)
        out.append(
            {
                "name": rule.name,
                "when": rule.when,
                "params": dict(rule.params),
                "actions": list(rule.actions),
                "times_fired": times or 0,
                "last_fired_at": last_fired,
                "last_decision": (
                    {
                        "window": last.window_id,
                        "fired": last.fired,
                        "reason": last.reason,
                        "actions": last.actions,
                        "at": last.created_at,
                    }
                    if last is not None
                    else None
                ),
            }
        )
    return out


def monitor_state(session: Session, project: Project, *, limit: int = 200) -> dict[str, Any]:
    """The project's production model, its recent windows (oldest first), alarms and triggers.

    Every window holds one model version's predictions and says which (``model_version``);
    ``pending_predictions`` are the production version's, logged since its last window.
    """
    from looplab.serve import serving
    from looplab.watch import monitor

    model = registry.production(session, project)
    rows = list(
        session.scalars(
            select(MonitorWindow)
            .where(MonitorWindow.project_id == project.id)
            .order_by(MonitorWindow.id.desc())
            .limit(limit)
        )
    )[::-1]
    margin = float(projects.setting(project, "alarm_margin"))
    judged = judge_windows(session, project.id, rows, margin=margin)
    windows = [
        window_summary(w, j["feedback"], j["audit"], margin=margin, judged=j["judged"])
        for w in rows
        for j in [judged[w.id]]
    ]
    pending = 0
    if model is not None:  # the production version's predictions since its last window
        last = monitor.last_window(session, project.id, model.version)
        pending = (
            session.scalar(
                select(func.count()).where(
                    Prediction.project_id == project.id,
                    Prediction.model_version == model.version,
                    Prediction.seq > (last[1] if last is not None else 0),
                )
            )
            or 0
        )
    # The streak is the latest window's version's, as the drift trigger counts it.
    streak = 0
    for w in reversed(windows):
        if w["model_version"] != windows[-1]["model_version"]:
            continue
        if not w["alarm"]:
            break
        streak += 1
    return {
        "project": project.name,
        "production_model": model.name if model is not None else None,
        "checked_at": utcnow(),
        "windows": windows,
        "latest": windows[-1] if windows else None,
        "alarms": sum(w["alarm"] for w in windows),
        "warnings": sum(w["level"] in ("inputs", "predictions") for w in windows),
        "alarm_streak": streak,
        "pending_predictions": pending,
        "min_predictions": projects.setting(project, "monitor_min_predictions"),
        "window": projects.setting(project, "window"),
        "window_time_field": projects.setting(project, "window_time_field"),
        "audit_rate": projects.setting(project, "audit_rate"),
        "estimate_assumes": levels.ASSUMES,
        "online": serving.online_metrics(session, project),
        "triggers": trigger_state(session, project),
    }


#: Promotions drift_now builds a new production version's reference for before answering that
#: it is not ready (each is a race: a promotion landed between building and reading).
REFERENCE_ATTEMPTS = 3


def drift_now(store: Any, project_name: str, span: str) -> dict[str, Any]:
    """The production model's training data against its predictions of the last ``span``.

    Reads only. The production version's reference is built first if it has none, in a short
    write of its own (:func:`looplab.watch.reference.ensure_reference`), as the monitor job does. A
    version promoted between that and the read has no reference yet: it is built in turn, and after
    :data:`REFERENCE_ATTEMPTS` such races :class:`Conflict` ``reference_not_ready`` (HTTP 409)
    says to ask again. Never builds on the read session.
    """
    from looplab.watch import reference

    delta = parse_span(span)
    with store.read() as session:
        project_id = projects.get_project(session, project_name).id
    for _ in range(REFERENCE_ATTEMPTS):
        reference.ensure_reference(store, project_id)
        with store.read() as session:
            project = projects.get_project(session, project_name)
            model = registry.production(session, project)
            if model is None:
                raise Conflict(
                    f"project {project_name!r} has no production model, so nothing is served to "
                    "watch; train one and promote it",
                    details={"project": project_name},
                )
            stored = session.get(ReferenceProfile, model.id)
            if stored is None:  # promoted since ensure_reference() ran: build the new one's
                name = model.name
                continue
            until = utcnow()
            result = reference.drift_since(
                session, project, model, until - delta, until, ref=stored.profile
            )
        result["window"] = span
        if result.get("estimate"):
            status = levels.estimate_status(result)
            result["estimate"] = {**result["estimate"], **status}
        return result
    raise Conflict(
        f"the drift reference of {name}, in production in {project_name!r}, is not built yet: "
        "production changed while it was being built; ask again in a moment",
        code="reference_not_ready",
        details={"project": project_name, "model": name},
    )
