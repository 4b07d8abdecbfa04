"""Trigger rules on people's answers: ``agreement_below`` after each reliability check.

Monitor windows close as predictions arrive; agreement moves as people answer, so the
``agreement_below`` rules (:mod:`looplab.watch.agreement_rule`) are judged when the reliability
check runs: the ``reliability`` job (queued about every ``reliability_every`` answers),
``looplab annotators --run`` and ``POST .../annotators/check`` all call :func:`check`. Each
decision is stored and audited like a window rule's (:func:`looplab.watch.triggers.store_decision`,
without a window); the batch it judged is kept with it (``actions["batch"]``) so a rule never
fires twice on one batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, Project, TriggerDecision
from looplab.trust import agreement_report, annotators
from looplab.watch import agreement_rule, triggers


def _last_fired_batch(session: Session, project: Project, rule: triggers.Rule) -> str | None:
    actions = session.scalar(
        select(TriggerDecision.actions)
        .where(
            TriggerDecision.project_id == project.id,
            TriggerDecision.trigger == rule.name,
            TriggerDecision.fired.is_(True),
        )
        .order_by(TriggerDecision.id.desc())
        .limit(1)
    )
    return None if not actions else actions.get("batch")


def run_agreement_rules(session: Session, project: Project, *, actor: str) -> list[str]:
    """Let every ``agreement_below`` rule decide on the project's batches now; the names fired."""
    rules = [
        r
        for r in triggers.parse_rules(projects.setting(project, "triggers"))
        if r.when == agreement_rule.WHEN
    ]
    alphas: dict[str, list[dict[str, Any]]] = {}  # one computation per batch size
    fired = []
    for rule in rules:
        by = str(rule.params["by"])
        if by not in alphas:
            alphas[by] = agreement_report.per_batch(session, project, by=by)
        decision, reason, batch = agreement_rule.decide(
            rule.params, alphas[by], last_fired_batch=_last_fired_batch(session, project, rule)
        )
        actions: dict[str, Any] = {"batch": batch}
        if decision:
            fired.append(rule.name)
            judged = next(b for b in alphas[by] if b["batch"] == batch)
            payload = {
                "project": project.name,
                "trigger": rule.name,
                "reason": reason,
                "batch": batch,
                "by": by,
                "agreement": judged,
            }
            job = jobs.enqueue(
                session, "alert", project_id=project.id, params=payload, dedupe=False
            )
            actions["alert"] = {"job": job.id}
        triggers.store_decision(
            session, project, rule, None, decision, reason, actions, actor=actor
        )
    return fired


def check(session: Session, project: Project, *, actor: str) -> dict[str, Any]:
    """The reliability check (:func:`looplab.trust.annotators.check`), then the agreement rules.

    Returns the check's result with ``triggers``: the names of the rules that fired.
    """
    result = annotators.check(session, project, actor=actor)
    return {**result, "triggers": run_agreement_rules(session, project, actor=actor)}


def run_check(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """The ``reliability`` job: :func:`check` on the job's project, in one transaction."""
    with store.write() as session:
        project = jobs.project_of(session, job)
        return check(session, project, actor=str(job.params.get("actor", "reliability")))
