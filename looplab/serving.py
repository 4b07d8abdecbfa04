"""Serving: the production model per project, predictions, their log, and feedback on them.

Predictions are logged off the request path: the handler appends a row to an in-process buffer,
and a background thread writes the buffer in one transaction every ``flush_seconds`` (or sooner
when it fills). A graceful shutdown flushes everything; a hard crash (``kill -9``, power loss)
loses at most the rows of the last ``flush_seconds`` — the predictions were answered, but their log
rows and so feedback on them are gone. Feedback itself is written synchronously and never lost.

The model cache asks the store which version is in production at most every
``check_seconds``, so every replica switches within that time of a promotion. Requests already
running keep the model object they started with: nothing is dropped during the swap.
"""

from __future__ import annotations

import logging
import math
import queue as queue_mod
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from looplab import ingest, queue, registry, train
from looplab.errors import Conflict, Invalid, NotFound
from looplab.store import Store
from looplab.tables import Feedback, Prediction, Project, Record, User, utcnow

log = logging.getLogger("looplab.serving")

MAX_RECORDS = 1000


@dataclass(frozen=True)
class Served:
    project_id: int
    project_name: str
    version: int
    model: Any
    classes: list[str]
    fields: list[str]
    schema: dict[str, str]
    checked_at: float


class ModelCache:
    """The production model of each project, re-checked against the store every few seconds."""

    def __init__(self, store: Store, *, check_seconds: float = 1.0) -> None:
        self.store = store
        self.check_seconds = check_seconds
        self._served: dict[str, Served] = {}
        self._lock = threading.Lock()

    def get(self, project_name: str) -> Served:
        served = self._served.get(project_name)
        now = time.monotonic()
        if served is not None and now - served.checked_at < self.check_seconds:
            return served
        with self._lock:
            served = self._served.get(project_name)
            if served is not None and time.monotonic() - served.checked_at < self.check_seconds:
                return served
            self._served[project_name] = self._refresh(project_name, served)
            return self._served[project_name]

    def _refresh(self, project_name: str, current: Served | None) -> Served:
        from looplab import projects

        with self.store.read() as session:
            project = projects.get_project(session, project_name)
            row = registry.production(session, project)
            if row is None:
                raise Conflict(
                    f"project {project_name!r} has no production model; train one and promote "
                    "it with `looplab promote`",
                    details={"project": project_name},
                )
            if current is not None and current.version == row.version:
                return Served(**{**current.__dict__, "checked_at": time.monotonic()})
            model = train.load_model(row.artifact, row.sha256)
            return Served(
                project_id=project.id,
                project_name=project.name,
                version=row.version,
                model=model,
                classes=[str(c) for c in model.classes_],
                fields=list(row.config.get("fields", project.fields)),
                schema=dict(row.config.get("schema", {})),
                checked_at=time.monotonic(),
            )


class PredictionLog:
    """A buffer of prediction rows written to the store in batches by a background thread."""

    def __init__(self, store: Store, *, flush_seconds: float = 0.2, max_batch: int = 2000) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self._queue: queue_mod.SimpleQueue[dict[str, Any]] = queue_mod.SimpleQueue()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="looplab-predlog", daemon=True)
        self._thread.start()

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._queue.put(row)

    def _drain(self) -> list[dict[str, Any]]:
        rows = []
        while len(rows) < self.max_batch:
            try:
                rows.append(self._queue.get_nowait())
            except queue_mod.Empty:
                break
        return rows

    def flush(self) -> int:
        """Write everything buffered now; return how many rows were written."""
        written = 0
        with self._write_lock:
            while rows := self._drain():
                self._write(rows)
                written += len(rows)
        return written

    def _write(self, rows: list[dict[str, Any]]) -> None:
        for attempt in range(5):
            try:
                with self.store.write() as session:
                    session.execute(insert(Prediction), rows)
                return
            except Exception:  # the store may be briefly away; keep the rows and retry
                log.exception("writing %d prediction rows failed (attempt %d)", len(rows), attempt)
                time.sleep(0.2 * 2**attempt)
        log.error("dropped %d prediction log rows after 5 attempts", len(rows))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


