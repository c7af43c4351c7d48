"""linear_reg and logistic_reg on scikit-learn. linear_reg without L1 solves the normal
equation (BigQuery's AUTO_STRATEGY for small feature counts) in one iteration."""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, LinearRegression, LogisticRegression, Ridge

from labkit.bigquery.ml.trainers.base import loss


class LinearTrainer:
    def __init__(self, model_type: str):
        self.classifier = model_type == "logistic_reg"
        self.model = None

    def build(self, options: dict):
        l1, l2 = float(options.get("l1_reg") or 0), float(options.get("l2_reg") or 0)
        if self.classifier:
            if l1 + l2 == 0:
                return LogisticRegression(C=np.inf, max_iter=int(options["max_iterations"]))
            return LogisticRegression(C=1.0 / (2 * (l1 + l2)), l1_ratio=l1 / (l1 + l2),
                                      solver="saga" if l1 else "lbfgs",
                                      max_iter=int(options["max_iterations"]))
        if l1:
            return ElasticNet(alpha=l1 + l2, l1_ratio=l1 / (l1 + l2),
                              max_iter=max(1000, int(options["max_iterations"])))
        return Ridge(alpha=l2) if l2 else LinearRegression()

    def fit(self, X, y, w, X_eval, y_eval, options, n_classes=None) -> list[dict]:
        start = time.perf_counter()
        X = _compact(X)
        self.model = self.build(options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(X, y, sample_weight=w)
        ms = int((time.perf_counter() - start) * 1000)
        iterations = int(np.max(getattr(self.model, "n_iter_", 1))) if self.classifier else 1
        return [{"iteration": iterations - 1, "loss": loss(self.classifier, y, self.predict(X)),
                 "eval_loss": loss(self.classifier, y_eval, self.predict(X_eval))
                 if X_eval is not None else None,
                 "learning_rate": None, "duration_ms": ms}]

    def predict(self, X) -> np.ndarray:
        X = _compact(X)
        if self.classifier:
            return self.model.predict_proba(X)
        return self.model.predict(X)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(coef with shape (outputs, features), intercepts) in the encoded feature space."""
        coef = np.atleast_2d(self.model.coef_)
        return coef, np.atleast_1d(self.model.intercept_)


def _compact(X):
    """One-hot encoded data is mostly zeros; the solvers run faster on it stored sparse."""
    if X is None or sparse.issparse(X) or X.size == 0:
        return X
    return sparse.csr_matrix(X) if np.count_nonzero(X) < 0.3 * X.size else X
