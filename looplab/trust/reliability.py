"""The evidence about each annotator, and the rule that flags a systematically wrong one.

Per annotator (a column of the label matrix) this gathers, as data:

* the Dawid-Skene confusion matrix and the accuracy it implies (``sum_k p[k] pi[k, k]``);
* agreement with the *others'* consensus: each item's Dawid-Skene posterior with this person's
  own answer divided out (``T[i] / pi[j, :, x_ij]``, renormalised), so nobody is graded
  against a consensus their own vote shaped; as a rate with a Wilson interval and as Cohen's
  kappa (chance-corrected, with an upper bound from the rate's interval);
* the class this person gets most wrong: for each true class, the answer they give it most
  often when that is not the class, its rate and the expected number of items behind it;
* gold accuracy with a Wilson interval, when gold records exist;
* median seconds per label against the median of the other annotators' medians.

The flags, each with the number that tripped it and the threshold (:class:`Flag`):

* ``flipped_class`` -- for some class with enough items, the person answers one *other* class
  more often than not (Wilson lower bound of that rate above ``flip_rate``): a flip, whether
  hostile or a misread guideline, and also the person who gives one answer to nearly every item
  (on real crowds most flags are of that kind: "no match" for every product pair);
* ``near_chance`` -- agreement with the others' consensus is no better than chance (upper
  bound of kappa below ``min_kappa``): random answers, or answers unrelated to the item;
* ``too_fast`` -- median seconds per label below ``fast_ratio`` of the others' median: faster
  than anyone reads;
* ``gold_below`` -- gold accuracy's upper bound below ``min_gold_accuracy``.

Nobody is flagged on fewer than ``min_labels`` labels: thin evidence is shown, not judged. What
this cannot catch: a person who copies the majority without reading (they agree with everyone;
only gold and time tell), and a group who flip together (then they *are* the consensus; only gold
tells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from looplab.trust import MISSING
from looplab.trust.consensus import DawidSkeneResult, dawid_skene
from looplab.trust.gold import Proportion, gold_accuracy, wilson_interval
from looplab.trust.matrix import check_matrix


@dataclass(frozen=True)
class FlagRule:
    """Thresholds of the flags (the defaults are the ones the benchmark measured)."""

    min_labels: int = 20
    """No flag on fewer labels than this."""
    min_class_support: float = 8.0
    """Expected items of a class before a flip of that class is judged."""
    flip_rate: float = 0.5
    """A flip: the lower bound of the rate of one wrong answer for a class exceeds this."""
    min_kappa: float = 0.2
    """Near chance: the upper bound of kappa against the others' consensus is below this."""
    fast_ratio: float = 0.25
    """Too fast: median seconds per label below this share of the others' median."""
    min_gold: int = 10
    """Gold answers needed before gold accuracy is judged."""
    min_gold_accuracy: float = 0.6
    """Gold below: the upper bound of gold accuracy is below this."""
    level: float = 0.95
    """Coverage of every interval the rule reads."""


