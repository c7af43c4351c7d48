"""The trained AutoML model: column transformations + the best estimator the search found.

Saved with joblib as model.joblib in the model's artifact folder and served by the
prebuilt scikit-learn prediction engine, which calls predict(np.asarray(instances)).
Instances are objects keyed by column name, as Vertex AI's AutoML tabular models take
them (values may be strings, as Vertex recommends); arrays are read in the feature order
or the training table's column order (what batch prediction from BigQuery or CSV sends).
Predictions: {"classes", "scores"} for classification, {"value", "lower_bound",
"upper_bound"} for regression. The evaluation calls predict_frame on the same object.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.automl.features import Featurizer


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

    def _row(self, instance) -> dict:
        if isinstance(instance, dict):
            return instance
        values = list(instance)
        for names in (self.columns, self.source_columns or []):
            if len(values) == len(names):
                return dict(zip(names, values, strict=True))
        raise ValueError(f"an array instance must have {len(self.columns)} values in the "
                         f"order {self.columns}; send objects keyed by column name instead")

    def predict(self, instances) -> np.ndarray:
        """The prebuilt container's call: one prediction object per instance."""
        rows = [self._row(i) for i in instances]
        out = np.empty(len(rows), dtype=object)
        out[:] = self.predict_rows(rows)
        return out

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
