"""Query strategies: which records should a person label next.

A strategy is a plain function of the predicted probabilities ``proba`` (one row per record, one
column per class, rows summing to 1) that returns one score per record. **Higher score = ask a
person first.** Selection is a separate step, :func:`top_k`, so that every strategy shares the same
tie breaking and the same speed.

- ``random``: uniform noise from ``rng``, the baseline; in [0, 1).
- ``least_confidence``: ``1 - max_c p_c``; in [0, 1 - 1/C].
- ``margin``: ``1 - (p_(1) - p_(2))``, one minus the gap between the two most likely classes, so
  a near tie scores high; in [0, 1].
- ``entropy``: ``-sum_c p_c log p_c / log C``; in [0, 1].

Every strategy has the signature ``(proba, rng=None) -> ndarray of shape (n_samples,)``; only
``random`` uses ``rng``, the others accept it so that callers can treat them alike. Batch
diversity, cold start and class balance live in :mod:`looplab.ask.diversity`.

Inputs are validated here, at the public edge: ``proba`` must be 2-D, finite, non-negative, with
rows summing to 1 (within 1e-3). A single class is allowed (every score is then equal).

Examples
--------
>>> import numpy as np
>>> from looplab.ask.strategies import get_strategy, top_k
>>> proba = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]])
>>> get_strategy("margin")(proba).round(2)
array([0.2, 0.9, 0.6])
>>> top_k(get_strategy("margin")(proba), 2, rng=0)
array([1, 2])
"""

from __future__ import annotations

from typing import Any, Protocol

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

RngLike = np.random.Generator | int | None

_SUM_TOL = 1e-3
# Modes of the one scanning kernel.
_VALIDATE, _LEAST_CONFIDENCE, _MARGIN, _ENTROPY = 0, 1, 2, 3
# top_k looks for its threshold in a strided sample first when the array is at least this long.
_SAMPLE_ABOVE = 65_536
_SAMPLE_STEP = 16


class Strategy(Protocol):
    """A query strategy: ``proba -> scores`` (higher = ask a person first)."""

    def __call__(self, proba: ArrayLike, rng: RngLike = None) -> NDArray[np.float64]: ...


def _as_proba(proba: ArrayLike) -> NDArray[np.floating]:
    """Return ``proba`` as a 2-D float array (no copy when it already is one)."""
    arr = np.asarray(proba)
    if arr.ndim != 2:
        raise ValueError(
            f"proba must be 2-D (n_samples, n_classes), got shape {arr.shape}; "
            "for a single record use proba.reshape(1, -1)"
        )
    if arr.shape[1] == 0:
        raise ValueError("proba has no columns: the model must know at least one class")
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise ValueError(f"proba must hold numbers, got dtype {arr.dtype}")
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)  # float16 and long double: the kernel is built for these two
    return arr


def _explain_bad_row(arr: NDArray[np.floating], row: int) -> ValueError:
    """Build the error for the first invalid row (slow path, errors only)."""
    values = np.asarray(arr[row], dtype=np.float64)
    if not np.isfinite(values).all():
        return ValueError(
            f"proba contains NaN or infinite values (first at row {row}); "
            "check the model's input features for missing values"
        )
    if (values < 0).any():
        return ValueError(f"proba has negative values (first at row {row}); pass predict_proba")
    return ValueError(
        f"rows of proba must sum to 1, row {row} sums to {values.sum():.6g}; "
        "pass predict_proba output, not decision_function scores or logits"
    )


