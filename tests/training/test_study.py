"""The study engine without HTTP: scales, the Bayesian optimiser, median stopping."""

from __future__ import annotations

import math
import random

import pytest

from labkit.vertex.errors import VertexError
from labkit.vertex.training.study import Param, Suggester, median_should_stop, parse_parameters


@pytest.mark.parametrize("scale", ["UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE",
                                   "UNIT_REVERSE_LOG_SCALE"])
def test_scales_round_trip_and_stay_in_range(scale):
    param = Param("lr", "DOUBLE", 1e-3, 1.0, scale=scale)
    for u in (0.0, 0.25, 0.5, 0.9, 1.0):
        value = param.decode(u)
        assert 1e-3 <= value <= 1.0
        assert param.encode(value)[0] == pytest.approx(u, abs=1e-9)


def test_reverse_log_is_dense_near_the_maximum():
    rng = random.Random(0)
    log = Param("a", "DOUBLE", 1e-3, 1.0, scale="UNIT_LOG_SCALE")
    reverse = Param("a", "DOUBLE", 1e-3, 1.0, scale="UNIT_REVERSE_LOG_SCALE")
    assert sum(log.sample(rng) < 0.1 for _ in range(1000)) > 600
    assert sum(reverse.sample(rng) > 0.9 for _ in range(1000)) > 600


def _regret(algorithm: str, seed: int) -> float:
    params = parse_parameters([
        {"parameterId": "x", "doubleValueSpec": {"minValue": -3, "maxValue": 3}},
        {"parameterId": "y", "doubleValueSpec": {"minValue": -3, "maxValue": 3}}])
    suggester = Suggester(params, algorithm, maximize=False, seed=seed)
    done = []
    for _ in range(12):
        v = suggester.suggest(done)
        done.append((v, (v["x"] - 1.2) ** 2 + (v["y"] + 0.7) ** 2))
    return min(score for _, score in done)


def test_bayesian_beats_random_search_on_a_quadratic():
    bayes = [_regret("ALGORITHM_UNSPECIFIED", seed) for seed in range(2)]
    rand = [_regret("RANDOM_SEARCH", seed) for seed in range(2)]
    assert sum(bayes) < sum(rand) / 3
    assert max(bayes) < 0.2


def test_grid_enumerates_integer_and_categorical_values():
    params = parse_parameters([
        {"parameterId": "layers", "integerValueSpec": {"minValue": "1", "maxValue": "3"}},
        {"parameterId": "act", "categoricalValueSpec": {"values": ["relu", "tanh"]}}])
    suggester = Suggester(params, "GRID_SEARCH", maximize=True)
    seen = []
    while (v := suggester.suggest([])) is not None:
        seen.append((v["layers"], v["act"]))
    assert seen == [(n, a) for n in (1, 2, 3) for a in ("relu", "tanh")]


def test_median_stopping_rule():
    completed = [[(1, 0.5), (2, 0.7)], [(1, 0.6), (2, 0.8)], [(1, 0.2), (2, 0.3)]]
    # running averages at step 2: 0.6, 0.7, 0.25 -> median 0.6
    assert median_should_stop([(1, 0.3), (2, 0.55)], completed, maximize=True)
    assert not median_should_stop([(1, 0.3), (2, 0.65)], completed, maximize=True)
    assert not median_should_stop([(1, 0.1)], [], maximize=True)  # nothing to compare with
    assert median_should_stop([(1, 0.9)], [[(1, 0.5)], [(1, 0.4)]], maximize=False)


def test_bad_parameter_specs_are_refused():
    with pytest.raises(VertexError, match="greater than"):
        parse_parameters([{"parameterId": "a",
                           "doubleValueSpec": {"minValue": 2, "maxValue": 1}}])
    with pytest.raises(VertexError, match="needs one of"):
        parse_parameters([{"parameterId": "a"}])
    assert math.isclose(Param("a", "DOUBLE", 1, 1).encode(1)[0], 0.5)
