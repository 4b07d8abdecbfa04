"""Default training pipelines and safe model artifacts.

:func:`build_pipeline` returns an unfitted scikit-learn :class:`~sklearn.pipeline.Pipeline` that
takes records as they come from the store (a list of dicts, or a DataFrame) and ends in a
classifier with ``predict_proba``, which the query strategies need:

- ``task="text"``: the named fields are joined into one string per record, then TF-IDF over word
  1-2 grams and over character 2-5 grams inside word boundaries (``char_wb``, robust to typos and
  inflections; of the first :data:`CHAR_WINDOW` characters), both with sublinear term frequency
  and hashed into a fixed number of columns (:data:`WORD_BITS`, :data:`CHAR_BITS`), so that
  memory, time and the artifact do not grow with the vocabulary; then logistic regression on the
  columns its texts use (:class:`~looplab.learn.sparsefit.UsedColumnsClassifier`). Models saved
  before hashing keep their vocabulary-based :class:`SmallCorpusTfidf` and load as they were.
- ``task="tabular"``: :class:`~looplab.learn.features.TypedFeatures` reads every column by the
  project's column types (:mod:`looplab.collect.schema`: numeric, categorical, boolean, date,
  text, identifier), decided at import or, without a schema, inferred at fit time the same way;
  then logistic regression. (:func:`numeric_columns`, :func:`as_numbers` and the rest of the old
  per-pipeline typing stay importable: models saved before column types refer to them.)

Both logistic regressions weigh classes by the inverse of their counts (``class_weight=
"balanced"``), so a rare class is not traded away for accuracy.

:func:`save_model` writes a model with skops (no pickle) and returns the file's SHA-256;
:func:`load_model` refuses a file whose SHA-256 differs (:class:`ModelIntegrityError`) or that
holds types from outside scikit-learn, numpy, scipy and looplab (:class:`UntrustedModelError`).

Examples
--------
>>> from looplab.learn.train import build_pipeline
>>> records = [{"text": t} for t in ["good film", "great film", "bad film", "awful film"]]
>>> model = build_pipeline("text", ["text"]).fit(records, ["pos", "pos", "neg", "neg"])
>>> model.predict([{"text": "great"}]).tolist()
['pos']
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

TASKS = ("text", "tabular")
# Packages whose types a model artifact may contain. Anything else could run code at load time.
TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "looplab")
# The text features' fixed width: 2**WORD_BITS hashed word 1-2 grams and 2**CHAR_BITS hashed
# character 2-5 grams of each text's first CHAR_WINDOW characters. Chosen by measuring
# (bench/training_cost.py, README "Capacity"): on BBC News at 1,000 labels, 2**18 + 2**18
# hashed columns were within 0.1 points of the vocabulary TF-IDF's accuracy over whole texts
# and 0.35 points with a 500-character window (3 seeds; headlines, all shorter, gained 2.6
# points), while the window halved the character n-grams that dominate a long text's cost.
WORD_BITS = 18
CHAR_BITS = 18
CHAR_WINDOW = 500
# Below this many documents min_df pruning is skipped: in a few dozen texts most informative
# words occur once, and pruning them leaves the classifier nothing to learn from.
PRUNE_FROM_DOCS = 100


class ModelIntegrityError(ValueError):
    """The model file's SHA-256 is not the one recorded when it was saved."""


class UntrustedModelError(ValueError):
    """The model file holds types from outside the trusted packages."""


# --------------------------------------------------------------------------- records -> features


def records_to_frame(X: Any, fields: Sequence[str]) -> pd.DataFrame:
    """Turn records into a DataFrame with exactly the columns ``fields``.

    Parameters
    ----------
    X : list of dict, DataFrame, or list of str
        Records. Dicts may lack fields (missing values); a list of strings is taken as the
        values of the first field.
    fields : sequence of str
        Columns to keep, in order.

    Returns
    -------
    DataFrame of shape (n_records, len(fields))
    """
    if isinstance(X, pd.DataFrame):
        if list(X.columns) == list(fields) and X.index.equals(pd.RangeIndex(len(X))):
            return X  # already the frame asked for (as serving builds it): no copy
        missing = [f for f in fields if f not in X.columns]
        if missing:
            raise ValueError(f"records lack the field(s) {missing}; they have {list(X.columns)}")
        return X.loc[:, list(fields)].reset_index(drop=True)
    rows = list(X)
    if rows and all(isinstance(r, str) for r in rows):
        return pd.DataFrame({fields[0]: rows})
    if not all(isinstance(r, Mapping) for r in rows):
        raise ValueError("records must be dicts (field -> value), a DataFrame, or strings")
    return pd.DataFrame({f: [r.get(f) for r in rows] for f in fields}, columns=list(fields))


