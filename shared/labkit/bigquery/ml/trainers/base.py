"""Shared pieces of the trainers: losses as BigQuery reports them in ML.TRAINING_INFO."""

from __future__ import annotations

import numpy as np


def log_loss(y: np.ndarray, probs: np.ndarray, w: np.ndarray | None = None) -> float:
    p = np.clip(probs[np.arange(len(y)), y], 1e-15, 1.0)
    return float(np.average(-np.log(p), weights=w))


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(y, float) - pred) ** 2))


def loss(classifier: bool, y, pred) -> float | None:
    if y is None or len(y) == 0:
        return None
    return log_loss(y, pred) if classifier else mse(y, pred)


def rel_progress_stop(losses: list[float], min_rel_progress: float) -> bool:
    """BigQuery's early stop: relative improvement of the last iteration below the bar."""
    if len(losses) < 2 or not losses[-2]:
        return False
    return (losses[-2] - losses[-1]) / abs(losses[-2]) < min_rel_progress
