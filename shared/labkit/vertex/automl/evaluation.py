"""The ModelEvaluation an AutoML training pipeline adds to its model, in Vertex AI's
schemas: the metrics and feature importance labkit.automl.evaluation computes on the test
split (classification_metrics_1.0.0.yaml or regression_metrics_1.0.0.yaml)."""

from __future__ import annotations

import pandas as pd

from labkit.automl.evaluation import classification_metrics, feature_importance, regression_metrics
from labkit.automl.model import AutoMLModel

SCHEMA = "gs://google-cloud-aiplatform/schema/modelevaluation/"


def evaluation(model: AutoMLModel, test: pd.DataFrame, label: str, slice_rows: int) -> dict:
    """A ModelEvaluation body for Registry.add_evaluation."""
    if model.task == "classification":
        metrics, schema = classification_metrics(model, test, label), "classification"
    else:
        metrics, schema = regression_metrics(model, test, label), "regression"
    return {
        "displayName": "AutoML evaluation",
        "metricsSchemaUri": f"{SCHEMA}{schema}_metrics_1.0.0.yaml",
        "metrics": metrics,
        "modelExplanation": {"meanAttributions": [
            {"featureAttributions": feature_importance(model, test, label)}]},
        "metadata": {"evaluation_dataset_type": "test", "evaluation_row_count": slice_rows},
    }
