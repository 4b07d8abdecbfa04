"""The training job: fit the project's pipeline on its labels, assess it, register a version.

It runs in a worker (inside ``looplab serve`` or ``looplab worker``), never on a request path;
with ``auto_promote`` it hands the version to the gate (:mod:`looplab.learn.promotion`) with the
test split and probabilities it has just computed, and queues the re-scoring of the pool.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.pipeline import Pipeline

from looplab.collect import schema as types
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job, Project
from looplab.learn import assess, cost, dataset, gate, promotion, registry, train
from looplab.learn.dataset import LabeledSet
from looplab.learn.evaluate import majority_label
from looplab.learn.fingerprints import identical_version, training_fingerprint

#: Fewest labeled training records (and classes) before a model is worth training.
MIN_TRAIN = 10


def train_project(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Fit the project's pipeline on the train split, evaluate on the test split, register it.

    Every (record, label) example is weighted by the rows it stands for (``sample_weight``), and
    the held-out figures count each row (:meth:`~looplab.learn.dataset.LabeledSet.expanded`).
    The version is registered in one transaction with a check that this worker still holds the
    job (:func:`looplab.core.jobs.hold`), which also records the version on the job: an attempt
    that runs after a worker died past that point finds it there and registers nothing again.
    """
    started = time.perf_counter()
    if job.result and job.result.get("model"):
        return {**job.result, "note": "registered by an earlier attempt of this job"}
    # From reading the labels to the saved artifact: what one training costs the machine.
    meter = cost.Meter.start()
    with store.write() as session:
        project = jobs.project_of(session, job)
        project.labels_since_model = 0
    with store.read() as session:
        project = jobs.project_of(session, job)
        data = dataset.labeled_set(session, project)
    fit, test = data.subset("train"), data.subset("test")
    if fit.n_records < MIN_TRAIN or len(set(fit.labels)) < 2:
        return {
            "skipped": f"need {MIN_TRAIN} labeled training records of 2+ classes; "
            f"have {fit.n_records} of {len(set(fit.labels))}"
        }
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
    fitted = _fit_and_assess(project, fit, test)
    name, auto, spent = _register(store, settings, job, fit, test, fitted, fingerprint, meter)
    result = {
        "model": name,
        "n_train": len(fit),
        "n_test": len(test),
        "train_rows": fit.n_rows,
        "test_rows": test.n_rows,
        **gate.headline(fitted.metrics, str(projects.setting(project, "gate_metric"))),
        "calibration": fitted.calibration["method"],
        "figures": fitted.metrics.get("figures"),
        "warnings": [
            untrained_warning(label) for label in untrained_labels(project.labels, fitted.classes)
        ],
        "training": spent,
    }
    if data.held_for_review:  # consensus below consensus_min_posterior: not trained on
        result["held_for_review"] = len(data.held_for_review)
    if fitted.note:
        result["note"] = fitted.note
    if auto:  # promote only if the gate passes; a refusal is audited with its reasons
        # The gate reuses this job's test rows and probabilities: no second labeled set (with
        # its near-duplicate grouping), no reload of the artifact just written.
        result["auto_promote"] = promotion.auto_promote(
            store,
            job.project_id or 0,
            name,
            actor="auto_promote",
            test=fitted.test_rows,
            candidate_proba=fitted.proba,
        )
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


@dataclass
class _Fitted:
    """A fitted (maybe calibrated) pipeline and what it was judged on."""

    model: Pipeline
    classes: list[str]
    calibration: dict[str, Any]
    metrics: dict[str, Any]
    test_rows: dataset.LabeledSet
    proba: np.ndarray
    note: str | None
    columns: types.Schema  # the column types the pipeline reads its input by
    n_features: int | None  # columns the classifier was fitted on (None if it does not say)


