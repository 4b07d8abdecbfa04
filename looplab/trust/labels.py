"""Each record's training label, its confidence and its weight: what the training set asks trust.

Two kinds of evidence meet on a record (issue 17 and issue 11):

* *observations*: an imported label of a repeated input, with the number of rows that gave it
  (``row_count``); several labels on one input are the input's P(y|x), never votes;
* *votes*: people's answers (and a lone imported label on a one-row record, which votes like a
  person), turned into one label by the project's ``consensus``:

  - ``majority``: one vote per person and label, ties to the most recent answer
    (:func:`consensus`); confidence = the winner's share of the votes;
  - ``dawid_skene``: :func:`looplab.trust.consensus.dawid_skene` fitted on every voted record of
    the project at once (people are columns, imported labels one column of their own), gold
    records held at their known answer; the label is the most probable among the labels the
    record's answers gave (the weight needs an answer to stand on in the lineage) and its
    confidence that label's posterior.

A *gold* record trains once, with its known answer, whatever people said on it: people's answers
there are graded, not learned from. A reviewer's decision (an answer of origin ``review``)
settles a record the same way. A record whose confidence is below
``consensus_min_posterior`` is held back from training (for review) instead.

The caller passes only answers that may teach: the store side (:func:`project_answers`) leaves
out quarantined, superseded and skipped annotations, so a quarantined person's labels are not in
the next model and come back when released.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: The project setting ``consensus``: how people's answers on one record become its label.
CONSENSUS_METHODS = ("majority", "dawid_skene")

#: An answer: (annotation id, person or None for an imported label, label, origin, rows).
Answer = tuple[int, int | None, str, str, int]


def check_method(name: object) -> str:
    """``name`` if it is a consensus method, else :class:`ValueError` listing the valid ones."""
    if name not in CONSENSUS_METHODS:
        raise ValueError(
            f"unknown consensus {name!r}; valid: {', '.join(CONSENSUS_METHODS)} (majority: one "
            "vote per person; dawid_skene: votes weighed by each person's estimated confusions)"
        )
    return str(name)


@dataclass(frozen=True)
class Example:
    """One (record, label) training example."""

    label: str
    weight: int
    """Training rows the example stands for (``sample_weight``)."""
    behind: dict[int, int]
    """Each answer of the record and the rows it stands for in this example (0: seen, not won)."""
    confidence: float
    """How sure the consensus is of ``label`` (1 for observations and gold answers)."""


@dataclass
class TrainingLabels:
    """The project's training labels: examples per record, and the records held for review."""

    examples: dict[int, list[Example]] = field(default_factory=dict)
    held: dict[int, Example] = field(default_factory=dict)
    """Records whose consensus was below the threshold: the example they would have given."""


