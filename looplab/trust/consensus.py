"""One label per item from several annotators: majority vote and Dawid-Skene.

Dawid & Skene (1979), *Maximum likelihood estimation of observer error-rates using the EM
algorithm*: each annotator ``j`` has a full confusion matrix ``pi[j, k, l]`` (the probability
that ``j`` answers ``l`` when the truth is ``k``) and the classes have priors ``p[k]``. EM
alternates between

* E-step: ``T[i, k] ~ p[k] * prod_j pi[j, k, labels[i, j]]`` over the annotators of item ``i``;
* M-step: ``p = mean_i T[i]`` and ``pi[j, k, l] ~ sum_i T[i, k] [labels[i, j] = l]``,

starting from the soft majority vote (as crowd-kit's ``DawidSkene`` does). Unlike a one-coin
model (one accuracy per annotator), the full matrix learns *which* class a person confuses with
which, so a person who flips one class is read through their flip rather than out-voting others.

Smoothing: a person with few labels has confusion rows estimated from a handful of items (or
none, for a class they never met); unsmoothed, a row of two answers says "always right" or
"always wrong" with certainty, and EM can lock onto that. Each row gets ``smoothing``
pseudo-answers spread like the *pooled* confusion of all annotators, so a rare worker starts as
an average worker and moves away as their own evidence grows; frequent workers barely move.
``smoothing=0`` is plain maximum likelihood (crowd-kit's estimator, floored at 1e-10). The
default, 1, is near what the real crowds themselves prefer: the likelihood of held-out answers
(5 folds over the answers) peaks at 1 to 2 on D_Product and at 4 or more on Duck. On D_Product
a smaller value (0.1) is right on 7 more of 8,315 items, but only the truth file says so.

Model-aware consensus (:func:`model_aware`): where a classifier's out-of-fold probabilities
exist, cleanlab's CROWDLAB (Goh, Tkachenko & Mueller, 2022) averages them with the annotators'
answers, each weighted by how much better than always answering the commonest class it agrees
with the others. The model is one more, tireless annotator who sees the features: on digits
with 3 answers per record (``bench/label_quality.py`` part (b)) it beat Dawid-Skene by 4 to 9
points. It needs a model worth believing; on a crowd without features only DS applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cleanlab.multiannotator import get_label_quality_multiannotator
from scipy.special import logsumexp

from looplab.trust import MISSING
from looplab.trust.matrix import check_matrix, counts_per_item

_EPS = 1e-10
"""Floor of every probability before its log (as crowd-kit does): log(0) is never taken."""


@dataclass(frozen=True)
class Consensus:
    """A consensus label per item and the probability behind it."""

    posterior: np.ndarray
    """``(n_items, n_classes)``: the probability of each class for each item; rows sum to 1."""
    labels: np.ndarray
    """``(n_items,)``: the most probable class of each item."""

    @property
    def confidence(self) -> np.ndarray:
        """The posterior of the chosen label (what a review threshold reads)."""
        return self.posterior[np.arange(len(self.labels)), self.labels]


@dataclass(frozen=True)
class DawidSkeneResult(Consensus):
    """Dawid-Skene's consensus and the model it fitted."""

    confusion: np.ndarray
    """``(n_annotators, n_classes, n_classes)``: ``confusion[j, k, l]`` is the probability that
    annotator ``j`` answers ``l`` when the truth is ``k`` (rows: truth; they sum to 1)."""
    priors: np.ndarray
    """``(n_classes,)``: the estimated share of each class."""
    n_iter: int
    converged: bool
    log_likelihood: float
    """Log-likelihood of the observed labels (with the smoothing's pseudo-counts left out)."""


def _checked(labels: np.ndarray, n_classes: int | None) -> tuple[np.ndarray, int]:
    array, k = check_matrix(labels, n_classes)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"a consensus needs items and annotators; got a {array.shape} matrix")
    empty = np.flatnonzero((array == MISSING).all(axis=1))
    if len(empty):
        raise ValueError(
            f"{len(empty)} item(s) have no label (rows {empty[:5].tolist()}); a consensus "
            f"needs at least one answer per item, drop them first"
        )
    return array, k


