"""Serving an AutoML tabular model: a custom prediction routine for the local model server.

VERTEX's serving engine runs it with google-cloud-aiplatform's own CprModelServer (the
model's containerSpec env names this module and class). Instances are objects keyed by
column name, as Vertex AI's AutoML tabular models take them (values may be strings, as
Vertex recommends); arrays are read in the training table's column order (what batch
prediction from BigQuery or CSV sends). Predictions: {"classes", "scores"} for
classification, {"value", "lower_bound", "upper_bound"} for regression.
"""

from __future__ import annotations

from pathlib import Path

from google.cloud.aiplatform.prediction.predictor import Predictor

MODEL_FILE = "model.joblib"


class AutoMLTabularPredictor(Predictor):
    def load(self, artifacts_uri: str, **kwargs) -> None:
        import joblib

        self.model = joblib.load(Path(artifacts_uri) / MODEL_FILE)

    def preprocess(self, prediction_input: dict) -> list[dict]:
        instances = prediction_input.get("instances")
        if not isinstance(instances, list):
            raise ValueError('The request body must hold an "instances" list.')
        return [self._row(instance) for instance in instances]

    def _row(self, instance) -> dict:
        if isinstance(instance, dict):
            return instance
        if isinstance(instance, list):
            for names in (self.model.columns, self.model.source_columns or []):
                if len(instance) == len(names):
                    return dict(zip(names, instance, strict=True))
            raise ValueError(f"An array instance must have {len(self.model.columns)} values "
                             f"in the order {self.model.columns}; send objects keyed by "
                             f"column name instead.")
        raise ValueError("Each instance must be an object keyed by column name.")

    def predict(self, instances: list[dict]) -> list[dict]:
        return self.model.predict_rows(instances)

    def postprocess(self, prediction_results: list[dict]) -> dict:
        return {"predictions": prediction_results}
