"""Distances against values computed independently on known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from labkit.vertex.monitoring import stats


def test_identical_samples_are_zero_for_both_distances():
    rng = np.random.default_rng(1)
    values = list(rng.normal(size=2000))
    assert stats.compare(values, values)["distance"] == pytest.approx(0.0, abs=1e-12)
    words = ["a", "b", "b", "c"] * 50
    assert stats.compare(words, words)["distance"] == 0.0


def test_disjoint_samples_are_one_for_both_distances():
    rng = np.random.default_rng(2)
    low, high = list(rng.uniform(0, 1, 500)), list(rng.uniform(5, 6, 500))
    result = stats.compare(low, high)
    assert result["type"] == "numeric"
    assert result["distance"] == pytest.approx(1.0)
    result = stats.compare(["a"] * 10, ["c"] * 10)
    assert result["type"] == "categorical"
    assert result["distance"] == pytest.approx(1.0)
    # L-infinity is the largest single gap: two disjoint halves differ by 0.5 per category.
    assert stats.compare(["a", "b"] * 10, ["c", "d"] * 10)["distance"] == pytest.approx(0.5)


def test_l_infinity_is_the_largest_frequency_gap():
    baseline = ["x"] * 50 + ["y"] * 50
    target = ["x"] * 80 + ["y"] * 10 + ["z"] * 10
    # gaps: x 0.3, y 0.4, z 0.1
    assert stats.compare(baseline, target)["distance"] == pytest.approx(0.4)


def test_js_divergence_matches_scipy_base_2():
    p, q = np.array([0.1, 0.4, 0.5, 0.0]), np.array([0.3, 0.3, 0.2, 0.2])
    expected = jensenshannon(p, q, base=2) ** 2  # scipy returns the distance (its root)
    assert stats.js_divergence(p, q) == pytest.approx(expected)


def test_numeric_binning_uses_baseline_deciles():
    baseline = list(np.linspace(0, 100, 10001))  # deciles at 0, 10, ..., 100
    target = list(np.linspace(0.5, 9.5, 200))  # all in the first decile
    result = stats.compare(baseline, target)
    assert [b for b in result["bins"][1:3]] == [[0.0, 10.0], [10.0, 20.0]]
    # By hand: baseline 1/10 in each decile, target all in one; M has 0.55 there, 0.05 else.
    kl_p = 0.1 * math.log2(0.1 / 0.55) + 0.9 * math.log2(0.1 / 0.05)
    kl_q = math.log2(1 / 0.55)
    assert result["distance"] == pytest.approx((kl_p + kl_q) / 2, rel=1e-3)


def test_a_shifted_numeric_feature_crosses_the_default_threshold():
    rng = np.random.default_rng(3)
    train = list(rng.normal(40, 10, 5000))
    same = list(rng.normal(40, 10, 500))
    shifted = list(rng.normal(65, 10, 500))
    assert stats.compare(train, same)["distance"] < stats.DEFAULT_THRESHOLD
    assert stats.compare(train, shifted)["distance"] > stats.DEFAULT_THRESHOLD