def validate_inputs(records: list[dict[str, Any]], served: Served) -> None:
    """Check each record's fields and types against what the model was trained on."""
    if not records:
        raise Invalid("records must hold at least one record", details={"field": "records"})
    if len(records) > MAX_RECORDS:
        raise Invalid(f"at most {MAX_RECORDS} records per request", details={"field": "records"})
    allowed = set(served.fields)
    for i, record in enumerate(records):
        unknown = sorted(set(record) - allowed)
        if unknown:
            raise Invalid(
                f"records[{i}]: unknown field(s) {', '.join(unknown)}; the model reads "
                f"{', '.join(served.fields)}",
                details={"record": i, "fields": unknown},
            )
        missing = sorted(allowed - set(record))
        if missing:
            raise Invalid(
                f"records[{i}]: missing field(s) {', '.join(missing)} (send null if unknown)",
                details={"record": i, "fields": missing},
            )
        for name in served.fields:
            value = record[name]
            kind = served.schema.get(name, "text")
            if value is None:
                continue
            ok = (
                isinstance(value, str)
                if kind in ("text", "categorical")
                else isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if kind == "categorical" and isinstance(value, int | float | bool):
                ok = True  # categories may be coded as numbers
            if not ok:
                expected = {
                    "text": "a string",
                    "categorical": "a string or number",
                    "numeric": "a finite number",
                }[kind]
                raise Invalid(
                    f"records[{i}].{name}: expected {expected}, got {type(value).__name__}",
                    details={"record": i, "field": name},
                )


def predict(
    served: Served,
    records: list[dict[str, Any]],
    prediction_log: PredictionLog,
    started: float,
) -> list[dict[str, Any]]:
    """Predict, log every prediction, and return them with their ids."""
    validate_inputs(records, served)
    proba = served.model.predict_proba(records)
    best = np.argmax(proba, axis=1)
    latency_ms = (time.perf_counter() - started) * 1000
    now = utcnow()
    out, rows = [], []
    for i, record in enumerate(records):
        pid = uuid.uuid4().hex
        probabilities = {
            c: round(float(p), 6) for c, p in zip(served.classes, proba[i], strict=True)
        }
        label = served.classes[int(best[i])]
        confidence = float(proba[i, best[i]])
        out.append(
            {"id": pid, "label": label, "confidence": confidence, "probabilities": probabilities}
        )
        rows.append(
            {
                "id": pid,
                "project_id": served.project_id,
                "model_version": served.version,
                "input": record,
                "label": label,
                "confidence": confidence,
                "proba": probabilities,
                "latency_ms": latency_ms,
                "created_at": now,
            }
        )
    prediction_log.add(rows)
    return out


def give_feedback(
    session: Session,
    project: Project,
    user: User,
    prediction_id: str,
    *,
    label: str | None,
    accepted: bool | None,
) -> Feedback:
    """Turn a verdict on a prediction into an annotation (origin ``feedback``) on its record."""
    prediction = session.get(Prediction, prediction_id)
    if prediction is None or prediction.project_id != project.id:
        raise NotFound(
            f"no prediction {prediction_id!r} in project {project.name!r}",
            details={"prediction_id": prediction_id},
        )
    if (label is None) == (accepted is None):
        raise Invalid(
            "send either 'label' (a correction) or 'accepted' (true or false)",
            details={"field": "label"},
        )
    if accepted is False:
        raise Invalid(
            "a rejection needs the right label: send 'label' instead", details={"field": "accepted"}
        )
    final = prediction.label if accepted else str(label)
    if final not in project.labels:
        raise Invalid(
            f"unknown label {final!r}; valid labels: {', '.join(project.labels)}",
            details={"field": "label", "value": final},
        )
    if session.scalar(select(Feedback.id).where(Feedback.prediction_id == prediction_id)):
        raise Conflict(
            f"prediction {prediction_id!r} already has feedback",
            details={"prediction_id": prediction_id},
        )
    record = _record_for(session, project, prediction)
    annotation = queue.annotate(
        session, project, user, record.id, final, origin="feedback", prediction_id=prediction_id
    )
    entry = Feedback(
        project_id=project.id,
        prediction_id=prediction_id,
        model_version=prediction.model_version,
        user_id=user.id,
        accepted=final == prediction.label,
        label=final,
        annotation_id=annotation.id,
    )
    session.add(entry)
    session.flush()
    return entry


def _record_for(session: Session, project: Project, prediction: Prediction) -> Record:
    """The record holding the prediction's input: an existing one with the same content, or new."""
    payload = ingest.normalise_payload(project, dict(prediction.input))
    digest = ingest.content_hash(project, payload)
    record = session.scalar(
        select(Record).where(Record.project_id == project.id, Record.content_hash == digest)
    )
    if record is None:
        record = Record(
            project_id=project.id,
            content_hash=digest,
            payload=payload,
            meta={"source": "feedback", "prediction_id": prediction.id},
            score=0.0,
        )
        session.add(record)
        session.flush()
    return record


def online_metrics(session: Session, project: Project) -> list[dict[str, Any]]:
    """Per served version: predictions, feedback, accept rate and accuracy with Wilson 95% CIs."""
    served = dict(
        session.execute(
            select(Prediction.model_version, func.count())
            .where(Prediction.project_id == project.id)
            .group_by(Prediction.model_version)
        )
        .tuples()
        .all()
    )
    rows = (
        session.execute(
            select(Feedback.model_version, Feedback.accepted, func.count())
            .where(Feedback.project_id == project.id)
            .group_by(Feedback.model_version, Feedback.accepted)
        )
        .tuples()
        .all()
    )
    correct: dict[int, int] = {}
    total: dict[int, int] = {}
    for version, accepted, n in rows:
        total[version] = total.get(version, 0) + n
        if accepted:
            correct[version] = correct.get(version, 0) + n
    out = []
    for version in sorted(set(served) | set(total)):
        n, k = total.get(version, 0), correct.get(version, 0)
        low, high = wilson(k, n)
        out.append(
            {
                "version": f"v{version}",
                "predictions": served.get(version, 0),
                "feedback": n,
                "accepted": k,
                "accuracy": k / n if n else None,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return out


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float | None, float | None]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # Rounded so that k == n reads as 1.0, not 0.9999999999999999.
    return max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12))
