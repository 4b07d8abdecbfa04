"""``looplab annotators`` and the reliability check: the evidence about each person, and what the
project's ``quarantine_policy`` does with a flag.

The evidence (:func:`looplab.trust.reliability.annotator_evidence`) is read from every answer a
person gave, quarantined ones included (judging a person reads all they said), against a
Dawid-Skene fit held at the gold records' known answers. The check (:func:`check`) flags each
person the rule flags; with ``quarantine_policy=auto`` it also quarantines them (and queues a
retrain, :func:`looplab.trust.standing.quarantine`), unless a reviewer has already decided about
them (released or confirmed): a person's decision is not overturned by the check.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core import projects
from looplab.core.tables import Project, User
from looplab.trust import MISSING, standing
from looplab.trust.answers import PeopleAnswers, people_matrix
from looplab.trust.consensus import DawidSkeneResult, dawid_skene
from looplab.trust.reliability import (
    AnnotatorEvidence,
    FlagRule,
    annotator_evidence,
    others_consensus,
)


def _num(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


def against_consensus(m: PeopleAnswers, consensus: DawidSkeneResult, j: int) -> dict[str, Any]:
    """Person ``j``'s answers against the others' consensus, as counts of records.

    ``counts[t][a]``: records the others' consensus (own answer divided out, as the flags read
    it) puts in class ``t`` that this person answered ``a``; only records someone else answered
    too, so a person alone on a record is not graded by their own vote.
    """
    items, posterior = others_consensus(m.values, consensus, j)
    k = len(m.classes)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (posterior.argmax(axis=1), m.values[items, j]), 1)
    return {"classes": list(m.classes), "counts": counts.tolist(), "n": len(items)}


def _person(e: AnnotatorEvidence, m: PeopleAnswers, consensus: DawidSkeneResult) -> dict[str, Any]:
    worst = None
    if e.worst_class >= 0 and e.worst_rate > 0:
        worst = {
            "truth": m.classes[e.worst_class],
            "answered": m.classes[e.worst_answer],
            "rate": _num(e.worst_rate),
            "n_records": _num(e.worst_support, 1),
        }
    gold = None
    if e.gold is not None and e.gold.n > 0:
        gold = {
            "right": int(e.gold.successes),
            "n": int(e.gold.n),
            "rate": _num(e.gold.rate),
            "low": _num(e.gold.low),
            "high": _num(e.gold.high),
        }
    return {
        "user": m.people[e.annotator],
        "labels": e.n_labels,
        "median_seconds": _num(e.median_seconds, 2),
        "others_median_seconds": _num(e.others_median_seconds, 2),
        "gold": gold,
        "estimated_accuracy": _num(e.estimated_accuracy),
        "agreement": {
            "rate": _num(e.agreement.rate),
            "low": _num(e.agreement.low),
            "high": _num(e.agreement.high),
            "n": int(e.agreement.n),
            "kappa": _num(e.kappa),
        },
        "worst_confusion": worst,
        "confusion": against_consensus(m, consensus, e.annotator),
        "flags": [
            {
                "reason": f.reason,
                "value": _num(f.value),
                "threshold": f.threshold,
                "detail": f.detail,
            }
            for f in e.flags
        ],
    }


def evidence(session: Session, project: Project) -> list[dict[str, Any]]:
    """Per person who answered: labels, speed, gold accuracy, estimated accuracy, flags."""
    m = people_matrix(session, project, statuses=("active", "quarantined"))
    if not m.records:
        return []
    gold = m.gold if np.any(m.gold != MISSING) else None
    # Fitted here, not inside annotator_evidence, so each person's table of answers against
    # consensus reads the very fit their flags were read from.
    consensus = dawid_skene(m.values, n_classes=len(m.classes), known=gold)
    found = annotator_evidence(
        m.values,
        n_classes=len(m.classes),
        consensus=consensus,
        gold=gold,
        seconds=m.seconds,
        class_names=m.classes,
    )
    return [_person(e, m, consensus) for e in found]


def report(session: Session, project: Project) -> dict[str, Any]:
    """:func:`evidence` with each person's standing (status, reason, who decided, when)."""
    people = evidence(session, project)
    decided = standing.standings(session, project)
    names = dict(session.execute(select(User.id, User.name)).tuples().all())
    by_name = {names[uid]: row for uid, row in decided.items()}
    for person in people:
        row = by_name.pop(person["user"], None)
        person["standing"] = _standing(row)
    # People with a standing and no answer left to read (none given since their quarantine).
    for name, row in sorted(by_name.items()):
        people.append({"user": name, "labels": 0, "flags": [], "standing": _standing(row)})
    return {
        "project": project.name,
        "quarantine_policy": projects.setting(project, "quarantine_policy"),
        "min_labels": FlagRule().min_labels,
        "annotators": people,
    }


def _standing(row: Any) -> dict[str, Any]:
    if row is None:
        return {"status": "ok"}
    return {
        "status": row.status,
        "reason": row.reason,
        "policy": row.policy,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat(),
    }


def check(session: Session, project: Project, *, actor: str) -> dict[str, Any]:
    """Flag each person the rule flags; under ``quarantine_policy=auto``, quarantine them too."""
    auto = projects.setting(project, "quarantine_policy") == "auto"
    people = {p["user"]: p for p in evidence(session, project) if p["flags"]}
    users = {u.name: u for u in session.scalars(select(User).where(User.name.in_(sorted(people))))}
    flagged, quarantined = [], []
    for name, person in sorted(people.items()):
        user = users[name]
        proof = {"flags": person["flags"], "labels": person["labels"], "gold": person["gold"]}
        current = standing.standing(session, project, user)
        if auto and (current is None or current.status == "flagged"):
            summary = "; ".join(f["detail"] for f in person["flags"])[:2000]
            standing.quarantine(
                session, project, user, reason=summary, actor=actor, policy="auto", evidence=proof
            )
            quarantined.append(name)
        elif standing.flag(session, project, user, evidence=proof, actor=actor) is not None:
            flagged.append(name)
    return {"flagged": flagged, "quarantined": quarantined, "policy": "auto" if auto else "flag"}
