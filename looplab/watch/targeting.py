"""Targeted labeling: after drift, the inputs most like the window go to the top of the queue.

A fired trigger with the ``label`` action queues a ``label_drifted`` job (:func:`label_drifted`)
instead of doing the work in the monitor's transaction. The work has two halves:

* :func:`plan_targets` computes, on a read session: it loads the model, reads training and
  window inputs, fits the domain classifier and picks the records. For text this is seconds of
  work, so it must never run while the store's write lock is held.
* :func:`apply_targets` writes, in one short transaction: it adds the new records, raises the
  scores and records the audit event.

:func:`queue_drifted` runs both on one session, for callers that already hold one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.ask import scoring
from looplab.collect import ingest
from looplab.core import audit, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, ModelVersion, MonitorWindow, Prediction, Project, Record
from looplab.learn import registry
from looplab.watch import reference

log = logging.getLogger("looplab.watch.targeting")

#: Training inputs and window inputs the domain classifier learns from, at most.
REFERENCE_SAMPLE = 500
WINDOW_SAMPLE = 1000
#: Open records scored for targeted labeling at most (a random sample beyond that).
POOL_SAMPLE = 1000
#: Score a targeted record gets, plus its drift weight: above any score a scoring job writes (<= 3).
TARGETED_SCORE = scoring.PINNED_SCORE


@dataclass(frozen=True)
class Target:
    """One pick: an open record of the pool (``record_id``) or a served input to add as a record."""

    weight: float
    record_id: int | None = None
    payload: dict[str, Any] | None = None
    content_hash: bytes | None = None
    prediction_id: str | None = None


@dataclass
class Plan:
    """What :func:`apply_targets` will write, most window-like first."""

    window_id: int
    budget: int
    targets: list[Target] = field(default_factory=list)
    window_like_served: int = 0
    window_like_pool: int = 0


def plan_targets(
    session: Session, project: Project, window: MonitorWindow, *, budget: int | None = None
) -> Plan | None:
    """Pick the inputs that look most like the window; read only, writes nothing.

    A logistic regression, in the production model's own feature space, learns to tell up to
    500 training inputs from up to 1,000 of the window's; its probability "from the window" is
    the drift weight. The ``budget`` (default twice ``retrain_every``) most window-like inputs
    with weight above 1/2, among the window's own inputs (deduped by content) and up to 1,000
    open records of the pool (a random sample), are picked. Returns None when the model version
    is gone or either side has fewer than 10 inputs.
    """
    model = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.version == window.model_version
        )
    )
    if model is None:
        return None
    budget = budget or 2 * int(projects.setting(project, "retrain_every"))
    ref_rows = reference.training_rows(session, model, "train", limit=REFERENCE_SAMPLE)
    ref_payloads = [p for p, _ in ref_rows]
    served = _served_sample(session, project, window)
    if len(ref_payloads) < 10 or len(served) < 10:
        return None
    pool = _pool_sample(session, project)
    fitted = registry.load(session, model)
    w_win, w_pool = _window_likeness(
        fitted[:-1], ref_payloads, [dict(i) for _, i in served], [p for _, p in pool]
    )
    plan = Plan(
        window_id=window.id,
        budget=budget,
        window_like_served=int(np.sum(w_win > 0.5)),
        window_like_pool=int(np.sum(w_pool > 0.5)),
    )
    candidates = [("window", i, float(w)) for i, w in enumerate(w_win) if w > 0.5]
    candidates += [("pool", i, float(w)) for i, w in enumerate(w_pool) if w > 0.5]
    candidates.sort(key=lambda c: -c[2])
    digests: set[bytes] = set()
    for source, i, weight in candidates[:budget]:
        if source == "pool":
            plan.targets.append(Target(weight, record_id=pool[i][0]))
            continue
        target = _served_target(project, served[i], weight, digests)
        if target is not None:
            plan.targets.append(target)
    return plan


def _served_sample(
    session: Session, project: Project, window: MonitorWindow
) -> list[tuple[str, dict[str, Any]]]:
    """Up to ``WINDOW_SAMPLE`` (prediction id, input) of the window, at random."""
    query = (
        select(Prediction.id, Prediction.input)
        .where(
            Prediction.project_id == project.id,
            Prediction.model_version == window.model_version,  # a window is one version's
            Prediction.seq >= window.first_seq,
            Prediction.seq <= window.last_seq,
        )
        .order_by(func.random())
        .limit(WINDOW_SAMPLE)
    )
    return list(session.execute(query).tuples().all())


def _pool_sample(session: Session, project: Project) -> list[tuple[int, dict[str, Any]]]:
    """Up to ``POOL_SAMPLE`` (record id, payload) of open records, at random."""
    query = (
        select(Record.id, Record.payload)
        .where(Record.project_id == project.id, Record.n_human < Record.needed)
        .order_by(func.random())
        .limit(POOL_SAMPLE)
    )
    return list(session.execute(query).tuples().all())


def _window_likeness(
    features: Any,
    reference_inputs: list[dict[str, Any]],
    window_inputs: list[dict[str, Any]],
    pool_inputs: list[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray]:
    """P(from the window) of the window's and the pool's inputs, by a domain classifier."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    x_ref = features.transform(reference_inputs)
    x_win = features.transform(window_inputs)
    stack = sparse.vstack if sparse.issparse(x_ref) else np.vstack
    x = stack([x_ref, x_win])
    y = np.r_[np.zeros(x_ref.shape[0]), np.ones(x_win.shape[0])]
    clf = LogisticRegression(max_iter=1000, class_weight="balanced").fit(x, y)
    w_win = clf.predict_proba(x_win)[:, 1]
    # The pool is a sample of at most POOL_SAMPLE records: one call.
    w_pool = (
        clf.predict_proba(features.transform(pool_inputs))[:, 1] if pool_inputs else np.zeros(0)
    )
    return w_win, w_pool