def _as_text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def records_to_text(X: Any, fields: Sequence[str]) -> np.ndarray:
    """Join the text ``fields`` of each record into one string (missing values are skipped)."""
    frame = records_to_frame(X, fields)
    parts = [frame[f].map(_as_text) for f in fields]
    joined = parts[0] if len(parts) == 1 else pd.concat(parts, axis=1).agg("\n".join, axis=1)
    return joined.to_numpy(dtype=object)


def _is_number_like(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return True
    values = column.dropna()
    if values.empty or not pd.api.types.is_object_dtype(column):
        return False
    return bool(pd.to_numeric(values.astype(str), errors="coerce").notna().all())


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns treated as numbers: numeric or boolean dtype, or text that all parses as numbers."""
    return [c for c in frame.columns if _is_number_like(frame[c])]


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    """Every column that :func:`numeric_columns` does not claim."""
    numeric = set(numeric_columns(frame))
    return [c for c in frame.columns if c not in numeric]


def as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce columns to float; values that do not parse become missing.

    Only columns that do not already hold numbers are parsed: parsing every column of a served
    record took most of a single-record prediction.
    """
    text = [c for c, kind in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(kind)]
    if text:
        frame = frame.copy()
        for column in text:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.astype(np.float64)


def as_categories(frame: pd.DataFrame) -> np.ndarray:
    """Coerce values to strings, keeping missing values as NaN for the imputer.

    Casting to ``str`` makes 3 and "3" the same category whether a batch arrived as JSON numbers
    or as CSV text, so predictions do not depend on how the record was imported.
    """
    out = frame.astype(object).to_numpy(copy=True)
    missing = pd.isna(out)
    out[~missing] = out[~missing].astype(str)
    out[missing] = np.nan
    return out


class SmallCorpusTfidf(TfidfVectorizer):
    """:class:`~sklearn.feature_extraction.text.TfidfVectorizer` that tolerates tiny corpora.

    ``min_df`` and ``max_df`` pruning apply only from :data:`PRUNE_FROM_DOCS` documents on, and
    are dropped if they would leave no term at all, so the first training job of a project (a
    dozen labels) fits. The ``min_df`` actually used is stored in ``min_df_``. Like its parent
    it takes a 1-D sequence of strings, which is why scikit-learn's ``check_estimator`` skips it
    (as it skips ``TfidfVectorizer``); ``tests/learn/test_train.py`` covers it directly.
    """

    def fit(self, raw_documents: Any, y: Any = None) -> SmallCorpusTfidf:
        self.fit_transform(raw_documents, y)
        return self

    def fit_transform(self, raw_documents: Any, y: Any = None) -> Any:
        docs = list(raw_documents)
        configured = self.get_params()
        if len(docs) >= PRUNE_FROM_DOCS:
            try:
                out = super().fit_transform(docs, y)
            except ValueError:  # pruning removed every term
                pass
            else:
                self.min_df_ = configured["min_df"]
                return out
        # Fit without document-frequency pruning (min_df=1, max_df=1.0: in three identical
        # records every term is "too common") but leave the public parameters as they were.
        self.set_params(min_df=1, max_df=1.0)
        try:
            out = super().fit_transform(docs, y)
        finally:
            self.set_params(min_df=configured["min_df"], max_df=configured["max_df"])
        self.min_df_ = 1
        return out

    def __getstate__(self) -> dict[str, Any]:
        # skops writes a dict entry by entry as JSON (about 1 KB each): a 200k-term vocabulary
        # would make a 150 MB artifact. Two arrays take a few MB and load in a fraction of the
        # time; __setstate__ rebuilds the dict.
        state = dict(super().__getstate__())
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            state["_vocabulary_terms"] = np.array(list(vocabulary.keys()), dtype=str)
            state["_vocabulary_index"] = np.fromiter(vocabulary.values(), dtype=np.int64)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        terms = state.pop("_vocabulary_terms", None)
        index = state.pop("_vocabulary_index", None)
        if terms is not None and index is not None:
            state["vocabulary_"] = dict(zip(terms.tolist(), index.tolist(), strict=True))
        super().__setstate__(state)


# --------------------------------------------------------------------------- pipelines


def resolve_estimator(path: str) -> BaseEstimator:
    """Instantiate a classifier from ``"package.module.Class"`` or ``"package.module:Class"``.

    Raises
    ------
    ValueError
        If the module or class cannot be found, or the class is not a classifier with
        ``fit`` and ``predict_proba``.
    """
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    hint = "give a dotted path such as 'sklearn.ensemble.RandomForestClassifier'"
    if not module_name or not attr:
        raise ValueError(f"unknown estimator {path!r}: {hint}")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"unknown estimator {path!r}: {exc}; {hint}") from None
    if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "predict_proba")):
        raise ValueError(
            f"estimator {path!r} is not a classifier class with fit and predict_proba; "
            "query strategies need predicted probabilities"
        )
    return cls()


