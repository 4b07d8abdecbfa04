"""Tabular records to model features, by the project's column types.

:class:`TypedFeatures` is the first step of every tabular pipeline trained since column types
(:mod:`looplab.collect.schema`). It takes records as they come from the store or a request (a
list of dicts, or a DataFrame), coerces each value by its field's type exactly as import profiled
it and serving checks it, and turns the typed columns into features:

- numeric and boolean: median imputation, standard scaling;
- date: years since 1970, and month and day of week as points on a circle (sin, cos), so
  December is next to January; median imputation, standard scaling;
- categorical: the one text form of a category (``30``, ``30.0`` and ``"30"`` alike), a
  ``(missing)`` category, one-hot encoding that ignores categories unseen in training (serving
  counts them: :meth:`TypedFeatures.unknown`);
- text: TF-IDF of word 1-2 grams per field;
- identifier: left out.

Without a schema, :meth:`TypedFeatures.fit` infers one from the training records (the same
inference as import), so a pipeline built in code still decides every column's type once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from looplab.collect import schema as types

MISSING = "(missing)"


def date_parts(days: Any) -> np.ndarray:
    """Days since 1970-01-01 (one column per date field) as 5 features per field."""
    values = np.asarray(days, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    out = []
    for column in values.T:
        missing = np.isnan(column)
        whole = np.where(missing, 0, np.floor(column)).astype("int64")
        dates = whole.astype("datetime64[D]")
        month = (dates.astype("datetime64[M]").astype("int64") % 12).astype(np.float64)
        weekday = ((whole + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday (3)
        parts = [
            column / 365.25,
            np.sin(2 * np.pi * month / 12),
            np.cos(2 * np.pi * month / 12),
            np.sin(2 * np.pi * weekday / 7),
            np.cos(2 * np.pi * weekday / 7),
        ]
        block = np.column_stack(parts)
        block[missing] = np.nan
        out.append(block)
    return np.hstack(out)


def _fill_text(column: Any) -> np.ndarray:
    values = np.asarray(column, dtype=object).ravel()
    return np.array(["" if v is None or v != v else str(v) for v in values], dtype=object)


def _as_objects(frame: Any) -> np.ndarray:
    out = np.asarray(frame, dtype=object).copy()
    out[pd.isna(out)] = np.nan
    return out


def column_steps(schema: types.Schema) -> list[tuple[str, Any, Any]]:
    """The :class:`~sklearn.compose.ColumnTransformer` steps of each column type present."""
    steps: list[tuple[str, Any, Any]] = []
    numbers = schema.of("numeric", "boolean")
    if numbers:
        steps.append(
            (
                "numeric",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numbers,
            )
        )
    dates = schema.of("date")
    if dates:
        steps.append(
            (
                "date",
                Pipeline(
                    [
                        ("parts", FunctionTransformer(date_parts)),
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                dates,
            )
        )
    categorical = schema.of("categorical")
    if categorical:
        steps.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("objects", FunctionTransformer(_as_objects)),
                        (
                            "impute",
                            SimpleImputer(
                                strategy="constant",
                                fill_value=MISSING,
                                keep_empty_features=True,
                            ),
                        ),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            )
        )
    for name in schema.of("text"):
        steps.append(
            (
                f"text:{name}",
                Pipeline(
                    [
                        ("fill", FunctionTransformer(_fill_text)),
                        (
                            "tfidf",
                            # No document-frequency pruning: a text column of a table is
                            # short, and the first model is fitted on a few dozen rows.
                            TfidfVectorizer(
                                ngram_range=(1, 2),
                                token_pattern=r"(?u)\b\w+\b",
                                sublinear_tf=True,
                                dtype=np.float32,
                            ),
                        ),
                    ]
                ),
                name,
            )
        )
    return steps


class TypedFeatures(TransformerMixin, BaseEstimator):
    """Records -> features by column type (see the module docstring).

    Parameters
    ----------
    fields : list of str
        The record fields, in order.
    schema : dict, optional
        A :meth:`looplab.collect.schema.Schema.to_dict`; inferred from the training records
        when ``None``.

    Attributes
    ----------
    schema_ : dict
        The schema the features were built by (the one to serve by).
    categories_ : dict of str to list of str
        Per categorical field, the categories seen in training.
    """

    def __init__(self, fields: Sequence[str] = (), schema: Mapping[str, Any] | None = None):
        self.fields = fields
        self.schema = schema

    def _schema(self) -> types.Schema:
        return types.Schema.from_dict(self.schema_)

    def typed_frame(self, X: Any, *, strict: bool = False) -> pd.DataFrame:
        """Records coerced by the schema: floats for numbers, booleans and dates, else objects."""
        schema = self._schema()
        rows = _rows(X, list(self.fields))
        na = schema.na
        columns: dict[str, Any] = {}
        for name, ftype in schema.fields.items():
            if ftype.type == "identifier":
                continue
            values = [types.coerce(r.get(name), ftype, na, strict=strict) for r in rows]
            if ftype.type in ("numeric", "boolean", "date"):
                columns[name] = np.array(
                    [np.nan if v is None else v for v in values], dtype=np.float64
                )
            else:
                columns[name] = pd.Series(values, dtype=object)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))

    def fit(self, X: Any, y: Any = None) -> TypedFeatures:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        fields = list(self.fields)
        if not fields:
            raise ValueError("fields must name the record fields, e.g. ['age', 'income']")
        if self.schema is None:
            self.schema_ = types.infer(_rows(X, fields), fields).to_dict()
        else:
            self.schema_ = dict(self.schema)
        self.__dict__.pop("_known", None)
        schema = self._schema()
        frame = self.typed_frame(X)
        steps = column_steps(schema)
        if not steps:
            raise ValueError(
                "no field is left to learn from: every field is an identifier; keep one with "
                "`looplab schema PROJECT field=categorical` (or numeric)"
            )
        self.columns_ = ColumnTransformer(steps)
        out = self.columns_.fit_transform(frame)
        self.categories_: dict[str, list[str]] = {}
        categorical = schema.of("categorical")
        if categorical:
            encoder = self.columns_.named_transformers_["categorical"].named_steps["onehot"]
            for name, seen in zip(categorical, encoder.categories_, strict=True):
                self.categories_[name] = [str(c) for c in seen if c != MISSING]
        return out

    def transform(self, X: Any) -> Any:
        return self.columns_.transform(self.typed_frame(X))

    def unknown(self, record: Mapping[str, Any]) -> list[str]:
        """Categorical fields of a (valid) record whose category was never seen in training."""
        known = getattr(self, "_known", None)
        if known is None:
            known = self._known = {k: frozenset(v) for k, v in self.categories_.items()}
        schema = self._schema()
        na = schema.na
        out = []
        for name, seen in known.items():
            value = types.coerce(record.get(name), schema.fields[name], na, strict=False)
            if value is not None and value not in seen:
                out.append(name)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_known", None)  # a cache of frozensets, which skops does not store
        return state


def _rows(X: Any, fields: list[str]) -> list[Mapping[str, Any]]:
    if isinstance(X, pd.DataFrame):
        return X.to_dict("records")  # type: ignore[return-value]
    rows = list(X)
    if rows and all(isinstance(r, str) for r in rows) and fields:
        return [{fields[0]: r} for r in rows]
    if not all(isinstance(r, Mapping) for r in rows):
        raise ValueError("records must be dicts (field -> value), a DataFrame, or strings")
    return rows
