"""The trained AutoML model: column transformations + the best estimator the search found.

Saved with joblib as model.joblib in the model's artifact folder; the serving predictor
and the evaluation both call predict_frame on raw rows, so they see the same model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.vertex.automl.features import Featurizer


class AutoMLModel:
    def __init__(self, task: str, featurizer: Featurizer, estimator, classes: list | None,
                 interval: tuple[float, float] | None = None,
                 source_columns: list[str] | None = None):
        self.task = task
        self.featurizer = featurizer
        self.estimator = estimator      # FLAML's fitted AutoML: its own encoding + best model
        self.classes = classes          # class labels as strings, in score order
        self.interval = interval        # regression: residual quantiles (2.5%, 97.5%)
        self.source_columns = source_columns  # the training table's columns, in order

    @property
    def columns(self) -> list[str]:
        return list(self.featurizer.types)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities (n, classes) or predicted values (n,) for raw rows."""
        features = self.featurizer.transform(frame)
        if self.task == "classification":
            return np.asarray(self.estimator.predict_proba(features), dtype=float)
        return np.asarray(self.estimator.predict(features), dtype=float)

    def predict_rows(self, rows: list[dict]) -> list[dict]:
        """Vertex's tabular prediction shape for each row."""
        frame = pd.DataFrame(rows, columns=self.columns)
        output = self.predict_frame(frame)
        if self.task == "classification":
            return [{"classes": list(self.classes), "scores": [float(s) for s in row]}
                    for row in output]
        low, high = self.interval or (0.0, 0.0)
        return [{"value": float(v), "lower_bound": float(v + low), "upper_bound": float(v + high)}
                for v in output]
