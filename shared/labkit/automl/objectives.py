"""Optimization objectives: Vertex AI's names -> what the local search minimizes.

Each objective becomes the metric FLAML minimizes on the validation split: FLAML's own
metric where it has one (log_loss, roc_auc, ap, rmse, mae), a custom metric function
where it has none (precision at a recall, recall at a precision, RMSLE). Vertex's rules:
the AUC and precision/recall objectives are for binary classification, log loss is the
multi-class default, RMSLE needs a target without negative values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit.automl.errors import InvalidInput

CLASSIFICATION = ("minimize-log-loss", "maximize-au-roc", "maximize-au-prc",
                  "maximize-precision-at-recall", "maximize-recall-at-precision")
REGRESSION = ("minimize-rmse", "minimize-mae", "minimize-rmsle")
BINARY_ONLY = CLASSIFICATION[1:]
CONSTRAINED = {  # objective -> (what it maximizes, the constraint's request field, metric)
    "maximize-precision-at-recall": ("precision", "optimizationObjectiveRecallValue",
                                     "precisionAtRecall"),
    "maximize-recall-at-precision": ("recall", "optimizationObjectivePrecisionValue",
                                     "recallAtPrecision"),
}


@dataclass
class Objective:
    name: str                 # Vertex's objective name
    metric: object            # FLAML metric name or custom function
    metric_name: str          # what the search reports as the validation score
    value: float | None = None  # the recall or precision constraint


def default(task: str, n_classes: int) -> str:
    if task == "regression":
        return "minimize-rmse"
    return "maximize-au-roc" if n_classes == 2 else "minimize-log-loss"


def _positive_scores(estimator, X, labels) -> np.ndarray:
    return estimator.predict_proba(X)[:, 1]


def precision_at_recall(y_true, scores, recall_floor: float) -> tuple[float, float]:
    """Best precision among thresholds whose recall is at least recall_floor; (value, threshold)."""
    return _best_under_floor(y_true, scores, maximize="precision", floor=recall_floor,
                             none_found=(0.0, 0.0))


def recall_at_precision(y_true, scores, precision_floor: float) -> tuple[float, float]:
    """Best recall among thresholds whose precision is at least precision_floor."""
    return _best_under_floor(y_true, scores, maximize="recall", floor=precision_floor,
                             none_found=(0.0, 1.0))


def _best_under_floor(y_true, scores, *, maximize: str, floor: float,
                      none_found: tuple[float, float]) -> tuple[float, float]:
    """(best value of `maximize`, its threshold) where the other curve stays >= floor."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    target, constraint = (precision, recall) if maximize == "precision" else (recall, precision)
    ok = constraint[:-1] >= floor
    if not ok.any():
        return none_found
    best = int(np.argmax(np.where(ok, target[:-1], -1)))
    return float(target[best]), float(thresholds[best])


class ConstrainedMetric:
    """A FLAML custom metric: (loss to minimize, metrics to log). A class, not a closure,
    so the fitted search pickles with the model."""

    def __init__(self, kind: str, floor: float):
        self.kind, self.floor = kind, floor

    def __call__(self, X_val, y_val, estimator, labels, X_train, y_train, weight_val=None,
                 weight_train=None, *args):
        measure = precision_at_recall if self.kind == "precision" else recall_at_precision
        positive = labels[1] if labels is not None and len(labels) > 1 else 1
        y = (np.asarray(y_val) == positive).astype(int)
        value, threshold = measure(y, _positive_scores(estimator, X_val, labels), self.floor)
        return 1.0 - value, {self.kind: value, "threshold": threshold}


def rmsle(X_val, y_val, estimator, labels, X_train, y_train, weight_val=None,
          weight_train=None, *args):
    predicted = np.clip(estimator.predict(X_val), 0, None)
    value = float(np.sqrt(np.mean((np.log1p(predicted) - np.log1p(np.asarray(y_val))) ** 2)))
    return value, {"rmsle": value}


def resolve(name: str | None, task: str, n_classes: int, recall: float | None = None,
            precision: float | None = None, y=None) -> Objective:
    name = name or default(task, n_classes)
    allowed = REGRESSION if task == "regression" else CLASSIFICATION
    if name not in allowed:
        raise InvalidInput(
            f"Optimization objective {name!r} is not valid for prediction type {task}; "
            f"valid objectives: {', '.join(allowed)}.")
    if name in BINARY_ONLY and n_classes != 2:
        raise InvalidInput(
            f"Optimization objective {name} is only supported for binary classification; "
            f"the target column has {n_classes} classes. Use minimize-log-loss.")
    if name == "minimize-log-loss":
        return Objective(name, "log_loss", "logLoss")
    if name == "maximize-au-roc":
        return Objective(name, "roc_auc", "auRoc")
    if name == "maximize-au-prc":
        return Objective(name, "ap", "auPrc")
    if name in CONSTRAINED:
        kind, field, metric_name = CONSTRAINED[name]
        floor = recall if kind == "precision" else precision
        if floor is None or not 0 <= floor <= 1:
            raise InvalidInput(f"{field} must be in [0, 1] when the optimization objective "
                               f"is {name}.")
        return Objective(name, ConstrainedMetric(kind, floor), metric_name, floor)
    if name == "minimize-rmse":
        return Objective(name, "rmse", "rootMeanSquaredError")
    if name == "minimize-mae":
        return Objective(name, "mae", "meanAbsoluteError")
    if y is not None and (np.asarray(y, dtype=float) < 0).any():
        raise InvalidInput("Optimization objective minimize-rmsle requires a target column "
                           "without negative values.")
    return Objective(name, rmsle, "rootMeanSquaredLogError")


def score(objective: Objective, best_loss: float) -> float:
    """FLAML's loss back to the objective's own scale (AUCs and rates: 1 - loss)."""
    if objective.metric_name in ("auRoc", "auPrc", "precisionAtRecall", "recallAtPrecision"):
        return 1.0 - best_loss
    return best_loss
