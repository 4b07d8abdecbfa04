"""Which given labels are probably wrong: out-of-fold probabilities and confident learning.

A model never judges a label it was trained on: :func:`out_of_fold_probabilities` fits each
estimator ``folds`` times, each time predicting the fold it did not see, so every record gets
class probabilities from models that never read its label (a memorised wrong label would
otherwise look right). Several estimators of different kinds (a linear model, a kernel
machine, nearest neighbours) make different mistakes; averaging their probabilities cancels
part of each one's, and confident learning reads the averaged probabilities.

Which estimators to average depends on the data: on digits' dense pixels 10-nearest-neighbours
helps the ensemble, on BBC News' TF-IDF cosine neighbours make it flag too many records (and
the best pair there, a linear SVM and naive Bayes, is no use on dense pixels). So the
members are chosen on the data, by the out-of-fold log loss of their average against the given
labels (every subset of the candidates, equal weights; the lowest loss wins). The loss is a
proper score computed only from what the scan already has (no true labels), and it punishes the
over-confident member that confident learning is most misled by. The candidates themselves
depend on the input kind (:func:`default_estimators`): scaled models and an RBF kernel for
dense features, linear models, naive Bayes and cosine neighbours for sparse (text) features.

:func:`suspects` ranks the records whose given label the probabilities contradict, with
cleanlab's ``find_label_issues`` (Northcutt et al., *Confident Learning*, JAIR 2021): it
estimates how many labels of each class went to each other class (the confident joint) and
flags that many records per given class, those whose given label is least likely first.
``bench/label_quality.py`` part (a) measures it against cleanlab's defaults on
logistic-regression probabilities.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.naive_bayes import MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
)
"""cleanlab's ``filter_by`` choices that :func:`suspects` accepts."""


@dataclass(frozen=True)
class Suspects:
    """Records whose given label is probably wrong, the most suspect first."""

    indices: np.ndarray
    """Row indices into the labeled set, ranked from the most suspect."""
    scores: np.ndarray
    """Label quality of each of ``indices`` (0 to 1; lower is more suspect), same order."""
    suggested: np.ndarray
    """The most probable class of each of ``indices`` (what a reviewer is offered)."""


SVC_MAX_RECORDS = 4000
"""Above this many records :func:`default_estimators` approximates the RBF kernel (Nystroem)
instead of fitting an SVC: an SVC's cost grows with the square of the records, and its Platt
scaling fits it five more times (10,000 records took minutes on two cores)."""


def default_estimators(
    seed: int = 0,
    n_records: int | None = None,
    *,
    sparse: bool = False,
    nonnegative: bool = True,
) -> list[Any]:
    """Diverse classifiers: the candidates of the scan's ensemble for one input kind.

    Dense numeric features (``sparse=False``, scaled inside each pipeline): logistic regression
    (linear), an RBF SVC with Platt-scaled probabilities (non-linear) and distance-weighted
    10-nearest-neighbours (local). Beyond :data:`SVC_MAX_RECORDS` records the SVC becomes a
    logistic regression on 300 Nystroem RBF features (the same kind of boundary, linear cost).

    Sparse features such as TF-IDF (``sparse=True``): no scaling (it would densify them) and no
    RBF kernel; logistic regression with weak regularisation (``C=10``: TF-IDF rows are short
    unit vectors), a Platt-calibrated linear SVM, cosine 10-nearest-neighbours and, when the
    features are ``nonnegative`` (counts, TF-IDF), multinomial naive Bayes (``alpha=0.1``): a
    generative model whose mistakes differ most from the discriminative ones. On BBC News the
    log-loss selection kept the linear SVM + naive Bayes on every seed.
    :func:`out_of_fold_probabilities` picks the members it averages among these.
    """
    if sparse:
        text: list[Any] = [
            LogisticRegression(C=10.0, max_iter=3000),
            CalibratedClassifierCV(LinearSVC(random_state=seed), ensemble=False),
            KNeighborsClassifier(10, metric="cosine", weights="distance"),
        ]
        return [*text, MultinomialNB(alpha=0.1)] if nonnegative else text
    if n_records is not None and n_records > SVC_MAX_RECORDS:
        kernel: Any = make_pipeline(
            StandardScaler(),
            Nystroem(n_components=300, random_state=seed),
            LogisticRegression(max_iter=2000),
        )
    else:
        # Platt-scaled SVC (scikit-learn 1.9 deprecates SVC(probability=True) for this form).
        kernel = make_pipeline(
            StandardScaler(), CalibratedClassifierCV(SVC(random_state=seed), ensemble=False)
        )
    return [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        kernel,
        make_pipeline(StandardScaler(), KNeighborsClassifier(10, weights="distance")),
    ]


