"""The scoring job: rank the open pool for the queue with the latest model (or, before any,
the pool's most typical records), and store each record's suggestion.

It runs in a worker, never on a request path. Only the records whose place in the queue or
suggestion moved are written (:func:`changed_rows`), in transactions of at most
:data:`SCORE_CHUNK` rows with a pause between them, so annotators' submits get the store's write
lock between two chunks instead of after the whole pool (on SQLite, one write lock for all).
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

#: Most rows one write transaction of the scoring job updates (about 20 ms on SQLite here).
SCORE_CHUNK = 1000
#: Pause between two chunks: a waiting submit takes the write lock in it.
CHUNK_PAUSE_SECONDS = 0.005
#: A record keeps its stored score and suggestion when the new ones are this close: its place
#: in the queue moves by less than 1% of the pool and the suggestion shown is the same.
SCORE_TOLERANCE = 0.01
CONFIDENCE_TOLERANCE = 0.01


#: Open records at or above this score were put on top by monitoring (drift targets, audit
#: samples: :mod:`looplab.watch.targeting`, :mod:`looplab.watch.auditing`); a scoring job, whose
#: scores stay below 3, leaves them where they are.
PINNED_SCORE = 4.0


_GOLD = select(GoldAnswer.record_id)


#: What a record holds of its last scoring: ``(score, pred_label, pred_confidence, pred_model)``.
Stored = tuple[float, str | None, float | None, int | None]


def _pool(
    session: Session, project: Project
) -> tuple[list[int], list[dict[str, Any]], dict[int, Stored]]:
    rows = session.execute(
        select(
            Record.id,
            Record.payload,
            Record.score,
            Record.pred_label,
            Record.pred_confidence,
            Record.pred_model,
        )
        .where(
            Record.project_id == project.id,
            # Gold records too: handed out among open ones, they carry a suggestion like them.
            (Record.n_human < Record.needed) | Record.id.in_(_GOLD),
            Record.score < PINNED_SCORE,
        )
        .order_by(Record.id)
        .execution_options(yield_per=5000)
    ).tuples()
    ids, payloads, stored = [], [], {}
    for record_id, payload, score, label, confidence, model in rows:
        ids.append(record_id)
        payloads.append(payload)
        stored[record_id] = (score, label, confidence, model)
    return ids, payloads, stored


def changed_rows(rows: list[dict[str, Any]], stored: dict[int, Stored]) -> list[dict[str, Any]]:
    """The rows whose score or suggestion moved enough to matter; the rest are not written.

    A record whose score moved by less than :data:`SCORE_TOLERANCE` and whose suggestion is the
    same label with a confidence within :data:`CONFIDENCE_TOLERANCE` keeps what it has, its
    ``pred_model`` included: the version that last changed its suggestion (which a newer one
    repeats). Rescoring after a retrain that changed little then writes little.
    """
    out = []
    for row in rows:
        old = stored.get(row["rid"])
        if old is None:
            out.append(row)
            continue
        score, label, confidence, model = old
        same = (
            abs(float(score) - row["score"]) < SCORE_TOLERANCE
            and label == row["pl"]
            and (model is None) == (row["pm"] is None)
            and (
                confidence is None
                if row["pc"] is None
                else confidence is not None and abs(confidence - row["pc"]) < CONFIDENCE_TOLERANCE
            )
        )
        if not same:
            out.append(row)
    return out


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
        if start:
            time.sleep(CHUNK_PAUSE_SECONDS)
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
        ids, payloads, stored = _pool(session, project)
        label_counts_map = projects.status(session, project)["per_label"]
    if not ids:
        return {"scored": 0}
    rng = np.random.default_rng(job.id)
    batch_size = max(1, min(int(projects.setting(project, "retrain_every")), len(ids)))
    if model_row is None:
        rows = _cold_start_rows(project, ids, payloads, batch_size, rng)
        written = changed_rows(rows, stored)
        _write_scores(store, written)
        return {
            "scored": len(rows),
            "written": len(written),
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
    written = changed_rows(rows, stored)
    _write_scores(store, written)
    return {
        "scored": len(rows),
        "written": len(written),
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
