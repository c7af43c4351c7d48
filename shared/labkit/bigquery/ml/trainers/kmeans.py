"""k-means with Lloyd's iterations written out, so that each iteration's loss (mean
squared distance) is recorded for ML.TRAINING_INFO; k-means++ seeding from scikit-learn."""

from __future__ import annotations

import math
import time

import numpy as np
from sklearn.cluster import kmeans_plusplus

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.trainers.base import rel_progress_stop


def default_clusters(n: int) -> int:
    return max(2, min(10, round(math.log10(max(n, 10)) + 1)))


class KMeansTrainer:
    def __init__(self):
        self.centroids = None

    def distances(self, X) -> np.ndarray:
        return np.sqrt(((X[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2))

    def fit(self, X, options) -> list[dict]:
        if options.get("distance_type") not in (None, "EUCLIDEAN"):
            raise not_local(f"k-means distance_type {options['distance_type']}")
        n = len(X)
        k = int(options.get("num_clusters") or default_clusters(n))
        if k < 2 or k > n:
            raise MLError(f"num_clusters must be between 2 and the number of training rows "
                          f"({n}); got {k}")
        rng = np.random.default_rng(0)
        method = options.get("kmeans_init_method") or "RANDOM"
        if method == "KMEANS++":
            self.centroids, _ = kmeans_plusplus(X, k, random_state=0)
        elif method == "RANDOM":
            self.centroids = X[rng.choice(n, size=k, replace=False)].copy()
        else:
            raise not_local(f"kmeans_init_method {method}")
        history, losses = [], []
        for it in range(int(options["max_iterations"])):
            start = time.perf_counter()
            assign = self.distances(X).argmin(axis=1)
            for c in range(k):
                members = X[assign == c]
                if len(members):
                    self.centroids[c] = members.mean(axis=0)
            dist = self.distances(X)
            assign = dist.argmin(axis=1)
            losses.append(float((dist.min(axis=1) ** 2).mean()))
            info = [{"centroid_id": c + 1,
                     "cluster_radius": float(np.sqrt((dist[assign == c, c] ** 2).mean()))
                     if (assign == c).any() else 0.0,
                     "cluster_size": int((assign == c).sum())} for c in range(k)]
            history.append({"iteration": it, "loss": losses[-1], "eval_loss": None,
                            "learning_rate": None,
                            "duration_ms": int((time.perf_counter() - start) * 1000),
                            "cluster_info": info})
            if options.get("early_stop", True) and (
                    rel_progress_stop(losses, float(options.get("min_rel_progress", 0.01)))
                    or (len(losses) > 1 and losses[-1] == losses[-2])):
                break
        return history

    def predict(self, X) -> np.ndarray:
        return self.distances(X)