def _served_target(
    project: Project, served: tuple[str, dict[str, Any]], weight: float, digests: set[bytes]
) -> Target | None:
    """A served input as a new record's target; None if it cannot be one or was picked."""
    pid, raw = served
    try:
        payload = ingest.normalise_payload(project, dict(raw))
    except Exception:  # an input the store cannot hold as a record: skip it
        return None
    digest = ingest.content_hash(project, payload)
    if digest in digests:  # the same input served twice is one record
        return None
    digests.add(digest)
    return Target(weight, payload=payload, content_hash=digest, prediction_id=pid)


def apply_targets(session: Session, project: Project, plan: Plan) -> dict[str, int]:
    """Write a plan in the session's transaction: add new records, raise scores, audit.

    Records labeled since the plan was made are left alone. Returns ``{"targeted",
    "new_records"}``: how many records were put on top, and how many of them are new.
    """
    added = boosted = 0
    seen: set[int] = set()
    for target in plan.targets:
        if target.record_id is not None:
            record = session.get(Record, target.record_id)
        else:
            assert target.content_hash is not None and target.payload is not None
            record = session.scalar(
                select(Record).where(
                    Record.project_id == project.id, Record.content_hash == target.content_hash
                )
            )
            if record is None:
                record = Record(
                    project_id=project.id,
                    content_hash=target.content_hash,
                    payload=target.payload,
                    meta={
                        "source": "monitor",
                        "window": plan.window_id,
                        "prediction_id": target.prediction_id,
                    },
                    score=0.0,
                )
                session.add(record)
                session.flush()
                added += 1
        if record is None or record.id in seen or record.n_human >= record.needed:
            continue  # deleted, picked twice, or labeled already
        seen.add(record.id)
        record.score = TARGETED_SCORE + target.weight
        boosted += 1
    audit.record(
        session,
        actor="monitor",
        action="queue.target_drift",
        entity_type="window",
        entity_id=plan.window_id,
        project_id=project.id,
        details={
            "budget": plan.budget,
            "targeted": boosted,
            "new_records": added,
            "window_like_served": plan.window_like_served,
            "window_like_pool": plan.window_like_pool,
        },
    )
    return {"targeted": boosted, "new_records": added}


def queue_drifted(
    session: Session, project: Project, window: MonitorWindow, *, budget: int | None = None
) -> int:
    """Plan and apply on one session; return how many records were put on top.

    Holding a write transaction, this holds the lock for the whole computation: workers use the
    ``label_drifted`` job, which computes on a read session instead.
    """
    plan = plan_targets(session, project, window, budget=budget)
    if plan is None:
        return 0
    return apply_targets(session, project, plan)["targeted"]


def label_drifted(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Job handler: compute the targets on a read session, then write them in a short transaction.

    ``job.params``: ``window`` (the drifted window's id) and optionally ``budget``.
    """
    window_id = int(job.params["window"])
    budget = job.params.get("budget")
    with store.read() as session:
        project = session.get(Project, job.project_id)
        window = session.get(MonitorWindow, window_id)
        if project is None or window is None:
            return {"window": window_id, "skipped": "project or window no longer exists"}
        plan = plan_targets(session, project, window, budget=budget)
    if plan is None:
        return {
            "window": window_id,
            "targeted": 0,
            "skipped": "model version gone, or fewer than 10 training or window inputs",
        }
    with store.write() as session:
        project = session.get(Project, job.project_id)
        if project is None:
            return {"window": window_id, "skipped": "project no longer exists"}
        done = apply_targets(session, project, plan)
    log.info("window %s: %s records put on top of the queue", window_id, done["targeted"])
    return {"window": window_id, **done, "candidates": len(plan.targets)}
