"""A model version's drift reference, and the drift and accuracy estimate of a window against it.

* **The reference** of a model version is computed once, from the exact records it was trained
  on (its lineage in ``training_labels``), and stored in ``reference_profiles``: a
  :class:`~looplab.watch.drift.Profile` of its input fields plus the labels the model itself
  predicts on them (the reference for prediction drift), and the calibration of its confidences on
  its held-out records (which decides whether the label-free accuracy estimate is trusted), scored
  as its held-out metrics were: cross-fitted, so no record's confidence comes from a calibrator
  fitted on it (:func:`looplab.learn.assess.gate_proba`).
* **A window** (:func:`window_drift`) is summarised batch by batch into a profile built from the
  reference, so a window of any size is one pass over its predictions, and tested with
  :func:`~looplab.watch.drift.drift_report`: per feature by type (KS + Welch for numbers,
  chi-square for categories, a TF-IDF domain classifier for text), Hotelling's T^2 over the numeric
  fields, Holm for the alarm, Benjamini-Hochberg for blame, effect-size floors. The accuracy
  estimate is CBPE (:mod:`looplab.watch.performance`).
* **Targeted labeling**, once a trigger asks for it, is :mod:`looplab.watch.targeting`.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from looplab.core import audit
from looplab.core.store import Store
from looplab.core.tables import (
    Annotation,
    ModelVersion,
    Prediction,
    Project,
    Record,
    ReferenceProfile,
    TrainingLabel,
)
from looplab.learn import assess, registry
from looplab.watch import effects
from looplab.watch.drift import Profile, drift_report
from looplab.watch.drift.sketch import CategoryCounts
from looplab.watch.levels import ASSUMES
from looplab.watch.performance import (
    Calibration,
    ConfidenceSummary,
    check_calibration,
    estimate_accuracy,
)
from looplab.watch.windows import latency_summary, mix

log = logging.getLogger("looplab.watch.reference")

#: Column of the predicted labels inside profiles (never a field name: fields cannot start so).
PREDICTION = "__prediction__"
CHUNK = 5000
#: Training records the model predicts for the predicted-label reference, and held-out records
#: for the calibration check (seeded samples beyond that).
PREDICT_SAMPLE = 500
CALIBRATION_SAMPLE = 1000


# -- the reference --------------------------------------------------------------------------------


def drift_schema(project: Project, model: ModelVersion) -> dict[str, str]:
    """Each input field's kind for the drift tests, as the model saw it in training."""
    fields = list(model.config.get("fields") or project.fields)
    if project.task == "text":
        return dict.fromkeys(fields, "text")
    schema = model.config.get("schema") or {}
    return {f: schema.get(f, "categorical") for f in fields}


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "numeric":
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if kind == "categorical":
        # 21, 21.0 and "21" are one category (CSV, Parquet and JSON disagree on types).
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    return str(value)


def frame_of(
    payloads: Sequence[dict[str, Any]], schema: dict[str, str], labels: Sequence[str]
) -> dict[str, list[Any]]:
    """Column lists of the schema's fields, plus the predicted labels when given."""
    frame = {f: [_cell(p.get(f), kind) for p in payloads] for f, kind in schema.items()}
    if labels:
        frame[PREDICTION] = [str(label) for label in labels]
    return frame


def training_records(
    session: Session, model: ModelVersion, split: str, limit: int | None = None
) -> list[tuple[int, dict[str, Any], str]]:
    """(record id, payload, label) of the rows a version was trained (or tested) on.

    A record standing for many rows comes once per row with each label as often as it trained
    (its lineage weight), so the profile and the calibration check describe the traffic the
    training rows were, not one row per distinct input (issue 17). Versions trained before
    counts (no weights) give one row per record.
    """
    query = (
        select(Record.id, Record.payload, Annotation.label, TrainingLabel.weight)
        .join(Annotation, Annotation.record_id == Record.id)
        .join(TrainingLabel, TrainingLabel.annotation_id == Annotation.id)
        .where(TrainingLabel.model_id == model.id, TrainingLabel.split == split)
        .order_by(Record.id, Annotation.id)
    )
    found = session.execute(query).all()
    if any(weight is not None for *_, weight in found):
        rows = [
            (rid, payload, str(label))
            for rid, payload, label, weight in found
            for _ in range(int(weight or 0))
        ]
    else:  # one row per record (the last of its annotations), in record order
        by_record = {rid: (payload, str(label)) for rid, payload, label, _ in found}
        rows = [(rid, payload, label) for rid, (payload, label) in by_record.items()]
    if limit is not None:
        rows = [rows[i] for i in _pick(len(rows), limit, np.random.default_rng(model.id))]
    return rows


