"""Simulated annotators: what overlap, consensus and quarantine buy, before paying people.

A crowd is a list of :class:`SimulatedAnnotator`: honest people right with their own
probability (a wrong answer goes to another class at random) and at most one adversary, who
either flips one class into another (and is otherwise careful) or answers at random. Each item
is answered by ``overlap`` different people, drawn uniformly, so every person meets every
class. :func:`answers` turns true labels into the items x annotators matrix the rest of the
trust stage reads (``-1`` where a person did not answer).

``--annotator-accuracy 0.9,0.85,0.8,0.75 --adversary flip:sport>politics`` on ``looplab
simulate`` reads as :func:`parse_crowd` parses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from looplab.core.errors import Invalid
from looplab.trust import MISSING

#: The careful part of a flipping adversary: right this often outside the class they flip.
FLIPPER_ACCURACY = 0.9


@dataclass(frozen=True)
class SimulatedAnnotator:
    """One simulated person: honest with ``accuracy``, or an adversary."""

    name: str
    accuracy: float
    #: ``(a, b)``: answers class ``b`` for every item of class ``a``.
    flip: tuple[int, int] | None = None
    #: Answers uniformly at random.
    random: bool = False

    @property
    def adversary(self) -> bool:
        return self.flip is not None or self.random


def _accuracies(text: str, honest: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0.0 < v <= 1.0 for v in values):
        raise Invalid(
            f"annotator accuracy {text!r}: give one number in (0, 1] or one per honest "
            "annotator, comma-separated, e.g. 0.9,0.85,0.8",
            details={"field": "annotator_accuracy", "value": text},
        )
    if len(values) == 1:
        return values * honest
    if len(values) != honest:
        raise Invalid(
            f"{len(values)} accuracies for {honest} honest annotators: give one, or one each",
            details={"field": "annotator_accuracy", "value": text},
        )
    return values


def _adversary(spec: str, classes: Sequence[str]) -> SimulatedAnnotator:
    kind, _, rest = spec.partition(":")
    if kind == "random" and not rest:
        return SimulatedAnnotator("adversary", 1.0 / len(classes), random=True)
    a, arrow, b = rest.partition(">")
    if kind == "flip" and arrow and a in classes and b in classes and a != b:
        flip = (list(classes).index(a), list(classes).index(b))
        return SimulatedAnnotator("adversary", FLIPPER_ACCURACY, flip=flip)
    raise Invalid(
        f"adversary {spec!r}: use flip:A>B with two different labels of the project "
        f"({', '.join(classes)}), or random",
        details={"field": "adversary", "value": spec},
    )


def parse_crowd(
    n: int, accuracy: str, adversary: str | None, classes: Sequence[str]
) -> list[SimulatedAnnotator]:
    """``n`` simulated people: one adversary when ``adversary`` is given, the rest honest."""
    if n < 2 or (adversary and n < 3):
        raise Invalid(
            f"{n} annotators: a crowd needs at least 2 (3 with an adversary, so honest "
            "people can outvote them)",
            details={"field": "annotators", "value": n},
        )
    honest = n - (1 if adversary else 0)
    crowd = [
        SimulatedAnnotator(f"annotator-{j + 1}", acc)
        for j, acc in enumerate(_accuracies(accuracy, honest))
    ]
    if adversary:
        crowd.append(_adversary(adversary, classes))
    return crowd


def answers(
    truth: np.ndarray,
    n_classes: int,
    crowd: Sequence[SimulatedAnnotator],
    overlap: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The items x annotators matrix of the crowd's answers to items of class ``truth``."""
    y = np.asarray(truth, dtype=np.int64)
    n, m = len(y), len(crowd)
    if not 1 <= overlap <= m:
        raise Invalid(
            f"overlap {overlap}: each item needs 1 to {m} of the {m} annotators",
            details={"field": "overlap", "value": overlap},
        )
    out = np.full((n, m), MISSING, dtype=np.int64)
    # Each item gets `overlap` distinct people: the first columns of a random permutation.
    who = np.argsort(rng.random((n, m)), axis=1)[:, :overlap]
    for j, person in enumerate(crowd):
        items = np.flatnonzero((who == j).any(axis=1))
        out[items, j] = _answer(person, y[items], n_classes, rng)
    return out


def _answer(
    person: SimulatedAnnotator, true: np.ndarray, n_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """What ``person`` answers to items of class ``true``."""
    if person.random:
        return rng.integers(0, n_classes, size=len(true))
    wrong = (true + rng.integers(1, n_classes, size=len(true))) % n_classes
    given = np.where(rng.random(len(true)) < person.accuracy, true, wrong)
    if person.flip is not None:
        a, b = person.flip
        given[true == a] = b
    return given


def reanswer(
    matrix: np.ndarray,
    truth: np.ndarray,
    n_classes: int,
    crowd: Sequence[SimulatedAnnotator],
    dropped: Sequence[int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Quarantine as the loop does it: the dropped people's answers go, and their items are
    answered again by someone not dropped who had not answered them (when anyone is left).

    Returns the new matrix and how many answers were asked again (the price of quarantine).
    """
    out = matrix.copy()
    y = np.asarray(truth, dtype=np.int64)
    others = [j for j in range(len(crowd)) if j not in set(dropped)]
    extra = 0
    for j in dropped:
        for i in np.flatnonzero(out[:, j] != MISSING):
            out[i, j] = MISSING
            free = [o for o in others if out[i, o] == MISSING]
            if not free:
                continue
            o = free[int(rng.integers(len(free)))]
            out[i, o] = _answer(crowd[o], y[i : i + 1], n_classes, rng)[0]
            extra += 1
    return out, extra
