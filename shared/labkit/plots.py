"""Plots the labs share, so lab cells stay about the idea rather than the plumbing."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt


def _series(history, key: str) -> list[float]:
    data = history.history if hasattr(history, "history") else history
    return list(data[key])


def learning_curves(histories: Mapping[str, object], metric: str = "loss", *,
                    title: str | None = None, log: bool = False):
    """One panel per model: training vs validation `metric` by epoch.

    histories: name -> keras History (or its .history dict) from fit(validation_data=...).
    """
    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.3),
                             sharey=True, squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        ax.plot(_series(history, metric), label="training")
        ax.plot(_series(history, f"val_{metric}"), label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if log:
            ax.set_yscale("log")
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare(histories: Mapping[str, object], metric: str = "val_loss", *,
            title: str | None = None, log: bool = False, ax=None):
    """All models on one axis: `metric` by epoch, one line per model."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, history in histories.items():
        ax.plot(_series(history, metric), label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax
