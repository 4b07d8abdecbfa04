"""Pydantic models at the HTTP edge. Requests forbid unknown fields, so typos fail loudly."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

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
    show_suggestions: bool | None = None
    suggest_min_test: int | None = Field(None, ge=1, le=10**9)
    suggest_min_accuracy: float | None = Field(None, ge=0, le=1)
    strategy: str | None = None
    estimator: str | None = None
    triggers: list[dict[str, Any]] | None = None
    auto_promote: bool | None = None
    webhook_url: str | None = None
    monitor_min_predictions: int | None = Field(None, ge=10, le=10**9)
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
    gate_min_class_recall: float | None = Field(None, ge=0, le=1)


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
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


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


class ModelOut(BaseModel):
    version: str
    stage: str
    n_train: int
    n_test: int
    metrics: dict[str, Any]
    config: dict[str, Any]
    sha256: str
    created_at: dt.datetime


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
