"""Test-split metrics and feature importance of a trained AutoMLModel, named as Vertex AI's
evaluation schemas name them (labkit.vertex.automl.evaluation wraps them into a
ModelEvaluation).

Classification (classification_metrics_1.0.0.yaml): auPrc, auRoc, logLoss, micro-averaged
over the one-hot classes as Vertex reports them, confidenceMetrics at thresholds 0..1 and
the confusionMatrix of the top class. Regression (regression_metrics_1.0.0.yaml):
rootMeanSquaredError, meanAbsoluteError, meanAbsolutePercentageError, rSquared,
rootMeanSquaredLogError. Global feature importance is permutation importance on raw
columns (how much log loss, or RMSE, grows when the column is shuffled), reported as
modelExplanation.meanAttributions; Vertex itself uses sampled Shapley, so values differ
in scale but rank features the same way in spirit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.automl.model import AutoMLModel

THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)
IMPORTANCE_ROWS = 1000


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _confidence_metrics(onehot: np.ndarray, probs: np.ndarray) -> list[dict]:
    top = probs.argmax(axis=1)
    top_onehot = np.zeros_like(onehot)
    top_onehot[np.arange(len(top)), top] = 1
    rows = []
    for t in THRESHOLDS:
        predicted = probs >= t
        tp = int((predicted & (onehot == 1)).sum())
        fp = int((predicted & (onehot == 0)).sum())
        fn = int((~predicted & (onehot == 1)).sum())
        tn = int((~predicted & (onehot == 0)).sum())
        at1 = predicted & (top_onehot == 1)
        tp1 = int((at1 & (onehot == 1)).sum())
        fp1 = int((at1 & (onehot == 0)).sum())
        fn1 = int(onehot.sum()) - tp1
        tn1 = int(onehot.size) - tp1 - fp1 - fn1
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        precision1 = tp1 / (tp1 + fp1) if tp1 + fp1 else 1.0
        recall1 = tp1 / (tp1 + fn1) if tp1 + fn1 else 0.0
        rows.append({
            "confidenceThreshold": float(t), "recall": recall, "precision": precision,
            "falsePositiveRate": fp / (fp + tn) if fp + tn else 0.0,
            "f1Score": _f1(precision, recall), "recallAt1": recall1,
            "precisionAt1": precision1,
            "falsePositiveRateAt1": fp1 / (fp1 + tn1) if fp1 + tn1 else 0.0,
            "f1ScoreAt1": _f1(precision1, recall1),
            "truePositiveCount": str(tp), "falsePositiveCount": str(fp),
            "falseNegativeCount": str(fn), "trueNegativeCount": str(tn)})
    return rows


def classification_metrics(model: AutoMLModel, test: pd.DataFrame, label: str) -> dict:
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    probs = model.predict_frame(test)
    probs = probs / probs.sum(axis=1, keepdims=True)
    y = test[label].astype(str).to_numpy()
    index = {c: i for i, c in enumerate(model.classes)}
    codes = np.array([index.get(v, -1) for v in y])
    onehot = np.zeros_like(probs, dtype=int)
    known = codes >= 0
    onehot[np.arange(len(y))[known], codes[known]] = 1
    top = probs.argmax(axis=1)
    matrix = np.zeros((len(model.classes), len(model.classes)), dtype=int)
    for truth, guess in zip(codes[known], top[known], strict=True):
        matrix[truth, guess] += 1
    return {
        "auPrc": float(average_precision_score(onehot.ravel(), probs.ravel())),
        "auRoc": float(roc_auc_score(onehot.ravel(), probs.ravel())),
        "logLoss": float(log_loss(codes[known], probs[known],
                                  labels=list(range(len(model.classes))))),
        "confidenceMetrics": _confidence_metrics(onehot, probs),
        "confusionMatrix": {
            "annotationSpecs": [{"id": str(i), "displayName": c}
                                for i, c in enumerate(model.classes)],
            "rows": [[float(v) for v in row] for row in matrix]},
    }


def regression_metrics(model: AutoMLModel, test: pd.DataFrame, label: str) -> dict:
    predicted = model.predict_frame(test)
    y = pd.to_numeric(test[label]).to_numpy(dtype=float)
    errors_ = predicted - y
    metrics = {
        "rootMeanSquaredError": float(np.sqrt(np.mean(errors_ ** 2))),
        "meanAbsoluteError": float(np.mean(np.abs(errors_))),
        "rSquared": float(1 - np.sum(errors_ ** 2) / np.sum((y - y.mean()) ** 2))
        if np.ptp(y) else 0.0,
    }
    nonzero = y != 0
    if nonzero.any():
        metrics["meanAbsolutePercentageError"] = float(
            100 * np.mean(np.abs(errors_[nonzero] / y[nonzero])))
    if (y >= 0).all() and (predicted > -1).all():
        metrics["rootMeanSquaredLogError"] = float(
            np.sqrt(np.mean((np.log1p(np.clip(predicted, 0, None)) - np.log1p(y)) ** 2)))
    return metrics


def _loss(model: AutoMLModel, frame: pd.DataFrame, y: np.ndarray) -> float:
    output = model.predict_frame(frame)
    if model.task == "classification":
        p = np.clip(output[np.arange(len(y)), y], 1e-15, 1.0)
        return float(-np.mean(np.log(p)))
    return float(np.sqrt(np.mean((output - y) ** 2)))


def feature_importance(model: AutoMLModel, test: pd.DataFrame, label: str,
                       seed: int = 0) -> dict[str, float]:
    """Permutation importance per raw input column."""
    rng = np.random.default_rng(seed)
    sample = test.sample(min(len(test), IMPORTANCE_ROWS), random_state=seed) \
        .reset_index(drop=True)
    if model.task == "classification":
        index = {c: i for i, c in enumerate(model.classes)}
        keep = sample[label].astype(str).map(index).notna().to_numpy()
        sample = sample[keep].reset_index(drop=True)
        y = sample[label].astype(str).map(index).to_numpy(dtype=int)
    else:
        y = pd.to_numeric(sample[label]).to_numpy(dtype=float)
    base = _loss(model, sample, y)
    importance = {}
    for column in model.columns:
        shuffled = sample.copy()
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
        importance[column] = max(0.0, _loss(model, shuffled, y) - base)
    return importance
