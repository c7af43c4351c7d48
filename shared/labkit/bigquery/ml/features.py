"""BigQuery ML's automatic preprocessing of the model's input features: numeric columns
imputed with the training mean and (for linear, DNN and k-means models) standardized,
STRING columns one-hot encoded over the training categories (NULL is its own category,
unseen categories encode as all zeros), BOOL as 0/1, DATE/TIMESTAMP as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from labkit.automl.features import dtype_kind
from labkit.bigquery.ml.errors import MLError

NULL_CATEGORY = "\x00NULL"


def kind_of(s: pd.Series) -> str:
    """bool, numeric, timestamp or string, by the column's SQL type as pandas holds it.
    Unlike AutoML's `auto` (labkit.automl.features.infer_type), strings are never parsed:
    BigQuery ML one-hot encodes a STRING column whatever it holds (dtype_kind says why)."""
    kind = dtype_kind(s)
    if kind is not None:
        return kind
    sample = s.dropna()
    if len(sample) and isinstance(sample.iloc[0], (list, tuple, np.ndarray, dict)):
        raise MLError(f"Feature column {s.name} has an ARRAY or STRUCT type, which the local "
                      "BigQuery ML does not take as a feature; flatten it in the query")
    if len(sample) and not isinstance(sample.iloc[0], str):
        if all(isinstance(v, (int, float, np.number)) for v in sample.iloc[:50]):
            return "numeric"
        if hasattr(sample.iloc[0], "toordinal"):
            return "timestamp"
    return "string"


def bq_type(s: pd.Series) -> str:
    kind = kind_of(s)
    if kind == "bool":
        return "BOOL"
    if kind == "numeric":
        return "INT64" if pd.api.types.is_integer_dtype(s.dtype) else "FLOAT64"
    if kind == "timestamp":
        return "TIMESTAMP"
    return "STRING"


def _numeric(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "timestamp":
        return pd.to_datetime(s).astype("int64").to_numpy(dtype=float) / 1e6 / 86400
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


class FeatureEncoder:
    def __init__(self, standardize: bool):
        self.standardize = standardize
        self.columns: list[dict] = []      # one entry per input feature
        self.outputs: list[tuple[str, str | None]] = []   # (feature, category) per matrix column

    def fit(self, df: pd.DataFrame) -> FeatureEncoder:
        self.columns, self.outputs = [], []
        for name in df.columns:
            s = df[name]
            kind = kind_of(s)
            info = {"name": name, "kind": kind, "type": bq_type(s),
                    "null_count": int(s.isna().sum())}
            if kind == "string":
                values = s.astype(object).where(s.notna(), NULL_CATEGORY)
                cats = sorted(str(v) for v in pd.unique(values))
                info["categories"] = cats
                info["category_count"] = len([c for c in cats if c != NULL_CATEGORY])
                self.outputs += [(name, c) for c in cats]
            else:
                v = _numeric(s, kind)
                finite = v[~np.isnan(v)]
                mean = float(finite.mean()) if len(finite) else 0.0
                std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
                info.update(mean=mean, std=std or 1.0, min=float(finite.min()) if len(finite)
                            else None, max=float(finite.max()) if len(finite) else None,
                            median=float(np.median(finite)) if len(finite) else None,
                            stddev=std)
                self.outputs.append((name, None))
            self.columns.append(info)
        return self

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    def encode(self, df: pd.DataFrame, compressed: bool = False):
        """The model matrix: dense, or CSR when `compressed` (for the linear solvers)."""
        blocks = []
        for info in self.columns:
            name = info["name"]
            if name not in df.columns:
                raise MLError(f"Column {name} is not present in the input data; the model "
                              "needs it as a feature")
            s = df[name]
            if info["kind"] == "string":
                values = s.fillna(NULL_CATEGORY) if s.hasnans else s
                if not pd.api.types.is_string_dtype(values.dtype):
                    values = values.astype(str)
                codes = pd.Index(info["categories"]).get_indexer(values)
                ok = np.nonzero(codes >= 0)[0]
                block = sparse.csr_matrix((np.ones(len(ok)), (ok, codes[ok])),
                                          shape=(len(s), len(info["categories"])))
                blocks.append(block if compressed else block.toarray())
            else:
                v = _numeric(s, info["kind"])
                v = np.where(np.isnan(v), info["mean"], v)
                if self.standardize:
                    v = (v - info["mean"]) / info["std"]
                blocks.append(sparse.csr_matrix(v[:, None]) if compressed else v[:, None])
        if not blocks:
            return np.zeros((len(df), 0))
        return sparse.hstack(blocks, format="csr") if compressed else np.hstack(blocks)