def _check_labels(y: Any, n_rows: int | None = None) -> tuple[np.ndarray, int]:
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one class index per record; got shape {labels.shape}")
    if n_rows is not None and len(labels) != n_rows:
        raise ValueError(f"labels hold {len(labels)} entries for {n_rows} records")
    if len(labels) == 0:
        raise ValueError("no labeled records to scan")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be integer class indices 0..k-1 (encode names first); got {labels.dtype}"
        )
    if labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0; got {labels.min()}")
    k = int(labels.max()) + 1
    if len(np.unique(labels)) < 2:
        raise ValueError("labels hold a single class: there is nothing to tell it from")
    return labels.astype(np.int64), k


def _splitter(labels: np.ndarray, folds: int, seed: int) -> StratifiedKFold | KFold:
    """Stratified folds, or plain shuffled folds when some class has fewer records than folds.

    Stratification needs every class in every fold; a class rarer than that cannot be, and
    scikit-learn would warn and stratify badly. Its records then meet models that never saw the
    class in some folds: their probability of it is 0 there, and they are flagged, which is
    what a class seen once deserves (one label is no evidence either way).
    """
    counts = np.bincount(labels)
    if counts[counts > 0].min() >= folds:
        return StratifiedKFold(folds, shuffle=True, random_state=seed)
    return KFold(folds, shuffle=True, random_state=seed)


MAX_CANDIDATES = 6
"""Most estimators :func:`out_of_fold_ensemble` chooses among (every subset is scored: 63)."""


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold probabilities and how the ensemble behind them was chosen."""

    probabilities: np.ndarray
    """``(n_records, k)``: the average of the chosen members' probabilities; rows sum to 1."""
    members: tuple[int, ...]
    """Indices (into the estimators given) of the members averaged."""
    log_loss: np.ndarray
    """Each estimator's own out-of-fold log loss against the given labels."""
    ensemble_log_loss: float
    """The log loss of the chosen average (the lowest of every subset tried)."""


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    given = probabilities[np.arange(len(labels)), labels]
    # Floored as scikit-learn's log_loss does: a member certain of the wrong class costs a lot
    # (that is the point) but not infinity.
    return float(-np.log(np.clip(given, 1e-15, None)).mean())


def _estimator_list(estimators: Any, X: Any, n_rows: int, seed: int) -> list[Any]:
    if estimators is None:
        if scipy.sparse.issparse(X):
            nonnegative = X.nnz == 0 or bool(X.data.min() >= 0)
            return default_estimators(seed, n_rows, sparse=True, nonnegative=nonnegative)
        return default_estimators(seed, n_rows)
    models = [estimators] if hasattr(estimators, "fit") else list(estimators)
    if not models:
        raise ValueError("estimators is empty: give at least one classifier")
    return models


def _per_member(
    X: Any, labels: np.ndarray, k: int, models: list[Any], folds: int, seed: int
) -> np.ndarray:
    """``(n_members, n_records, k)``: each member's out-of-fold probabilities."""
    n_rows = len(labels)
    probabilities = np.zeros((len(models), n_rows, k))
    for train, test in _splitter(labels, folds, seed).split(np.zeros(n_rows), labels):
        for m, model in enumerate(models):
            fitted = clone(model).fit(X[train], labels[train])
            if not hasattr(fitted, "predict_proba"):
                raise ValueError(
                    f"{type(model).__name__} has no predict_proba (an SVC needs "
                    f"probability=True, or wrap it in CalibratedClassifierCV)"
                )
            # A fold may lack a rare class: place each column by the class it stands for.
            columns = np.asarray(fitted.classes_, dtype=np.int64)
            probabilities[m][np.ix_(test, columns)] = fitted.predict_proba(X[test])
    return probabilities / probabilities.sum(axis=2, keepdims=True)


