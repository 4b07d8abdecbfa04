"""Serving: the production model per project, predictions, and feedback on them.

Every answered prediction is logged (input, output, model version, latency) through
:class:`~looplab.serve.predlog.PredictionLog`, off the request path; its module docstring states
exactly what a crash may lose. Feedback is written synchronously and never lost.

Hot swap: :class:`ModelCache` answers from memory and, once an entry is ``check_seconds`` old,
asks the store in the background which version is in production, loading a new one in a worker
thread while requests keep being answered by the old one. Every replica switches within
``check_seconds`` (plus the load time) of a promotion; a request answered by the old version
says so in its ``model_version``, and nothing is dropped.

Concurrent predict calls on one model share one ``predict_proba`` call
(:class:`~looplab.serve.batching.Batcher`), run in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from looplab.ask import queue
from looplab.collect import ingest
from looplab.collect.schema import Schema, Uncoercible, coerce
from looplab.core.errors import Conflict, Invalid, LooplabError, NotFound
from looplab.core.store import Store, lock_rows
from looplab.core.tables import Feedback, Prediction, Project, User, utcnow, version_name
from looplab.learn import registry
from looplab.learn.intervals import wilson_interval
from looplab.serve.batching import Batcher
from looplab.serve.predlog import PredictionLog

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("looplab.serve.serving")

MAX_RECORDS = 1000


@dataclass(frozen=True, eq=False)
class Served:
    """A loaded production model and what it expects as input."""

    project_id: int
    project_name: str
    version: int
    model: Any
    classes: list[str]
    fields: list[str]
    schema: dict[str, str]
    checked_at: float
    #: The column types the model was trained by (:meth:`looplab.collect.schema.Schema.to_dict`);
    #: ``None`` for versions trained before column types, checked by ``schema`` alone.
    columns: dict[str, Any] | None = None
    task: str = "tabular"
    #: The project's labels; those the model never saw are served with probability 0.
    labels: list[str] = dataclasses.field(default_factory=list)

    @functools.cached_property
    def untrained(self) -> dict[str, float]:
        """Probability 0 for each project label absent from training, so that ``probabilities``
        always covers the project's labels (computed once, not per request)."""
        known = set(self.classes)
        return {label: 0.0 for label in self.labels if label not in known}

    @functools.cached_property
    def numeric(self) -> list[bool]:
        """Per field, whether the model reads it as a number (computed once, not per request)."""
        return [self.schema.get(f) == "numeric" for f in self.fields]

    @functools.cached_property
    def types(self) -> Schema | None:
        return Schema.from_dict(self.columns) if self.columns is not None else None

    @functools.cached_property
    def known_categories(self) -> dict[str, frozenset[str]]:
        """Per categorical field, the categories the model saw in training."""
        step = getattr(self.model, "named_steps", {}).get("features")
        seen = getattr(step, "categories_", None) or {}
        return {name: frozenset(values) for name, values in seen.items()}

    @property
    def key(self) -> tuple[int, int]:
        return (self.project_id, self.version)

    @property
    def name(self) -> str:
        """The version's name, as :attr:`looplab.core.tables.ModelVersion.name` gives it."""
        return version_name(self.version)

    def predict_proba(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Class probabilities for validated records (columns in the order of ``classes``)."""
        if self.types is not None:  # the pipeline reads records by the same column types
            return np.asarray(self.model.predict_proba(records))
        return np.asarray(self.model.predict_proba(input_frame(self, records)))


def input_frame(served: Served, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Validated records as the model's input frame, built column-wise.

    Numeric fields (every training value was a number) become float columns, ``None`` as NaN,
    so the pipeline has nothing to parse; other fields keep their values and pandas infers the
    column type, exactly as :func:`looplab.learn.train.records_to_frame` did in training.
    """
    # Imported here, not at start-up: only a request's model input needs pandas (and loading
    # that model, in ModelCache._refresh, has imported it already).
    import pandas as pd

    fields = served.fields
    numeric = served.numeric
    if all(numeric):
        values = np.array([[r[f] for f in fields] for r in records], dtype=np.float64)
        return pd.DataFrame(values, columns=fields)
    columns: dict[str, Any] = {
        f: np.array([r[f] for r in records], dtype=np.float64)
        if is_numeric
        else [r[f] for r in records]
        for f, is_numeric in zip(fields, numeric, strict=True)
    }
    return pd.DataFrame(columns, columns=fields)


class ModelCache:
    """The production model of each project, re-checked against the store in the background."""

    def __init__(
        self,
        store: Store,
        *,
        check_seconds: float = 1.0,
        on_unavailable: Callable[[str, registry.ModelUnavailable], object] | None = None,
    ) -> None:
        self.store = store
        self.check_seconds = check_seconds
        self.on_unavailable = on_unavailable
        #: Project -> (version, reason) of the production model this replica failed to load.
        self.unavailable: dict[str, tuple[str, str]] = {}
        self._served: dict[str, Served] = {}
        self._checks: dict[str, asyncio.Task[Served]] = {}

    async def get(self, project_name: str) -> Served:
        """The project's production model; waits only when none is loaded yet."""
        served = self._served.get(project_name)
        if served is None:
            return await asyncio.shield(self._check(project_name))
        if time.monotonic() - served.checked_at >= self.check_seconds:
            self._check(project_name)  # in the background: this request keeps the loaded one
        return served

    def _check(self, project_name: str) -> asyncio.Task[Served]:
        task = self._checks.get(project_name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._revalidate(project_name))
            self._checks[project_name] = task

            def done(t: asyncio.Task[Served]) -> None:
                self._checks.pop(project_name, None)
                if not t.cancelled():
                    t.exception()  # retrieved: a failed background check is logged below

            task.add_done_callback(done)
        return task

    async def _revalidate(self, project_name: str) -> Served:
        current = self._served.get(project_name)
        try:
            served = await asyncio.to_thread(self._refresh, project_name, current)
        except registry.ModelUnavailable as exc:
            # A broken file must not take down a replica that holds a good model: it keeps
            # answering with that one (and says which in every answer's model_version).
            await asyncio.to_thread(self._note_failure, project_name, exc)  # it may write
            if current is None:
                raise
            served = dataclasses.replace(current, checked_at=time.monotonic())
            self._served[project_name] = served
            return served
        except LooplabError:  # no production model any more, or no such project
            self._served.pop(project_name, None)
            raise
        except Exception:
            if current is None:
                raise
            log.exception(
                "checking the production model of %r failed; still serving v%d",
                project_name,
                current.version,
            )
            served = dataclasses.replace(current, checked_at=time.monotonic())
        self.unavailable.pop(project_name, None)
        self._served[project_name] = served
        return served

    def _note_failure(self, project_name: str, exc: registry.ModelUnavailable) -> None:
        """Remember the failure (for /metrics) and, the first time, log it and raise an alert."""
        key = (str(exc.details.get("model")), str(exc.details.get("reason")))
        first = self.unavailable.get(project_name) != key
        self.unavailable[project_name] = key
        if first:
            log.error("%s", exc.message)
            if self.on_unavailable is not None:
                try:
                    self.on_unavailable(project_name, exc)
                except Exception:  # an alert that cannot be queued must not fail the request
                    log.exception("queueing the model_unavailable alert failed")

    def _refresh(self, project_name: str, current: Served | None) -> Served:
        from looplab.core import projects

        with self.store.read() as session:
            project = projects.get_project(session, project_name)
            row = registry.production(session, project)
            if row is None:
                raise Conflict(
                    f"project {project_name!r} has no production model; train one and promote "
                    "it with `looplab promote`",
                    details={"project": project_name},
                )
            labels = [str(label) for label in project.labels]
            if current is not None and current.version == row.version:
                # A label added since the model was loaded is served with probability 0 too.
                return dataclasses.replace(current, checked_at=time.monotonic(), labels=labels)
            version, artifact, sha256 = (
                row.version,
                registry.artifact_file(session, row),
                row.sha256,
            )
            fields = list(row.config.get("fields", project.fields))
            schema = dict(row.config.get("schema", {}))
            columns = row.config.get("columns")
            project_id, task = project.id, project.task
        model = registry.load_artifact(  # outside the read transaction
            artifact, sha256, project=project_name, model=version_name(version)
        )
        return Served(
            project_id=project_id,
            project_name=project_name,
            version=version,
            model=model,
            classes=[str(c) for c in model.classes_],
            fields=fields,
            schema=schema,
            checked_at=time.monotonic(),
            columns=dict(columns) if columns else None,
            task=task,
            labels=labels,
        )


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def validate_inputs(records: list[dict[str, Any]], served: Served) -> list[list[str]]:
    """Check each record's fields and values against the column types the model was trained by.

    A value is read as import read it (:func:`looplab.collect.schema.coerce`): 30, 30.0 and
    ``"30"`` alike, ``"NA"`` as null, ``"$1,073.55"`` and ``"14.07%"`` as numbers. One that
    cannot be read is :class:`Invalid` (422) naming the record and the field. Text fields go
    through :func:`looplab.collect.ingest.check_text`, as import and feedback do.

    Returns, per record, the categorical fields whose category the model never saw (it reads
    them as all-zero): the prediction's ``unknown``.
    """
    if not records:
        raise Invalid("records must hold at least one record", details={"field": "records"})
    if len(records) > MAX_RECORDS:
        raise Invalid(f"at most {MAX_RECORDS} records per request", details={"field": "records"})
    allowed = set(served.fields)
    for i, record in enumerate(records):
        if record.keys() != allowed:
            unknown = sorted(set(record) - allowed)
            if unknown:
                raise Invalid(
                    f"records[{i}]: unknown field(s) {', '.join(unknown)}; the model reads "
                    f"{', '.join(served.fields)}",
                    details={"record": i, "fields": unknown},
                )
            missing = sorted(allowed - set(record))
            raise Invalid(
                f"records[{i}]: missing field(s) {', '.join(missing)} (send null if unknown)",
                details={"record": i, "fields": missing},
            )
    if served.types is not None:
        return _check_typed(records, served, served.types)
    for i, record in enumerate(records):
        for name in served.fields:
            value = record[name]
            if served.task == "text":
                try:
                    ingest.check_text(value)
                except Invalid as exc:
                    raise Invalid(
                        f"records[{i}].{name}: {exc.message}", details={"record": i, "field": name}
                    ) from None
                continue
            if value is None:
                continue
            kind = served.schema.get(name, "text")
            if kind == "numeric":
                ok = (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and _finite(value)
                )
            elif kind == "categorical":  # categories may be coded as numbers
                ok = isinstance(value, str | int | float) and (
                    not isinstance(value, float) or _finite(value)
                )
            else:
                ok = isinstance(value, str)
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
    return [[] for _ in records]


def _check_typed(records: list[dict[str, Any]], served: Served, schema: Schema) -> list[list[str]]:
    na = schema.na
    known = served.known_categories
    unknown: list[list[str]] = []
    for i, record in enumerate(records):
        unseen = []
        for name, ftype in schema.fields.items():
            value = record[name]
            try:
                if served.task == "text":
                    ingest.check_text(value)
                    continue
                coerced = coerce(value, ftype, na, strict=True)
            except (Uncoercible, Invalid) as exc:
                problem = (
                    str(exc).split(": ", 1)[-1] if isinstance(exc, Uncoercible) else exc.message
                )
                raise Invalid(
                    f"records[{i}].{name}: {problem}", details={"record": i, "field": name}
                ) from None
            seen = known.get(name)
            if seen is not None and coerced is not None and coerced not in seen:
                unseen.append(name)
        unknown.append(unseen)
    return unknown


async def predict(
    served: Served,
    records: list[dict[str, Any]],
    prediction_log: PredictionLog,
    batcher: Batcher,
    started: float,
) -> list[dict[str, Any]]:
    """Validate, predict (batched with concurrent calls), log every prediction, return them."""
    unknown = validate_inputs(records, served)
    proba = await batcher.run(served.key, served.predict_proba, records)
    best = proba.argmax(axis=1)
    rounded = proba.round(6).tolist()
    latency_ms = (time.perf_counter() - started) * 1000
    now = utcnow()
    out, rows = [], []
    for i, record in enumerate(records):
        pid = uuid.uuid4().hex
        probabilities = dict(zip(served.classes, rounded[i], strict=True)) | served.untrained
        label = served.classes[int(best[i])]
        confidence = float(proba[i, best[i]])
        out.append(
            {
                "id": pid,
                "label": label,
                "confidence": confidence,
                "probabilities": probabilities,
                "unknown": unknown[i],
            }
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
                "unknown": unknown[i] or None,
                "created_at": now,
            }
        )
    prediction_log.add(rows)
    return out


