"""Column transformations, as AutoML Tables applies them before its model search.

Each input column gets one type (the `transformations` list the SDK sends):
- numeric: the value as a float (strings are parsed; unparsable or empty -> missing);
- categorical: the value as a string category (unseen values at prediction -> missing);
- text: bag-of-words, the top TEXT_TERMS TF-IDF terms of the training rows as features;
- timestamp: year, month, day of month, day of week, hour and seconds since the epoch;
- auto: numeric if the column parses as numbers, timestamp if it parses as dates,
  text if its values are long multi-word strings, categorical otherwise.
The Featurizer is fitted on training rows only and saved with the model, so serving
applies exactly what training saw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TYPES = ("auto", "numeric", "categorical", "text", "timestamp")
TEXT_TERMS = 30


def as_timestamp(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values
    else:
        stamps = pd.to_datetime(values.astype("string"), errors="coerce", utc=True,
                                format="mixed")
    if getattr(stamps.dt, "tz", None) is None:
        stamps = stamps.dt.tz_localize("UTC")
    return stamps


def dtype_kind(values: pd.Series) -> str | None:
    """What a column's dtype alone says it holds: "bool", "numeric" or "timestamp"; None
    for object and string columns, whose values must be looked at.

    The one piece of type sniffing that AutoML's `auto` (infer_type) and BigQuery ML's
    automatic preprocessing (labkit.bigquery.ml.features.kind_of) share. What they do with
    object columns differs on purpose: AutoML parses strings (a column of "42" strings is
    numeric, of RFC 3339 strings a timestamp, of long phrases text), while BigQuery ML
    follows the column's SQL type (a STRING column is one-hot encoded whatever it holds).
    """
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "timestamp"
    return None


def infer_type(values: pd.Series) -> str:
    """What `auto` resolves to for one column."""
    kind = dtype_kind(values)
    if kind is not None:
        return "categorical" if kind == "bool" else kind
    present = values.dropna()
    if present.empty:
        return "categorical"
    text = present.astype(str)
    if pd.to_numeric(text, errors="coerce").notna().mean() > 0.95:
        return "numeric"
    if text.str.contains(r"\d{4}-\d{2}-\d{2}").mean() > 0.95 and \
            as_timestamp(text).notna().mean() > 0.95:
        return "timestamp"
    if text.str.count(" ").mean() >= 3 and text.nunique() > 0.5 * len(text):
        return "text"
    return "categorical"


class Featurizer:
    """Raw columns -> the model's feature frame (floats and pandas categories)."""

    def __init__(self, columns: dict[str, str]):
        self.requested = dict(columns)  # column -> transformation type as sent
        self.types: dict[str, str] = {}
        self.categories: dict[str, list[str]] = {}
        self.vectorizers: dict[str, object] = {}

    def fit(self, frame: pd.DataFrame) -> Featurizer:
        from sklearn.feature_extraction.text import TfidfVectorizer

        for column, kind in self.requested.items():
            kind = infer_type(frame[column]) if kind == "auto" else kind
            self.types[column] = kind
            if kind == "categorical":
                values = self._strings(frame[column]).dropna().unique()
                self.categories[column] = sorted(values)
            elif kind == "text":
                vectorizer = TfidfVectorizer(max_features=TEXT_TERMS)
                vectorizer.fit(frame[column].fillna("").astype(str))
                self.vectorizers[column] = vectorizer
        return self

    @staticmethod
    def _strings(values: pd.Series) -> pd.Series:
        out = values.astype("string").str.strip()
        return out.where(out != "", pd.NA)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        parts: dict[str, pd.Series | np.ndarray] = {}
        for column, kind in self.types.items():
            values = frame[column] if column in frame else pd.Series([None] * len(frame))
            values = values.reset_index(drop=True)
            if kind == "numeric":
                parts[column] = pd.to_numeric(values.astype("string") if values.dtype == object
                                              else values, errors="coerce").astype(float)
            elif kind == "categorical":
                known = self._strings(values).astype(object)
                known = known.where(known.isin(self.categories[column]), None)
                parts[column] = pd.Categorical(known, categories=self.categories[column])
            elif kind == "text":
                vectorizer = self.vectorizers[column]
                matrix = vectorizer.transform(values.fillna("").astype(str)).toarray()
                for i, term in enumerate(vectorizer.get_feature_names_out()):
                    parts[f"{column}__{term}"] = matrix[:, i]
            else:
                stamps = as_timestamp(values)
                parts[f"{column}__year"] = stamps.dt.year.astype(float)
                parts[f"{column}__month"] = stamps.dt.month.astype(float)
                parts[f"{column}__day"] = stamps.dt.day.astype(float)
                parts[f"{column}__dayofweek"] = stamps.dt.day_of_week.astype(float)
                parts[f"{column}__hour"] = stamps.dt.hour.astype(float)
                parts[f"{column}__epoch"] = (stamps - pd.Timestamp(0, tz="UTC")) \
                    .dt.total_seconds()
        # Column labels as objects: pandas 3 labels a frame with its string dtype, which
        # scikit-learn 1.6's ColumnTransformer (inside FLAML) cannot read ("Cannot
        # interpret '<StringDtype(na_value=nan)>' as a data type").
        return pd.DataFrame(parts, columns=pd.Index(list(parts), dtype=object))
