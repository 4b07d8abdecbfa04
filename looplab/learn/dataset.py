"""Training data from the store: weighted (record, label) examples, and a fixed train/test split.

A record that stands for many identical imported rows (``Record.row_count``) keeps each label's
count (an imported annotation's ``row_count``): those labels are *observations* of a repeated
input, and every (record, label) pair trains with its count as ``sample_weight``, so the model
learns P(y|x) where one vote per distinct label taught it the wrong rates (issue 17: 60.5% of
records trained as ``late`` against a true 22.7%). People's answers on one record are *votes*:
:func:`consensus` turns them into one label (see :func:`record_examples` for how both meet).

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
#: Origins that teach the model. Quarantined or superseded answers never do. A reviewer's
#: answer (``review``) overrides all others on its record (see :func:`record_examples`).
TRAINING_ORIGINS = ("human", "import", "feedback", "review")
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

    def __len__(self) -> int:
        return len(self.record_ids)

    def _pick(self, keep: list[int]) -> LabeledSet:
        out = LabeledSet()
        for name in _COLUMNS:
            values = getattr(self, name)
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
)


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


#: An answer as :func:`labeled_set` reads it: (annotation id, person, label, origin, rows).
Answer = tuple[int, int | None, str, str, int]


def record_examples(answers: list[Answer], row_count: int) -> list[tuple[str, int, dict[int, int]]]:
    """A record's training examples: ``(label, weight, {annotation id: rows it stands for})``.

    * A record that stands for one row, with at most one imported label: :func:`consensus` of
      all its answers, an imported label voting like a person (as before counts were kept), so
      a person's correction of an imported label wins the tie as the most recent answer.
    * A repeated input: each imported label with the number of rows that gave it (observations,
      not votes), plus the people's consensus, which stands for the record's rows no imported
      label covers (at least one).

    * A record a reviewer decided (an answer of origin ``review``): the reviewer's label, for
      all the record's rows; the other answers stand for 0 rows (kept as lineage).

    The weight of a voted label goes to its latest answer; the others stand for 0 rows.

    Examples
    --------
    >>> record_examples([(1, None, "late", "import", 30), (2, None, "ontime", "import", 70)], 100)
    [('late', 30, {1: 30}), ('ontime', 70, {2: 70})]
    >>> record_examples([(1, None, "late", "import", 1), (2, 8, "ontime", "human", 1)], 1)
    [('ontime', 1, {1: 0, 2: 1})]
    >>> record_examples([(1, 7, "cat", "human", 1), (2, 8, "cat", "human", 1),
    ...                  (3, 9, "dog", "review", 1)], 1)
    [('dog', 1, {1: 0, 2: 0, 3: 1})]
    """
    reviews = [a for a in answers if a[3] == "review"]
    if reviews:
        decided = max(reviews)
        weight = max(1, row_count)
        return [(decided[2], weight, {a[0]: weight if a is decided else 0 for a in answers})]
    imported = [a for a in answers if a[3] == "import"]
    observed = sum(a[4] for a in imported)
    if row_count <= 1 and observed <= 1:
        return [_voted(answers, answers, 1)]
    out: dict[str, tuple[int, dict[int, int]]] = {}
    for aid, _, label, _, rows in imported:
        weight, behind = out.get(label, (0, {}))
        out[label] = (weight + rows, {**behind, aid: rows})
    people = [a for a in answers if a[3] != "import"]
    if people:
        label, weight, behind = _voted(people, people, max(1, row_count - observed))
        before, earlier = out.get(label, (0, {}))
        out[label] = (before + weight, {**earlier, **behind})
    return [(label, weight, behind) for label, (weight, behind) in out.items()]


def _voted(
    answers: list[Answer], voters: list[Answer], weight: int
) -> tuple[str, int, dict[int, int]]:
    label = consensus([(aid, person, lab) for aid, person, lab, _, _ in voters])
    latest = max(aid for aid, _, lab, _, _ in answers if lab == label)
    return label, weight, {aid: (weight if aid == latest else 0) for aid, *_ in answers}


def labeled_set(session: Session, project: Project) -> LabeledSet:
    """Every record with at least one active, trainable answer, in record-id order.

    A record a reviewer marked ambiguous (an active review answer without a label) is left out.
    """
    rows = session.execute(
        select(
            Annotation.record_id,
            Annotation.id,
            Annotation.annotator_id,
            Annotation.label,
            Annotation.origin,
            Annotation.row_count,
        )
        .where(
            Annotation.project_id == project.id,
            Annotation.status == "active",
            Annotation.origin.in_(TRAINING_ORIGINS),
            Annotation.label.is_not(None),
        )
        .order_by(Annotation.record_id, Annotation.id)
    ).tuples()
    answers: dict[int, list[Answer]] = defaultdict(list)
    for record_id, annotation_id, person, label, origin, rows_of in rows:
        answers[record_id].append((annotation_id, person, str(label), origin, int(rows_of or 1)))
    for record_id in ambiguous_records(session, project):
        answers.pop(record_id, None)
    out = LabeledSet()
    hashes: list[bytes] = []
    payloads: list[dict[str, Any]] = []
    first: list[int] = []  # each record's first example
    ids = sorted(answers)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        records = session.execute(
            select(Record.id, Record.payload, Record.meta, Record.content_hash, Record.row_count)
            .where(Record.id.in_(chunk))
            .order_by(Record.id)
        ).tuples()
        for record_id, payload, meta, content_hash, row_count in records:
            hashes.append(bytes(content_hash))
            payloads.append(payload)
            first.append(len(out))
            for label, weight, behind in record_examples(answers[record_id], int(row_count or 1)):
                out.record_ids.append(record_id)
                out.payloads.append(payload)
                out.meta.append(meta or {})
                out.labels.append(label)
                out.weights.append(weight)
                out.annotation_ids.append(list(behind))
                out.annotation_weights.append(list(behind.values()))
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


def ambiguous_records(session: Session, project: Project) -> set[int]:
    """Records a reviewer marked ambiguous: no label of theirs is trusted for training."""
    return set(
        session.scalars(
            select(Annotation.record_id).where(
                Annotation.project_id == project.id,
                Annotation.origin == "review",
                Annotation.status == "active",
                Annotation.label.is_(None),
            )
        )
    )