async def feedback_when_logged(
    store: Store,
    log: PredictionLog,
    project_name: str,
    user: User,
    prediction_id: str,
    *,
    label: str | None,
    accepted: bool | None,
) -> Feedback:
    """:func:`give_feedback` for a prediction whose log row may not be written yet.

    Feedback may come before its prediction's row is in the store. If this replica holds the row,
    flushing the log first makes the first try succeed (no sleep). A row held by another replica
    is written within its flush interval: try again after one, then after a second one, then the
    :class:`NotFound` stands (404).
    """
    from looplab.core import projects

    def give() -> Feedback:
        with store.write() as session:
            project = projects.get_project(session, project_name)
            return give_feedback(
                session, project, user, prediction_id, label=label, accepted=accepted
            )

    if log.holds(prediction_id):
        await asyncio.to_thread(log.flush)
    for wait in (log.flush_seconds, log.flush_seconds * 2, None):
        try:
            return await asyncio.to_thread(give)
        except NotFound as exc:
            if wait is None or exc.details.get("prediction_id") != prediction_id:
                raise
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


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
    # Locked so that two verdicts on one prediction sent at once cannot both pass the "already
    # has feedback" check below.
    prediction = session.scalar(
        lock_rows(session, select(Prediction).where(Prediction.id == prediction_id))
    )
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
    record, _ = ingest.record_of_input(
        session,
        project,
        prediction.input,
        meta={"source": "feedback", "prediction_id": prediction.id},
        score=0.0,
    )
    annotation = queue.annotate(
        session, project, user, record.id, final, origin="feedback", prediction_id=prediction_id
    )
    entry = Feedback(
        project_id=project.id,
        prediction_id=prediction_id,
        model_version=prediction.model_version,
        # Its monitor window's place (windows hold a range of seq), not the verdict's time.
        prediction_at=prediction.created_at,
        prediction_seq=prediction.seq,
        user_id=user.id,
        accepted=final == prediction.label,
        label=final,
        annotation_id=annotation.id,
    )
    session.add(entry)
    session.flush()
    return entry


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
        low, high = wilson_interval(k, n) if n else (None, None)
        out.append(
            {
                "version": version_name(version),
                "predictions": served.get(version, 0),
                "feedback": n,
                "accepted": k,
                "accuracy": k / n if n else None,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return out
