"""Model trainers, one module per family. Supervised trainers share one interface:
fit(X, y, w, X_eval, y_eval, options, n_classes) -> per-iteration history, and
predict(X) -> values (regressors) or class probabilities (classifiers)."""

from __future__ import annotations


def supervised_trainer(model_type: str):
    if model_type in ("linear_reg", "logistic_reg"):
        from labkit.bigquery.ml.trainers.linear import LinearTrainer

        return LinearTrainer(model_type)
    if model_type.startswith(("boosted_tree", "random_forest")):
        from labkit.bigquery.ml.trainers.trees import TreeTrainer

        return TreeTrainer(model_type)
    if model_type.startswith("automl"):
        # AUTOML_* runs the local AutoML search (labkit.automl), as BigQuery ML
        # delegates these model types to Vertex AI AutoML.
        from labkit.bigquery.ml.trainers.automl import AutoMLTrainer

        return AutoMLTrainer(model_type)
    from labkit.bigquery.ml.trainers.dnn import DNNTrainer

    return DNNTrainer(model_type)
