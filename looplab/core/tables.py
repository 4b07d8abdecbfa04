"""The store's entities, as SQLAlchemy 2.0 typed ORM classes.

Design notes (why, not what):

* An annotation's answer lives in ``value`` (JSON: ``{"label": "sport"}`` today;
  ``{"labels": [...]}`` or ``{"spans": [...]}`` later), so multi-label, spans and images need no
  table rewrite. ``label`` copies the single-label answer into an indexed column because counting
  and training read it a lot.
* ``Record.content_hash`` is 16 bytes of BLAKE2b over the normalised payload, unique per project:
  the import dedupes through the index instead of holding every hash in memory.
* ``Record.row_count`` and an imported ``Annotation.row_count`` keep how many identical rows a
  record stands for and how many of them carried each label: repeated inputs teach P(y|x).
* ``Record.n_human``, ``needed`` and ``score`` are denormalised for the queue, which must find
  the next record with one indexed query however large the pool grows.
* Servers keep no state: leases, jobs and the audit chain all live here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")

TASKS = ("text", "tabular")
ROLES = ("annotator", "reviewer", "admin")
ORIGINS = ("human", "feedback", "import", "review")
ANNOTATION_STATUSES = ("active", "quarantined", "superseded", "skipped")
#: Why a record waits for a reviewer, and what the reviewer decided.
REVIEW_REASONS = ("label_error", "low_consensus", "flagged_annotator")
REVIEW_STATUSES = ("open", "kept", "relabeled", "ambiguous")
#: Where a gold (known) answer came from: a gold file (`looplab gold`) or a reviewer's mark.
GOLD_SOURCES = ("import", "review")
#: What the reliability check may do on its own: only flag a person, or quarantine them too.
QUARANTINE_POLICIES = ("flag", "auto")
#: An annotator's standing in a project; only ``quarantined`` and ``confirmed`` keep their
#: annotations out of training.
STANDINGS = ("flagged", "quarantined", "released", "confirmed")


def version_name(number: int | None) -> str:
    """How people name model version ``number``: ``v3`` (``vNone`` where a row has none)."""
    return f"v{number}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A ``DateTime(timezone=True)`` column that always gives back an aware datetime in UTC.

    PostgreSQL's ``timestamptz`` comes back in the session's time zone; SQLite has no time-zone
    type and comes back naive (the value written was UTC). Values are written in UTC (a naive one
    is taken as UTC) and read back in UTC, so every timestamp that leaves the store carries its
    zone on both databases, as the API's ``date-time`` fields promise. The DDL is that of
    ``DateTime(timezone=True)``: no migration.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else _in_utc(value)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else _in_utc(value)


def _in_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    task: Mapped[str] = mapped_column(String(20))
    annotation_type: Mapped[str] = mapped_column(String(20), default="single_label")
    labels: Mapped[list[Any]] = mapped_column(JSONType)
    fields: Mapped[list[Any]] = mapped_column(JSONType)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Human answers since the last training job started: the retrain trigger reads one row
    # instead of counting annotations on every submit.
    labels_since_model: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Each input field's type (looplab.collect.schema.Schema.to_dict), decided at import and
    # overridden with `looplab schema`; training, serving, drift and export read it. Null until
    # the first import of a tabular project (and in stores older than 0009).
    field_types: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ImportBatch(Base):
    """One import of one file: the provenance every record points back to."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(20))
    file_sha256: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    n_imported: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash", name="uq_records_project_hash"),
        # The queue's index: only open records (answered ones leave it), best score first, so
        # next_record reads a handful of entries however many records are already labeled.
        Index(
            "ix_records_open",
            "project_id",
            text("score DESC"),
            "id",
            sqlite_where=text("n_human < needed"),
            postgresql_where=text("n_human < needed"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"), nullable=True)
    source_line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    n_human: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How many imported rows this record stands for: identical inputs are one record under
    # ``dedupe=content``, and training and evaluation weigh it by its rows (0010).
    row_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    needed: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Higher = hand to a person sooner. Never NULL (NULL ordering differs between SQLite and
    # PostgreSQL and would defeat the index): imports set a pseudo-random value from the content
    # hash, which is a fair cold-start order; scoring jobs overwrite it.
    score: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # The latest model's guess, written by the scoring job so the queue never runs a model.
    pred_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pred_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    pred_model: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The id of the task this record came from in another tool (a Label Studio task id).
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # How answers imported from Label Studio find their annotator, and how exports name them.
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_project_label", "project_id", "label"),
        Index("ix_annotations_record", "record_id"),
        # Re-importing a Label Studio export finds its answers by their id and adds none twice.
        Index("uq_annotations_project_external", "project_id", "external_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONType)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Imported labels: how many rows of the batch gave the record this label (one annotation per
    # record, batch and label). Observations of a repeated input, not votes. 1 for people.
    row_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    origin: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="active")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"), nullable=True)
    # Set when the answer came from feedback on a served prediction.
    prediction_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # Set for answers imported from another tool: its id there (a Label Studio annotation id).
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # A reviewer's "this is the reference answer" (Label Studio's ground_truth), kept both ways.
    ground_truth: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExternalPrediction(Base):
    """A prediction made outside looplab (a Label Studio ``model_version``), with its score.

    Kept apart from :class:`ModelVersion`, whose versions are looplab's own trained models: an
    imported prediction has no artifact to serve and no held-out accuracy measured here, so it
    is kept and exported back but never shown as a suggestion (the floor of
    :mod:`looplab.ask.suggestions` needs that accuracy).
    """

    __tablename__ = "external_predictions"
    __table_args__ = (
        Index("uq_external_predictions_project_external", "project_id", "external_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    model_version: Mapped[str] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[list[Any]] = mapped_column(JSONType)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Lease(Base):
    """A record handed to an annotator, held until it expires or is answered."""

    __tablename__ = "leases"
    __table_args__ = (UniqueConstraint("record_id", "user_id", name="uq_leases_record_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Job(Base):
    """Long work (training, pool scoring, drift reports), run by a worker from the store."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # How many times a worker has claimed the job; (worker, attempts) names one claim, so a
    # worker whose lease expired cannot finish or commit the work of the claim after it.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A running job's worker pushes this forward every few seconds (its heartbeat); a running job
    # whose lease has passed belongs to a dead worker and is queued again, or given up.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEvent(Base):
    """Append-only; ``hash`` chains each event to the one before it."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(100))
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ModelVersion(Base):
    """A trained model: its artifact, what it was trained on, how it scored, where it stands."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version", name="uq_model_project_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20), default="candidate")
    artifact: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    n_test: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def name(self) -> str:
        return version_name(self.version)


class LineageRun(Base):
    """Lineage, stored compactly: an annotation in consecutive versions of its project.

    The annotation was trained (or tested) on, with the same ``split`` and ``weight``, by every
    version of the project numbered ``first_version`` to ``last_version`` that exists. Versions
    mostly add labels to what the one before saw, so one row per (annotation, split, weight)
    run replaces one row per (version, annotation): 8 versions of 13k labels are ~13k rows
    instead of ~51k (issue 19). A version's number is never reused (the latest version is never
    removed: :mod:`looplab.learn.retention`), so a run over a removed version's number still
    names exactly the kept versions it covered. Read it through :class:`TrainingLabel`.
    """

    __tablename__ = "lineage_runs"
    __table_args__ = (
        # A version's labels: its runs end at or after it. The latest version (the one scored,
        # gated and shown most) reads only the runs still open.
        Index("ix_lineage_runs_project_last", "project_id", "last_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), index=True
    )
    split: Mapped[str] = mapped_column(String(10))
    # Training rows this annotation stood for in these versions (0: behind a label it did not
    # win); NULL for versions trained before counts (0010), which weighed every record once.
    weight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_version: Mapped[int] = mapped_column(Integer)
    last_version: Mapped[int] = mapped_column(Integer)


_lineage_rows = (
    select(
        ModelVersion.id.label("model_id"),
        LineageRun.annotation_id,
        LineageRun.split,
        LineageRun.weight,
    )
    .join(
        LineageRun,
        (LineageRun.project_id == ModelVersion.project_id)
        & (ModelVersion.version >= LineageRun.first_version)
        & (ModelVersion.version <= LineageRun.last_version),
    )
    .subquery("training_labels")
)


class TrainingLabel(Base):
    """Lineage as it is read: exactly which annotations a model version was trained (or
    tested) on, one row per (version, annotation).

    Read-only: a view over :class:`LineageRun` and ``model_versions`` (both databases flatten
    it into a join), so every lineage question is asked as it was before lineage was compacted
    (0015). Written through :func:`looplab.learn.lineage.record`.
    """

    __table__ = _lineage_rows
    __mapper_args__ = {"primary_key": [_lineage_rows.c.model_id, _lineage_rows.c.annotation_id]}

    model_id: Mapped[int]
    annotation_id: Mapped[int]
    split: Mapped[str]
    weight: Mapped[int | None]


class StageChange(Base):
    """History of stages: which version served in production when, who moved it and why."""

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    from_stage: Mapped[str] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Prediction(Base):
    """One served prediction. The id is made by the server (UUID) so logging can be batched."""

    __tablename__ = "predictions"
    # ``looplab drift`` reads one version's predictions in a time range; monitor windows and
    # their targeted labeling read a range of one version's ``seq``. Per version, so a new
    # version's first window does not walk the project's whole history.
    __table_args__ = (
        Index("ix_predictions_project_version_time", "project_id", "model_version", "created_at"),
        Index("ix_predictions_version_seq", "project_id", "model_version", "seq", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_version: Mapped[int] = mapped_column(Integer)
    # The row's place in its version's log, in commit order (1, 2, ...): numbered by
    # :func:`looplab.serve.predlog.append`. Monitor windows are cut on it, not on ``created_at``,
    # which a replica's buffered rows carry from before they were committed.
    seq: Mapped[int] = mapped_column(BigInteger)
    input: Mapped[dict[str, Any]] = mapped_column(JSONType)
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    proba: Mapped[dict[str, Any]] = mapped_column(JSONType)
    latency_ms: Mapped[float] = mapped_column(Float)
    # Fields whose category the model never saw in training (it reads them as all-zero): null
    # when there were none, so the monitor counts them per window.
    unknown: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Feedback(Base):
    """A person's verdict on a served prediction: accepted, or corrected to another label."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_project_time", "project_id", "created_at"),
        # A window's accuracy from feedback is a range scan here: feedback counts in the window
        # (and version) of the prediction it judges, not in the window it arrived in.
        Index("ix_feedback_window", "project_id", "model_version", "prediction_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # Indexed: one verdict per prediction is checked on every feedback request.
    prediction_id: Mapped[str] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    model_version: Mapped[int] = mapped_column(Integer)
    # The judged prediction's ``seq``, copied so a window's feedback needs no join: windows hold
    # a range of ``seq``. ``prediction_at`` (its ``created_at``) is written but read by nothing
    # since windows moved to ``seq`` (0007); it stays NOT NULL until a migration drops it.
    prediction_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    prediction_seq: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    accepted: Mapped[bool] = mapped_column()
    label: Mapped[str] = mapped_column(String(200))
    annotation_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReferenceProfile(Base):
    """The drift reference of a model version: a compact profile of its training inputs."""

    __tablename__ = "reference_profiles"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    profile: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MonitorWindow(Base):
    """One monitored window of one version's served predictions: drift and estimated accuracy.

    It holds the predictions of ``model_version`` with ``first_seq <= seq <= last_seq``;
    ``start`` and ``end`` are the earliest and latest of their times, for people (a replica's
    late rows may make two windows' times overlap, never their predictions). Accuracy from
    feedback is not stored here: it is counted when read, from the feedback on those predictions
    (:func:`looplab.watch.windows.window_feedback`).
    """

    __tablename__ = "monitor_windows"
    __table_args__ = (
        # No query reads this one since windows became per version; a migration may drop it.
        Index("ix_monitor_windows_project_end", "project_id", "end"),
        # A version's windows, latest first (ids follow closing order, which follows ``seq``).
        Index("ix_monitor_windows_version", "project_id", "model_version", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    n_predictions: Mapped[int] = mapped_column(Integer, default=0)
    alarm: Mapped[bool] = mapped_column(default=False)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TriggerDecision(Base):
    """What a trigger rule decided on a window, and what it did about it."""

    __tablename__ = "trigger_decisions"
    __table_args__ = (Index("ix_trigger_decisions_project", "project_id", "trigger"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(100))
    window_id: Mapped[int | None] = mapped_column(
        ForeignKey("monitor_windows.id", ondelete="SET NULL"), nullable=True
    )
    fired: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditSample(Base):
    """A served prediction drawn at random (``audit_rate``) for a person to label.

    Its record goes on top of the labeling queue; the first person's answer given after the
    draw is the prediction's true label. Volunteered feedback comes mostly on answers that
    looked wrong; these do not, so their accuracy is an unbiased figure of the window the
    prediction belongs to (by ``prediction_seq``, as feedback is counted).
    """

    __tablename__ = "audit_samples"
    __table_args__ = (
        Index("ix_audit_samples_window", "project_id", "model_version", "prediction_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_version: Mapped[int] = mapped_column(Integer)
    prediction_id: Mapped[str] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), unique=True
    )
    prediction_seq: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[str] = mapped_column(String(200))  # what the model answered
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GoldAnswer(Base):
    """A record's known answer; a record with one is a *gold* record.

    Gold records are handed out among ordinary ones at the project's ``gold_rate`` (never twice to
    one person), each person's answers on them are graded against this label, and the record
    trains once, with this label, whatever people answered (:mod:`looplab.trust.labels`).
    """

    __tablename__ = "gold_answers"
    __table_args__ = (
        UniqueConstraint("record_id", name="uq_gold_answers_record"),
        Index("ix_gold_answers_project", "project_id", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))  # GOLD_SOURCES
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AnnotatorStanding(Base):
    """The latest decision about one person's labels in one project (history: the audit log).

    ``quarantined`` (by a reviewer, or by the reliability check under ``quarantine_policy=auto``)
    and ``confirmed`` (a reviewer upheld it) keep the person's annotations at status
    ``quarantined``: kept, shown, never trained on. ``released`` brings them back; ``flagged``
    only shows the evidence.
    """

    __tablename__ = "annotator_standings"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_annotator_standings_project_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))  # STANDINGS
    policy: Mapped[str] = mapped_column(String(10))  # QUARANTINE_POLICIES in force when decided
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The flags that tripped (looplab.trust.reliability.Flag as dicts) and the figures behind them.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReviewItem(Base):
    """A record waiting for (or decided by) a reviewer: why, how suspect, and the verdict.

    ``annotation_ids`` are the active answers that carried ``given_label`` when the item was
    queued: a decision on an item none of whose answers is still active would judge a label the
    record no longer has, so it is refused as stale. The decision itself is an annotation of
    origin ``review`` (``decision_id``), which the training set prefers to every other answer.
    """

    __tablename__ = "review_items"
    __table_args__ = (
        # The queue: a project's open items, most suspect (lowest score) first.
        Index("ix_review_items_queue", "project_id", "status", "score"),
        Index("ix_review_items_record", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(30))
    # Lower = more suspect (the given label's out-of-fold probability for ``label_error``).
    score: Mapped[float] = mapped_column(Float)
    given_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    suggested_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    annotation_ids: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL"), nullable=True
    )
    # The scan that queued it (a ``label_scan`` job); NULL for items queued outside a scan.
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