def consensus(votes: Sequence[tuple[int, int | None, str]]) -> str:
    """The majority label of a record from its answers ``(annotation id, person, label)``.

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
    return _majority(votes)[0]


def _majority(votes: Sequence[tuple[int, int | None, str]]) -> tuple[str, float]:
    """(majority label, its share of the votes)."""
    latest: dict[tuple[object, str], int] = {}
    for annotation_id, person, label in votes:
        voter: object = person if person is not None else ("import", annotation_id)
        latest[(voter, label)] = max(annotation_id, latest.get((voter, label), annotation_id))
    counts = Counter(label for _, label in latest)
    best = max(counts.values())
    label = max((aid, lab) for (_, lab), aid in latest.items() if counts[lab] == best)[1]
    return label, best / sum(counts.values())


def _single(answers: Sequence[Answer], row_count: int) -> bool:
    """A one-row record with at most one imported row: every answer votes."""
    return row_count <= 1 and sum(a[4] for a in answers if a[3] == "import") <= 1


def voters(answers: Sequence[Answer], row_count: int) -> list[Answer]:
    """The answers of a record that vote (the rest are observations of a repeated input).

    A one-row record with at most one imported row: all its answers, an imported label voting
    like a person (so a person's correction of it wins the tie as the most recent answer). A
    repeated input: people's answers only.
    """
    if _single(answers, row_count):
        return list(answers)
    return [a for a in answers if a[3] != "import"]


def record_examples(
    answers: Sequence[Answer], row_count: int, voted: tuple[str, float] | None = None
) -> list[Example]:
    """A record's training examples from its answers and, when given, its voted label.

    * A one-row record with at most one imported label: one example, the consensus of its
      answers (:func:`voters`).
    * A repeated input: each imported label with the number of rows that gave it, plus the
      people's consensus, which stands for the rows no imported label covers (at least one).

    ``voted`` is the (label, confidence) a consensus method chose for the voters; without it, the
    majority (:func:`consensus`). The weight of a voted label goes to its latest answer; the
    other answers stand for 0 rows.

    Examples
    --------
    >>> [(e.label, e.weight, e.behind) for e in record_examples(
    ...     [(1, None, "late", "import", 30), (2, None, "ontime", "import", 70)], 100)]
    [('late', 30, {1: 30}), ('ontime', 70, {2: 70})]
    >>> [(e.label, e.weight, e.behind) for e in record_examples(
    ...     [(1, None, "late", "import", 1), (2, 8, "ontime", "human", 1)], 1)]
    [('ontime', 1, {1: 0, 2: 1})]
    """
    voting = voters(answers, row_count)
    if _single(answers, row_count):
        return [_voted(answers, voting, 1, voted)]
    observed = sum(a[4] for a in answers if a[3] == "import")
    out: dict[str, tuple[int, dict[int, int], float]] = {}
    for aid, _, label, origin, rows in answers:
        if origin == "import":
            weight, behind, _ = out.get(label, (0, {}, 1.0))
            out[label] = (weight + rows, {**behind, aid: rows}, 1.0)
    if voting:
        example = _voted(voting, voting, max(1, row_count - observed), voted)
        before, earlier, _ = out.get(example.label, (0, {}, 1.0))
        out[example.label] = (
            before + example.weight,
            {**earlier, **example.behind},
            example.confidence,
        )
    return [Example(label, w, behind, conf) for label, (w, behind, conf) in out.items()]


def _voted(
    answers: Sequence[Answer],
    voting: Sequence[Answer],
    weight: int,
    voted: tuple[str, float] | None,
) -> Example:
    if voted is None:
        voted = _majority([(aid, person, lab) for aid, person, lab, _, _ in voting])
    label, confidence = voted
    latest = max(aid for aid, _, lab, _, _ in answers if lab == label)
    return Example(
        label, weight, {aid: (weight if aid == latest else 0) for aid, *_ in answers}, confidence
    )


def gold_example(answers: Sequence[Answer], row_count: int, label: str) -> Example:
    """A gold record's one example: its known answer, standing on the latest answer that gave it.

    People's answers on a gold record are graded against it, never trained on: they stand for
    0 rows. (``looplab gold`` writes the known answer as an imported label, so one always gives
    it; if none does, the example has no answer to stand on and its lineage shows zeros.)
    """
    weight = max(1, row_count)
    # The known answer's own annotation (imported, or a reviewer's) before a person's that agrees.
    carriers = sorted((a[3] not in ("human", "feedback"), a[0]) for a in answers if a[2] == label)
    carrier = carriers[-1][1] if carriers else None
    return Example(label, weight, {a[0]: (weight if a[0] == carrier else 0) for a in answers}, 1.0)


def _reviewed(answers: Sequence[Answer]) -> str | None:
    """A reviewer's latest decision on the record, which settles its label like a gold answer."""
    decisions = [(aid, label) for aid, _, label, origin, _ in answers if origin == "review"]
    return max(decisions)[1] if decisions else None


def _fit_votes(
    answers: Mapping[int, Sequence[Answer]], row_counts: Mapping[int, int], settled: set[int]
) -> dict[int, list[Answer]]:
    """The answers Dawid-Skene reads per record: the voters; on a settled (gold or reviewed)
    record only people's answers, since the known answer's own annotation would teach the fit
    that imported labels or reviewers are never wrong."""
    out = {}
    for rid in sorted(answers):
        voting = voters(answers[rid], row_counts.get(rid, 1))
        if rid in settled:
            voting = [a for a in voting if a[3] in ("human", "feedback")]
        if voting:
            out[rid] = sorted(voting)  # by annotation id: a person's later answer wins its cell
    return out


def dawid_skene_votes(
    answers: Mapping[int, Sequence[Answer]],
    row_counts: Mapping[int, int],
    known: Mapping[int, str],
    classes: Sequence[str],
) -> dict[int, tuple[str, float]]:
    """Dawid-Skene's (label, posterior) for every record with votes, fitted over all of them.

    ``known`` holds the settled records' answers (gold, reviewed), at which the fit is held.
    The label is the most probable among the labels the record's voters gave.
    """
    from looplab.trust.consensus import dawid_skene

    names = sorted({str(c) for c in classes} | {a[2] for v in answers.values() for a in v})
    cls = {name: k for k, name in enumerate(names)}
    votes = _fit_votes(answers, row_counts, set(known))
    if not votes:
        return {}
    items = list(votes)
    columns: dict[object, int] = {}
    cells = [
        (i, columns.setdefault(person if person is not None else "import", len(columns)), cls[lab])
        for i, rid in enumerate(items)
        for _, person, lab, _, _ in votes[rid]
    ]
    matrix = np.full((len(items), len(columns)), -1, dtype=np.int64)
    for i, j, k in cells:
        matrix[i, j] = k
    truth = np.array([cls.get(known.get(rid, ""), -1) for rid in items], dtype=np.int64)
    fit = dawid_skene(matrix, n_classes=len(names), known=truth)
    out = {}
    for i, rid in enumerate(items):
        given = sorted({cls[a[2]] for a in votes[rid]})
        best = max(given, key=lambda k: (fit.posterior[i, k], -k))
        out[rid] = (names[best], float(fit.posterior[i, best]))
    return out


def training_labels(
    answers: Mapping[int, Sequence[Answer]],
    row_counts: Mapping[int, int],
    *,
    gold: Mapping[int, str] | None = None,
    method: str = "majority",
    min_posterior: float = 0.0,
    classes: Sequence[str] = (),
) -> TrainingLabels:
    """Each record's training examples under ``method``; records below ``min_posterior`` held.

    ``answers`` holds each record's teaching answers (see the module docstring), ``row_counts``
    the rows each record stands for, ``gold`` the known answer of gold records.
    """
    check_method(method)
    settled = {rid: label for rid, label in (gold or {}).items() if rid in answers}
    for rid in answers:
        reviewed = _reviewed(answers[rid])
        if reviewed is not None:
            settled.setdefault(rid, reviewed)
    voted = (
        dawid_skene_votes(answers, row_counts, settled, classes) if method == "dawid_skene" else {}
    )
    out = TrainingLabels()
    for rid in sorted(answers):
        rows = row_counts.get(rid, 1)
        if rid in settled:
            out.examples[rid] = [gold_example(answers[rid], rows, settled[rid])]
            continue
        examples = record_examples(answers[rid], rows, voted.get(rid))
        low = [e for e in examples if e.confidence < min_posterior]
        if low:
            out.held[rid] = low[0]
        else:
            out.examples[rid] = examples
    return out
