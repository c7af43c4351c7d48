"""BigQuery ML's AUTOML_CLASSIFIER / AUTOML_REGRESSOR on the local AutoML search
(labkit.automl), as BigQuery ML delegates these model types to Vertex AI AutoML.

A supervised trainer with BigQuery ML's trainer interface (labkit.bigquery.ml.trainers):
fit(X, y, w, X_eval, y_eval, options, n_classes) -> ML.TRAINING_INFO rows, and
predict(X) -> class probabilities or values. X is BigQuery ML's encoded feature matrix.
Options, as CREATE MODEL takes them:
- BUDGET_HOURS (1.0 to 72.0, default 1.0): 1 hour = 1000 milli node hours, mapped to
  seconds exactly as Vertex AI's budget is (labkit.automl.engine.budget_seconds);
- OPTIMIZATION_OBJECTIVE: 'MAXIMIZE_AU_ROC', 'MINIMIZE_LOG_LOSS', 'MAXIMIZE_AU_PRC',
  'MINIMIZE_RMSE', 'MINIMIZE_MAE', 'MINIMIZE_RMSLE', or for the constrained objectives a
  struct / pair ('MAXIMIZE_PRECISION_AT_RECALL', 0.9) or the string
  'MAXIMIZE_PRECISION_AT_RECALL 0.9'.
The search's errors (labkit.automl.AutoMLError) become BigQuery ML's MLError here.
"""

from __future__ import annotations

import numpy as np

from labkit.automl import AutoMLError, engine, objectives
from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.trainers.base import loss


class AutoMLTrainer:
    def __init__(self, model_type: str):
        self.classifier = model_type.lower() == "automl_classifier"
        self.automl = None
        self.objective: objectives.Objective | None = None

    @staticmethod
    def _objective(value) -> tuple[str | None, float | None]:
        if value is None:
            return None, None
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, (list, tuple)):
            name, number = str(value[0]), (float(value[1]) if len(value) > 1 else None)
        else:
            parts = str(value).split()
            name, number = parts[0], (float(parts[1]) if len(parts) > 1 else None)
        return name.lower().replace("_", "-"), number

    def fit(self, X, y, w, X_eval, y_eval, options, n_classes=None) -> list[dict]:
        hours = float(options.get("budget_hours") or 1.0)
        if not 1.0 <= hours <= 72.0:
            raise MLError(f"BUDGET_HOURS must be between 1.0 and 72.0; got {hours:g}")
        task = "classification" if self.classifier else "regression"
        name, number = self._objective(options.get("optimization_objective"))
        try:
            self.objective = objectives.resolve(name, task, n_classes or 0, recall=number,
                                                precision=number, y=y)
        except AutoMLError as exc:
            raise MLError(exc.message) from None
        extra = {} if X_eval is None else {"X_val": X_eval, "y_val": y_eval}
        if w is not None:
            extra["sample_weight"] = w
        self.automl, seconds = engine.run_flaml(
            X, y, task, self.objective.metric, engine.budget_seconds(hours * 1000), **extra)
        score = objectives.score(self.objective, self.automl.best_loss)
        eval_loss = loss(self.classifier, y_eval, self.predict(X_eval)) \
            if X_eval is not None else None
        return [{"iteration": 0, "loss": loss(self.classifier, y, self.predict(X)),
                 "eval_loss": eval_loss if eval_loss is not None else score,
                 "learning_rate": None, "duration_ms": int(seconds * 1000)}]

    def predict(self, X) -> np.ndarray:
        if self.classifier:
            return np.asarray(self.automl.predict_proba(X), dtype=float)
        return np.asarray(self.automl.predict(X), dtype=float)
