"""Training data from the store: one consensus label per record, and a fixed train/test split.

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

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from looplab.core.tables import Annotation, Project, Record

#: Share of records, by content hash, held out for evaluation.
TEST_SHARE = 0.2
#: Origins that teach the model. Quarantined or superseded answers never do.
TRAINING_ORIGINS = ("human", "import", "feedback")
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
    """Records with their consensus label, and the annotations behind each (for lineage)."""

    record_ids: list[int] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    annotation_ids: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.record_ids)

    def subset(self, split: str) -> LabeledSet:
        out = LabeledSet()
        for i, s in enumerate(self.splits):
            if s == split:
                out.record_ids.append(self.record_ids[i])
                out.payloads.append(self.payloads[i])
                out.meta.append(self.meta[i])
                out.labels.append(self.labels[i])
                out.splits.append(s)
                out.annotation_ids.append(self.annotation_ids[i])
        return out


def consensus(votes: list[tuple[int, int | None, str]]) -> str:
    """The training label of a record from its active answers ``(annotation id, person, label)``.

    Each person counts one vote per label they gave: a person whose labeling-page answer and
    feedback verdict agree counts once, one whose two answers disagree gives each label a vote,
    so the other people's answers decide. An answer with no person (an imported label) counts
    one vote. The label with the most votes wins; a tie goes to the most recent answer among
    the tied labels.

    Examples
    --------
    >>> consensus([(1, 7, "cat"), (2, 8, "dog"), (3, 7, "dog")])  # 7 is of two minds; 8 decides
    'dog'
    >>> consensus([(1, 7, "cat"), (2, 7, "cat"), (3, 8, "dog")])  # 7 agreeing twice counts once
    'dog'
    >>> consensus([(1, None, "cat"), (2, None, "cat"), (3, 8, "dog")])  # two imported labels
    'cat'
    """
    latest: dict[tuple[object, str], int] = {}
    for annotation_id, person, label in votes:
        voter: object = person if person is not None else ("import", annotation_id)
        latest[(voter, label)] = max(annotation_id, latest.get((voter, label), annotation_id))
    counts = Counter(label for _, label in latest)
    best = max(counts.values())
    return max((aid, label) for (_, label), aid in latest.items() if counts[label] == best)[1]


def labeled_set(session: Session, project: Project) -> LabeledSet:
    """Every record with at least one active, trainable answer, in record-id order."""
    rows = session.execute(
        select(Annotation.record_id, Annotation.id, Annotation.annotator_id, Annotation.label)
        .where(
            Annotation.project_id == project.id,
            Annotation.status == "active",
            Annotation.origin.in_(TRAINING_ORIGINS),
            Annotation.label.is_not(None),
        )
        .order_by(Annotation.record_id, Annotation.id)
    ).tuples()
    votes: dict[int, list[tuple[int, int | None, str]]] = defaultdict(list)
    for record_id, annotation_id, person, label in rows:
        votes[record_id].append((annotation_id, person, str(label)))
    out = LabeledSet()
    hashes: list[bytes] = []
    ids = sorted(votes)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        records = session.execute(
            select(Record.id, Record.payload, Record.meta, Record.content_hash)
            .where(Record.id.in_(chunk))
            .order_by(Record.id)
        ).tuples()
        for record_id, payload, meta, content_hash in records:
            out.record_ids.append(record_id)
            out.payloads.append(payload)
            out.meta.append(meta or {})
            out.labels.append(consensus(votes[record_id]))
            hashes.append(bytes(content_hash))
            out.annotation_ids.append([aid for aid, _, _ in votes[record_id]])
    texts = None
    if project.task == "text" and project.fields:
        from looplab.learn.train import records_to_text

        texts = [str(t) for t in records_to_text(out.payloads, project.fields)]
    out.splits = group_splits(hashes, texts)
    return out