def training_rows(
    session: Session, model: ModelVersion, split: str, limit: int | None = None
) -> list[tuple[dict[str, Any], str]]:
    """(payload, label) of the records a version was trained (or tested) on."""
    return [(p, y) for _, p, y in training_records(session, model, split, limit)]


def _pick(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``k`` of ``n`` rows."""
    return np.arange(n) if n <= k else np.sort(rng.choice(n, k, replace=False))


def _proba(model: Any, payloads: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.vstack(
        [model.predict_proba(list(payloads[s : s + CHUNK])) for s in range(0, len(payloads), CHUNK)]
    )


def _held_out_calibration(
    model: ModelVersion,
    fitted: Any,
    classes: np.ndarray,
    held: Sequence[tuple[int, dict[str, Any], str]],
    profile: Profile | None = None,
    schema: dict[str, str] | None = None,
) -> tuple[dict[str, Any] | None, str | None, dict[str, Any]]:
    """The calibration check on held-out records, a note when it is optimistic, and the
    held-out accuracy per category of each feature (:mod:`looplab.watch.effects`).

    Scored as the version's held-out metrics were (:func:`looplab.learn.assess.gate_proba`): a
    calibrator kept in the artifact was fitted on half of the test records, so those records go
    through the one fitted on the other half, and no record's confidence comes from a calibrator
    that saw it. A calibrated version trained before cross calibrators were stored is checked
    with its artifact's own probabilities, and the note says so.
    """
    known_classes = set(classes.tolist())
    known = [(rid, p, y) for rid, p, y in held if y in known_classes]
    if not known:
        return None, None, {}
    proba, honest = assess.gate_proba(
        fitted,
        [p for _, p, _ in known],
        [rid for rid, _, _ in known],
        (model.config or {}).get("calibration"),
    )
    truth = [y for _, _, y in known]
    calibration = check_calibration(proba, truth, classes=classes).to_dict()
    by_feature: dict[str, Any] = {}
    if profile is not None and schema is not None:
        correct = classes[np.asarray(proba).argmax(axis=1)] == np.asarray(truth)
        cells = frame_of([p for _, p, _ in known], schema, [])
        by_feature = effects.accuracy_by_feature(profile, cells, correct.tolist())
    note = (
        None
        if honest
        else f"{model.name} was trained before calibrators were cross-fitted: its reference "
        "calibration includes test records its calibrator was fitted on, so it is optimistic."
    )
    return calibration, note, by_feature


def build_reference(session: Session, project: Project, model: ModelVersion) -> dict[str, Any]:
    """The stored form of a version's reference: profile, calibration, sizes (not saved here)."""
    schema = drift_schema(project, model)
    fitted = registry.load(session, model)
    classes = np.asarray([str(c) for c in fitted.classes_])
    rows = training_rows(session, model, "train")
    if not rows:
        raise ValueError(f"{model.name} has no training records to build a drift reference from")
    payloads = [p for p, _ in rows]
    profile = Profile.from_frame(frame_of(payloads, schema, []), schema, seed=model.id)
    # Running the model is the slow part (TF-IDF of long texts: ~10 ms each), so the predicted
    # labels' reference and the calibration check use seeded samples of the records.
    rng = np.random.default_rng(model.id)
    sample = [payloads[i] for i in _pick(len(payloads), PREDICT_SAMPLE, rng)]
    predicted = classes[_proba(fitted, sample).argmax(axis=1)]
    profile.schema[PREDICTION] = "categorical"
    profile.categorical[PREDICTION] = CategoryCounts.reference(
        predicted.astype(object), max_categories=200
    )
    test_rows = training_records(session, model, "test")
    held = [test_rows[i] for i in _pick(len(test_rows), CALIBRATION_SAMPLE, rng)]
    calibration, note, by_feature = _held_out_calibration(
        model, fitted, classes, held, profile, schema
    )
    return {
        "model_version": model.version,
        "profile": profile.to_dict(),
        "calibration": calibration,
        "calibration_note": note,
        "accuracy_by": by_feature,
        "n_train": len(payloads),
        "n_predicted": len(sample),
        "n_test": len(held),
    }


def reference(session: Session, project: Project, model: ModelVersion) -> dict[str, Any]:
    """The version's stored reference, built and stored in this transaction if missing."""
    row = session.get(ReferenceProfile, model.id)
    if row is None:
        row = ReferenceProfile(model_id=model.id, profile=build_reference(session, project, model))
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor="monitor",
            action="reference.create",
            entity_type="model",
            entity_id=model.id,
            project_id=project.id,
            details={"version": model.name, "n_train": row.profile["n_train"]},
        )
    return row.profile