# One compiled pass per row validates it (finite, non-negative, sums to 1) and computes its
# score. numpy needs a transposing copy plus ~30 ufunc calls per block for the same work, which
# made margin on 1M x 10 take ~23 ms; this loop takes ~8 ms, exactly the same numbers (no
# fastmath: the sums and comparisons are evaluated as written). The top-2 update is branchless
# because on real pools the order of classes within a row is unpredictable.
@numba.njit(cache=True, nogil=True)
def _scan_kernel(proba: Any, mode: int, out: Any, tol: float) -> int:  # pragma: no cover
    n, c = proba.shape
    log_c = np.log(c) if c > 1 else 1.0
    for i in range(n):
        row = proba[i]
        total = 0.0
        low = np.inf
        hi = -np.inf
        second = -np.inf
        ent = 0.0
        for j in range(c):
            v = row[j]
            total += v
            low = v if v < low else low
            t = v if v < hi else hi
            second = t if t > second else second
            hi = v if v > hi else hi
            if mode == _ENTROPY and v > 0:
                ent -= v * np.log(np.float64(v))
        # NaN and inf make the sum fail this test too.
        if not (abs(total - 1.0) <= tol and low >= 0):
            return i
        if mode == _MARGIN:
            out[i] = 1.0 - (hi - (second if c > 1 else 0.0))
        elif mode == _LEAST_CONFIDENCE:
            out[i] = 1.0 - hi
        elif mode == _ENTROPY:
            out[i] = min(max(ent / log_c, 0.0), 1.0) if c > 1 else 0.0
    return -1


def _scan(arr: NDArray[np.floating], mode: int) -> NDArray[np.float64]:
    """Validate ``arr`` and compute the score of ``mode`` for every row in one pass."""
    out = np.empty(0 if mode == _VALIDATE else arr.shape[0], dtype=np.float64)
    bad = _scan_kernel(arr, mode, out, _SUM_TOL)
    if bad >= 0:
        raise _explain_bad_row(arr, bad)
    return out


def validate_proba(proba: ArrayLike) -> NDArray[np.floating]:
    """Check that ``proba`` is a valid probability matrix and return it as a float array.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        The same values, as a floating array (no copy when possible).

    Raises
    ------
    ValueError
        If ``proba`` is not 2-D, holds NaN or inf, negative values, or rows not summing to 1.
    """
    arr = _as_proba(proba)
    _scan(arr, _VALIDATE)
    return arr


def random(proba: ArrayLike, rng: RngLike = None) -> NDArray[np.float64]:
    """Uniform random scores: the baseline every other strategy must beat.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities (validated, used only for their number of rows).
    rng : numpy.random.Generator, int or None
        Source of randomness; pass a seeded generator for reproducible runs.

    Returns
    -------
    ndarray of shape (n_samples,)
        Scores in [0, 1); higher = ask first.
    """
    arr = validate_proba(proba)
    return np.random.default_rng(rng).random(size=(arr.shape[0],))


def least_confidence(proba: ArrayLike, rng: RngLike = None) -> NDArray[np.float64]:
    """One minus the top class probability: high when the model's best guess is weak.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    rng : ignored
        Accepted so that every strategy has the same signature.

    Returns
    -------
    ndarray of shape (n_samples,)
        Scores in [0, 1 - 1/n_classes]; higher = ask first.
    """
    return _scan(_as_proba(proba), _LEAST_CONFIDENCE)


def margin(proba: ArrayLike, rng: RngLike = None) -> NDArray[np.float64]:
    """One minus the gap between the two most likely classes: high when the model hesitates.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    rng : ignored
        Accepted so that every strategy has the same signature.

    Returns
    -------
    ndarray of shape (n_samples,)
        Scores in [0, 1]; higher = smaller top-2 margin = ask first. With a single class every
        score is 0.
    """
    return _scan(_as_proba(proba), _MARGIN)


def entropy(proba: ArrayLike, rng: RngLike = None) -> NDArray[np.float64]:
    """Shannon entropy of the prediction, divided by ``log(n_classes)`` so it lies in [0, 1].

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    rng : ignored
        Accepted so that every strategy has the same signature.

    Returns
    -------
    ndarray of shape (n_samples,)
        Scores in [0, 1]; higher = more uncertain = ask first. With a single class every score
        is 0. Entropy weighs every class, so with many classes it can chase noise among
        unlikely classes; prefer ``margin`` there.
    """
    return _scan(_as_proba(proba), _ENTROPY)