def _argmax(posterior: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Most probable class; ties go to the lowest index, or at random when ``rng`` is given."""
    if rng is None:
        return posterior.argmax(axis=1)
    top = np.isclose(posterior, posterior.max(axis=1, keepdims=True), rtol=0, atol=1e-12)
    # A random key among the tied classes: the largest key wins.
    return np.where(top, rng.random(posterior.shape), -1.0).argmax(axis=1)


def majority_vote(
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    weights: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> Consensus:
    """The (optionally weighted) majority vote of each item; posterior = vote shares.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not label an item.
    weights : ndarray of shape (n_annotators,), optional
        Weight of each annotator's vote (e.g. 0 for a quarantined person).
    rng : numpy Generator, optional
        Breaks ties at random; without it ties go to the lowest class index.

    Examples
    --------
    >>> majority_vote(np.array([[0, 0, 1], [2, 1, -1], [1, 1, 1]])).labels.tolist()
    [0, 1, 1]
    """
    array, k = _checked(labels, n_classes)
    if weights is None:
        votes = counts_per_item(array, k)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (array.shape[1],) or np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError(
                f"weights must be {array.shape[1]} finite non-negative numbers, one per "
                f"annotator; got shape {w.shape}"
            )
        rows, cols = np.nonzero(array != MISSING)
        votes = np.zeros((array.shape[0], k))
        np.add.at(votes, (rows, array[rows, cols]), w[cols])
    totals = votes.sum(axis=1, keepdims=True)
    if np.any(totals == 0):
        raise ValueError("every annotator of some item has weight 0; nothing to vote with")
    posterior = votes / totals
    return Consensus(posterior, _argmax(posterior, rng))


def _m_step(
    posterior: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    given: np.ndarray,
    n_annotators: int,
    smoothing: float,
) -> tuple[np.ndarray, np.ndarray]:
    k = posterior.shape[1]
    priors = np.clip(posterior.mean(axis=0), _EPS, None)
    priors /= priors.sum()
    # counts[j, t, l]: expected number of items of true class t that j labeled l.
    counts = np.empty((n_annotators, k, k))
    code = cols * k + given
    for t in range(k):
        counts[:, t, :] = np.bincount(
            code, weights=posterior[rows, t], minlength=n_annotators * k
        ).reshape(n_annotators, k)
    pooled = counts.sum(axis=0)
    pooled_total = pooled.sum(axis=1, keepdims=True)
    pooled = np.where(pooled_total > 0, pooled / np.maximum(pooled_total, _EPS), 1.0 / k)
    smoothed = counts + smoothing * pooled[None, :, :]
    totals = smoothed.sum(axis=2, keepdims=True)
    # A row with no evidence at all (smoothing 0, a class the person never met): uniform.
    confusion = np.where(totals > 0, smoothed / np.maximum(totals, _EPS), 1.0 / k)
    confusion = np.clip(confusion, _EPS, None)
    confusion /= confusion.sum(axis=2, keepdims=True)
    return priors, confusion


def _e_step(
    priors: np.ndarray,
    confusion: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    given: np.ndarray,
    n_items: int,
) -> tuple[np.ndarray, float]:
    k = len(priors)
    log_joint = np.tile(np.log(priors), (n_items, 1))
    log_confusion = np.log(confusion)
    for t in range(k):
        log_joint[:, t] += np.bincount(
            rows, weights=log_confusion[cols, t, given], minlength=n_items
        )
    log_evidence = logsumexp(log_joint, axis=1)
    return np.exp(log_joint - log_evidence[:, None]), float(log_evidence.sum())


def _check_fit_options(smoothing: float, max_iter: int, tol: float) -> None:
    if smoothing < 0 or not np.isfinite(smoothing):
        raise ValueError(f"smoothing must be a finite number >= 0; got {smoothing}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1; got {max_iter}")
    if tol <= 0:
        raise ValueError(f"tol must be positive; got {tol}")


def _gold_clamp(
    known: np.ndarray | None, n_items: int, k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, one-hot posteriors) of the items whose class is known, or None when none is."""
    if known is None:
        return None
    gold = np.asarray(known, dtype=np.int64)
    if gold.shape != (n_items,) or np.any(gold < MISSING) or np.any(gold >= k):
        raise ValueError(
            f"known must hold one class index below {k} (or {MISSING}) per item "
            f"({n_items} items); got shape {gold.shape}"
        )
    if not np.any(gold != MISSING):
        return None
    return np.flatnonzero(gold != MISSING), np.eye(k)[gold[gold != MISSING]]


def _em(
    posterior: np.ndarray,
    answers: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_annotators: int,
    smoothing: float,
    max_iter: int,
    tol: float,
    clamp: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, int, bool, float]:
    """EM from ``posterior``: (final posterior, iterations, converged, log-likelihood)."""
    rows, cols, given = answers
    n = posterior.shape[0]
    if clamp is not None:
        posterior[clamp[0]] = clamp[1]
    converged = False
    log_likelihood = float("nan")
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        priors, confusion = _m_step(posterior, rows, cols, given, n_annotators, smoothing)
        updated, log_likelihood = _e_step(priors, confusion, rows, cols, given, n)
        if clamp is not None:
            updated[clamp[0]] = clamp[1]
        change = float(np.abs(updated - posterior).max())
        posterior = updated
        if change < tol:
            converged = True
            break
    return posterior, iteration, converged, log_likelihood


def dawid_skene(
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    smoothing: float = 1.0,
    max_iter: int = 500,
    tol: float = 1e-4,
    known: np.ndarray | None = None,
) -> DawidSkeneResult:
    """Dawid-Skene consensus by EM with full per-annotator confusion matrices.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not label an item. Every item needs at
        least one label.
    n_classes : int, optional
        Number of classes (defaults to the largest index seen plus one).
    smoothing : float
        Pseudo-answers per confusion row, spread like the pooled confusion of everyone (see the
        module docstring); 0 is plain maximum likelihood.
    max_iter : int
        Most EM iterations; ``converged`` says whether ``tol`` was reached first.
    tol : float
        Stop when no posterior moves by more than this between iterations.
    known : ndarray of shape (n_items,), optional
        Known true classes (gold records), ``-1`` elsewhere: their posteriors are held at the
        known class, so they teach every annotator's confusion matrix.

    Returns
    -------
    DawidSkeneResult
        Posterior and label per item, confusion matrices, class priors and the fit's trace.

    Examples
    --------
    Two careful annotators and one who answers 1 for every 0:

    >>> labels = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 1], [1, 1, 1], [0, 0, 1]])
    >>> result = dawid_skene(labels, smoothing=0.0)
    >>> result.labels.tolist()
    [0, 0, 1, 0, 1, 0]
    >>> result.confusion[2].round(2).tolist()  # annotator 2: truth 0 -> answers 1
    [[0.0, 1.0], [0.0, 1.0]]
    """
    array, k = _checked(labels, n_classes)
    _check_fit_options(smoothing, max_iter, tol)
    n, m = array.shape
    rows, cols = np.nonzero(array != MISSING)
    given = array[rows, cols]
    clamp = _gold_clamp(known, n, k)

    # Start from the soft majority vote, as Dawid and Skene did.
    posterior = counts_per_item(array, k)
    posterior /= posterior.sum(axis=1, keepdims=True)
    posterior, iteration, converged, log_likelihood = _em(
        posterior, (rows, cols, given), m, smoothing, max_iter, tol, clamp
    )
    # The parameters that go with the final posterior.
    priors, confusion = _m_step(posterior, rows, cols, given, m, smoothing)
    return DawidSkeneResult(
        posterior=posterior,
        labels=_argmax(posterior, None),
        confusion=confusion,
        priors=priors,
        n_iter=iteration,
        converged=converged,
        log_likelihood=log_likelihood,
    )


@dataclass(frozen=True)
class ModelAwareConsensus(Consensus):
    """CROWDLAB's consensus and the weights it gave the model and each annotator."""

    model_weight: float
    """Weight of the classifier's probabilities in every item's average."""
    annotator_weights: np.ndarray
    """``(n_annotators,)``: weight of each annotator's answers (NaN for one with no answer)."""


def _crowdlab_posterior(
    array: np.ndarray,
    probas: np.ndarray,
    agreement: np.ndarray,
    model_weight: float,
    weights: np.ndarray,
) -> np.ndarray:
    """CROWDLAB's weighted average (cleanlab's ``post_pred_probs``) from its public outputs.

    An answer ``l`` counts as a distribution with ``a`` on ``l`` and ``(1 - a) / (k - 1)`` on
    every other class, ``a`` being the mean share of annotators who agree with the consensus on
    items with several answers; answers and the model's probabilities are averaged by weight.
    """
    n, k = probas.shape
    answered = array != MISSING
    several = answered.sum(axis=1) > 1
    likely = float(agreement[several].mean())
    other = (1.0 - likely) / (k - 1)
    rows, cols = np.nonzero(answered)
    votes = np.zeros((n, k))
    np.add.at(votes, (rows, array[rows, cols]), weights[cols])
    total = np.zeros(n)
    np.add.at(total, rows, weights[cols])
    # Each answer puts ``other`` on every class and ``likely - other`` more on its own.
    mixed = model_weight * probas + total[:, None] * other + votes * (likely - other)
    return mixed / (model_weight + total)[:, None]


def model_aware(
    labels: np.ndarray,
    probas: np.ndarray,
    *,
    n_classes: int | None = None,
) -> ModelAwareConsensus:
    """CROWDLAB: a consensus from the annotators and a classifier's probabilities together.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_annotators)
        Class indices, ``-1`` where an annotator did not label an item; every item needs an
        answer and some item needs at least two.
    probas : ndarray of shape (n_items, n_classes)
        The classifier's class probabilities for each item, *out of fold* (a model that saw an
        item's consensus label would only echo it back):
        :func:`looplab.trust.label_errors.out_of_fold_probabilities` trained on a first
        consensus (majority vote or :func:`dawid_skene`).
    n_classes : int, optional
        Number of classes (defaults to the columns of ``probas``).

    Returns
    -------
    ModelAwareConsensus
        cleanlab's ``best_quality`` consensus label per item (``get_label_quality_multiannotator``
        with ``quality_method="crowdlab"``), the weighted average it was scored by as the
        posterior (its ``confidence`` is cleanlab's consensus quality score), and the weights.

    Examples
    --------
    Two annotators split on item 1; the model is sure it is class 1:

    >>> labels = np.array([[0, 0], [0, 1], [1, 1], [0, 0], [1, 1], [0, 0]])
    >>> probas = np.array([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1]])
    >>> model_aware(labels, probas).labels.tolist()
    [0, 1, 1, 0, 1, 0]
    """
    p = np.asarray(probas, dtype=np.float64)
    k = p.shape[1] if p.ndim == 2 and n_classes is None else n_classes
    array, k = _checked(labels, k)
    if p.shape != (array.shape[0], k):
        raise ValueError(
            f"probas must be (n_items, n_classes) = {(array.shape[0], k)}; got {p.shape}"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError("probas must be finite, non-negative, and each row must sum to 1")
    if not np.any((array != MISSING).sum(axis=1) > 1):
        raise ValueError(
            "no item has two answers: a model-aware consensus weighs annotators by how they "
            "agree with each other, so some items need several"
        )
    # cleanlab refuses an annotator with no answer: leave them out and give them no weight.
    present = np.flatnonzero((array != MISSING).any(axis=0))
    sub = array[:, present]
    found = get_label_quality_multiannotator(
        np.where(sub == MISSING, np.nan, sub.astype(np.float64)),
        p,
        return_detailed_quality=False,
        return_annotator_stats=False,
        return_weights=True,
        verbose=False,
    )
    quality = found["label_quality"]
    weights = np.full(array.shape[1], np.nan)
    weights[present] = np.asarray(found["annotator_weight"], dtype=np.float64)
    model_weight = float(found["model_weight"])
    posterior = _crowdlab_posterior(
        sub,
        p,
        quality["annotator_agreement"].to_numpy(dtype=np.float64),
        model_weight,
        weights[present],
    )
    return ModelAwareConsensus(
        posterior=posterior,
        labels=quality["consensus_label"].to_numpy(dtype=np.int64),
        model_weight=model_weight,
        annotator_weights=weights,
    )
