"""data_split_method: which training rows BigQuery ML holds out for evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.bigquery.ml.errors import MLError


def eval_mask(df: pd.DataFrame, options: dict) -> np.ndarray:
    n = len(df)
    method = options.get("data_split_method") or "AUTO_SPLIT"
    fraction = float(options.get("data_split_eval_fraction") or 0.2)
    col = options.get("data_split_col")
    rng = np.random.default_rng(42)
    if method == "NO_SPLIT":
        return np.zeros(n, dtype=bool)
    if method == "AUTO_SPLIT":
        if n < 500:
            return np.zeros(n, dtype=bool)
        n_eval = int(round(n * 0.2)) if n <= 50_000 else 10_000
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=n_eval, replace=False)] = True
        return mask
    if method == "RANDOM":
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=int(round(n * fraction)), replace=False)] = True
        return mask
    if col not in df.columns:
        raise MLError(f"data_split_col {col} is not a column of the training data")
    if method == "CUSTOM":
        values = df[col]
        if not pd.api.types.is_bool_dtype(values.dtype) and not all(
                isinstance(v, (bool, np.bool_)) for v in values.dropna()):
            raise MLError(f"data_split_col {col} must be BOOL for the CUSTOM split method")
        return values.fillna(False).astype(bool).to_numpy()
    # SEQ: the last fraction of rows in data_split_col order is for evaluation
    order = np.argsort(df[col].to_numpy(), kind="stable")
    mask = np.zeros(n, dtype=bool)
    n_eval = int(round(n * fraction))
    if n_eval:
        mask[order[-n_eval:]] = True
    return mask