def _fit_and_assess(project: Project, fit: LabeledSet, test: LabeledSet) -> _Fitted:
    """Fit on the weighted train examples; calibrate and measure on the test rows."""
    estimator = projects.setting(project, "estimator")
    # Tabular: the column types decided at import (and overridden with `looplab schema`); a
    # project imported before column types has none, and the pipeline infers them the same way.
    stored = types.of_project(project) if project.task != "text" else None
    model = train.build_pipeline(
        project.task, project.fields, estimator, stored.to_dict() if stored else None
    )
    note = train.fit_weighted(model, fit.payloads, fit.labels, fit.weights)
    columns = trained_schema(project.task, list(project.fields), model)
    n_features = getattr(model.steps[-1][1], "n_features_in_", None)
    classes = [str(c) for c in model.classes_]
    # Figures per row: a held-out input seen 40 times counts 40 times, as in traffic. The rows go
    # through the pipeline once: calibration, the metrics and the gate all use these.
    rows = test.expanded()
    raw = assess.held_out_proba(model, rows)
    # Calibration is kept inside the artifact only if it lowers ECE on held-out records; `proba`
    # is cross-fitted, so no stored figure includes records a calibrator was fitted on.
    model, calibration, proba = assess.calibrate(
        model, rows, raw, projects.setting(project, "calibration")
    )
    metrics = assess.held_out_metrics(
        rows,
        proba,
        classes,
        # The baseline answers the majority of the training rows, as a DummyClassifier would.
        majority=majority_label(assess.label_counts(fit.labels, fit.weights)),
        calibration=calibration["method"],
        min_slice_size=int(projects.setting(project, "gate_min_slice_size")),
    )
    return _Fitted(
        model,
        classes,
        calibration,
        metrics,
        rows,
        proba,
        note,
        columns,
        None if n_features is None else int(n_features),
    )


def _register(
    store: Store,
    settings: Settings,
    job: Job,
    fit: LabeledSet,
    test: LabeledSet,
    fitted: _Fitted,
    fingerprint: str,
    meter: cost.Meter,
) -> tuple[str, bool, dict[str, Any]]:
    """Save the artifact and register the version with its lineage and its cost.

    Returns the version's name, whether to auto-promote, and the cost (``config["training"]``).
    """
    with store.read() as session:
        path = registry.pending_artifact_path(session, jobs.project_of(session, job))
    sha = train.save_model(fitted.model, path)
    spent = {
        **meter.stop().to_dict(),
        "artifact_mb": round(path.stat().st_size / 2**20, 2),
        "n_features": fitted.n_features,
    }
    try:
        with store.write() as session:
            project = jobs.project_of(session, job)
            version = registry.next_version(session, project)
            path = registry.name_artifact(path, version)
            config = {
                "task": project.task,
                "fields": list(project.fields),
                "labels": list(project.labels),
                "schema": fitted.columns.types,
                "columns": fitted.columns.to_dict(),
                "classes": fitted.classes,
                "estimator": projects.setting(project, "estimator") or "default",
                "fingerprint": fingerprint,
                "calibration": fitted.calibration,
                "train_label_counts": assess.label_counts(fit.labels, fit.weights),
                "untrained_labels": untrained_labels(project.labels, fitted.classes),
                "train_rows": fit.n_rows,
                "test_rows": test.n_rows,
                "training": spent,
                "versions": {
                    "python": platform.python_version(),
                    "sklearn": sklearn.__version__,
                    "numpy": np.__version__,
                },
            }
            version_row = registry.register(
                session,
                project,
                version=version,
                artifact=path,
                sha256=sha,
                config=config,
                metrics=fitted.metrics,
                train_annotations=_lineage(fit),
                test_annotations=_lineage(test),
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
            return version_row.name, bool(projects.setting(project, "auto_promote")), spent
    except BaseException:
        # Nothing refers to the file of a version that was not registered.
        path.unlink(missing_ok=True)
        raise


def _lineage(data: LabeledSet) -> dict[int, int]:
    """Each annotation behind ``data`` with the rows it stood for (summed over examples)."""
    out: dict[int, int] = {}
    for ids, weights in zip(data.annotation_ids, data.annotation_weights, strict=True):
        for aid, weight in zip(ids, weights, strict=True):
            out[aid] = out.get(aid, 0) + weight
    return out


def trained_schema(task: str, fields: list[str], model: Any) -> types.Schema:
    """The column types a fitted pipeline reads its input by: serving checks requests by it.

    Text projects read text; a tabular pipeline's ``features`` step holds the schema it was
    built by (the project's, or inferred from its training records).
    """
    step = getattr(model, "named_steps", {}).get("features")
    if task == "text" or step is None:
        return types.text_schema(fields)
    return types.Schema.from_dict(step.schema_)


def untrained_labels(project_labels: list[str], classes: list[str]) -> list[str]:
    """The project's labels the model never saw in training: it can never predict them."""
    known = set(classes)
    return [str(label) for label in project_labels if str(label) not in known]


def untrained_warning(label: str) -> str:
    """What to tell a person about a label that reached no training record."""
    return (
        f"label {label!r} has no training record, so this model can never predict it (its "
        f"probability is served as 0); label records as {label!r} and train again"
    )
