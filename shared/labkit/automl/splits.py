"""Which rows train, validate and test: the roles TRAIN / VALIDATE / TEST per row, by
random fractions, by a split column's values, or by a timestamp column (oldest rows
train). A row whose role is none of these (missing, NaN) is left out of the search.

A predefined split column holds exactly `training`, `validation` or `test`; Vertex ignores
a row with any other value ("The value of the key ... must be one of {training, validation,
test} ... If for a piece of data the key is not present or has an invalid value, that piece
is ignored by the pipeline": PredefinedSplit in the Vertex AI API reference, and the SDK's
predefined_split_column_name docstring in googleapis/python-aiplatform training_jobs.py:
https://cloud.google.com/dotnet/docs/reference/Google.Cloud.AIPlatform.V1/latest/Google.Cloud.AIPlatform.V1.PredefinedSplit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.automl.errors import InvalidInput
from labkit.automl.features import as_timestamp

PREDEFINED_VALUES = {"training": "TRAIN", "validation": "VALIDATE", "test": "TEST"}


def _by_order(order: np.ndarray, fractions: tuple[float, float, float]) -> np.ndarray:
    """The first fractions[0] of `order` train, the next fractions[1] validate, the rest test."""
    n = len(order)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    roles = np.empty(n, dtype=object)
    roles[order[:n_train]] = "TRAIN"
    roles[order[n_train:n_train + n_val]] = "VALIDATE"
    roles[order[n_train + n_val:]] = "TEST"
    return roles


def random_roles(n: int, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    return _by_order(np.random.default_rng(seed).permutation(n), fractions)


def predefined_roles(values: pd.Series) -> np.ndarray:
    """A split column's roles; values other than training / validation / test (TRAIN,
    Training, ' test') are left out, as Vertex leaves them out."""
    return values.map(PREDEFINED_VALUES).to_numpy(dtype=object)


def timestamp_roles(values: pd.Series, fractions: tuple[float, float, float]) -> np.ndarray:
    """Oldest rows train, then validation, newest test."""
    stamps = as_timestamp(values)
    if stamps.isna().any():
        raise InvalidInput("The timestamp split column has values that are not RFC 3339 "
                           "timestamps.")
    return _by_order(np.argsort(stamps.to_numpy(), kind="stable"), fractions)
