"""Trigger rules: when monitoring says so, call people in, retrain, alert.

Rules live in the project settings under ``triggers``, a list of objects::

    {"name": "persistent-drift", "when": "drift", "windows": 3, "level": "inputs",
     "actions": ["label", "alert"]}
    {"name": "feedback-accuracy", "when": "accuracy_below", "threshold": 0.85,
     "source": "feedback", "min_n": 50, "actions": ["retrain", "alert"]}
    {"name": "corrections", "when": "corrections", "count": 100, "actions": ["retrain"]}
    {"name": "crowd", "when": "agreement_below", "alpha": 0.6, "drop": 0.15, "actions": ["alert"]}

``drift`` fires once when the last ``windows`` monitor windows all reached ``level`` (default
``performance``, the alarm; ``predictions`` or ``inputs`` to act on warnings, see
:mod:`looplab.watch.levels`), so one noisy window never fires it, and a long drift fires it
once, not every window; ``accuracy_below`` fires when a
window's accuracy (from volunteered ``feedback``, the ``audit`` sample, or the label-free
``estimate``) falls below ``threshold``
with at least ``min_n`` observations, once per crossing; ``corrections`` fires each time ``count``
new corrections have arrived since it last fired; ``agreement_below`` fires when people stop
agreeing (:mod:`looplab.watch.agreement_rule`; judged after each reliability check, not on
monitor windows). Every decision, fired or not, is stored and audited.

``accuracy_below`` judges the latest window with ``min_n`` observations, which is not always the
window just closed: feedback counts in the window of the prediction it judges and arrives late,
so when a window closes its own labels are mostly still to come, and the earlier window they
completed is the newest one to have a reliable figure. It fires when that window is below the
threshold and the window with enough observations before it was not, and never twice on one
window.

The rules themselves are pure (:func:`parse_rules`, :func:`judged`, :func:`decide`).
:func:`run_triggers` applies them when the monitor (``looplab.watch.monitor``) closes a window: it
reads the few windows they need, stores and audits each decision, and :func:`act` queues a fired
rule's actions as jobs (``label_drifted``, ``train``, ``alert``, the last sent by
:func:`looplab.watch.alerts.send_alert`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.core import audit, jobs, projects
from looplab.core.errors import Invalid
from looplab.core.settings import Settings
from looplab.core.tables import Feedback, MonitorWindow, Project, TriggerDecision, version_name
from looplab.watch import agreement_rule, levels, windows

WHEN = ("drift", "accuracy_below", "corrections", agreement_rule.WHEN)
#: Windows an ``accuracy_below`` rule on the audit sample looks back over for enough answers.
AUDIT_LOOKBACK = 20
ACTIONS = ("label", "retrain", "alert")


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    actions: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


def parse_rules(raw: Any) -> list[Rule]:
    """Validate the ``triggers`` setting; raise :class:`Invalid` naming the bad entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Invalid("triggers must be a list of rule objects", details={"field": "triggers"})
    rules, names = [], set()
    for i, item in enumerate(raw):
        where = {"field": f"triggers[{i}]"}
        if not isinstance(item, dict):
            raise Invalid(f"triggers[{i}] must be an object", details=where)
        name, when = str(item.get("name") or f"rule{i}"), item.get("when")
        if when not in WHEN:
            raise Invalid(f"triggers[{i}].when must be one of {', '.join(WHEN)}", details=where)
        actions = item.get("actions", ["alert"])
        bad = [a for a in actions if a not in ACTIONS]
        if bad or not actions:
            raise Invalid(
                f"triggers[{i}].actions must be some of {', '.join(ACTIONS)}", details=where
            )
        if name in names:
            raise Invalid(f"two triggers are named {name!r}", details=where)
        names.add(name)
        params = {k: v for k, v in item.items() if k not in ("name", "when", "actions")}
        if when == agreement_rule.WHEN:
            agreement_rule.check_params(params, tuple(actions), i)
        else:
            _check_params(when, params, i)
        rules.append(Rule(name, when, tuple(actions), params))
    return rules


def _check_params(when: str, params: dict[str, Any], i: int) -> None:
    def need(key: str, kind: type, low: float) -> None:
        value: Any = params.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or cast(float, value) < low:
            raise Invalid(
                f"triggers[{i}].{key} must be a {kind.__name__} >= {low}",
                details={"field": f"triggers[{i}].{key}"},
            )

    if when == "drift":
        params.setdefault("windows", 3)
        params.setdefault("level", "performance")
        need("windows", int, 1)
        if params["level"] not in levels.LEVELS[1:]:
            raise Invalid(
                f"triggers[{i}].level must be one of {', '.join(levels.LEVELS[1:])}",
                details={"field": f"triggers[{i}].level"},
            )
    elif when == "accuracy_below":
        need("threshold", float, 0.0)
        params.setdefault("min_n", 30)
        params.setdefault("source", "feedback")
        need("min_n", int, 1)
        if params["source"] not in ("feedback", "audit", "estimate"):
            raise Invalid(
                f"triggers[{i}].source must be feedback, audit or estimate",
                details={"field": f"triggers[{i}].source"},
            )
    else:
        need("count", int, 1)


