"""Pydantic models at the HTTP edge. Requests forbid unknown fields, so typos fail loudly."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    WithJsonSchema,
)

from looplab.core.tables import ModelVersion
from looplab.learn.gate import headline
from looplab.serve.serving import MAX_RECORDS

#: The largest id the API takes: 2**53 - 1, the largest integer JSON carries exactly (a JavaScript
#: number, or any tool that parses JSON numbers as doubles; above it, 2**63 - 1 itself reads back as
#: 2**63). The store's BIGINT holds more; larger numbers are refused at the edge with a 422 instead
#: of overflowing the database driver.
MAX_ID = 2**53 - 1
RowId = Annotated[int, Field(ge=0, le=MAX_ID)]

T = TypeVar("T")

# Patterns the schema shows for what looplab.core.projects and looplab.govern.access check (with
# their own messages): a schema-valid request is then one the server accepts. Explicit ASCII classes
# read the same in ECMA-262 (the schema's dialect) and Python.
PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,99}$"
USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$"
#: A label holds something other than white space (Python's ``str.isspace`` set, spelled out).
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


#: Settings that null clears; every other setting may be left out, not sent as null.
NULLABLE_SETTINGS = frozenset(
    {"strategy", "estimator", "triggers", "webhook_url"}
    | {"gate_max_ece", "gate_max_ece_increase", "gate_min_accuracy", "gate_min_class_recall"}
    | {"window_time_field"}
)


def _not_null(schema: dict[str, Any], nullable: frozenset[str]) -> None:
    """Drop ``null`` from the JSON schema of optional fields not named in ``nullable``."""
    for name, field in schema.get("properties", {}).items():
        options = field.get("anyOf", [])
        if name in nullable or {"type": "null"} not in options:
            continue
        rest = [o for o in options if o != {"type": "null"}]
        del field["anyOf"]
        field.pop("default", None)
        field.update(rest[0] if len(rest) == 1 else {"anyOf": rest})


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_after: int | None = Field(
        None, description="Pass as `after` to get the next page; null on the last page."
    )


class ProjectIn(Request):
    name: str = Field(examples=["news"], json_schema_extra={"pattern": PROJECT_NAME})
    task: Literal["text", "tabular"]
    labels: list[str] = Field(
        min_length=2,
        examples=[["business", "sport", "tech"]],
        description="At least two distinct labels; surrounding white space is dropped.",
        json_schema_extra={
            "uniqueItems": True,
            "items": {"type": "string", "pattern": NOT_BLANK},
        },
    )
    fields: list[str] | None = None
    guidelines: str = ""


class ProjectOut(Response):
    name: str
    task: str
    labels: list[str]
    fields: list[str]
    guidelines: str
    settings: dict[str, Any]
    created_at: dt.datetime


class SettingsPatch(Request):
    # Strict: a value `looplab config` would refuse ("yes" for a flag, 2.0 for a count) is not
    # coerced here either; looplab.core.projects checks the same ranges for both.
    # Null is refused for most settings (leave one out to keep it); the schema says which.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=lambda schema: _not_null(schema, NULLABLE_SETTINGS),
    )

    overlap: int | None = Field(None, ge=1, le=20)
    overlap_fraction: float | None = Field(None, ge=0, le=1)
    retrain_every: int | None = Field(None, ge=1, le=10**9)
    retrain_min_share: float | None = Field(None, ge=0, le=1)
    retrain_worker_share: float | None = Field(None, ge=0, le=1)
    dedupe: Literal["content", "none"] | None = None
    show_suggestions: bool | None = None
    suggest_min_test: int | None = Field(None, ge=1, le=10**9)
    suggest_min_accuracy: float | None = Field(None, ge=0, le=1)
    strategy: str | None = None
    estimator: str | None = None
    triggers: list[dict[str, Any]] | None = None
    auto_promote: bool | None = None
    webhook_url: str | None = None
    monitor_min_predictions: int | None = Field(None, ge=10, le=10**9)
    # Watch: see looplab.watch.periods, looplab.watch.auditing, looplab.watch.levels.
    window: str | None = Field(None, examples=["count", "1h", "1d", "7d", "1M"])
    window_time_field: str | None = None
    audit_rate: float | None = Field(None, ge=0, le=1)
    alarm_margin: float | None = Field(None, ge=0, le=1)
    calibration: Literal["auto", "none", "temperature", "isotonic"] | None = None
    gate_metric: Literal["auto", "accuracy", "macro_f1", "balanced_accuracy"] | None = None
    gate_test: Literal["bootstrap", "mcnemar"] | None = None
    gate_min_gain: float | None = Field(None, ge=0, le=1)
    gate_tolerance: float | None = Field(None, ge=0, le=1)
    gate_alpha: float | None = Field(None, gt=0, lt=1)
    gate_slice_tolerance: float | None = Field(None, ge=0, le=1)
    gate_min_slice_size: int | None = Field(None, ge=1, le=10**9)
    gate_max_ece: float | None = Field(None, ge=0, le=1)
    gate_max_ece_increase: float | None = Field(None, ge=0, le=1)
    gate_min_accuracy: float | None = Field(None, ge=0, le=1)
    # Column types: cells read as missing (looplab.collect.schema).
    na_values: list[Annotated[str, Field(max_length=100)]] | None = Field(None, max_length=1000)
    gate_min_class_recall: float | None = Field(None, ge=0, le=1)
    # Trust: see looplab.trust.labels and the README's Trust section.
    consensus: Literal["majority", "dawid_skene"] | None = None
    consensus_min_posterior: float | None = Field(None, ge=0, le=1)
    gold_rate: float | None = Field(None, ge=0, le=0.5)
    quarantine_policy: Literal["flag", "auto"] | None = None
    reliability_every: int | None = Field(None, ge=0, le=10**9)
    # Retention: see looplab.learn.retention and the README's Capacity section.
    keep_candidates: int | None = Field(None, ge=0, le=10**6)
    auto_gc: bool | None = None


class RecordOut(Response):
    id: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    n_human: int
    needed: int
    score: float
    batch_id: int | None
    source_line: int | None
    created_at: dt.datetime


class Suggestion(BaseModel):
    label: str
    confidence: float
    model_version: str
    right_rate: float | None = Field(
        None, description="Held-out accuracy on test records like this one (see right_scope)."
    )
    right_low: float | None = Field(None, description="Lower end of its 95% interval.")
    right_high: float | None = Field(None, description="Upper end of its 95% interval.")
    right_n: int | None = Field(None, description="Test records behind right_rate.")
    right_scope: Literal["similar", "all"] | None = Field(
        None,
        description="similar: test records in the same confidence bin; all: the whole test split.",
    )
    words: str = Field("", description="The suggestion and how sure the model is, as a sentence.")


class QueueItem(BaseModel):
    record: RecordOut | None
    suggestion: Suggestion | None = None
    suggestion_note: str = Field(
        "", description="Why no suggestion is shown (below the project's floor, or turned off)."
    )
    source: str | None = Field(
        None, description="Name of the file the record was imported from (its line: source_line)."
    )


class AnnotationIn(Request):
    record_id: RowId
    label: str
    seconds: float | None = Field(None, ge=0, lt=86_400)


class SkipIn(Request):
    record_id: RowId


class AnnotationOut(Response):
    id: int
    record_id: int
    label: str | None
    seconds: float | None
    origin: str
    status: str
    created_at: dt.datetime


class UserIn(Request):
    name: str = Field(examples=["ada"], json_schema_extra={"pattern": USER_NAME})
    role: Literal["annotator", "reviewer", "admin"] = "annotator"


class UserOut(Response):
    name: str
    role: str
    active: bool
    created_at: dt.datetime


class UserCreated(UserOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class AuditEventOut(Response):
    id: int
    created_at: dt.datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    project_id: int | None
    details: dict[str, Any]
    hash: str


class Verification(BaseModel):
    ok: bool
    events: int
    head: str
    first_bad_id: int | None
    reason: str


class JobOut(BaseModel):
    """A job as ``GET /api/v1/jobs/{id}`` shows it (see looplab.collect.imports.view)."""

    id: int
    kind: str
    project: str | None
    status: Literal["queued", "running", "done", "failed"]
    progress: dict[str, Any] | None = Field(
        None,
        description="How far it has come: rows (records read so far), done and total (in "
        "unit: bytes, or rows for Parquet).",
    )
    result: dict[str, Any] | None = Field(None, description="What it did, once done.")
    error: str | None = Field(None, description="Why it failed: the CLI's message.")
    error_code: str | None = None
    error_details: dict[str, Any] | None = Field(
        None, description="For bad input: file, line, field."
    )
    attempts: int | None = None
    worker: str | None = Field(
        None, description="Who holds or last held it: host:pid:thread:run of a worker."
    )
    heartbeat_at: dt.datetime | None = Field(
        None,
        description="When its worker last renewed the claim (every few seconds while it runs).",
    )
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


#: Held-out figures the learning curve carries per version.
CURVE_METRICS = (
    "accuracy",
    "macro_f1",
    "balanced_accuracy",
    "accuracy_ci",
    "macro_f1_ci",
    "balanced_accuracy_ci",
)


class CurvePoint(BaseModel):
    version: str
    n_labels: int
    accuracy: float | None
    macro_f1: float | None
    accuracy_ci: list[float] | None = None  # 95% bootstrap interval on the n_test records
    macro_f1_ci: list[float] | None = None
    balanced_accuracy: float | None = None
    balanced_accuracy_ci: list[float] | None = None
    # The metric the project gates on (gate_metric, auto resolved) and what always answering the
    # training majority scores on it.
    metric: str = "accuracy"
    baseline: float | None = None
    baseline_label: str | None = None
    n_test: int
    created_at: dt.datetime

    @classmethod
    def of(cls, m: ModelVersion, gate_metric: str = "auto") -> CurvePoint:
        """A version's point: its held-out scores against the labels it was trained on, led by
        the metric the project gates on (``gate_metric``) and its majority baseline."""
        lead = headline(m.metrics, gate_metric)
        return cls(
            version=m.name,
            n_labels=m.n_train,
            **{key: m.metrics.get(key) for key in CURVE_METRICS},
            metric=lead["metric"],
            baseline=lead["baseline"],
            baseline_label=lead["baseline_label"],
            n_test=m.n_test,
            created_at=m.created_at,
        )


class ModelOut(BaseModel):
    version: str
    stage: str
    n_train: int
    n_test: int
    metrics: dict[str, Any]
    config: dict[str, Any]
    sha256: str
    created_at: dt.datetime
    seconds: float | None = Field(
        description="Wall time of the training (labels read, fitted, assessed, artifact saved); "
        "null for versions trained before costs were recorded."
    )
    peak_mb: float | None = Field(
        description="Resident memory (MiB) the training added at its peak; null if unknown."
    )

    @classmethod
    def of(cls, m: ModelVersion) -> ModelOut:
        spent = m.config.get("training") or {}
        return cls(
            version=m.name,
            stage=m.stage,
            n_train=m.n_train,
            n_test=m.n_test,
            metrics=m.metrics,
            config=m.config,
            sha256=m.sha256,
            created_at=m.created_at,
            seconds=spent.get("seconds"),
            peak_mb=spent.get("peak_mb"),
        )


class JobQueued(BaseModel):
    """A job just queued (``POST .../train``): poll ``GET /api/v1/jobs/{id}``."""

    id: int
    kind: str
    status: str


class PromoteIn(BaseModel):
    # The schema says what promotion.promote_version checks: forcing needs a reason.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"force": {"const": True}}, "required": ["force"]},
            "then": {
                "properties": {"reason": {"type": "string", "pattern": NOT_BLANK}},
                "required": ["reason"],
            },
        },
    )
    force: bool = False
    reason: str = Field("", description="Kept in the audit log; required with force.")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = ""


# ---------------------------------------------------------------- serving


class PredictIn(Request):
    records: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_RECORDS, examples=[[{"text": "Shares rose 5%"}]]
    )


class PredictionOut(BaseModel):
    id: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    unknown: list[str] = Field(
        default_factory=list,
        description="Fields whose category the model never saw in training: it read them as "
        "all-zero, so the answer rests on the other fields. Counted per monitor window.",
    )


class PredictOut(BaseModel):
    model_version: str
    predictions: list[PredictionOut]


class FeedbackIn(Request):
    prediction_id: str = Field(min_length=1, max_length=32)
    label: str | None = None
    accepted: StrictBool | None = None  # "yes" or 1 is a mistake, not a verdict


class FeedbackOut(BaseModel):
    id: int
    prediction_id: str
    accepted: bool
    label: str
    annotation_id: int | None


# ---------------------------------------------------------------- monitoring
#
# What /monitor, /triggers, /drift and /online-metrics return, as looplab.watch.overview and
# looplab.serve.serving build it, so OpenAPI describes what the dashboard (web/static/monitor.js)
# and `looplab monitor --json` read. The answers stay exactly what the services return:
# * every model allows keys it does not declare, so nothing is ever dropped (a report stored by
#   an older or newer version, a key added to a view before its schema); tests/api/test_monitor.py
#   fails when a fresh answer holds a key these models do not declare;
# * the routes set ``response_model_exclude_unset``: a key the service leaves out (an empty
#   window's drift) stays out instead of coming back as null;
# * times are written as ``datetime.isoformat()`` gives them, as before (:data:`IsoTime`).

#: A number below 100,000 and a unit: the schema shows the pattern checked here, so a
#: schema-valid window is one the server takes (99999w still leaves a year after 1 AD).
WINDOW = r"^([1-9][0-9]{0,4}(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)[smhdw]$"


def _window(text: str) -> str:
    if re.fullmatch(WINDOW, text) is None:
        raise ValueError(
            f"window {text!r}: use a number below 100000 and a unit (s, m, h, d or w),"
            " e.g. 30m, 12h, 1d or 2w"
        )
    return text


Window = Annotated[
    str,
    AfterValidator(_window),
    WithJsonSchema({"type": "string", "pattern": WINDOW, "examples": ["1d"]}),
]

#: A time as these routes have always written it: ``datetime.isoformat()`` (``+00:00``, not
#: pydantic's ``Z``), so a response model changes no byte of what clients read.
IsoTime = Annotated[
    dt.datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class View(BaseModel):
    """A monitoring view: declared keys are described; any other key passes through."""

    model_config = ConfigDict(extra="allow")


class Latency(View):
    p50_ms: float
    p95_ms: float
    p99_ms: float


class AccuracyEstimate(View):
    """CBPE: the accuracy a window's confidences imply, with no labels (watch/performance.py).

    In a window of ``/monitor`` it is judged as of the window's labels now (watch/levels.py):
    ``status`` and ``reason`` say whether to believe it, ``checks`` what the labels said.
    """

    method: str = Field(description="cbpe")
    accuracy: float | None = Field(description="Null for an empty window.")
    ci_low: float | None
    ci_high: float | None
    se: float | None = Field(None, description="Its standard error.")
    n: int
    trusted: bool = Field(description="Whether the reference's calibration check passed.")
    reason: str
    ece: float | None = None
    calibration_note: str | None = None
    assumes: str | None = Field(None, description="What the estimate cannot check.")
    status: Literal["trusted", "untrusted", "contradicted"] | None = None
    checks: dict[str, Any] | None = Field(
        None, description="The labels' tests of the estimate: accuracy and label rates."
    )


class LabelAccuracy(View):
    """Accuracy of the window's predictions on people's labels, counted when read."""

    n: int = Field(description="Predictions with a label.")
    accepted: int
    accuracy: float | None = Field(description="accepted / n; null without labels.")
    ci_low: float | None = Field(description="Wilson 95% interval.")
    ci_high: float | None
    labels: dict[str, int] | None = Field(None, description="The true labels' counts.")
    selective: bool | None = Field(
        None, description="True for volunteered feedback, which may not be a fair sample."
    )


class FeatureSummary(View):
    kind: str
    test: str
    p_value: float | None
    p_holm: float | None = Field(description="Holm-adjusted: the alarm's test.")
    effect_size: float | None
    effect_name: str
    min_effect: float = Field(description="The effect floor: smaller shifts never alarm.")
    drift: bool
    blamed: bool
    accuracy_effect: float | None = Field(
        None, description="The change of accuracy this feature's mix change alone would bring."
    )


class MultivariateSummary(View):
    name: str | None
    p_value: float | None
    effect_size: float | None
    effect_name: str | None
    drift: bool | None


class PredictionDriftSummary(View):
    p_value: float | None
    effect_size: float | None
    drift: bool | None


class Risk(View):
    feature: str
    accuracy_effect: float = Field(description="Negative: accuracy at risk.")


class WindowSummary(View):
    """One closed monitor window: one model version's predictions (watch/overview.py)."""

    id: int
    model_version: str | None
    start: IsoTime
    end: IsoTime
    period: str | None = Field(None, description="The calendar period, for period windows.")
    n: int = Field(description="Predictions in the window.")
    level: Literal["none", "inputs", "predictions", "performance"]
    alarm: bool = Field(description="True only at level performance.")
    alarm_source: str | None
    alarm_windows: int | None = Field(
        None,
        description="How many consecutive windows' labels the accuracy alarm pooled (1, 2, 4 "
        "or 8); null when labels did not alarm.",
    )
    labels_used: str | None = Field(description="audit, feedback or null.")
    level_reasons: list[str]
    input_drift: bool
    blamed: list[str]
    risk: list[Risk] = Field(description="Drifted or blamed features, most harmful first.")
    reasons: list[str]
    features: dict[str, FeatureSummary]
    multivariate: MultivariateSummary | None
    prediction_drift: PredictionDriftSummary | None
    feedback: LabelAccuracy
    audit: LabelAccuracy
    estimate: AccuracyEstimate | None
    latency: Latency | None
    mix: dict[str, float] = Field(description="Share of each predicted label.")
    unknown: dict[str, int] = Field(
        default_factory=dict,
        description="Per field, the window's predictions whose category the model never saw in "
        "training (it read them as all-zero).",
    )


