"""Pydantic models at the HTTP edge. Requests forbid unknown fields, so typos fail loudly."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

#: The largest id a store column holds (SQL BIGINT); larger numbers are refused at the edge with
#: a 422 instead of overflowing the database driver.
MAX_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=0, le=MAX_ID)]

T = TypeVar("T")


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
    name: str = Field(examples=["news"])
    task: Literal["text", "tabular"]
    labels: list[str] = Field(min_length=2, examples=[["business", "sport", "tech"]])
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
    # coerced here either; looplab.projects checks the same ranges for both.
    model_config = ConfigDict(extra="forbid", strict=True)

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
    gate_metric: Literal["accuracy", "macro_f1"] | None = None
    gate_test: Literal["bootstrap", "mcnemar"] | None = None
    gate_min_gain: float | None = Field(None, ge=0, le=1)
    gate_tolerance: float | None = Field(None, ge=0, le=1)
    gate_alpha: float | None = Field(None, gt=0, lt=1)
    gate_slice_tolerance: float | None = Field(None, ge=0, le=1)
    gate_min_slice_size: int | None = Field(None, ge=1, le=10**9)
    gate_max_ece: float | None = Field(None, ge=0, le=1)
    gate_max_ece_increase: float | None = Field(None, ge=0, le=1)
    gate_min_accuracy: float | None = Field(None, ge=0, le=1)


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
    name: str
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
    """A job as ``GET /api/v1/jobs/{id}`` shows it (see looplab.imports.view)."""

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
