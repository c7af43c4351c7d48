"""The AutoML engine: data rules, splits, then a FLAML search over model families.

search() is Vertex AI's AutoMLTabularTrainingJob: raw rows and a target in, the best model
found within a time budget out, with its validation score on the chosen objective and the
test split. run_flaml() is the one FLAML call, which search() and BigQuery ML's
AUTOML_CLASSIFIER / AUTOML_REGRESSOR (on BigQuery ML's encoded features) share.
FLAML searches LightGBM, XGBoost, random forest and extra trees, choosing family and
hyperparameters by cost-frugal optimisation (it tries cheap configurations first and
spends the budget where the objective improves).

Budget: one node hour (1000 milli node hours, Vertex's minimum) is SECONDS_PER_NODE_HOUR
seconds of local search, capped at MAX_BUDGET_S, so a lab's job finishes in seconds.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labkit.automl import objectives
from labkit.automl.errors import InvalidInput, NoModelFound
from labkit.automl.features import TYPES, Featurizer
from labkit.automl.model import AutoMLModel
from labkit.automl.splits import predefined_roles, random_roles, timestamp_roles

__all__ = ["ESTIMATORS", "SEARCH_LOCK", "SearchResult", "budget_seconds", "check_data",
           "predefined_roles", "random_roles", "run_flaml", "search", "timestamp_roles"]

SECONDS_PER_NODE_HOUR = 5.0
MAX_BUDGET_S = 60.0
ESTIMATORS = ["lgbm", "xgboost", "rf", "extra_tree"]
MIN_ROWS, MAX_ROWS = 1000, 100_000_000
MIN_COLUMNS, MAX_COLUMNS = 2, 1000
MAX_CLASSES = 500
COLUMN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")
# FLAML's tuner keeps per-process state, so two searches in one process (two notebooks'
# jobs in the services process) corrupt each other: searches run one at a time, as they
# would queue for the two local cores anyway.
SEARCH_LOCK = threading.Lock()


def budget_seconds(milli_node_hours: float) -> float:
    return min(MAX_BUDGET_S, float(milli_node_hours) / 1000.0 * SECONDS_PER_NODE_HOUR)


@dataclass
class SearchResult:
    model: AutoMLModel
    objective: objectives.Objective
    validation_score: float          # the objective on the validation split
    best_estimator: str
    best_config: dict
    trials: int                      # configurations tried
    improvements: int                # of which improved on the best so far
    seconds: float
    time_budget_s: float
    threshold: float | None          # precision/recall objectives: the chosen threshold
    test: pd.DataFrame               # raw test rows (features + target)
    best_per_estimator: dict = field(default_factory=dict)


def check_data(frame: pd.DataFrame, target: str, task: str,
               transformations: dict[str, str]) -> None:
    """Vertex AI's data requirements for tabular classification and regression."""
    if target not in frame.columns:
        raise InvalidInput(f"Target column {target!r} is not in the dataset; its columns "
                           f"are: {', '.join(map(str, frame.columns))}.")
    if not MIN_COLUMNS <= frame.shape[1] <= MAX_COLUMNS:
        raise InvalidInput(f"The dataset has {frame.shape[1]} columns; tabular training "
                           f"needs between {MIN_COLUMNS} and {MAX_COLUMNS} columns.")
    if not MIN_ROWS <= len(frame) <= MAX_ROWS:
        raise InvalidInput(f"The dataset has {len(frame)} rows; tabular training needs "
                           f"between {MIN_ROWS:,} and {MAX_ROWS:,} rows.")
    bad = [c for c in frame.columns if not COLUMN_NAME.fullmatch(str(c))]
    if bad:
        raise InvalidInput(f"Invalid column name(s) {bad}: column names may contain only "
                           f"letters, digits and underscores and may not start with an "
                           f"underscore.")
    for column, kind in transformations.items():
        if column not in frame.columns:
            raise InvalidInput(f"Column {column!r} in the transformations is not in the "
                               f"dataset.")
        if kind not in TYPES:
            raise InvalidInput(f"Unknown transformation {kind!r} for column {column!r}; "
                               f"use one of {', '.join(TYPES)}.")
        if column == target:
            raise InvalidInput(f"The target column {target!r} cannot also be a feature "
                               f"in the transformations.")
    if not transformations:
        raise InvalidInput("Tabular training needs at least one feature column besides "
                           "the target.")
    labels = frame[target]
    if labels.isna().any():
        raise InvalidInput(f"The target column {target!r} has {int(labels.isna().sum())} "
                           f"null values; the target column cannot contain nulls.")
    if task == "classification":
        n = labels.astype(str).nunique()
        if not 2 <= n <= MAX_CLASSES:
            raise InvalidInput(f"The target column {target!r} has {n} distinct values; a "
                               f"classification target needs between 2 and {MAX_CLASSES}.")
    elif pd.to_numeric(labels, errors="coerce").isna().any():
        raise InvalidInput(f"The target column {target!r} must be numeric for regression.")


