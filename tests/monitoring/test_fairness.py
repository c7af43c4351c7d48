"""labkit.fairness against counts worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit import fairness


def frame():
    # group a: 4 positives (scores .9 .8 .3 .2), 4 negatives (.6 .1 .1 .1)
    # group b: 2 positives (.9 .4), 6 negatives (.2 .2 .2 .2 .2 .2)
    return pd.DataFrame({
        "g": ["a"] * 8 + ["b"] * 8,
        "y": [1, 1, 1, 1, 0, 0, 0, 0] + [1, 1, 0, 0, 0, 0, 0, 0],
        "s": [.9, .8, .3, .2, .6, .1, .1, .1] + [.9, .4, .2, .2, .2, .2, .2, .2]})


def test_slice_metrics_and_gaps():
    table = fairness.slice_metrics(frame(), "g", "y", "s", threshold=0.5)
    a, b = table.loc["a"], table.loc["b"]
    assert (a.selection_rate, a.tpr, a.fpr) == (3 / 8, 2 / 4, 1 / 4)
    assert (b.selection_rate, b.tpr, b.fpr) == (1 / 8, 1 / 2, 0.0)
    assert a.base_rate == 0.5 and a.mean_score == pytest.approx(3.1 / 8)
    assert a.calibration_gap == pytest.approx(3.1 / 8 - 0.5)
    gaps = fairness.gaps(table)
    assert gaps.selection_rate_gap == pytest.approx(0.25)
    assert gaps.tpr_gap == 0 and gaps.fpr_gap == pytest.approx(0.25)
    assert gaps.selection_rate_ratio == pytest.approx(1 / 3)


def test_group_thresholds():
    table = fairness.slice_metrics(frame(), "g", "y", "s", threshold={"a": 0.25, "b": 0.5})
    assert table.loc["a", "tpr"] == 3 / 4 and table.loc["b", "tpr"] == 1 / 2
