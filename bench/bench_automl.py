"""AutoML benchmarks on the census income data (the lab's data), 2 cores:

- quality: the local AutoML engine vs the hand-built baseline a learner writes first
  (one-hot features + logistic regression, lab-00 style), same rows, same split, the
  baseline given the same time budget it does not need; metric: test AUC ROC (ratio >1
  means AutoML wins);
- overhead: engine.search (column transformations, data rules, splits, FLAML, threshold)
  vs calling FLAML's AutoML.fit directly on the same prepared frame with the same budget
  (wall seconds; ratio = engine / FLAML).

Smoke mode: 2,000 rows, one search and one FLAML fit of 2 s each.
"""

from __future__ import annotations

import gzip
import time
import warnings
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "shared" / "data" / "census_adult_income.csv.gz"
ROWS = 20000
BUDGET_S = 20.0
LAB_BUDGET_S = 5.0  # what 1000 milli node hours (Vertex's minimum) buys locally
LABEL = "income_bracket"


def _census(rows: int) -> pd.DataFrame:
    with gzip.open(DATA, "rt") as f:
        frame = pd.read_csv(f, skipinitialspace=True)
    return frame.sample(rows, random_state=0).reset_index(drop=True)


def _baseline_auc(train: pd.DataFrame, test: pd.DataFrame, positive: str) -> tuple[float, float]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = train.drop(columns=[LABEL])
    categorical = features.select_dtypes(["object", "string"]).columns.tolist()
    numeric = [c for c in features if c not in categorical]
    model = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                           ("num", StandardScaler(), numeric)]),
        LogisticRegression(max_iter=1000))
    started = time.perf_counter()
    model.fit(features, train[LABEL] == positive)
    seconds = time.perf_counter() - started
    scores = model.predict_proba(test.drop(columns=[LABEL]))[:, 1]
    return float(roc_auc_score(test[LABEL] == positive, scores)), seconds


def run(smoke: bool = False) -> list[dict]:
    from flaml import AutoML
    from sklearn.metrics import roc_auc_score

    from labkit.automl import engine
    from labkit.automl.features import Featurizer

    n_rows, budgets = (2000, (2.0,)) if smoke else (ROWS, (LAB_BUDGET_S, BUDGET_S))
    budget = budgets[-1]  # the overhead comparison's
    frame = _census(n_rows)
    roles = engine.random_roles(len(frame), (0.8, 0.1, 0.1), seed=0)
    positive = sorted(frame[LABEL].unique())[1]

    test = frame[roles == "TEST"]
    baseline_auc, baseline_s = _baseline_auc(frame[roles != "TEST"], test, positive)
    rows = []
    for searched in budgets:
        started = time.perf_counter()
        result = engine.search(frame, LABEL, "classification", "maximize-au-roc", searched,
                               roles=roles)
        engine_s = time.perf_counter() - started
        probs = result.model.predict_frame(test)
        automl_auc = float(roc_auc_score(test[LABEL] == positive,
                                         probs[:, result.model.classes.index(positive)]))
        rows.append({
            "name": f"automl test AUC ROC, census {n_rows} rows, {searched:g} s budget, "
                    f"{result.trials} trials, best {result.best_estimator} (baseline: one-hot "
                    f"logistic regression, {baseline_s:.1f} s)",
            "value": round(automl_auc, 4), "unit": "auRoc", "baseline": round(baseline_auc, 4),
            "target": "ratio >= 1"})

    columns = {c: "auto" for c in frame if c != LABEL}
    train, val = roles == "TRAIN", roles == "VALIDATE"
    featurizer = Featurizer(columns).fit(frame[train])
    X, y = featurizer.transform(frame), frame[LABEL].astype(str)
    direct = AutoML()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct.fit(X[train], y[train], X_val=X[val], y_val=y[val], task="classification",
                   metric="roc_auc", time_budget=budget, estimator_list=engine.ESTIMATORS,
                   eval_method="holdout", n_jobs=2, seed=0, verbose=0, log_file_name="")
    flaml_s = time.perf_counter() - started
    return rows + [
        {"name": f"automl engine.search wall time vs FLAML AutoML.fit direct, "
                 f"{budget:g} s budget ({result.trials} trials, best {result.best_estimator})",
         "value": round(engine_s, 2), "unit": "s", "baseline": round(flaml_s, 2),
         "target": "ratio <= 1.5"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row, round(row["value"] / row["baseline"], 3))
