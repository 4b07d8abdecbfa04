"""Request and response models of the trust routes (:mod:`looplab.api.routes.trust`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from looplab.api.schemas import Request


class GoldImportOut(BaseModel):
    batch_id: int
    rows: int = Field(description="Distinct records in the file.")
    gold: int = Field(description="Records that became gold with this file.")
    matched: int = Field(description="Rows whose record the project already had.")
    created: int = Field(description="Records the file added.")


class Alpha(BaseModel):
    alpha: float | None = Field(description="Krippendorff's alpha (nominal); null if undefined.")
    low: float | None
    high: float | None
    level: float
    n_records: int = Field(description="Records with answers from two or more people.")
    n_labels: int


class BatchAlpha(Alpha):
    batch: str = Field(description="The day, the Monday of the week, or the month.")


class PairKappa(BaseModel):
    a: str
    b: str
    n_shared: int
    kappa: float | None
    low: float | None
    high: float | None


class AgreementOut(BaseModel):
    project: str
    n_records: int
    note: str | None = None
    overall: Alpha | None = None
    per_label: dict[str, Alpha] | None = None
    by: Literal["day", "week", "month"] | None = None
    per_batch: list[BatchAlpha] | None = None
    pairs: list[PairKappa] | None = None
    min_shared: int | None = None


class GoldScore(BaseModel):
    right: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


class Agreement(BaseModel):
    rate: float | None
    low: float | None
    high: float | None
    n: int
    kappa: float | None


class Confusion(BaseModel):
    truth: str
    answered: str
    rate: float | None
    n_records: float | None


class AgainstConsensus(BaseModel):
    classes: list[str]
    counts: list[list[int]] = Field(
        description="counts[t][a]: records the others' consensus puts in classes[t] that this "
        "person answered classes[a] (records someone else answered too)."
    )
    n: int


class FlagOut(BaseModel):
    reason: Literal["flipped_class", "near_chance", "too_fast", "gold_below"]
    value: float | None
    threshold: float
    detail: str


class StandingOut(BaseModel):
    status: Literal["ok", "flagged", "quarantined", "released", "confirmed"]
    reason: str | None = None
    policy: Literal["flag", "auto"] | None = None
    decided_by: str | None = None
    decided_at: str | None = None


class AnnotatorOut(BaseModel):
    user: str
    labels: int
    median_seconds: float | None = None
    others_median_seconds: float | None = None
    gold: GoldScore | None = None
    estimated_accuracy: float | None = None
    agreement: Agreement | None = None
    worst_confusion: Confusion | None = None
    confusion: AgainstConsensus | None = None
    flags: list[FlagOut]
    standing: StandingOut


class CheckOut(BaseModel):
    flagged: list[str]
    quarantined: list[str]
    policy: Literal["flag", "auto"]
    triggers: list[str] = Field(
        default_factory=list, description="agreement_below rules that fired on this check."
    )


class AnnotatorsOut(BaseModel):
    project: str
    quarantine_policy: Literal["flag", "auto"]
    min_labels: int = Field(description="Nobody is flagged on fewer answers than this.")
    annotators: list[AnnotatorOut]
    check: CheckOut | None = None


class DecisionIn(Request):
    reason: str = Field(
        min_length=1, max_length=2000, pattern=r"\S", description="Why (audited and shown)."
    )


class DecisionOut(BaseModel):
    user: str
    status: Literal["quarantined", "released", "confirmed"]
    annotations: int | None = Field(None, description="Answers moved (quarantine, release).")
    train_job: int | None = Field(None, description="The retrain queued (quarantine, release).")