def head_lower(text: str) -> str:
    """The first :data:`CHAR_WINDOW` characters of ``text``, lowercased: what character n-grams
    read, so that a long text costs no more than a short one in them (words read all of it)."""
    return text[:CHAR_WINDOW].lower()


def _hashed_tfidf(analyzer: str, ngram_range: tuple[int, int], bits: int, **kw: Any) -> Pipeline:
    # Hashing keeps no vocabulary: the width is 2**bits whatever the texts, nothing grows with
    # the labels but the rows. alternate_sign=False keeps counts non-negative for the IDF.
    return Pipeline(
        [
            (
                "hash",
                HashingVectorizer(
                    analyzer=analyzer,
                    ngram_range=ngram_range,
                    n_features=2**bits,
                    alternate_sign=False,
                    norm=None,
                    dtype=np.float32,
                    **kw,
                ),
            ),
            ("idf", TfidfTransformer(sublinear_tf=True)),
        ]
    )


def _text_features(fields: Sequence[str]) -> list[tuple[str, Any]]:
    return [
        ("text", FunctionTransformer(records_to_text, kw_args={"fields": list(fields)})),
        (
            "tfidf",
            FeatureUnion(
                [
                    # Keep one-letter words: they carry meaning in many languages.
                    (
                        "words",
                        _hashed_tfidf("word", (1, 2), WORD_BITS, token_pattern=r"(?u)\b\w+\b"),
                    ),
                    (
                        "chars",
                        _hashed_tfidf("char_wb", (2, 5), CHAR_BITS, preprocessor=head_lower),
                    ),
                ]
            ),
        ),
    ]


