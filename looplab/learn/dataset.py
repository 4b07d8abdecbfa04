"""Training data from the store: weighted (record, label) examples, and a fixed train/test split.

A record that stands for many identical imported rows (``Record.row_count``) keeps each label's
count (an imported annotation's ``row_count``): those labels are *observations* of a repeated
input, and every (record, label) pair trains with its count as ``sample_weight``, so the model
learns P(y|x) where one vote per distinct label taught it the wrong rates (issue 17: 60.5% of
records trained as ``late`` against a true 22.7%). People's answers on one record are *votes*:
trust turns them into one label (:mod:`looplab.trust.labels`, which also says how both meet).

The split is a pure function of the record's content hash, so a record never moves between train
and test as labels arrive, and exact duplicates (same normalised content, hence same hash, deduped
on import) can never straddle the two.

Near duplicates of text records (:func:`looplab.learn.neardup.near_duplicate_groups`: MinHash LSH
over the normalised word sets, Jaccard >= :data:`NEAR_DUP_THRESHOLD`) are grouped among the labeled
records, and every member of a group takes the split of the group's smallest content hash, so a
reworded copy of a test article cannot sit in the training set. A group is stable until a new near
copy with a smaller hash is labeled; then the whole group moves together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core.tables import Project, Record
from looplab.trust import answers, review

#: Share of records, by content hash, held out for evaluation.
TEST_SHARE = 0.2
#: Jaccard index of word sets from which two texts count as near duplicates (same split).
NEAR_DUP_THRESHOLD = 0.8


def split_of(content_hash: bytes, test_share: float = TEST_SHARE) -> str:
    bucket = int.from_bytes(content_hash[-4:], "big") / 2**32
    return "test" if bucket < test_share else "train"


def group_splits(hashes: list[bytes], texts: list[str] | None) -> list[str]:
    """Split of each record: its own hash's, or with ``texts``, its near-duplicate group's.

    Each group of near-duplicate texts takes the split of its smallest content hash, so no group
    straddles train and test.

    Examples
    --------
    >>> hashes = [bytes([0, 0, 0, 1]), bytes([255, 255, 255, 255])]
    >>> group_splits(hashes, None)
    ['test', 'train']
    >>> group_splits(hashes, ["the cat sat on the mat today", "The cat sat on the mat today!"])
    ['test', 'test']
    """
    if not texts or len(hashes) < 2:
        return [split_of(h) for h in hashes]
    from looplab.learn.neardup import near_duplicate_groups

    groups = near_duplicate_groups(texts, threshold=NEAR_DUP_THRESHOLD)
    smallest: dict[int, bytes] = {}
    for group, content_hash in zip(groups.tolist(), hashes, strict=True):
        if group not in smallest or content_hash < smallest[group]:
            smallest[group] = content_hash
    return [split_of(smallest[g]) for g in groups.tolist()]


@dataclass
class LabeledSet:
    """Weighted examples: a record, a label, how many rows say so, and the answers behind it.

    A record appears once per label it trains with (one entry for most records; one per
    observed label for a repeated input). ``weights`` are row counts: pass them as
    ``sample_weight``, or :meth:`expanded` for figures per row. ``annotation_weights`` (parallel
    to ``annotation_ids``) are the rows each answer stands for, kept as lineage.
    """

    record_ids: list[int] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    annotation_ids: list[list[int]] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    annotation_weights: list[list[int]] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    """How sure the consensus is of each label (1 for observations and gold answers)."""
    held_for_review: list[int] = field(default_factory=list)
    """Records left out because their consensus was below ``consensus_min_posterior``."""

    def __len__(self) -> int:
        return len(self.record_ids)

    def _pick(self, keep: list[int]) -> LabeledSet:
        out = LabeledSet(held_for_review=self.held_for_review)
        for name in _COLUMNS:
            values = getattr(self, name)
            # A set built by hand may leave out the confidences (they are not a training input).
            if name != "confidence" or values:
                setattr(out, name, [values[i] for i in keep])
        return out

    def subset(self, split: str) -> LabeledSet:
        return self._pick([i for i, s in enumerate(self.splits) if s == split])

    @property
    def n_records(self) -> int:
        return len(set(self.record_ids))

    @property
    def n_rows(self) -> int:
        """Rows the examples stand for: the sum of the weights."""
        return int(sum(self.weights))

    def expanded(self) -> LabeledSet:
        """One example per row (each repeated ``weight`` times, weights 1): figures per row.

        Evaluation, calibration and the gate read this form, so a held-out input seen 40 times
        counts 40 times, as it does in traffic; the features are computed per row, which costs
        little next to training.
        """
        if all(w == 1 for w in self.weights):
            return self
        keep = [i for i, w in enumerate(self.weights) for _ in range(w)]
        out = self._pick(keep)
        out.weights = [1] * len(keep)
        return out


_COLUMNS = (
    "record_ids",
    "payloads",
    "meta",
    "labels",
    "splits",
    "annotation_ids",
    "weights",
    "annotation_weights",
    "confidence",
)


def labeled_set(session: Session, project: Project) -> LabeledSet:
    """Every record trust gives a training label to, in record-id order.

    Which answers teach and how they become labels and weights is trust's decision
    (:func:`looplab.trust.answers.for_training`: the project's ``consensus``, gold answers,
    quarantine); records it holds back for review are in ``held_for_review``. A record a
    reviewer marked ambiguous (:func:`looplab.trust.review.ambiguous_records`) is left out.
    """
    decided = answers.for_training(session, project)
    out = LabeledSet(held_for_review=sorted(decided.held))
    hashes: list[bytes] = []
    payloads: list[dict[str, Any]] = []
    first: list[int] = []  # each record's first example
    ids = sorted(set(decided.examples) - review.ambiguous_records(session, project))
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        records = session.execute(
            select(Record.id, Record.payload, Record.meta, Record.content_hash)
            .where(Record.id.in_(chunk))
            .order_by(Record.id)
        ).tuples()
        for record_id, payload, meta, content_hash in records:
            hashes.append(bytes(content_hash))
            payloads.append(payload)
            first.append(len(out))
            for example in decided.examples[record_id]:
                out.record_ids.append(record_id)
                out.payloads.append(payload)
                out.meta.append(meta or {})
                out.labels.append(example.label)
                out.weights.append(example.weight)
                out.annotation_ids.append(list(example.behind))
                out.annotation_weights.append(list(example.behind.values()))
                out.confidence.append(example.confidence)
    texts = None
    if project.task == "text" and project.fields:
        from looplab.learn.train import records_to_text

        texts = [str(t) for t in records_to_text(payloads, project.fields)]
    # One split per record: all of a repeated input's examples sit on the same side.
    per_record = group_splits(hashes, texts)
    ends = [*first[1:], len(out)]
    out.splits = [
        split for split, a, b in zip(per_record, first, ends, strict=True) for _ in range(b - a)
    ]
    return out