def ensure_reference(store: Store, project_id: int) -> None:
    """Build the production version's reference outside the monitor's write transaction.

    Building reads every training record and runs the model over them: seconds that should not
    hold SQLite's write lock. Two workers racing here both compute; the first insert wins.
    """
    from looplab.learn import registry

    with store.read() as session:
        project = session.get(Project, project_id)
        model = registry.production(session, project) if project is not None else None
        if project is None or model is None:
            return
        if session.get(ReferenceProfile, model.id) is not None:
            return
        built = build_reference(session, project, model)
        model_id, model_name = model.id, model.name
    try:
        with store.write() as session:
            if session.get(ReferenceProfile, model_id) is None:
                session.add(ReferenceProfile(model_id=model_id, profile=built))
                audit.record(
                    session,
                    actor="monitor",
                    action="reference.create",
                    entity_type="model",
                    entity_id=model_id,
                    project_id=project_id,
                    details={"version": model_name, "n_train": built["n_train"]},
                )
    except IntegrityError:  # another worker stored it first: theirs is the same profile
        log.info("reference of model %s stored by another worker", model_id)


# -- a window ------------------------------------------------------------------------------------


Batch = tuple[list[dict[str, Any]], list[str], list[float], list[dict[str, Any]]]


def summarise(
    ref: dict[str, Any],
    schema: dict[str, str],
    batches: Iterable[Batch],
    *,
    seed: int,
) -> tuple[Profile, Profile, ConfidenceSummary, dict[str, float]]:
    """Fold batches of (inputs, predicted labels, confidences, probabilities) into a window
    summary; the last item is the sum of each class's predicted probability."""
    profile = Profile.from_dict(ref["profile"])
    window = profile.new_window(seed=seed)
    confidence = ConfidenceSummary()
    proba_sum: dict[str, float] = {}
    for inputs, labels, conf, proba in batches:
        window.update(frame_of(inputs, schema, labels))
        confidence.update(conf)
        for row in proba:
            for label, p in (row or {}).items():
                proba_sum[label] = proba_sum.get(label, 0.0) + float(p)
    return profile, window, confidence, proba_sum


def reference_figures(ref: dict[str, Any]) -> dict[str, Any] | None:
    """The held-out figures a window is compared with: accuracy, mean confidence, their n."""
    cal = ref.get("calibration")
    if not cal:
        return None
    return {
        "accuracy": cal["accuracy"],
        "mean_confidence": cal["mean_confidence"],
        "n": cal["n"],
        "ece": cal["ece"],
        "trusted": cal["trusted"],
    }


