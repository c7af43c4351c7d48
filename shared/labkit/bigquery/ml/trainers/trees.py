"""boosted_tree_* and random_forest_* on XGBoost, the library BigQuery ML itself uses for
these model types; each boosting round is one ML.TRAINING_INFO iteration."""

from __future__ import annotations

import time

import numpy as np
import xgboost as xgb

from labkit.bigquery.ml.trainers.base import loss, rel_progress_stop


class _RelProgress(xgb.callback.TrainingCallback):
    def __init__(self, min_rel_progress: float):
        self.min_rel_progress = min_rel_progress

    def after_iteration(self, model, epoch, evals_log) -> bool:
        history = list(evals_log.get("validation_1", evals_log.get("validation_0", {}))
                       .values())
        return bool(history) and rel_progress_stop(list(history[0]), self.min_rel_progress)


class TreeTrainer:
    def __init__(self, model_type: str):
        self.classifier = model_type.endswith("classifier")
        self.forest = model_type.startswith("random_forest")
        self.model = None

    def fit(self, X, y, w, X_eval, y_eval, options, n_classes=None) -> list[dict]:
        params = dict(max_depth=int(options["max_tree_depth"]),
                      subsample=float(options["subsample"]),
                      reg_lambda=float(options.get("l2_reg") or 0),
                      reg_alpha=float(options.get("l1_reg") or 0),
                      gamma=float(options.get("min_split_loss") or 0),
                      min_child_weight=float(options.get("min_tree_child_weight") or 1),
                      colsample_bytree=float(options.get("colsample_bytree") or 1),
                      colsample_bylevel=float(options.get("colsample_bylevel") or 1),
                      colsample_bynode=float(options.get("colsample_bynode") or 1),
                      tree_method="hist", n_jobs=2, random_state=0)
        evals = [(X, y)] + ([(X_eval, y_eval)] if X_eval is not None else [])
        if self.forest:
            cls = xgb.XGBRFClassifier if self.classifier else xgb.XGBRFRegressor
            self.model = cls(n_estimators=int(options["num_parallel_tree"]), **params)
        else:
            callbacks = []
            if options.get("early_stop") and X_eval is not None:
                callbacks.append(_RelProgress(float(options["min_rel_progress"])))
            cls = xgb.XGBClassifier if self.classifier else xgb.XGBRegressor
            self.model = cls(n_estimators=int(options["max_iterations"]),
                             learning_rate=float(options["learn_rate"]),
                             num_parallel_tree=int(options["num_parallel_tree"]),
                             callbacks=callbacks, **params)
        start = time.perf_counter()
        self.model.fit(X, y, sample_weight=w, eval_set=evals, verbose=False)
        ms = int((time.perf_counter() - start) * 1000)
        if self.forest:
            return [{"iteration": 0, "loss": loss(self.classifier, y, self.predict(X)),
                     "eval_loss": loss(self.classifier, y_eval, self.predict(X_eval))
                     if X_eval is not None else None, "learning_rate": None,
                     "duration_ms": ms}]
        log = self.model.evals_result()
        train = list(log["validation_0"].values())[0]
        evals_ = list(log["validation_1"].values())[0] if X_eval is not None else None
        rounds = len(train)
        power = 1 if self.classifier else 2    # XGBoost logs RMSE; BigQuery reports MSE
        return [{"iteration": i, "loss": float(train[i]) ** power,
                 "eval_loss": float(evals_[i]) ** power if evals_ else None,
                 "learning_rate": float(options["learn_rate"]),
                 "duration_ms": ms // max(rounds, 1)} for i in range(rounds)]

    def predict(self, X) -> np.ndarray:
        if self.classifier:
            return self.model.predict_proba(X)
        return self.model.predict(X).astype(float)

    def importance(self) -> dict[int, dict]:
        """Feature index -> importance weight (splits), gain and cover (averages)."""
        booster = self.model.get_booster()
        out: dict[int, dict] = {}
        for kind in ("weight", "gain", "cover"):
            for key, value in booster.get_score(importance_type=kind).items():
                out.setdefault(int(key[1:]), {})[kind] = float(value)
        return out
