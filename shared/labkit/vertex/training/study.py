"""The study behind a HyperparameterTuningJob: parameter space, search algorithms, stopping.

Algorithms, as StudySpec.algorithm names them:
- GRID_SEARCH: every combination of the (INTEGER, DISCRETE, CATEGORICAL) values, in order;
  DOUBLE parameters are refused, as Vertex refuses them.
- RANDOM_SEARCH: independent uniform draws in each parameter's scaled space.
- ALGORITHM_UNSPECIFIED (Vertex's default, Bayesian optimisation): the first trials are
  random; after that a Gaussian process (scikit-learn GaussianProcessRegressor, Matern 5/2
  kernel plus white noise) is fitted to the completed trials' objective over the scaled
  space (each numeric parameter in [0, 1] by its scale type, categorical one-hot), and the
  next trial is the random candidate with the highest expected improvement.
Scale types: UNIT_LINEAR_SCALE, UNIT_LOG_SCALE (uniform in log), UNIT_REVERSE_LOG_SCALE
(dense near the maximum: v = max + min - exp(uniform in log)).

Median automated stopping (medianAutomatedStoppingSpec), Vertex's rule: a running trial is
stopped when its best objective so far is strictly worse than the median, over completed
trials, of their running-average objective up to the same step.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import numpy as np

from labkit.vertex import errors

N_CANDIDATES = 2000


@dataclass
class Param:
    id: str
    kind: str  # DOUBLE, INTEGER, DISCRETE, CATEGORICAL
    low: float = 0.0
    high: float = 1.0
    values: tuple = ()
    scale: str = "UNIT_LINEAR_SCALE"

    def encode(self, value) -> list[float]:
        if self.kind == "CATEGORICAL":
            return [1.0 if value == v else 0.0 for v in self.values]
        low, high, value = self.low, self.high, float(value)
        if high == low:
            return [0.5]
        if self.scale == "UNIT_LOG_SCALE":
            return [(math.log(value) - math.log(low)) / (math.log(high) - math.log(low))]
        if self.scale == "UNIT_REVERSE_LOG_SCALE":
            return [1 - (math.log(high + low - value) - math.log(low))
                    / (math.log(high) - math.log(low))]
        return [(value - low) / (high - low)]

    def decode(self, u: float):
        low, high = self.low, self.high
        if self.scale == "UNIT_LOG_SCALE":
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        elif self.scale == "UNIT_REVERSE_LOG_SCALE":
            value = high + low - math.exp(math.log(low) + (1 - u) * (math.log(high)
                                                                     - math.log(low)))
        else:
            value = low + u * (high - low)
        return min(max(value, low), high)

    def sample(self, rng: random.Random):
        if self.kind in ("CATEGORICAL", "DISCRETE"):
            return rng.choice(self.values)
        value = self.decode(rng.random())
        return int(round(value)) if self.kind == "INTEGER" else value

    def grid(self) -> list:
        if self.kind == "INTEGER":
            return list(range(int(self.low), int(self.high) + 1))
        return list(self.values)


def _scale_name(value) -> str:
    from google.cloud.aiplatform_v1.types import StudySpec

    if value in (None, "", 0):
        return "UNIT_LINEAR_SCALE"
    try:
        return StudySpec.ParameterSpec.ScaleType(int(value)).name
    except ValueError:
        return str(value)


def parse_parameters(specs: list[dict]) -> list[Param]:
    if not specs:
        raise errors.invalid("study_spec.parameters must not be empty.")
    params = []
    for spec in specs:
        pid = spec.get("parameterId")
        if not pid:
            raise errors.invalid("study_spec.parameters[].parameter_id is required.")
        if spec.get("conditionalParameterSpecs"):
            raise errors.gcp_only("Conditional hyperparameters (conditional_parameter_specs)")
        scale = _scale_name(spec.get("scaleType"))
        if "doubleValueSpec" in spec or "integerValueSpec" in spec:
            kind = "DOUBLE" if "doubleValueSpec" in spec else "INTEGER"
            value_spec = spec.get("doubleValueSpec") or spec.get("integerValueSpec")
            low, high = float(value_spec.get("minValue", 0)), float(value_spec.get("maxValue", 0))
            if low > high:
                raise errors.invalid(f"Parameter {pid}: min_value {low} is greater than "
                                     f"max_value {high}.")
            param = Param(pid, kind, low, high, scale=scale)
        elif "discreteValueSpec" in spec:
            values = tuple(sorted(float(v) for v in spec["discreteValueSpec"].get("values", [])))
            if not values:
                raise errors.invalid(f"Parameter {pid}: discrete_value_spec.values is empty.")
            param = Param(pid, "DISCRETE", values[0], values[-1], values, scale)
        elif "categoricalValueSpec" in spec:
            values = tuple(spec["categoricalValueSpec"].get("values", []))
            if not values:
                raise errors.invalid(f"Parameter {pid}: categorical_value_spec.values is empty.")
            param = Param(pid, "CATEGORICAL", values=values)
        else:
            raise errors.invalid(f"Parameter {pid} needs one of double_value_spec, "
                                 f"integer_value_spec, discrete_value_spec, "
                                 f"categorical_value_spec.")
        if param.kind != "CATEGORICAL" and scale in ("UNIT_LOG_SCALE",
                                                     "UNIT_REVERSE_LOG_SCALE") and param.low <= 0:
            raise errors.invalid(f"Parameter {pid}: {scale} needs a minimum value greater "
                                 f"than 0.")
        params.append(param)
    return params


class Suggester:
    """Proposes the next trial's parameters from the finished ones."""

    def __init__(self, params: list[Param], algorithm: str, maximize: bool, seed=None):
        self.params = params
        self.algorithm = algorithm
        self.maximize = maximize
        self.rng = random.Random(seed)
        if algorithm == "GRID_SEARCH":
            doubles = [p.id for p in params if p.kind == "DOUBLE"]
            if doubles:
                raise errors.invalid(f"Grid search requires every parameter to be INTEGER, "
                                     f"DISCRETE or CATEGORICAL; {', '.join(doubles)} is DOUBLE.")
            self._grid = itertools.product(*(p.grid() for p in params))
        self.n_initial = max(3, len(params) + 1)

    def encode(self, values: dict) -> list[float]:
        return [x for p in self.params for x in p.encode(values[p.id])]

    def random(self) -> dict:
        return {p.id: p.sample(self.rng) for p in self.params}

    def suggest(self, done: list[tuple[dict, float]]) -> dict | None:
        """done: (parameters, objective) of completed trials. None: the grid is exhausted."""
        if self.algorithm == "GRID_SEARCH":
            combo = next(self._grid, None)
            return None if combo is None else dict(zip([p.id for p in self.params], combo,
                                                       strict=True))
        if self.algorithm == "RANDOM_SEARCH" or len(done) < self.n_initial:
            return self.random()
        return self._bayesian(done)

    def _bayesian(self, done: list[tuple[dict, float]]) -> dict:
        from scipy.stats import norm
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        x = np.array([self.encode(values) for values, _ in done])
        y = np.array([v if self.maximize else -v for _, v in done])
        kernel = ConstantKernel(1.0) * Matern(length_scale=0.3, nu=2.5) + WhiteKernel(1e-3)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1,
                                      random_state=self.rng.randrange(2**31))
        gp.fit(x, y)
        candidates = [self.random() for _ in range(N_CANDIDATES)]
        mean, std = gp.predict(np.array([self.encode(c) for c in candidates]), return_std=True)
        best = y.max()
        std = np.maximum(std, 1e-9)
        z = (mean - best - 0.01) / std
        improvement = (mean - best - 0.01) * norm.cdf(z) + std * norm.pdf(z)
        return candidates[int(np.argmax(improvement))]


def running_average(measurements: list[tuple[int, float]], up_to_step: int) -> float | None:
    values = [v for step, v in measurements if step <= up_to_step]
    return sum(values) / len(values) if values else None


def median_should_stop(measurements: list[tuple[int, float]],
                       completed: list[list[tuple[int, float]]], maximize: bool) -> bool:
    """Vertex's median automated stopping rule (see the module docstring)."""
    if not measurements:
        return False
    step = measurements[-1][0]
    averages = [a for a in (running_average(m, step) for m in completed) if a is not None]
    if not averages:
        return False
    median = float(np.median(averages))
    values = [v for _, v in measurements]
    best = max(values) if maximize else min(values)
    return best < median if maximize else best > median