def window_accuracy(report: dict[str, Any], source: str) -> tuple[float | None, int]:
    part = report.get(source) or {}
    return part.get("accuracy"), int(part.get("n") or 0)


def judged(rule: Rule, reports: list[dict[str, Any]]) -> int | None:
    """Index of the window ``accuracy_below`` judges: the latest with ``min_n`` observations.

    None for the other rules (they judge the window just closed, the last one) and when no
    window has enough observations yet.
    """
    if rule.when != "accuracy_below":
        return None
    return next((i for i in reversed(range(len(reports))) if _enough(reports[i], rule)), None)


def decide(
    rule: Rule,
    alarms: list[bool],
    reports: list[dict[str, Any]],
    corrections_since_fired: int,
    *,
    last_fired_window: int | None = None,
    batches: list[dict[str, Any]] | None = None,
    last_fired_batch: str | None = None,
) -> tuple[bool, str]:
    """Whether ``rule`` fires now, and why, given the windows so far (oldest first).

    ``reports`` may carry their window's id under ``"window"``; ``last_fired_window`` is the id
    of the window the rule last fired on, which ``accuracy_below`` never fires on again.
    ``agreement_below`` reads ``batches`` (alpha per time batch, oldest first) instead, and never
    fires twice on ``last_fired_batch`` (:func:`looplab.watch.agreement_rule.decide`).

    Only some windows matter, so callers may pass just those, in order: ``drift`` with
    ``windows`` k reads the last k + 1 alarms; ``accuracy_below`` the two latest reports with
    ``min_n`` observations or, when none has, the one with the most.
    """
    if rule.when == agreement_rule.WHEN:
        fired, reason, _ = agreement_rule.decide(
            rule.params, batches or [], last_fired_batch=last_fired_batch
        )
        return fired, reason
    if rule.when == "drift":
        k = int(rule.params["windows"])
        streak = 0
        for alarm in reversed(alarms[-(k + 1) :]):  # only the last k + 1 decide
            if not alarm:
                break
            streak += 1
        if streak == k:
            return True, f"drift alarm in each of the last {k} windows"
        if streak > k:
            return False, f"drift persists (more than {k} windows); already fired at {k}"
        return False, f"{streak} of {k} consecutive drift windows"
    if rule.when == "accuracy_below":
        threshold, source = float(rule.params["threshold"]), rule.params["source"]
        min_n = int(rule.params["min_n"])

        def below(report: dict[str, Any]) -> bool:
            acc, n = window_accuracy(report, source)
            return acc is not None and n >= min_n and acc < threshold

        if not reports:
            return False, "no window yet"
        i = judged(rule, reports)
        if i is None:
            most = max(window_accuracy(r, source)[1] for r in reports)
            return False, f"{source} accuracy needs {min_n} observations in a window, has {most}"
        acc, n = window_accuracy(reports[i], source)
        window = reports[i].get("window")
        where = f" in window #{window}" if window is not None else ""
        if not below(reports[i]):
            return False, f"{source} accuracy {acc:.3f} (n={n}){where}, threshold {threshold}"
        before = next((r for r in reversed(reports[:i]) if _enough(r, rule)), None)
        if before is not None and below(before):
            return False, f"{source} accuracy {acc:.3f} (n={n}){where} still below {threshold}"
        if window is not None and window == last_fired_window:
            return False, f"{source} accuracy {acc:.3f} < {threshold}{where}: already fired on it"
        return True, f"{source} accuracy {acc:.3f} < {threshold} (n={n}){where}"
    count = int(rule.params["count"])
    if corrections_since_fired >= count:
        return True, f"{corrections_since_fired} corrections since last fired (>= {count})"
    return False, f"{corrections_since_fired} of {count} corrections"


def _enough(report: dict[str, Any], rule: Rule) -> bool:
    return window_accuracy(report, rule.params["source"])[1] >= int(rule.params["min_n"])


