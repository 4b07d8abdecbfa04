"""The training job: fit the project's pipeline on its labels, assess it, register a version.

It runs in a worker (inside ``looplab serve`` or ``looplab worker``), never on a request path;
with ``auto_promote`` it hands the version to the gate (:mod:`looplab.learn.promotion`) with the
test split and probabilities it has just computed, and queues the re-scoring of the pool.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np
import sklearn

from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Job
from looplab.learn import assess, dataset, gate, promotion, registry, train
from looplab.learn.evaluate import label_counts
from looplab.learn.fingerprints import identical_version, training_fingerprint

#: Fewest labeled training records (and classes) before a model is worth training.
MIN_TRAIN = 10


def train_project(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """Fit the project's pipeline on the train split, evaluate on the test split, register it.

    The version is registered in one transaction with a check that this worker still holds the
    job (:func:`looplab.core.jobs.hold`), which also records the version on the job: an attempt
    that runs after a worker died past that point finds it there and registers nothing again.
    """
    started = time.perf_counter()
    if job.result and job.result.get("model"):
        return {**job.result, "note": "registered by an earlier attempt of this job"}
    with store.write() as session:
        project = jobs.project_of(session, job)
        project.labels_since_model = 0
    with store.read() as session:
        project = jobs.project_of(session, job)
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
        test,
        proba,
        classes,
        train_labels=fit.labels,
        calibration=calibration["method"],
        min_slice_size=int(projects.setting(project, "gate_min_slice_size")),
    )
    untrained = untrained_labels(project.labels, classes)
    with store.read() as session:
        path = registry.pending_artifact_path(session, jobs.project_of(session, job))
    sha = train.save_model(model, path)
    try:
        with store.write() as session:
            project = jobs.project_of(session, job)
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
                "train_label_counts": label_counts(fit.labels),
                "untrained_labels": untrained,
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
        **gate.headline(metrics, str(projects.setting(project, "gate_metric"))),
        "calibration": calibration["method"],
        "figures": metrics.get("figures"),
        "warnings": [untrained_warning(label) for label in untrained],
    }
    if auto:  # promote only if the gate passes; a refusal is audited with its reasons
        # The gate reuses this job's test split and probabilities: no second labeled set (with
        # its near-duplicate grouping), no reload of the artifact just written.
        result["auto_promote"] = promotion.auto_promote(
            store, job.project_id or 0, name, actor="auto_promote", test=test, candidate_proba=proba
        )
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


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