def build_pipeline(
    task: str,
    fields: Sequence[str],
    estimator: str | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Build the default unfitted pipeline for a labeling task.

    Parameters
    ----------
    task : {"text", "tabular"}
        What the records are.
    fields : sequence of str
        Record fields the model reads: the text field(s), or the feature columns.
    estimator : str, optional
        Dotted path of a classifier class replacing the logistic regression, e.g.
        ``"sklearn.ensemble.RandomForestClassifier"`` or ``"sklearn.svm:SVC"``; it is
        instantiated with its defaults. Only scikit-learn classes can be loaded back with
        :func:`load_model`.
    schema : dict, optional
        Tabular: the project's column types (:meth:`looplab.collect.schema.Schema.to_dict`);
        inferred from the training records when ``None``.

    Returns
    -------
    Pipeline
        ``fit(records, labels)``, ``predict(records)``, ``predict_proba(records)`` where records
        are a list of dicts or a DataFrame. The classifier is the step named ``"classifier"``.

    Raises
    ------
    ValueError
        On an unknown task, no fields, or an unknown estimator path.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    if isinstance(fields, str) or not fields:
        raise ValueError("fields must be a non-empty list of field names, e.g. ['text']")
    # class_weight="balanced" weighs each class by the inverse of its count, so a rare class is
    # not given up for accuracy: on generated tables with a 1% or 5% class the unweighted model
    # never predicted it (macro-F1 equal to a constant's), the weighted one matched a careful
    # scikit-learn pipeline (bench/shapes.py). On balanced labels the weights are all about 1.
    if estimator is not None:
        classifier = resolve_estimator(estimator)
    elif task == "text":
        from looplab.learn.sparsefit import UsedColumnsClassifier

        # TF-IDF rows are L2-normalised and very sparse: the default C=1 under-fits them. Fitted
        # on the hashed columns its texts use only (the same model under an L2 penalty): L-BFGS
        # keeps about 20 copies of the coefficients, classes x columns each.
        classifier = UsedColumnsClassifier(
            LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")
        )
    else:
        classifier = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    if task == "text":
        steps = _text_features(fields)
    else:
        from looplab.learn.features import TypedFeatures

        steps = [("features", TypedFeatures(list(fields), schema))]
    return Pipeline([*steps, ("classifier", classifier)])


def fit_weighted(
    model: Pipeline, records: list[dict[str, Any]], labels: list[str], weights: Sequence[int]
) -> str | None:
    """Fit ``model`` with each example weighted by the rows it stands for; returns a note or None.

    The weights reach the final estimator as ``classifier__sample_weight`` (the feature steps
    need none). A classifier whose ``fit`` takes no ``sample_weight`` gets each example repeated
    ``weight`` times instead, which is the same for estimators that sum a loss over rows, and the
    returned note says so.
    """
    from sklearn.utils.validation import has_fit_parameter

    if all(w == 1 for w in weights):
        model.fit(records, labels)
        return None
    classifier = model.steps[-1][1]
    if has_fit_parameter(classifier, "sample_weight"):
        model.fit(records, labels, classifier__sample_weight=np.asarray(weights, dtype=float))
        return None
    keep = [i for i, w in enumerate(weights) for _ in range(int(w))]
    model.fit([records[i] for i in keep], [labels[i] for i in keep])
    return (
        f"{type(classifier).__name__}.fit takes no sample_weight: each example was repeated as "
        f"many times as rows it stands for ({len(keep):,} rows from {len(weights):,} examples)"
    )


# --------------------------------------------------------------------------- artifacts


def save_model(model: Any, path: str | os.PathLike[str]) -> str:
    """Write ``model`` with skops and return the file's SHA-256 (hex).

    The file is written next to its destination and renamed into place, so a reader never sees
    a half-written model. Keep the returned digest (e.g. in the model registry) and pass it to
    :func:`load_model`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Deflate: vocabularies are stored as UTF-32 arrays, which compress about tenfold.
    data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def _is_trusted(type_name: str) -> bool:
    return type_name.split(".", 1)[0] in TRUSTED_MODULES


def load_model(path: str | os.PathLike[str], expected_sha256: str) -> Any:
    """Load a model written by :func:`save_model`, after checking its digest and its types.

    The file is read once; the digest and the type check apply to the very bytes that are
    loaded.

    Raises
    ------
    ModelIntegrityError
        If the file's SHA-256 differs from ``expected_sha256`` (modified after saving).
    UntrustedModelError
        If the file holds types outside scikit-learn, numpy, scipy and looplab.
    """
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(actual, expected_sha256.strip().lower()):
        raise ModelIntegrityError(
            f"model file {str(path)!r} has SHA-256 {actual}, expected {expected_sha256}: it was "
            "modified or corrupted after it was saved; retrain the model or restore the file"
        )
    untrusted = sio.get_untrusted_types(data=data)
    refused = sorted(t for t in untrusted if not _is_trusted(t))
    if refused:
        raise UntrustedModelError(
            f"model file {str(path)!r} holds types outside {', '.join(TRUSTED_MODULES)}: "
            f"{', '.join(refused)}; looplab only loads models built from those packages"
        )
    return sio.loads(data, trusted=untrusted)