STRATEGIES: dict[str, Strategy] = {
    "random": random,
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
}


def get_strategy(name: str) -> Strategy:
    """Return the strategy registered under ``name``.

    Parameters
    ----------
    name : str
        One of the keys of :data:`STRATEGIES`.

    Returns
    -------
    callable
        ``(proba, rng=None) -> scores``.

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the valid names.
    """
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {valid}") from None


def validate_scores(scores: ArrayLike) -> NDArray[np.floating]:
    """Check that ``scores`` is a 1-D finite numeric array and return it as floats."""
    arr = np.asarray(scores)
    if arr.ndim != 1:
        raise ValueError(f"scores must be 1-D (n_samples,), got shape {arr.shape}")
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise ValueError(f"scores must hold numbers, got dtype {arr.dtype}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError("scores contain NaN or infinite values")
    return arr


def top_k(scores: ArrayLike, k: int, rng: RngLike = None) -> NDArray[np.intp]:
    """Indices of the ``k`` highest scores, best first, ties broken at random.

    Runs in O(n) with ``np.argpartition``; only the ``k`` winners are sorted. Ties at the cut-off
    and inside the selection are broken by ``rng``, not by index order, so records that arrived
    first are not favoured; a fixed seed gives a fixed answer.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Finite scores; higher = ask first.
    k : int
        How many to select; if ``k > n_samples`` every index is returned.
    rng : numpy.random.Generator, int or None
        Tie breaker.

    Returns
    -------
    ndarray of shape (min(k, n_samples),)
        Distinct indices into ``scores``, sorted by decreasing score.

    Raises
    ------
    ValueError
        If ``scores`` is not 1-D or not finite, or ``k`` is negative.
    """
    arr = validate_scores(scores)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    gen = np.random.default_rng(rng)
    n = arr.shape[0]
    k = min(int(k), n)
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if k == n:
        chosen = np.arange(n)
    else:
        # Shrink the problem first: every score at or above the k-th best of a sample is a
        # candidate, and there are at least k of them, so the top k (ties at the cut-off
        # included) are all among them. On 1M scores this is ~5x faster than argpartition.
        cand = _candidates(arr, k)
        sub = arr if cand is None else arr[cand]
        m = sub.shape[0]
        part = np.argpartition(sub, m - k)[m - k :]
        cut = sub[part].min()
        # Everything strictly above the cut-off is in `part`; the records equal to it may sit
        # on either side of the partition, so draw the remaining places among all of them.
        above = part[sub[part] > cut]
        ties = np.flatnonzero(sub == cut)
        chosen = np.concatenate([above, gen.choice(ties, size=k - above.size, replace=False)])
        # Index order, so that tie breaking depends on the chosen set, not on how it was found.
        chosen = np.sort(chosen if cand is None else cand[chosen])
    order = np.lexsort((gen.random(chosen.size), -arr[chosen]))
    return chosen[order].astype(np.intp, copy=False)


def _candidates(arr: NDArray[np.floating], k: int) -> NDArray[np.intp] | None:
    """Indices of the scores at or above the ``k``-th best of a strided sample, or ``None``.

    The ``k``-th best of any subset is at most the ``k``-th best of the whole, so the candidates
    hold every score of the true top ``k`` and every score tied with its last one. A strided
    (not leading) sample keeps the threshold useful on sorted input. ``None`` means "no gain":
    a short array, a ``k`` that is a large share of it, or a sample that filters little.
    """
    n = arr.shape[0]
    if n < _SAMPLE_ABOVE or k * _SAMPLE_STEP * 4 > n:
        return None
    sample = arr[::_SAMPLE_STEP]
    threshold = np.partition(sample, sample.size - k)[sample.size - k]
    cand = np.flatnonzero(arr >= threshold)
    return cand if cand.size * 4 < n else None
