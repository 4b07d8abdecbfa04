"""Job handlers: train a model on the project's labels, and re-score the pool for the queue.

Both run in a worker (inside ``looplab serve`` or ``looplab worker``), never on a request path.
Scores are written in small transactions so annotators' requests never wait long for the lock.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np
import sklearn
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from looplab import (
    assess,
    dataset,
    diversity,
    jobs,
    projects,
    promotion,
    registry,
    strategies,
    train,
)
from looplab.fingerprints import identical_version, training_fingerprint
from looplab.settings import Settings
from looplab.store import Store
from looplab.tables import Job, Project, Record

#: Fewest labeled training records (and classes) before a model is worth training.
MIN_TRAIN = 10
SCORE_CHUNK = 2000


def _project(session: Session, job: Job) -> Project:
    project = session.get(Project, job.project_id)
    if project is None:
        raise ValueError(f"project {job.project_id} no longer exists")
    return project


def train_project(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Fit the project's pipeline on the train split, evaluate on the test split, register it.

    The version is registered in one transaction with a check that this worker still holds the
    job (:func:`looplab.jobs.hold`), which also records the version on the job: an attempt
    that runs after a worker died past that point finds it there and registers nothing again.
    """
    started = time.perf_counter()
    if job.result and job.result.get("model"):
        return {**job.result, "note": "registered by an earlier attempt of this job"}
    with store.write() as session:
        project = _project(session, job)
        project.labels_since_model = 0
    with store.read() as session:
        project = _project(session, job)
        data = dataset.labeled_set(session, project)
    fit, test = data.subset("train"), data.subset("test")
    if len(fit) < MIN_TRAIN or len(set(fit.labels)) < 2:
        return {
            "skipped": f"need {MIN_TRAIN} labeled training records of 2+ classes; "
            f"have {len(fit)} of {len(set(fit.labels))}"
        }
    estimator = projects.setting(project, "estimator")
    fingerprint = training_fingerprint(project, fit, test)
    if job.params.get("skip_identical"):  # `looplab train` asks; --force does not
        with store.read() as session:
            same = identical_version(session, project, fingerprint)
        if same is not None:
            return {
                "skipped": f"{same} was trained on exactly these labels with this recipe; "
                "nothing new to learn (train anyway with --force)",
                "identical_to": same,
            }
    model = train.build_pipeline(project.task, project.fields, estimator)
    model.fit(fit.payloads, fit.labels)
    classes = [str(c) for c in model.classes_]
    # The test split goes through the pipeline once: calibration, the metrics and (with
    # auto_promote) the gate all work on these probabilities.
    raw = assess.held_out_proba(model, test)
    # Calibration is kept inside the artifact only if it lowers ECE on held-out records; `proba`
    # is cross-fitted, so no stored figure includes records a calibrator was fitted on.
    model, calibration, proba = assess.calibrate(
        model, test, raw, projects.setting(project, "calibration")
    )
    metrics = assess.held_out_metrics(
        test, proba, classes, min_slice_size=int(projects.setting(project, "gate_min_slice_size"))
    )
    with store.read() as session:
        path = registry.pending_artifact_path(session, _project(session, job))
    sha = train.save_model(model, path)
    try:
        with store.write() as session:
            project = _project(session, job)
            version = registry.next_version(session, project)
            path = registry.name_artifact(path, version)
            config = {
                "task": project.task,
                "fields": list(project.fields),
                "labels": list(project.labels),
                "schema": input_schema(project.task, project.fields, fit.payloads),
                "classes": classes,
                "estimator": estimator or "default",
                "fingerprint": fingerprint,
                "calibration": calibration,
                "train_label_counts": assess.label_counts(fit.labels),
                "versions": {
                    "python": platform.python_version(),
                    "sklearn": sklearn.__version__,
                    "numpy": np.__version__,
                },
            }
            flat_train = [a for ids in fit.annotation_ids for a in ids]
            flat_test = [a for ids in test.annotation_ids for a in ids]
            version_row = registry.register(
                session,
                project,
                version=version,
                artifact=path,
                sha256=sha,
                config=config,
                metrics=metrics,
                train_annotations=flat_train,
                test_annotations=flat_test,
                actor=job.params.get("actor", "worker"),
                job_id=job.id,
            )
            jobs.hold(
                session,
                job,
                lease_seconds=settings.job_lease_seconds,
                checkpoint={"model": version_row.name},
            )
            jobs.enqueue(session, "score", project_id=project.id)
            name = version_row.name
            auto = bool(projects.setting(project, "auto_promote"))
    except BaseException:
        # Nothing refers to the file of a version that was not registered.
        path.unlink(missing_ok=True)
        raise
    result = {
        "model": name,
        "n_train": len(fit),
        "n_test": len(test),
        "accuracy": metrics.get("accuracy"),
        "calibration": calibration["method"],
    }
    if auto:  # promote only if the gate passes; a refusal is audited with its reasons
        # The gate reuses this job's test split and probabilities: no second labeled set (with
        # its near-duplicate grouping), no reload of the artifact just written.
        result["auto_promote"] = promotion.auto_promote(
            store, job.project_id or 0, name, actor="auto_promote", test=test, candidate_proba=proba
        )
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def input_schema(task: str, fields: list[str], payloads: list[dict[str, Any]]) -> dict[str, str]:
    """Each field's kind as the model saw it in training, so serving can check inputs."""
    if task == "text":
        return {name: "text" for name in fields}
    schema = {}
    for name in fields:
        values = [p.get(name) for p in payloads if p.get(name) is not None]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        schema[name] = "numeric" if numeric and values else "categorical"
    return schema


