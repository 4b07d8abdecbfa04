"""The scoring job: rank the open pool for the queue with the latest model (or, before any,
the pool's most typical records), and store each record's suggestion.

It runs in a worker, never on a request path. Scores are written in small transactions so
annotators' requests never wait long for the store's write lock.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from looplab.ask import diversity, strategies
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import GoldAnswer, Job, Project, Record
from looplab.learn import registry, train

SCORE_CHUNK = 2000


#: Open records at or above this score were put on top by monitoring (drift targets, audit
#: samples: :mod:`looplab.watch.targeting`, :mod:`looplab.watch.auditing`); a scoring job, whose
#: scores stay below 3, leaves them where they are.
PINNED_SCORE = 4.0


_GOLD = select(GoldAnswer.record_id)


def _pool(session: Session, project: Project) -> tuple[list[int], list[dict[str, Any]]]:
    rows = session.execute(
        select(Record.id, Record.payload)
        .where(
            Record.project_id == project.id,
            # Gold records too: handed out among open ones, they carry a suggestion like them.
            (Record.n_human < Record.needed) | Record.id.in_(_GOLD),
            Record.score < PINNED_SCORE,
        )
        .order_by(Record.id)
        .execution_options(yield_per=5000)
    ).tuples()
    ids, payloads = [], []
    for record_id, payload in rows:
        ids.append(record_id)
        payloads.append(payload)
    return ids, payloads


def _write_scores(store: Store, rows: list[dict[str, Any]]) -> None:
    table = Record.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(table.c.id == _bind("rid"))
        .values(
            score=_bind("score"),
            pred_label=_bind("pl"),
            pred_confidence=_bind("pc"),
            pred_model=_bind("pm"),
        )
    )
    for start in range(0, len(rows), SCORE_CHUNK):
        with store.write() as session:
            session.connection().execute(statement, rows[start : start + SCORE_CHUNK])


def _bind(name: str) -> Any:
    return bindparam(name)


def score_pool(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Rank the open pool: a diverse, class-balanced batch first, then by the strategy's score.

    Without a model, the batch is the pool's most typical records (cold start) and the rest keep
    their hash-random order. Ranks, not raw scores, are stored, so strategies on different scales
    (and the batch on top) order the queue the same way.
    """
    started = time.perf_counter()
    with store.read() as session:
        project = jobs.project_of(session, job)
        model_row = registry.latest(session, project)
        artifact = None if model_row is None else registry.artifact_file(session, model_row)
        ids, payloads = _pool(session, project)
        label_counts_map = projects.status(session, project)["per_label"]
    if not ids:
        return {"scored": 0}
    rng = np.random.default_rng(job.id)
    batch_size = max(1, min(int(projects.setting(project, "retrain_every")), len(ids)))
    if model_row is None:
        rows = _cold_start_rows(project, ids, payloads, batch_size, rng)
        _write_scores(store, rows)
        return {
            "scored": len(rows),
            "cold_start": True,
            "seconds": round(time.perf_counter() - started, 3),
        }
    assert artifact is not None
    model = registry.load_artifact(
        artifact, model_row.sha256, project=project.name, model=model_row.name
    )
    strategy = strategies.get_strategy(projects.setting(project, "strategy"))
    rows, batch = _ranked_rows(
        model, model_row.version, strategy, ids, payloads, label_counts_map, batch_size, rng
    )
    _write_scores(store, rows)
    return {
        "scored": len(rows),
        "model": model_row.name,
        "batch": batch,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _cold_start_rows(
    project: Project,
    ids: list[int],
    payloads: list[dict[str, Any]],
    batch_size: int,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """No model yet: the pool's most typical records on top, in the project's own features."""
    pipeline = train.build_pipeline(project.task, project.fields)
    features = pipeline[:-1].fit_transform(payloads)
    batch = diversity.typical(features, batch_size, rng)
    return [
        {
            "rid": ids[i],
            "score": 2.0 + (batch_size - r) / batch_size,
            "pl": None,
            "pc": None,
            "pm": None,
        }
        for r, i in enumerate(batch)
    ]


def _ranked_rows(
    model: Any,
    version: int,
    strategy: strategies.Strategy,
    ids: list[int],
    payloads: list[dict[str, Any]],
    label_counts: dict[str, int],
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], int]:
    """Every open record's priority under ``model`` (a diverse, balanced batch on top), and the
    size of that batch."""
    proba = np.vstack(
        [model.predict_proba(payloads[s : s + 5000]) for s in range(0, len(payloads), 5000)]
    )
    classes = np.asarray(model.classes_)
    scores = strategy(proba, rng)
    order = np.argsort(-scores, kind="stable")
    shortlist = order[: batch_size * 10]
    features = model[:-1].transform([payloads[i] for i in shortlist])
    picked = diversity.diverse_top_k(scores[shortlist], features, batch_size, rng)
    # Diverse picks first, then the rest of the shortlist: the guard may swap some picks for
    # records of rare classes further down.
    rest = np.setdiff1d(np.arange(len(shortlist)), picked, assume_unique=True)
    ranked = shortlist[np.concatenate([picked, rest])]
    counts = np.array([label_counts.get(str(c), 0) for c in classes])
    batch = diversity.balance_guard(ranked, proba, counts, batch_size)
    priority = np.empty(len(ids))
    priority[order] = 1.0 - np.arange(len(ids)) / len(ids)
    priority[batch] = 2.0 + (len(batch) - np.arange(len(batch))) / len(batch)
    confidence = proba.max(axis=1)
    predicted = classes[proba.argmax(axis=1)]
    rows = [
        {
            "rid": ids[i],
            "score": float(priority[i]),
            "pl": str(predicted[i]),
            "pc": float(confidence[i]),
            "pm": version,
        }
        for i in range(len(ids))
    ]
    return rows, len(batch)
