"""Hyperparameter search, shared by Vertex AI hyperparameter tuning jobs
(labkit.vertex.training) and BigQuery ML's NUM_TRIALS (labkit.bigquery.ml.tuning): the
parameter space and the algorithms that propose the next trial. No HTTP, no Vertex AI, no
BigQuery: a bad search space is a SearchSpaceError, which each room words as it must.

Algorithms, as Vertex's StudySpec.algorithm names them:
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
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import numpy as np

N_CANDIDATES = 2000


class SearchSpaceError(ValueError):
    """The search space does not suit the algorithm."""


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
                raise SearchSpaceError(f"Grid search requires every parameter to be INTEGER, "
                                       f"DISCRETE or CATEGORICAL; {', '.join(doubles)} is "
                                       "DOUBLE.")
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
