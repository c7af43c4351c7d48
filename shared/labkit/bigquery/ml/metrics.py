"""Evaluation metrics as ML.EVALUATE, ML.CONFUSION_MATRIX and ML.ROC_CURVE report them."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def classification(y: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """y: class indices; probs: (n, classes). Binary metrics are for the positive class
    (index 1) at `threshold`; multiclass precision/recall/f1/roc_auc are macro averages."""
    k = probs.shape[1]
    y = np.asarray(y)
    if k == 2:
        # counts in numpy: this runs after every CREATE MODEL, so it is kept light
        pred = probs[:, 1] >= threshold
        pos = y == 1
        tp, fp = int((pred & pos).sum()), int((pred & ~pos).sum())
        fn = int((~pred & pos).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        p_true = np.clip(probs[np.arange(len(y)), y], 1e-15, 1.0)
        auc = skm.roc_auc_score(y, probs[:, 1]) if len(set(y.tolist())) == 2 else None
        return {"precision": precision, "recall": recall,
                "accuracy": float((pred == pos).mean()),
                "f1_score": 2 * precision * recall / (precision + recall)
                if precision + recall else 0.0,
                "log_loss": float(-np.log(p_true).mean()),
                "roc_auc": None if auc is None else float(auc)}
    pred = probs.argmax(axis=1)
    labels = list(range(k))
    present = sorted(set(y))
    try:
        auc = float(skm.roc_auc_score(y, probs[:, present] / probs[:, present].sum(1,
                                      keepdims=True), multi_class="ovr", labels=present)) \
            if len(present) > 2 else None
    except ValueError:
        auc = None
    return {"precision": float(skm.precision_score(y, pred, labels=present, average="macro",
                                                   zero_division=0)),
            "recall": float(skm.recall_score(y, pred, labels=present, average="macro",
                                             zero_division=0)),
            "accuracy": float(skm.accuracy_score(y, pred)),
            "f1_score": float(skm.f1_score(y, pred, labels=present, average="macro",
                                           zero_division=0)),
            "log_loss": float(skm.log_loss(y, probs, labels=labels)),
            "roc_auc": auc}


def regression(y: np.ndarray, pred: np.ndarray) -> dict:
    y = np.asarray(y, float)
    msle = (float(skm.mean_squared_log_error(y, pred))
            if (y > -1).all() and (pred > -1).all() else None)
    return {"mean_absolute_error": float(skm.mean_absolute_error(y, pred)),
            "mean_squared_error": float(skm.mean_squared_error(y, pred)),
            "mean_squared_log_error": msle,
            "median_absolute_error": float(skm.median_absolute_error(y, pred)),
            "r2_score": float(skm.r2_score(y, pred)) if len(y) > 1 else None,
            "explained_variance": float(skm.explained_variance_score(y, pred))
            if len(y) > 1 else None}


def clustering(X: np.ndarray, distances: np.ndarray) -> dict:
    assign = distances.argmin(axis=1)
    dbi = (float(skm.davies_bouldin_score(X, assign))
           if 1 < len(set(assign)) < len(X) else None)
    return {"davies_bouldin_index": dbi,
            "mean_squared_distance": float((distances.min(axis=1) ** 2).mean())}


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return skm.confusion_matrix(y, pred, labels=list(range(k)))


def roc_points(y: np.ndarray, score: np.ndarray, thresholds=None) -> list[dict]:
    """One row per threshold: recall, false_positive_rate and the four counts."""
    if thresholds is None:
        qs = np.unique(np.quantile(score, np.linspace(0, 1, 101)))
        thresholds = sorted(qs, reverse=True)
    pos = y == 1
    rows = []
    for t in thresholds:
        pred = score >= t
        tp, fp = int((pred & pos).sum()), int((pred & ~pos).sum())
        fn, tn = int((~pred & pos).sum()), int((~pred & ~pos).sum())
        rows.append({"threshold": float(t), "recall": tp / (tp + fn) if tp + fn else 0.0,
                     "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
                     "true_positives": tp, "false_positives": fp, "true_negatives": tn,
                     "false_negatives": fn})
    return rows