class OnlineMetric(View):
    """One served version's predictions and feedback, all time (serve/serving.py)."""

    version: str
    predictions: int
    feedback: int
    accepted: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None


class TriggerDecisionOut(View):
    window: int | None
    fired: bool
    reason: str
    actions: dict[str, Any] = Field(description="What each action did when it fired.")
    at: IsoTime


class TriggerState(View):
    """A trigger rule in force and what it last decided."""

    name: str
    when: str
    params: dict[str, Any]
    actions: list[str]
    times_fired: int
    last_fired_at: IsoTime | None
    last_decision: TriggerDecisionOut | None


class MonitorState(View):
    """The dashboard's monitoring panel: the production model, its windows, alarms, triggers."""

    project: str
    production_model: str | None
    checked_at: IsoTime
    windows: list[WindowSummary] = Field(description="Oldest first.")
    latest: WindowSummary | None
    alarms: int = Field(description="Windows with an alarm (level performance).")
    warnings: int = Field(description="Windows at level inputs or predictions.")
    alarm_streak: int = Field(description="The latest version's alarms in a row, up to now.")
    pending_predictions: int = Field(
        description="The production version's predictions since its last window."
    )
    min_predictions: int = Field(description="A count window closes at this many predictions.")
    window: str = Field(description="count, or the calendar period windows are cut by.")
    window_time_field: str | None
    audit_rate: float
    estimate_assumes: str
    online: list[OnlineMetric]
    triggers: list[TriggerState]


