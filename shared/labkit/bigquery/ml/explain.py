"""Feature attributions for ML.EXPLAIN_PREDICT and ML.GLOBAL_EXPLAIN: Shapley values over
the model's input features (each feature's one-hot columns move together), measured from
a baseline row (the mean encoded training row). Exact for linear regression with one
permutation; sampled permutations for the other model types, as BigQuery's sampled
Shapley does."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.bigquery.ml.model import TrainedModel

PERMUTATIONS = {"linear_reg": 1}


def attributions(model: TrainedModel, features: pd.DataFrame, classes: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attributions (rows, features), baseline values, prediction values). For
    classifiers the explained value is the probability of `classes` (default: the
    predicted class of each row)."""
    X = model.encoder.encode(features)     # dense: feature groups are swapped in place
    n = len(X)
    names = model.encoder.names
    groups = [[j for j, (f, _) in enumerate(model.encoder.outputs) if f == name]
              for name in names]
    out = model.trainer.predict(X)
    if model.classifier and classes is None:
        classes = out.argmax(axis=1)

    def value(matrix: np.ndarray) -> np.ndarray:
        pred = model.trainer.predict(matrix)
        return pred[np.arange(n), classes] if model.classifier else pred

    rng = np.random.default_rng(0)
    runs = PERMUTATIONS.get(model.model_type, 3)
    attr = np.zeros((n, len(names)))
    base_row = np.tile(model.baseline, (n, 1))
    baseline = value(base_row)
    for _ in range(runs):
        current = base_row.copy()
        previous = baseline
        for j in rng.permutation(len(names)):
            current[:, groups[j]] = X[:, groups[j]]
            now = value(current)
            attr[:, j] += now - previous
            previous = now
    attr /= runs
    prediction = out[np.arange(n), classes] if model.classifier else out
    return attr, baseline, prediction
