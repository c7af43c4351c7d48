"""Explicit-feedback matrix factorization by alternating least squares:
rating ~ global mean + user bias + item bias + user factors . item factors."""

from __future__ import annotations

import time

import numpy as np

from labkit.bigquery.ml.trainers.base import rel_progress_stop


def _solve_half(groups, other, fixed, fixed_bias, residual, eye, factors, bias) -> None:
    """One half of an ALS sweep: with the other side's factors and biases fixed, each row
    of `factors` (and its bias) is the ridge solution for the ratings in its group."""
    k = factors.shape[1]
    for i, rows in enumerate(groups):
        if len(rows):
            A = np.hstack([fixed[other[rows]], np.ones((len(rows), 1))])
            sol = np.linalg.solve(A.T @ A + eye, A.T @ (residual[rows] - fixed_bias[other[rows]]))
            factors[i], bias[i] = sol[:k], sol[k]


class ALSTrainer:
    def __init__(self):
        self.users: list = []
        self.items: list = []

    def fit(self, users, items, ratings, eval_data, options) -> list[dict]:
        self.users = sorted(set(users), key=str)
        self.items = sorted(set(items), key=str)
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {v: i for i, v in enumerate(self.items)}
        u = np.array([self.user_index[x] for x in users])
        v = np.array([self.item_index[x] for x in items])
        r = np.asarray(ratings, dtype=float)
        n_u, n_i = len(self.users), len(self.items)
        k = int(options.get("num_factors") or max(2, min(10, int(np.log2(max(len(r), 4))))))
        lam = float(options.get("l2_reg") or 0.0) + 1e-6
        rng = np.random.default_rng(0)
        self.mu = float(r.mean())
        self.P = rng.normal(0, 0.1, (n_u, k))
        self.Q = rng.normal(0, 0.1, (n_i, k))
        self.bu = np.zeros(n_u)
        self.bi = np.zeros(n_i)
        by_user = [np.nonzero(u == i)[0] for i in range(n_u)]
        by_item = [np.nonzero(v == j)[0] for j in range(n_i)]
        history, eval_losses = [], []
        eye = lam * np.eye(k + 1)
        residual = r - self.mu  # the ratings less the global mean
        for it in range(int(options["max_iterations"])):
            start = time.perf_counter()
            _solve_half(by_user, v, self.Q, self.bi, residual, eye, self.P, self.bu)
            _solve_half(by_item, u, self.P, self.bu, residual, eye, self.Q, self.bi)
            train_loss = float(np.mean((self.predict(users, items) - r) ** 2))
            eval_loss = None
            if eval_data is not None:
                eu, ei, er = eval_data
                eval_loss = float(np.mean((self.predict(eu, ei) - np.asarray(er, float)) ** 2))
                eval_losses.append(eval_loss)
            history.append({"iteration": it, "loss": train_loss, "eval_loss": eval_loss,
                            "learning_rate": None,
                            "duration_ms": int((time.perf_counter() - start) * 1000)})
            if options.get("early_stop") and rel_progress_stop(
                    eval_losses or [h["loss"] for h in history],
                    float(options["min_rel_progress"])):
                break
        return history

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings; an unknown user or item falls back to the known biases."""
        out = np.full(len(users), self.mu)
        for n, (a, b) in enumerate(zip(users, items, strict=False)):
            i, j = self.user_index.get(a), self.item_index.get(b)
            if i is not None:
                out[n] += self.bu[i]
            if j is not None:
                out[n] += self.bi[j]
            if i is not None and j is not None:
                out[n] += self.P[i] @ self.Q[j]
        return out
