"""``looplab agreement``: how much a project's people agree, on the records two or more answered.

Krippendorff's alpha (nominal) overall with its bootstrap interval, one-vs-rest per label, and per
time batch (the day, week or month of each record's first answer), and Cohen's kappa of every
pair of people with at least ``min_shared`` records in common. Only ``active`` answers count (a
quarantined person's are left out), a person's latest answer per record.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from looplab.core.errors import Invalid
from looplab.core.tables import Project
from looplab.trust.agreement import (
    AlphaResult,
    alpha_per_batch,
    alpha_per_label,
    krippendorff_alpha,
    pairwise_kappa,
)
from looplab.trust.answers import PeopleAnswers, people_matrix

#: Time batches of ``looplab agreement --by`` and the numpy unit each truncates to.
BATCHES = {"day": "D", "week": "W", "month": "M"}


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def alpha_dict(result: AlphaResult) -> dict[str, Any]:
    return {
        "alpha": _num(result.alpha),
        "low": _num(result.low),
        "high": _num(result.high),
        "level": result.level,
        "n_records": result.n_items,
        "n_labels": result.n_labels,
    }


def _batch_names(answered_at: np.ndarray, by: str) -> np.ndarray:
    """Each record's batch name: ``2026-12-07`` (day), the Monday of its week, or ``2026-12``."""
    if by == "week":
        # numpy's weeks start on Thursday (1970-01-01); shift so they start on Monday.
        days = answered_at.astype("M8[D]")
        monday = days - ((days.astype(np.int64) + 3) % 7).astype("m8[D]")
        return monday.astype(str)
    return answered_at.astype(f"M8[{BATCHES[by]}]").astype(str)


def _check_by(by: str) -> None:
    if by not in BATCHES:
        raise Invalid(f"unknown batch {by!r}; valid: {', '.join(BATCHES)}", details={"field": "by"})


def _per_batch(m: PeopleAnswers, by: str, n_boot: int) -> list[dict[str, Any]]:
    names = _batch_names(m.answered_at, by)
    found = alpha_per_batch(m.values, names, n_classes=len(m.classes), n_boot=n_boot)
    return [{"batch": str(b), **alpha_dict(r)} for b, r in found.items()]


def per_batch(
    session: Session, project: Project, *, by: str = "week", n_boot: int = 1000
) -> list[dict[str, Any]]:
    """Alpha of each time batch of overlapped records, oldest first (what ``agreement_below``
    reads): ``{"batch", "alpha", "low", "high", "level", "n_records", "n_labels"}``."""
    _check_by(by)
    m = people_matrix(session, project, only_overlap=True)
    return _per_batch(m, by, n_boot) if m.records else []


def agreement(
    session: Session,
    project: Project,
    *,
    by: str = "week",
    min_shared: int = 20,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Alpha overall, per label and per batch, and kappa per pair, as plain data."""
    _check_by(by)
    if min_shared < 2:
        raise Invalid("min_shared must be at least 2", details={"field": "min_shared"})
    m = people_matrix(session, project, only_overlap=True)
    out: dict[str, Any] = {"project": project.name, "n_records": len(m.records)}
    if not m.records:
        out["note"] = (
            "no record has answers from two people yet: agreement is measured on overlap "
            "(set `overlap` and `overlap_fraction` with looplab config)"
        )
        return out
    k = len(m.classes)
    out["overall"] = alpha_dict(krippendorff_alpha(m.values, n_classes=k, n_boot=n_boot))
    out["per_label"] = {
        m.classes[c]: alpha_dict(r)
        for c, r in alpha_per_label(m.values, n_classes=k, n_boot=n_boot).items()
    }
    out["by"] = by
    out["per_batch"] = _per_batch(m, by, n_boot)
    out["pairs"] = [
        {
            "a": m.people[p.a],
            "b": m.people[p.b],
            "n_shared": p.n_shared,
            "kappa": _num(p.kappa),
            "low": _num(p.low),
            "high": _num(p.high),
        }
        for p in pairwise_kappa(m.values, min_shared=min_shared, n_classes=k)
    ]
    out["min_shared"] = min_shared
    return out
