"""Request and response bodies of the review queue, the record browser and record history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from looplab.api.schemas import NOT_BLANK, Request, Response

Reason = Literal["label_error", "low_consensus", "flagged_annotator"]
Status = Literal["open", "kept", "relabeled", "ambiguous"]


class KeepIn(Request):
    decision: Literal["keep"] = Field(description="The given label is right.")


class RelabelIn(Request):
    decision: Literal["relabel"] = Field(description="The record gets another label.")
    label: str = Field(
        description="One of the project's labels, other than the given one.",
        json_schema_extra={"pattern": NOT_BLANK},
    )


class AmbiguousIn(Request):
    decision: Literal["ambiguous"] = Field(
        description="No label can be trusted: the record leaves training."
    )


DecisionIn = Annotated[KeepIn | RelabelIn | AmbiguousIn, Field(discriminator="decision")]


class ReviewItemOut(Response):
    id: int
    record_id: int
    reason: Reason
    score: float = Field(description="Lower = more suspect (the given label's probability).")
    given_label: str | None
    suggested_label: str | None
    status: Status
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_id: int | None = Field(description="The review's annotation.")
    job_id: int | None = Field(description="The scan that queued the item.")
    created_at: dt.datetime


class ReviewPage(BaseModel):
    items: list[ReviewItemOut]
    total: int = Field(description="Items of this status in the project.")


class ModelTaught(BaseModel):
    version: str
    split: str
    weight: int | None = Field(description="Training rows the answer stood for (0: outvoted).")
    stage: str


class AnswerOut(BaseModel):
    id: int
    annotator: str | None = Field(description="Null for an imported label.")
    label: str | None
    ambiguous: bool
    origin: str
    status: str
    seconds: float | None
    row_count: int
    ground_truth: bool
    created_at: dt.datetime
    models: list[ModelTaught] = Field(description="Versions trained or tested on the answer.")


class ConsensusOut(BaseModel):
    label: str
    confidence: float = Field(description="The label's share of the votes (1.0: unanimous).")
    votes: dict[str, int]
    n_answers: int


class TrainingLabelOut(BaseModel):
    label: str | None
    why: str
    examples: list[list[Any]] = Field(default_factory=list)


class SuggestionOut(BaseModel):
    label: str
    confidence: float | None
    model: str | None


class HistoryRecord(BaseModel):
    id: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    row_count: int
    created_at: dt.datetime


class ReviewBrief(BaseModel):
    id: int
    reason: Reason
    score: float
    given_label: str | None
    suggested_label: str | None
    status: Status
    decided_by: str | None
    decided_at: dt.datetime | None
    job_id: int | None
    created_at: dt.datetime


class GoldOut(BaseModel):
    label: str
    source: str = Field(description="import (a gold file) or review (a reviewer's mark).")
    created_by: str
    created_at: dt.datetime


class RecordHistory(BaseModel):
    record: HistoryRecord
    answers: list[AnswerOut]
    consensus: ConsensusOut | None
    training_label: TrainingLabelOut
    gold: GoldOut | None = Field(description="The record's known answer, if it is a gold record.")
    suggestion: SuggestionOut | None
    reviews: list[ReviewBrief]


class BrowseItem(BaseModel):
    id: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    labels: list[str]
    annotators: list[str]
    n_answers: int
    disagreement: bool
    flagged: bool


class BrowsePage(BaseModel):
    items: list[BrowseItem]
    total: int


class Precision(BaseModel):
    decided: int
    confirmed: int
    rate: float | None
    low: float
    high: float


class Counts(BaseModel):
    open: int
    kept: int
    relabeled: int
    ambiguous: int


class ScanOut(BaseModel):
    job_id: int
    status: str
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    skipped: str | None
    n_scanned: int | None
    n_suspects: int | None
    n_queued: int | None = Field(description="Label-error suspects queued for review.")
    n_low_consensus: int | None = Field(
        None, description="Records held back by a low consensus, queued."
    )
    n_flagged_annotator: int | None = Field(
        None, description="Records labeled by a flagged annotator, queued."
    )
    estimated_error_share: float | None
    estimators: list[str] | None
    folds: int | None
    seconds: float | None
    counts: Counts
    precision: Precision


class AllScans(BaseModel):
    counts: Counts
    precision: Precision


class QualityOut(BaseModel):
    project: str
    scan: ScanOut | None
    all_scans: AllScans