def _pool(session: Session, project: Project) -> tuple[list[int], list[dict[str, Any]]]:
    rows = session.execute(
        select(Record.id, Record.payload)
        .where(Record.project_id == project.id, Record.n_human < Record.needed)
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
        project = _project(session, job)
        model_row = registry.latest(session, project)
        artifact = None if model_row is None else registry.artifact_file(session, model_row)
        ids, payloads = _pool(session, project)
        label_counts_map = projects.status(session, project)["per_label"]
    if not ids:
        return {"scored": 0}
    rng = np.random.default_rng(job.id)
    batch_size = max(1, min(int(projects.setting(project, "retrain_every")), len(ids)))
    rows: list[dict[str, Any]]
    if model_row is None:
        pipeline = train.build_pipeline(project.task, project.fields)
        features = pipeline[:-1].fit_transform(payloads)
        batch = diversity.typical(features, batch_size, rng)
        rows = [
            {
                "rid": ids[i],
                "score": 2.0 + (batch_size - r) / batch_size,
                "pl": None,
                "pc": None,
                "pm": None,
            }
            for r, i in enumerate(batch)
        ]
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
    proba = np.vstack(
        [model.predict_proba(payloads[s : s + 5000]) for s in range(0, len(payloads), 5000)]
    )
    classes = np.asarray(model.classes_)
    strategy = strategies.get_strategy(projects.setting(project, "strategy"))
    scores = strategy(proba, rng)
    order = np.argsort(-scores, kind="stable")
    shortlist = order[: batch_size * 10]
    features = model[:-1].transform([payloads[i] for i in shortlist])
    picked = diversity.diverse_top_k(scores[shortlist], features, batch_size, rng)
    # Diverse picks first, then the rest of the shortlist: the guard may swap some picks for
    # records of rare classes further down.
    rest = np.setdiff1d(np.arange(len(shortlist)), picked, assume_unique=True)
    ranked = shortlist[np.concatenate([picked, rest])]
    counts = np.array([label_counts_map.get(str(c), 0) for c in classes])
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
            "pm": model_row.version,
        }
        for i in range(len(ids))
    ]
    _write_scores(store, rows)
    return {
        "scored": len(rows),
        "model": model_row.name,
        "batch": len(batch),
        "seconds": round(time.perf_counter() - started, 3),
    }