def out_of_fold_ensemble(
    X: Any,
    y: Any,
    estimators: Any | Sequence[Any] | None = None,
    folds: int = 5,
    seed: int = 0,
    *,
    select: bool = True,
    threads: int | None = 1,
) -> OutOfFold:
    """Out-of-fold probabilities of an ensemble whose members are chosen by log loss.

    Parameters are those of :func:`out_of_fold_probabilities`. With ``select`` every non-empty
    subset of the estimators is averaged (equal weights) and the one with the lowest
    out-of-fold log loss against the given labels is kept (ties: the first, i.e. the smallest
    subset); without it all are averaged.
    """
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    labels, k = _check_labels(y, n_rows)
    if not isinstance(folds, int | np.integer) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    if folds > n_rows:
        raise ValueError(f"{folds} folds need at least {folds} records; got {n_rows}")
    if threads is not None and (not isinstance(threads, int | np.integer) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 or None; got {threads!r}")
    models = _estimator_list(estimators, X, n_rows, seed)
    if select and len(models) > MAX_CANDIDATES:
        raise ValueError(
            f"select=True scores every subset of at most {MAX_CANDIDATES} estimators; got "
            f"{len(models)} (pass fewer, or select=False to average them all)"
        )
    # Many small fits: BLAS threads beyond one only contend, and on a shared machine they spin
    # against every other process (BBC News, load 12 on 2 cores: 58 s with OpenBLAS' 2 threads,
    # 8 s with 1). ``threads=None`` leaves the libraries' own setting.
    if threads is None:
        each = _per_member(X, labels, k, models, folds, seed)
    else:
        with threadpool_limits(limits=threads):
            each = _per_member(X, labels, k, models, folds, seed)
    own = np.array([_log_loss(p, labels) for p in each])
    subsets: list[tuple[int, ...]] = (
        [
            c
            for r in range(1, len(models) + 1)
            for c in itertools.combinations(range(len(models)), r)
        ]
        if select
        else [tuple(range(len(models)))]
    )
    losses = [_log_loss(each[list(s)].mean(axis=0), labels) for s in subsets]
    best = subsets[int(np.argmin(losses))]
    return OutOfFold(
        probabilities=each[list(best)].mean(axis=0),
        members=best,
        log_loss=own,
        ensemble_log_loss=float(min(losses)),
    )


def out_of_fold_probabilities(
    X: Any,
    y: Any,
    estimators: Any | Sequence[Any] | None = None,
    folds: int = 5,
    seed: int = 0,
    *,
    select: bool = True,
    threads: int | None = 1,
) -> np.ndarray:
    """Class probabilities of every record from models that did not see its label.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_records, n_features)
        Features of the labeled records.
    y : ndarray of shape (n_records,)
        Given labels as class indices ``0..k-1`` (the ones under suspicion).
    estimators : estimator or sequence of estimators, optional
        scikit-learn classifiers (or pipelines) with ``predict_proba``; each is cloned and fitted
        ``folds`` times. :func:`default_estimators` for the input kind when not given (sparse
        input: the text candidates).
    folds : int
        Number of folds (at least 2).
    seed : int
        Seeds the fold split.
    select : bool
        Average the subset of ``estimators`` with the lowest out-of-fold log loss against the
        given labels (see the module docstring; :func:`out_of_fold_ensemble` says which it
        chose); ``False`` averages them all.
    threads : int or None
        Most BLAS/OpenMP threads per fit while fitting (``None``: the libraries' default). One
        is fastest for these many small fits, and far faster on a busy machine.

    Returns
    -------
    ndarray of shape (n_records, k)
        Rows sum to 1; column ``c`` is class ``c``.
    """
    found = out_of_fold_ensemble(X, y, estimators, folds, seed, select=select, threads=threads)
    return found.probabilities


def suspects(
    labels: Any,
    probas: Any,
    *,
    filter_by: str = "prune_by_class",
    frac_noise: float = 1.0,
) -> Suspects:
    """The records whose given label the out-of-fold probabilities contradict, worst first.

    Parameters
    ----------
    labels : ndarray of shape (n_records,)
        Given class indices ``0..k-1``.
    probas : ndarray of shape (n_records, k)
        Out-of-fold probabilities (:func:`out_of_fold_probabilities`); rows sum to 1.
    filter_by : str
        cleanlab's rule for how many and which records to flag (one of :data:`FILTERS`). The
        default, ``prune_by_class``, flags per given class as many records as the confident
        joint estimates were mislabeled in it, the least likely given labels first. On digits
        with 10% uniform flips and :func:`default_estimators` it beat cleanlab's own default
        (``prune_by_noise_rate``, higher precision, lower recall) by about 0.02 F1 on 5 seeds.
    frac_noise : float
        Share (0 to 1] of the estimated number of errors to return (1: all of them).

    Returns
    -------
    Suspects
        Indices ranked by label quality (cleanlab's self-confidence: the probability of the
        given label), the quality itself and the most probable class of each.
    """
    given, _ = _check_labels(labels)
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(given):
        raise ValueError(
            f"probas must be (n_records, n_classes) = ({len(given)}, k); got {p.shape}"
        )
    if given.max() >= p.shape[1]:
        raise ValueError(f"label {given.max()} has no column in probas ({p.shape[1]} classes)")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError("probas must be finite, non-negative, and each row must sum to 1")
    if filter_by not in FILTERS:
        raise ValueError(f"filter_by must be one of {', '.join(FILTERS)}; got {filter_by!r}")
    if not 0.0 < frac_noise <= 1.0:
        raise ValueError(f"frac_noise must be in (0, 1]; got {frac_noise}")
    indices = find_label_issues(
        given,
        p,
        filter_by=filter_by,
        frac_noise=frac_noise,
        return_indices_ranked_by="self_confidence",
    )
    indices = np.asarray(indices, dtype=np.int64)
    scores = get_label_quality_scores(given, p, method="self_confidence")[indices]
    return Suspects(indices=indices, scores=scores, suggested=p[indices].argmax(axis=1))
