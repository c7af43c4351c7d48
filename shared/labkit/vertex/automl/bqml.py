"""BigQuery ML's AUTOML_CLASSIFIER / AUTOML_REGRESSOR on the local AutoML search.

A supervised trainer with BigQuery ML's trainer interface (labkit.bigquery.ml.trainers):
fit(X, y, w, X_eval, y_eval, options, n_classes) -> ML.TRAINING_INFO rows, and
predict(X) -> class probabilities or values. X is BigQuery ML's encoded feature matrix.
Options, as CREATE MODEL takes them:
- BUDGET_HOURS (1.0 to 72.0, default 1.0): 1 hour = 1000 milli node hours, mapped to
  seconds exactly as Vertex AI's budget is (engine.budget_seconds);
- OPTIMIZATION_OBJECTIVE: 'MAXIMIZE_AU_ROC', 'MINIMIZE_LOG_LOSS', 'MAXIMIZE_AU_PRC',
  'MINIMIZE_RMSE', 'MINIMIZE_MAE', 'MINIMIZE_RMSLE', or for the constrained objectives a
  struct / pair ('MAXIMIZE_PRECISION_AT_RECALL', 0.9) or the string
  'MAXIMIZE_PRECISION_AT_RECALL 0.9'.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from labkit.vertex.automl import engine, objectives
from labkit.vertex.errors import VertexError


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
        from flaml import AutoML

        hours = float(options.get("budget_hours") or 1.0)
        if not 1.0 <= hours <= 72.0:
            raise ValueError(f"BUDGET_HOURS must be between 1.0 and 72.0; got {hours:g}")
        task = "classification" if self.classifier else "regression"
        name, number = self._objective(options.get("optimization_objective"))
        try:
            self.objective = objectives.resolve(name, task, n_classes or 0, recall=number,
                                                precision=number, y=y)
        except VertexError as exc:
            raise ValueError(exc.message) from None
        self.automl = AutoML()
        logging.getLogger("flaml").setLevel(logging.ERROR)
        extra = {} if X_eval is None else {"X_val": X_eval, "y_val": y_eval}
        if w is not None:
            extra["sample_weight"] = w
        with engine.SEARCH_LOCK, warnings.catch_warnings():
            started = time.perf_counter()
            warnings.simplefilter("ignore")
            self.automl.fit(X, y, task=task, metric=self.objective.metric,
                            time_budget=engine.budget_seconds(hours * 1000),
                            estimator_list=engine.ESTIMATORS, eval_method="holdout",
                            n_jobs=2, seed=0, verbose=0, log_file_name="", **extra)
            ms = int((time.perf_counter() - started) * 1000)
        score = objectives.score(self.objective, self.automl.best_loss)
        eval_loss = None
        if X_eval is not None:
            out = self.predict(X_eval)
            eval_loss = _bq_loss(self.classifier, y_eval, out)
        return [{"iteration": 0, "loss": _bq_loss(self.classifier, y, self.predict(X)),
                 "eval_loss": eval_loss if eval_loss is not None else score,
                 "learning_rate": None, "duration_ms": ms}]

    def predict(self, X) -> np.ndarray:
        if self.classifier:
            return np.asarray(self.automl.predict_proba(X), dtype=float)
        return np.asarray(self.automl.predict(X), dtype=float)


def _bq_loss(classifier: bool, y, out) -> float:
    """ML.TRAINING_INFO's loss: log loss for classifiers, mean squared error otherwise."""
    if classifier:
        p = np.clip(out[np.arange(len(y)), np.asarray(y, dtype=int)], 1e-15, 1.0)
        return float(-np.mean(np.log(p)))
    return float(np.mean((np.asarray(y, dtype=float) - out) ** 2))