def test_window(
    ref: dict[str, Any],
    profile: Profile,
    window: Profile,
    confidence: ConfidenceSummary,
    seed: int,
    proba_sum: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The drift report, the label-free accuracy estimate, the mean predicted probabilities and
    each feature's effect on accuracy of a summarised window."""
    report = drift_report(profile, window, prediction=PREDICTION, rng=seed)
    drift = report.to_dict()
    calibration = Calibration.from_dict(ref["calibration"]) if ref.get("calibration") else None
    estimate = estimate_accuracy(confidence, calibration=calibration).to_dict()
    # Set for a version older than cross-fitted calibrators: its check is optimistic.
    estimate["calibration_note"] = ref.get("calibration_note")
    estimate["assumes"] = ASSUMES
    n = max(window.n, 1)
    return {
        "drift": drift,
        "estimate": estimate,
        "reference_n": profile.n,
        "reference": reference_figures(ref),
        "mean_proba": {k: v / n for k, v in sorted((proba_sum or {}).items())},
        "effects": effects.accuracy_effects(ref.get("accuracy_by") or {}, profile, window),
    }


def window_drift(
    session: Session,
    project: Project,
    model: ModelVersion,
    predictions: list[Prediction],
    *,
    ref: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"drift": {..., "alarm"}, "estimate": {"accuracy", "n", ...}}`` of a monitor window.

    ``ref`` is the version's stored reference; without it, it is read (or built and added to
    ``session``, which must then be a write session).
    """
    ref = reference(session, project, model) if ref is None else ref
    schema = drift_schema(project, model)
    seed = _seed(predictions[0].id if predictions else "")
    batches = (
        (
            [p.input for p in predictions[s : s + CHUNK]],
            [p.label for p in predictions[s : s + CHUNK]],
            [p.confidence for p in predictions[s : s + CHUNK]],
            [p.proba for p in predictions[s : s + CHUNK]],
        )
        for s in range(0, len(predictions), CHUNK)
    )
    profile, window, confidence, proba_sum = summarise(ref, schema, batches, seed=seed)
    return test_window(ref, profile, window, confidence, seed, proba_sum)


def drift_since(
    session: Session,
    project: Project,
    model: ModelVersion,
    since: dt.datetime,
    until: dt.datetime | None = None,
    *,
    ref: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ad-hoc window: every prediction of the production version in ``(since, until]``.

    Read in batches, so the window may be any size; nothing is stored. ``ref`` is the version's
    stored reference; without it, it is read (or built and added to ``session``, which must then
    be a write session).
    """
    ref = reference(session, project, model) if ref is None else ref
    schema = drift_schema(project, model)
    query = (
        select(
            Prediction.input,
            Prediction.label,
            Prediction.confidence,
            Prediction.latency_ms,
            Prediction.proba,
        )
        .where(
            Prediction.project_id == project.id,
            Prediction.model_version == model.version,
            Prediction.created_at > since,
        )
        .order_by(Prediction.created_at)
        .execution_options(yield_per=CHUNK)
    )
    if until is not None:
        query = query.where(Prediction.created_at <= until)
    latencies: list[float] = []
    predicted: list[str] = []

    def batches() -> Iterable[Batch]:
        result = session.execute(query).tuples()
        for part in result.partitions(CHUNK):
            labels = [str(r[1]) for r in part]
            latencies.extend(float(r[3]) for r in part)
            predicted.extend(labels)
            yield [r[0] for r in part], labels, [float(r[2]) for r in part], [r[4] for r in part]

    seed = _seed(f"{project.id}:{since.isoformat()}")
    profile, window, confidence, proba_sum = summarise(ref, schema, batches(), seed=seed)
    out: dict[str, Any] = {
        "project": project.name,
        "model_version": model.name,
        "since": since,
        "until": until,
        "n": window.n,
    }
    if window.n == 0:
        return {**out, "drift": None, "estimate": None, "latency": None, "mix": {}}
    return {
        **out,
        **test_window(ref, profile, window, confidence, seed, proba_sum),
        "latency": latency_summary(latencies),
        "mix": mix(predicted),
    }


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())
