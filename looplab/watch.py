"""Watching a served model: its reference, each window's drift and accuracy, targeted labeling.

* **The reference** of a model version is computed once, from the exact records it was trained
  on (its lineage in ``training_labels``), and stored in ``reference_profiles``: a
  :class:`~looplab.drift.Profile` of its input fields plus the labels the model itself predicts
  on them (the reference for prediction drift), and the calibration of its confidences on its
  held-out records (which decides whether the label-free accuracy estimate is trusted).
* **A window** (:func:`window_drift`) is summarised batch by batch into a profile built from the
  reference, so a window of any size is one pass over its predictions, and tested with
  :func:`~looplab.drift.drift_report`: per feature by type (KS + Welch for numbers, chi-square for
  categories, a TF-IDF domain classifier for text), Hotelling's T^2 over the numeric fields,
  Holm for the alarm, Benjamini-Hochberg for blame, effect-size floors. The accuracy estimate is
  CBPE (:mod:`looplab.performance`).
* **Targeted labeling** (:func:`queue_drifted`): a domain classifier in the model's own feature
  space tells the window's inputs from the training inputs; the window inputs and the open
  records that look most like the window go to the top of the labeling queue.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab import audit, ingest, projects, train
from looplab.drift import Profile, drift_report
from looplab.drift.sketch import CategoryCounts
from looplab.performance import Calibration, ConfidenceSummary, check_calibration, estimate_accuracy
from looplab.store import Store
from looplab.tables import (
    Annotation,
    ModelVersion,
    Prediction,
    Project,
    Record,
    ReferenceProfile,
    TrainingLabel,
)

log = logging.getLogger("looplab.watch")

#: Column of the predicted labels inside profiles (never a field name: fields cannot start so).
PREDICTION = "__prediction__"
CHUNK = 5000
#: Training records the model predicts for the predicted-label reference, and held-out records
#: for the calibration check (seeded samples beyond that).
PREDICT_SAMPLE = 500
CALIBRATION_SAMPLE = 1000
#: Open records scored for targeted labeling at most (a random sample beyond that).
POOL_SAMPLE = 1000
#: Score a targeted record gets, plus its drift weight: above any score a scoring job writes (<= 3).
TARGETED_SCORE = 4.0


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


def _training_rows(
    session: Session, model: ModelVersion, split: str, limit: int | None = None
) -> list[tuple[dict[str, Any], str]]:
    """(payload, label) of the records a version was trained (or tested) on."""
    query = (
        select(Record.id, Record.payload, Annotation.label)
        .join(Annotation, Annotation.record_id == Record.id)
        .join(TrainingLabel, TrainingLabel.annotation_id == Annotation.id)
        .where(TrainingLabel.model_id == model.id, TrainingLabel.split == split)
        .order_by(Record.id, Annotation.id)
    )
    # One row per record (the last of its annotations), in record order.
    by_record = {rid: (payload, str(label)) for rid, payload, label in session.execute(query)}
    rows = list(by_record.values())
    if limit is not None and len(rows) > limit:
        pick = np.random.default_rng(model.id).choice(len(rows), limit, replace=False)
        rows = [rows[i] for i in np.sort(pick)]
    return rows


def _pick(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``k`` of ``n`` rows."""
    return np.arange(n) if n <= k else np.sort(rng.choice(n, k, replace=False))


