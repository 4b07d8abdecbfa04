"""The audit sample: served predictions drawn at random for people to label.

Volunteered feedback is not a random sample: clients send it mostly when an answer looked
wrong, so its accuracy is biased low, and by how much nobody knows. With the project setting
``audit_rate`` (e.g. 0.01), the monitor draws that share of each window's predictions, at
random, and puts their inputs on top of the labeling queue as targeted tasks. It draws from the
open window on every run, not when the window closes, so a monthly window's audit tasks reach
people during the month
(:data:`AUDIT_SCORE`, above drift targets). A person's answer, given without knowing the
model's, is the prediction's true label, and the window's accuracy on these answers is an
unbiased figure (:func:`looplab.watch.windows.window_audit`).

The draw is a hash of the prediction's id compared with the rate: independent of the input and
of whether the model was right, the same on every worker, and reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.collect import ingest
from looplab.core.tables import AuditSample, Project
from looplab.watch.targeting import TARGETED_SCORE

#: Queue score of an audit task: above drift targets (``TARGETED_SCORE`` plus a weight <= 1).
AUDIT_SCORE = TARGETED_SCORE + 2.0


def drawn(prediction_id: str, rate: float) -> bool:
    """Whether the prediction is in the audit sample at ``rate`` (uniform in its id's hash)."""
    if rate <= 0:
        return False
    digest = hashlib.blake2b(prediction_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < rate


def pick(predictions: Sequence[Any], rate: float) -> list[Any]:
    """The predictions drawn at ``rate``; each has ``id``, ``seq``, ``label`` and ``input``."""
    return [p for p in predictions if drawn(str(p.id), rate)]


def undrawn(session: Session, project_id: int, picked: Sequence[Any]) -> list[Any]:
    """The picked predictions not drawn before (each is drawn once: ``prediction_id`` unique)."""
    ids = [str(p.id) for p in picked]
    if not ids:
        return []
    done = set(
        session.scalars(
            select(AuditSample.prediction_id).where(
                AuditSample.project_id == project_id, AuditSample.prediction_id.in_(ids)
            )
        )
    )
    return [p for p in picked if str(p.id) not in done]


def queue_audit(
    session: Session, project: Project, version: int, picked: Sequence[Any]
) -> dict[str, int]:
    """Put the picked predictions' inputs on top of the queue and record the samples.

    An input already labeled is opened for one more answer (its ``needed`` raised by one): the
    audit needs an answer given after the draw. Predictions drawn before (the open window's are
    drawn on every monitor run, then again when it closes) are skipped. Returns ``{"audited",
    "new_records"}``.
    """
    added = audited = 0
    for p in undrawn(session, project.id, picked):
        try:
            record, created = ingest.record_of_input(
                session,
                project,
                p.input,
                meta={"source": "audit", "prediction_id": p.id},
                score=AUDIT_SCORE,
            )
        except Exception:  # an input the store cannot hold as a record: no audit for it
            continue
        if created:
            added += 1
        else:
            record.needed = max(record.needed, record.n_human + 1)
            record.score = AUDIT_SCORE
        session.add(
            AuditSample(
                project_id=project.id,
                model_version=version,
                prediction_id=p.id,
                prediction_seq=p.seq,
                label=str(p.label),
                record_id=record.id,
            )
        )
        audited += 1
    session.flush()
    return {"audited": audited, "new_records": added}