def run_flaml(X, y, task: str, metric, time_budget_s: float, *,
              estimators: list[str] | None = None, seed: int = 0, **fit_args):
    """One FLAML search (holdout evaluation, two cores), one at a time in this process;
    fit_args go to AutoML.fit (X_val, y_val, sample_weight, ...). Returns the fitted
    AutoML and the seconds the search took."""
    from flaml import AutoML

    automl = AutoML()
    logging.getLogger("flaml").setLevel(logging.ERROR)
    with SEARCH_LOCK, warnings.catch_warnings():
        started = time.perf_counter()
        warnings.simplefilter("ignore")
        automl.fit(X, y, task=task, metric=metric, time_budget=time_budget_s,
                   estimator_list=estimators or ESTIMATORS, eval_method="holdout", n_jobs=2,
                   seed=seed, verbose=0, log_file_name="", **fit_args)
        seconds = time.perf_counter() - started
    return automl, seconds


def search(frame: pd.DataFrame, label: str, task: str, objective: str | None = None,
           time_budget_s: float = 4.0, transformations: dict[str, str] | None = None,
           roles: np.ndarray | None = None, weight_column: str | None = None,
           early_stop: bool = True, recall: float | None = None,
           precision: float | None = None, seed: int = 0,
           estimators: list[str] | None = None) -> SearchResult:
    """Searches models for `label` from the other columns (or `transformations`)."""
    if transformations is None:
        transformations = {c: "auto" for c in frame.columns if c not in (label, weight_column)}
    check_data(frame, label, task, transformations)
    # Features in the table's column order: array instances are read in that order.
    transformations = {c: transformations[c] for c in frame.columns if c in transformations}
    frame = frame.reset_index(drop=True)
    y = frame[label].astype(str) if task == "classification" else \
        pd.to_numeric(frame[label]).astype(float)
    classes = sorted(y.unique()) if task == "classification" else None
    goal = objectives.resolve(objective, task, len(classes or []), recall, precision, y)
    if roles is None:
        roles = random_roles(len(frame), (0.8, 0.1, 0.1), seed)
    train, val, test = (roles == "TRAIN"), (roles == "VALIDATE"), (roles == "TEST")
    for name, mask in (("training", train), ("validation", val)):
        if not mask.any():
            raise InvalidInput(f"The {name} split is empty; give it a share of the rows.")
    if task == "classification" and y[train].nunique() < len(classes):
        missing = sorted(set(classes) - set(y[train]))
        raise InvalidInput(f"Classes {missing} of the target column have no rows in the "
                           f"training split.")
    weights = None
    if weight_column:
        if weight_column not in frame.columns:
            raise InvalidInput(f"Weight column {weight_column!r} is not in the dataset.")
        weights = pd.to_numeric(frame[weight_column], errors="coerce")
        if weights.isna().any() or (weights < 0).any() or (weights > 10000).any():
            raise InvalidInput(f"Weight column {weight_column!r} must hold numbers between "
                               f"0 and 10000.")
        weights = weights.to_numpy(dtype=float)

    featurizer = Featurizer(transformations).fit(frame[train])
    X = featurizer.transform(frame)
    automl, seconds = run_flaml(
        X[train].reset_index(drop=True), y[train].reset_index(drop=True), task, goal.metric,
        time_budget_s, estimators=estimators, seed=seed,
        X_val=X[val].reset_index(drop=True), y_val=y[val].reset_index(drop=True),
        early_stop=early_stop, retrain_full=True,
        sample_weight=None if weights is None else weights[train],
        sample_weight_val=None if weights is None else weights[val])
    if automl.model is None:
        raise NoModelFound("The model search found no model within the time budget; raise "
                           "budget_milli_node_hours.")
    if task == "classification":
        classes = [str(c) for c in automl.classes_]  # predict_proba's column order
    interval = None
    if task == "regression":
        residuals = y[val].to_numpy() - automl.predict(X[val])
        interval = (float(np.quantile(residuals, 0.025)), float(np.quantile(residuals, 0.975)))
    model = AutoMLModel(task, featurizer, automl, classes, interval, list(frame.columns))
    threshold = None
    if goal.value is not None:
        scores = model.predict_frame(frame[val])[:, 1]
        positive = (y[val] == classes[1]).astype(int).to_numpy()
        measure = objectives.precision_at_recall if goal.name.endswith("recall") \
            else objectives.recall_at_precision
        threshold = measure(positive, scores, goal.value)[1]
    columns = list(transformations) + [label]
    return SearchResult(
        model=model, objective=goal, validation_score=objectives.score(goal, automl.best_loss),
        best_estimator=automl.best_estimator, best_config=dict(automl.best_config or {}),
        # FLAML's config_history keeps only improvements; its iteration counter counts all.
        trials=int(getattr(automl, "_track_iter", len(automl.config_history) - 1)) + 1,
        improvements=len(automl.config_history), seconds=seconds, time_budget_s=time_budget_s,
        threshold=threshold, test=frame.loc[test if test.any() else val, columns],
        best_per_estimator={k: objectives.score(goal, v)
                            for k, v in automl.best_loss_per_estimator.items()
                            if v is not None and np.isfinite(v)})