def _proba(model: Any, payloads: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.vstack(
        [model.predict_proba(list(payloads[s : s + CHUNK])) for s in range(0, len(payloads), CHUNK)]
    )


def build_reference(session: Session, project: Project, model: ModelVersion) -> dict[str, Any]:
    """The stored form of a version's reference: profile, calibration, sizes (not saved here)."""
    schema = drift_schema(project, model)
    fitted = train.load_model(model.artifact, model.sha256)
    classes = np.asarray([str(c) for c in fitted.classes_])
    rows = _training_rows(session, model, "train")
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
        np.asarray(predicted.tolist(), dtype=object), max_categories=200
    )
    test_rows = _training_rows(session, model, "test")
    held = [test_rows[i] for i in _pick(len(test_rows), CALIBRATION_SAMPLE, rng)]
    calibration = None
    if held:
        proba = _proba(fitted, [p for p, _ in held])
        known = [i for i, (_, y) in enumerate(held) if y in set(classes.tolist())]
        if known:
            calibration = check_calibration(
                proba[known], [held[i][1] for i in known], classes=classes
            ).to_dict()
    return {
        "model_version": model.version,
        "profile": profile.to_dict(),
        "calibration": calibration,
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
    from looplab import registry

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
    except Exception:  # another worker stored it first: theirs is the same profile
        log.info("reference of model %s stored by another worker", model_id)


# -- a window ------------------------------------------------------------------------------------


def summarise(
    ref: dict[str, Any],
    schema: dict[str, str],
    batches: Iterable[tuple[list[dict[str, Any]], list[str], list[float]]],
    *,
    seed: int,
) -> tuple[Profile, Profile, ConfidenceSummary]:
    """Fold batches of (inputs, predicted labels, confidences) into a window summary."""
    profile = Profile.from_dict(ref["profile"])
    window = profile.new_window(seed=seed)
    confidence = ConfidenceSummary()
    for inputs, labels, conf in batches:
        window.update(frame_of(inputs, schema, labels))
        confidence.update(conf)
    return profile, window, confidence


def test_window(
    ref: dict[str, Any], profile: Profile, window: Profile, confidence: ConfidenceSummary, seed: int
) -> dict[str, Any]:
    """The drift report and the label-free accuracy estimate of a summarised window."""
    report = drift_report(profile, window, prediction=PREDICTION, rng=seed)
    drift = report.to_dict()
    calibration = Calibration.from_dict(ref["calibration"]) if ref.get("calibration") else None
    estimate = estimate_accuracy(confidence, calibration=calibration).to_dict()
    return {"drift": drift, "estimate": estimate, "reference_n": profile.n}


def window_drift(
    session: Session, project: Project, model: ModelVersion, predictions: list[Prediction]
) -> dict[str, Any]:
    """``{"drift": {..., "alarm"}, "estimate": {"accuracy", "n", ...}}`` of a monitor window."""
    ref = reference(session, project, model)
    schema = drift_schema(project, model)
    seed = _seed(predictions[0].id if predictions else "")
    batches = (
        (
            [p.input for p in predictions[s : s + CHUNK]],
            [p.label for p in predictions[s : s + CHUNK]],
            [p.confidence for p in predictions[s : s + CHUNK]],
        )
        for s in range(0, len(predictions), CHUNK)
    )
    profile, window, confidence = summarise(ref, schema, batches, seed=seed)
    return test_window(ref, profile, window, confidence, seed)


def drift_since(
    session: Session,
    project: Project,
    model: ModelVersion,
    since: dt.datetime,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """An ad-hoc window: every prediction of the production version in ``(since, until]``.

    Read in batches, so the window may be any size; nothing is stored.
    """
    ref = reference(session, project, model)
    schema = drift_schema(project, model)
    query = (
        select(Prediction.input, Prediction.label, Prediction.confidence, Prediction.latency_ms)
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
    counts: dict[str, int] = {}

    def batches() -> Iterable[tuple[list[dict[str, Any]], list[str], list[float]]]:
        result = session.execute(query).tuples()
        for part in result.partitions(CHUNK):
            labels = [str(r[1]) for r in part]
            latencies.extend(float(r[3]) for r in part)
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
            yield [r[0] for r in part], labels, [float(r[2]) for r in part]

    seed = _seed(f"{project.id}:{since.isoformat()}")
    profile, window, confidence = summarise(ref, schema, batches(), seed=seed)
    out: dict[str, Any] = {
        "project": project.name,
        "model_version": model.name,
        "since": since,
        "until": until,
        "n": window.n,
    }
    if window.n == 0:
        return {**out, "drift": None, "estimate": None, "latency": None, "mix": {}}
    total = sum(counts.values())
    return {
        **out,
        **test_window(ref, profile, window, confidence, seed),
        "latency": dict(
            zip(
                ("p50_ms", "p95_ms", "p99_ms"),
                np.percentile(latencies, [50, 95, 99]).tolist(),
                strict=True,
            )
        ),
        "mix": {k: v / total for k, v in sorted(counts.items())},
    }


def _seed(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


# -- targeted labeling ---------------------------------------------------------------------------


def queue_drifted(
    session: Session, project: Project, window: Any, *, budget: int | None = None
) -> int:
    """Put the inputs that look most like the drifted window at the top of the labeling queue.

    A logistic regression, in the production model's own feature space, learns to tell up to
    500 training inputs from up to 1,000 of the window's; its probability "from the window" is
    the drift weight. The ``budget`` (default twice ``retrain_every``) most window-like inputs
    with weight above 1/2, among the window's own inputs (added as records, deduped by content)
    and up to 1,000 open records of the pool (a random sample), get the score ``4 + weight``,
    above any scoring job's
    batch. Returns how many records were put on top; the change is audited.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from looplab.tables import ModelVersion as MV

    model = session.scalar(
        select(MV).where(MV.project_id == project.id, MV.version == window.model_version)
    )
    if model is None:
        return 0
    budget = budget or 2 * int(projects.setting(project, "retrain_every"))
    ref_payloads = [p for p, _ in _training_rows(session, model, "train", limit=500)]
    served = (
        session.execute(
            select(Prediction.id, Prediction.input)
            .where(
                Prediction.project_id == project.id,
                Prediction.created_at >= window.start,
                Prediction.created_at <= window.end,
            )
            .order_by(func.random())
            .limit(1000)
        )
        .tuples()
        .all()
    )
    if len(ref_payloads) < 10 or len(served) < 10:
        return 0
    fitted = train.load_model(model.artifact, model.sha256)
    features = fitted[:-1]
    x_ref = features.transform(ref_payloads)
    x_win = features.transform([dict(i) for _, i in served])
    stack = sparse.vstack if sparse.issparse(x_ref) else np.vstack
    x = stack([x_ref, x_win])
    y = np.r_[np.zeros(x_ref.shape[0]), np.ones(x_win.shape[0])]
    clf = LogisticRegression(max_iter=1000, class_weight="balanced").fit(x, y)
    w_win = clf.predict_proba(x_win)[:, 1]

    pool = (
        session.execute(
            select(Record.id, Record.payload)
            .where(Record.project_id == project.id, Record.n_human < Record.needed)
            .order_by(func.random())
            .limit(POOL_SAMPLE)
        )
        .tuples()
        .all()
    )
    w_pool = (
        np.concatenate(
            [
                clf.predict_proba(features.transform([p for _, p in pool[s : s + CHUNK]]))[:, 1]
                for s in range(0, len(pool), CHUNK)
            ]
        )
        if pool
        else np.zeros(0)
    )
    candidates = [("window", i, float(w)) for i, w in enumerate(w_win) if w > 0.5]
    candidates += [("pool", i, float(w)) for i, w in enumerate(w_pool) if w > 0.5]
    candidates.sort(key=lambda c: -c[2])
    added = boosted = 0
    open_ids = {rid for rid, _ in pool}
    for source, i, weight in candidates[:budget]:
        if source == "pool":
            record = session.get(Record, pool[i][0])
        else:
            pid, raw = served[i]
            try:
                payload = ingest.normalise_payload(project, dict(raw))
            except Exception:  # an input the store cannot hold as a record: skip it
                continue
            digest = ingest.content_hash(project, payload)
            record = session.scalar(
                select(Record).where(Record.project_id == project.id, Record.content_hash == digest)
            )
            if record is None:
                record = Record(
                    project_id=project.id,
                    content_hash=digest,
                    payload=payload,
                    meta={"source": "monitor", "window": window.id, "prediction_id": pid},
                    score=0.0,
                )
                session.add(record)
                session.flush()
                added += 1
            elif record.id not in open_ids:
                continue  # already labeled
        assert record is not None
        record.score = TARGETED_SCORE + weight
        boosted += 1
    audit.record(
        session,
        actor="monitor",
        action="queue.target_drift",
        entity_type="window",
        entity_id=window.id,
        project_id=project.id,
        details={
            "budget": budget,
            "targeted": boosted,
            "new_records": added,
            "window_like_served": int(np.sum(w_win > 0.5)),
            "window_like_pool": int(np.sum(w_pool > 0.5)),
        },
    )
    return boosted