class DriftResultOut(View):
    name: str
    statistic: float | None
    p_value: float | None
    effect_size: float | None
    effect_name: str
    drift: bool
    details: dict[str, Any]


class FeatureDriftOut(View):
    name: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    p_holm: float | None
    q_value: float | None = Field(description="Benjamini-Hochberg: blame's test.")
    effect_size: float | None
    effect_name: str
    min_effect: float
    significant: bool
    drift: bool
    blamed: bool
    details: dict[str, Any]


class DriftReportOut(View):
    """The drift battery's verdict (watch/drift/report.py): one alarm at a known error rate."""

    alarm: bool
    alpha: float
    alpha_univariate: float
    alpha_multivariate: float
    blame_fdr: float
    blamed: list[str]
    features: list[FeatureDriftOut]
    multivariate: DriftResultOut | None
    prediction: DriftResultOut | None
    n_reference: int
    n_window: int
    reasons: list[str]


class ReferenceFigures(View):
    """The held-out figures a window is compared with."""

    accuracy: float
    mean_confidence: float
    n: int
    ece: float
    trusted: bool


class DriftNow(View):
    """The production model's predictions of the last ``window`` against its training data."""

    project: str
    model_version: str
    window: str
    since: IsoTime
    until: IsoTime | None
    n: int
    reference_n: int | None = Field(None, description="Rows of the reference; absent when n is 0.")
    reference: ReferenceFigures | None = None
    drift: DriftReportOut | None
    estimate: AccuracyEstimate | None
    mean_proba: dict[str, float] | None = Field(
        None, description="Mean predicted probability of each label."
    )
    effects: dict[str, float] | None = Field(
        None, description="Each feature's mix change's effect on accuracy."
    )
    latency: Latency | None
    mix: dict[str, float]


class KeptVersion(BaseModel):
    version: str
    reasons: list[str] = Field(
        description="production, previous production, latest, recent candidate, audit, "
        "suggestion or predictions (looplab.learn.retention)."
    )


class RemovedVersion(BaseModel):
    version: str
    stage: str
    artifact: str = Field(description="The file removed (empty if outside the artifacts folder).")
    bytes: int


class OrphanFile(BaseModel):
    path: str
    bytes: int


class GcReport(BaseModel):
    """What ``looplab gc`` (``POST .../gc``) kept and removed, or would with ``dry_run``."""

    project: str
    dry_run: bool
    keep_candidates: int
    kept: list[KeptVersion]
    removed: list[RemovedVersion]
    orphans: list[OrphanFile] = Field(description="Artifact files no version named.")
    lineage_runs_pruned: int
    bytes_freed: int
