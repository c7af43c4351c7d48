"""Fairness metrics per slice from predictions and ground truth, and their gaps.

    from labkit import fairness
    table = fairness.slice_metrics(frame, group="sex", label="label", score="score")
    fairness.gaps(table)          # max - min across slices, and the selection-rate ratio
    fairness.plot(frame, group="sex", label="label", score="score")

Definitions (threshold t on the score; a positive decision is score >= t):
- selection_rate: share of positive decisions (demographic parity compares these);
- tpr: true positive rate, recall among actual positives (equal opportunity compares these);
- fpr: false positive rate among actual negatives (equalized odds compares tpr and fpr);
- base_rate: share of actual positives; mean_score: average score. A calibrated model has
  mean_score close to base_rate in every slice; calibration_gap = mean_score - base_rate.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

METRICS = ["selection_rate", "tpr", "fpr"]


def slice_metrics(frame: pd.DataFrame, group: str, label: str, score: str,
                  threshold: float | dict = 0.5) -> pd.DataFrame:
    """One row per value of `group`. threshold: one number, or {slice: threshold}."""
    rows = {}
    for name, part in frame.groupby(group):
        t = threshold.get(name, 0.5) if isinstance(threshold, dict) else threshold
        decision = part[score].to_numpy() >= t
        actual = part[label].to_numpy().astype(bool)
        rows[name] = {
            "count": len(part), "base_rate": actual.mean(),
            "selection_rate": decision.mean(),
            "tpr": decision[actual].mean() if actual.any() else np.nan,
            "fpr": decision[~actual].mean() if (~actual).any() else np.nan,
            "mean_score": part[score].mean(),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["calibration_gap"] = table["mean_score"] - table["base_rate"]
    table.index.name = group
    return table


def gaps(table: pd.DataFrame) -> pd.Series:
    """Largest difference across slices per metric, and the selection-rate ratio
    (min / max; the "four-fifths rule" flags ratios under 0.8)."""
    found = {f"{m}_gap": table[m].max() - table[m].min() for m in METRICS}
    found["calibration_gap_max"] = table["calibration_gap"].abs().max()
    found["selection_rate_ratio"] = table["selection_rate"].min() / table["selection_rate"].max()
    return pd.Series(found)


def plot(frame: pd.DataFrame, group: str, label: str, score: str,
         threshold: float | dict = 0.5, bins: int = 8):
    """Left: selection rate, TPR and FPR per slice. Right: calibration per slice."""
    table = slice_metrics(frame, group, label, score, threshold)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / len(table)
    x = np.arange(len(METRICS))
    for k, (name, row) in enumerate(table.iterrows()):
        left.bar(x + k * width, [row[m] for m in METRICS], width, label=str(name))
    left.set_xticks(x + width * (len(table) - 1) / 2, ["selection rate", "TPR", "FPR"])
    left.set_ylim(0, 1)
    left.set_title(f"Decisions by {group}")
    left.legend()
    edges = np.linspace(0, 1, bins + 1)
    for name, part in frame.groupby(group):
        which = np.clip(np.digitize(part[score], edges) - 1, 0, bins - 1)
        binned = part.assign(_bin=which).groupby("_bin")
        right.plot(binned[score].mean(), binned[label].mean(), marker="o", label=str(name))
    right.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    right.set_xlabel("mean predicted score")
    right.set_ylabel("observed positive rate")
    right.set_title("Calibration by slice")
    right.legend()
    fig.tight_layout()
    return fig