@dataclass(frozen=True)
class Flag:
    """Why a person was flagged: the reason, the measured value, and the threshold it crossed."""

    reason: str
    """``flipped_class``, ``near_chance``, ``too_fast`` or ``gold_below``."""
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class AnnotatorEvidence:
    """Everything measured about one annotator (matrix column ``annotator``)."""

    annotator: int
    n_labels: int
    confusion: np.ndarray
    """Dawid-Skene ``(n_classes, n_classes)``: rows the truth, columns this person's answer."""
    estimated_accuracy: float
    agreement: Proportion
    """Answers equal to the others' consensus, on items someone else labeled too."""
    kappa: float
    kappa_high: float
    worst_class: int
    """The true class this person answers wrongly most often (-1 with no evidence)."""
    worst_answer: int
    worst_rate: float
    worst_support: float
    """Expected number of items of ``worst_class`` this person labeled."""
    gold: Proportion | None
    median_seconds: float | None
    others_median_seconds: float | None
    flags: tuple[Flag, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def others_consensus(
    labels: np.ndarray, consensus: DawidSkeneResult, annotator: int
) -> tuple[np.ndarray, np.ndarray]:
    """The consensus of each item without ``annotator``'s own answer.

    Returns ``(items, posterior)``: the items ``annotator`` labeled that someone else labeled
    too, and their posterior with ``annotator``'s likelihood term divided out.
    """
    answered = labels[:, annotator] != MISSING
    others = (labels != MISSING).sum(axis=1) - answered
    items = np.flatnonzero(answered & (others > 0))
    own = consensus.confusion[annotator][:, labels[items, annotator]].T  # (items, classes)
    posterior = consensus.posterior[items] / own
    posterior /= posterior.sum(axis=1, keepdims=True)
    return items, posterior


def _median_seconds(seconds: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
    if seconds is None:
        return np.full(labels.shape[1], np.nan)
    timed = np.where((labels != MISSING) & np.isfinite(seconds), seconds, np.nan)
    medians = np.full(labels.shape[1], np.nan)
    for j in range(labels.shape[1]):
        column = timed[:, j][~np.isnan(timed[:, j])]
        if len(column):
            medians[j] = float(np.median(column))
    return medians


def annotator_evidence(
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    consensus: DawidSkeneResult | None = None,
    gold: np.ndarray | None = None,
    seconds: np.ndarray | None = None,
    rule: FlagRule | None = None,
    class_names: Sequence[object] | None = None,
) -> list[AnnotatorEvidence]:
    """Evidence and flags for every annotator of an items x annotators label matrix.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not label an item.
    consensus : DawidSkeneResult, optional
        A fit of :func:`~looplab.trust.consensus.dawid_skene` on the same matrix; fitted here
        (with ``gold`` as known answers) when not given.
    gold : ndarray of shape (n_items,), optional
        Known class of gold items, ``-1`` elsewhere.
    seconds : ndarray of shape (n_items, n_annotators), optional
        Seconds each answer took (NaN where unknown).
    rule : FlagRule, optional
        Thresholds; :class:`FlagRule`'s defaults when not given.
    class_names : sequence, optional
        Names of the classes, for the flags' ``detail`` (indices otherwise).
    """
    rule = rule or FlagRule()
    array, k = check_matrix(labels, n_classes)
    n, m = array.shape
    if gold is not None and np.asarray(gold).shape != (n,):
        raise ValueError(f"gold must hold one entry per item ({n}); got {np.shape(gold)}")
    if seconds is not None:
        seconds = np.asarray(seconds, dtype=np.float64)
        if seconds.shape != array.shape:
            raise ValueError(
                f"seconds must have the label matrix's shape {array.shape}; got {seconds.shape}"
            )
        if np.any(seconds[np.isfinite(seconds)] < 0):
            raise ValueError("seconds must not be negative")
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"class_names must name the {k} classes; got {len(class_names)}")
    names = [f"'{c}'" for c in class_names] if class_names is not None else None
    if consensus is None:
        consensus = dawid_skene(array, n_classes=k, known=gold)
    elif consensus.posterior.shape != (n, k) or consensus.confusion.shape != (m, k, k):
        raise ValueError(
            f"consensus was fitted on another matrix: posterior {consensus.posterior.shape}, "
            f"confusion {consensus.confusion.shape}; labels are {array.shape} with {k} classes"
        )
    gold_results = (
        gold_accuracy(array, gold, n_classes=k, level=rule.level) if gold is not None else None
    )
    medians = _median_seconds(seconds, array)
    evidence = []
    for j in range(m):
        others = np.delete(medians, j)
        others = others[~np.isnan(others)]
        others_median = float(np.median(others)) if len(others) else None
        evidence.append(
            _one(
                array,
                k,
                j,
                consensus,
                gold_results[j] if gold_results is not None else None,
                None if np.isnan(medians[j]) else float(medians[j]),
                others_median,
                rule,
                names or [f"class {c}" for c in range(k)],
            )
        )
    return evidence


def _agreement_with_others(
    labels: np.ndarray, k: int, j: int, consensus: DawidSkeneResult, level: float
) -> tuple[int, Proportion, float, float]:
    """(items compared, agreement with the others' consensus, kappa, kappa's upper bound)."""
    items, posterior = others_consensus(labels, consensus, j)
    theirs = posterior.argmax(axis=1)
    mine = labels[items, j]
    agreement = wilson_interval(int((mine == theirs).sum()), len(items), level)
    kappa = kappa_high = float("nan")
    if len(items):
        chance = float(np.bincount(mine, minlength=k) @ np.bincount(theirs, minlength=k))
        chance /= len(items) ** 2
        if chance < 1.0:
            kappa = (agreement.rate - chance) / (1.0 - chance)
            kappa_high = (agreement.high - chance) / (1.0 - chance)
    return len(items), agreement, float(kappa), float(kappa_high)


def _flip_flags(
    support: np.ndarray,
    answer: np.ndarray,
    rate: np.ndarray,
    eligible: np.ndarray,
    rule: FlagRule,
    names: list[str],
) -> list[Flag]:
    """One ``flipped_class`` flag per eligible class whose top wrong answer is a flip."""
    flags = []
    for t in np.flatnonzero(eligible):
        bound = wilson_interval(rate[t] * support[t], support[t], rule.level).low
        if bound > rule.flip_rate:
            flags.append(
                Flag(
                    "flipped_class",
                    float(bound),
                    rule.flip_rate,
                    f"answers {names[answer[t]]} for {rate[t]:.0%} of about "
                    f"{support[t]:.0f} items of {names[t]} (lower bound {bound:.0%})",
                )
            )
    return flags


def _chance_flag(
    n_items: int, agreement: Proportion, kappa: float, kappa_high: float, rule: FlagRule
) -> list[Flag]:
    if not (np.isfinite(kappa_high) and kappa_high < rule.min_kappa):
        return []
    return [
        Flag(
            "near_chance",
            float(kappa_high),
            rule.min_kappa,
            f"agrees with the others on {agreement.rate:.0%} of {n_items} items: "
            f"kappa {kappa:.2f}, at most {kappa_high:.2f}",
        )
    ]


def _speed_flag(
    median_seconds: float | None, others_median: float | None, rule: FlagRule
) -> list[Flag]:
    if (
        median_seconds is None
        or others_median is None
        or median_seconds >= rule.fast_ratio * others_median
    ):
        return []
    return [
        Flag(
            "too_fast",
            median_seconds / others_median,
            rule.fast_ratio,
            f"median {median_seconds:.1f} s per label against {others_median:.1f} s for the others",
        )
    ]


def _gold_flag(gold: Proportion | None, rule: FlagRule) -> list[Flag]:
    if gold is None or gold.n < rule.min_gold or gold.high >= rule.min_gold_accuracy:
        return []
    return [
        Flag(
            "gold_below",
            gold.high,
            rule.min_gold_accuracy,
            f"{gold.successes:.0f} of {gold.n:.0f} gold answers right (at most {gold.high:.0%})",
        )
    ]


def _one(
    labels: np.ndarray,
    k: int,
    j: int,
    consensus: DawidSkeneResult,
    gold: Proportion | None,
    median_seconds: float | None,
    others_median: float | None,
    rule: FlagRule,
    names: list[str],
) -> AnnotatorEvidence:
    answered = labels[:, j] != MISSING
    n_labels = int(answered.sum())
    confusion = consensus.confusion[j]
    estimated_accuracy = float(consensus.priors @ np.diag(confusion))
    n_items, agreement, kappa, kappa_high = _agreement_with_others(
        labels, k, j, consensus, rule.level
    )

    # Expected items of each true class (the person's whole posterior mass, own answer kept:
    # the confusion rows were estimated the same way).
    support = consensus.posterior[answered].sum(axis=0)
    wrong = confusion * (1.0 - np.eye(k))
    answer = wrong.argmax(axis=1)
    rate = wrong[np.arange(k), answer]
    eligible = support >= rule.min_class_support
    worst_class = int(np.argmax(np.where(eligible, rate, -1.0))) if eligible.any() else -1

    flags: list[Flag] = []
    if n_labels >= rule.min_labels:
        flags += _flip_flags(support, answer, rate, eligible, rule, names)
        flags += _chance_flag(n_items, agreement, kappa, kappa_high, rule)
        flags += _speed_flag(median_seconds, others_median, rule)
    flags += _gold_flag(gold, rule)
    return AnnotatorEvidence(
        annotator=j,
        n_labels=n_labels,
        confusion=confusion,
        estimated_accuracy=estimated_accuracy,
        agreement=agreement,
        kappa=kappa,
        kappa_high=kappa_high,
        worst_class=worst_class,
        worst_answer=int(answer[worst_class]) if worst_class >= 0 else -1,
        worst_rate=float(rate[worst_class]) if worst_class >= 0 else float("nan"),
        worst_support=float(support[worst_class]) if worst_class >= 0 else 0.0,
        gold=gold,
        median_seconds=median_seconds,
        others_median_seconds=others_median,
        flags=tuple(flags),
    )