def run_triggers(
    session: Session, project: Project, window: MonitorWindow, settings: Settings
) -> list[str]:
    """Let every rule decide on the windows of ``window``'s version, just after it closed.

    Each report carries its window's accuracy from feedback and on its audit sample as of now
    (:mod:`looplab.watch.windows`), so labels that arrived late for earlier windows count, and
    its level (:func:`looplab.watch.levels.assess_window`) as of those labels. A decision is
    stored against the window it judged: ``window`` itself, except for ``accuracy_below``,
    which judges the latest window with ``min_n`` observations.

    It runs in the monitor's write transaction, so it reads only the windows the rules decide
    on (:func:`_windows_to_judge`), a handful whatever the version's history: reading every
    window's report took 0.3 s at 2,000 windows and 3.8 s at 20,000, holding SQLite's lock.
    """
    # agreement_below reads people's answers, not windows: the reliability check runs it.
    rules = [
        r
        for r in parse_rules(projects.setting(project, "triggers"))
        if r.when != agreement_rule.WHEN
    ]
    if not rules:
        return []
    # A new version starts a new history: a drift streak or an accuracy crossing of the old
    # version, measured against the old reference, says nothing about the new one.
    ids = _windows_to_judge(session, project.id, window, rules)
    history, reports = _history(session, project, window, ids)
    here = next(i for i, w in enumerate(history) if w.id == window.id)
    fired = []
    for rule in rules:
        # When it last fired: corrections count from then, accuracy_below never refires on
        # that window; a drift streak needs neither.
        last_fired = _last_fired(session, project.id, rule) if rule.when != "drift" else None
        corrections = (
            _corrections(session, project.id, last_fired[0] if last_fired else None)
            if rule.when == "corrections"
            else 0
        )
        floor = levels.LEVELS.index(rule.params.get("level", "performance"))
        alarms = [levels.LEVELS.index(r["level"]) >= floor for r in reports]
        decision, reason = decide(
            rule,
            alarms,
            reports,
            corrections,
            last_fired_window=last_fired[1] if last_fired is not None else None,
        )
        at = judged(rule, reports)
        at = here if at is None else at
        actions: dict[str, Any] = {}
        if decision:
            fired.append(rule.name)
            actions = act(session, project, history[at], reports[at], rule, reason, settings)
        store_decision(session, project, rule, history[at], decision, reason, actions)
    return fired


def _history(
    session: Session, project: Project, window: MonitorWindow, ids: set[int]
) -> tuple[list[MonitorWindow], list[dict[str, Any]]]:
    """The windows ``ids``, oldest first, and their reports with labels and level as of now."""
    history = list(
        session.scalars(
            select(MonitorWindow).where(MonitorWindow.id.in_(ids)).order_by(MonitorWindow.id)
        )
    )
    margin = float(projects.setting(project, "alarm_margin"))
    judged = windows.judge_windows(session, project.id, history, margin=margin)
    reports = []
    for w in history:
        j = judged[w.id]
        reports.append(
            {
                **w.report,
                "feedback": j["feedback"],
                "audit": j["audit"],
                "level": j["judged"]["level"],
                "window": w.id,
            }
        )
    return history, reports


def _last_fired(session: Session, project_id: int, rule: Rule) -> Any:
    """``(created_at, window_id)`` of the rule's last firing, or None."""
    return session.execute(
        select(TriggerDecision.created_at, TriggerDecision.window_id)
        .where(
            TriggerDecision.project_id == project_id,
            TriggerDecision.trigger == rule.name,
            TriggerDecision.fired.is_(True),
        )
        .order_by(TriggerDecision.id.desc())
        .limit(1)
    ).first()


def _corrections(session: Session, project_id: int, since: Any) -> int:
    query = select(func.count()).where(
        Feedback.project_id == project_id, Feedback.accepted.is_(False)
    )
    if since is not None:
        query = query.where(Feedback.created_at > since)
    return int(session.scalar(query) or 0)


def store_decision(
    session: Session,
    project: Project,
    rule: Rule,
    target: MonitorWindow | None,
    decision: bool,
    reason: str,
    actions: dict[str, Any],
    *,
    actor: str = "monitor",
) -> None:
    """Store and audit one decision of ``rule`` (on the window it judged, if it judges one)."""
    row = TriggerDecision(
        project_id=project.id,
        trigger=rule.name,
        window_id=None if target is None else target.id,
        fired=decision,
        reason=reason,
        actions=actions,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="trigger.decide",
        entity_type="trigger",
        entity_id=row.id,
        project_id=project.id,
        details={"trigger": rule.name, "fired": decision, "reason": reason, "actions": actions},
    )


def _windows_to_judge(
    session: Session, project_id: int, window: MonitorWindow, rules: list[Rule]
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
        if rule.params["source"] == "audit":  # answered samples are counted in Python: recent
            ids.update(
                session.scalars(
                    select(MonitorWindow.id)
                    .where(*of_version)
                    .order_by(MonitorWindow.id.desc())
                    .limit(AUDIT_LOOKBACK)
                )
            )
            continue
        if rule.params["source"] == "feedback":
            n: Any = func.count(Feedback.id)
            counted = (
                select(MonitorWindow.id)
                .join(Feedback, windows.FEEDBACK_OF_WINDOW)
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
    rule: Rule,
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
            "model_version": version_name(window.model_version),
            "window_end": str(window.end),
            "report": {k: report.get(k) for k in ("n", "feedback", "estimate")},
        }
        job = jobs.enqueue(session, "alert", project_id=project.id, params=payload, dedupe=False)
        done["alert"] = {"job": job.id}
    return done
