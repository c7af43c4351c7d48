"""Hyperparameter tuning in CREATE MODEL: NUM_TRIALS trials, each a real training with the
hyperparameters the search proposes, scored on the evaluation split; the optimal trial is
what ML.EVALUATE / ML.PREDICT use unless a trial_id is given, and ML.TRIAL_INFO lists them.

docs: "Hyperparameter tuning overview" (https://cloud.google.com/bigquery/docs/
hp-tuning-overview) and the CREATE MODEL pages' NUM_TRIALS, MAX_PARALLEL_TRIALS,
HPARAM_TUNING_ALGORITHM, HPARAM_TUNING_OBJECTIVES:
- objectives per model type (the first of a list; one objective only locally): LINEAR_REG
  and regressors MEAN_ABSOLUTE_ERROR, MEAN_SQUARED_ERROR, MEAN_SQUARED_LOG_ERROR,
  MEDIAN_ABSOLUTE_ERROR, R2_SCORE (default), EXPLAINED_VARIANCE; LOGISTIC_REG and classifiers
  PRECISION, RECALL, ACCURACY, F1_SCORE, LOG_LOSS, ROC_AUC (default); KMEANS
  DAVIES_BOULDIN_INDEX;
- the table's search spaces: L1_REG / L2_REG (0, 10] on a log scale, NUM_CLUSTERS [2, 10]
  by default within [2, 100]; the others as the DNN and tree pages list them (see SPACES);
- algorithms: VIZIER_DEFAULT (Vertex AI Vizier; locally the Bayesian search of the local
  Vertex AI hyperparameter tuning, labkit.hparams), RANDOM_SEARCH,
  GRID_SEARCH (discrete spaces only). MAX_PARALLEL_TRIALS trials are proposed together
  from the same finished trials, as parallel trials are; they then run one after another.
Local choices where the page leaves it open (said here, not hidden): a log-scale range
starting at 0 starts at 1e-5; with NUM_TRIALS and no HPARAM_* option the model type's
DEFAULT_TUNED hyperparameters are searched over their default ranges; AUTO_SPLIT holds
out DATA_SPLIT_EVAL_FRACTION (0.2) at random for the trials' objective, whatever the size,
and DATA_SPLIT_TEST_FRACTION (default 0) more rows as test data for ML.EVALUATE.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.sqlscan import HparamCandidates, HparamRange
from labkit.hparams import Param, SearchSpaceError, Suggester

ALGORITHMS = {"VIZIER_DEFAULT": "ALGORITHM_UNSPECIFIED", "RANDOM_SEARCH": "RANDOM_SEARCH",
              "GRID_SEARCH": "GRID_SEARCH"}
REGRESSION = ["mean_absolute_error", "mean_squared_error", "mean_squared_log_error",
              "median_absolute_error", "r2_score", "explained_variance"]
CLASSIFICATION = ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"]
MINIMIZE = {"mean_absolute_error", "mean_squared_error", "mean_squared_log_error",
            "median_absolute_error", "log_loss", "davies_bouldin_index"}

# option -> (kind, valid low, valid high, default space, scale); kind DOUBLE, INTEGER or
# CATEGORICAL (default space: (low, high) or the candidate values)
_REG = ("DOUBLE", 0.0, math.inf, (0.0, 10.0), "LOG")
_TREE = {"l1_reg": _REG, "l2_reg": _REG,
         "max_tree_depth": ("INTEGER", 1, 20, (1, 10), "LINEAR"),
         "subsample": ("DOUBLE", 0.0, 1.0, (0.0, 1.0), "LINEAR"),
         "min_split_loss": ("DOUBLE", 0.0, math.inf, (0.0, 20.0), "LINEAR"),
         "num_parallel_tree": ("INTEGER", 1, math.inf, (1, 10), "LINEAR"),
         "min_tree_child_weight": ("INTEGER", 0, math.inf, (0, 20), "LINEAR"),
         "colsample_bytree": ("DOUBLE", 0.0, 1.0, (0.0, 1.0), "LINEAR"),
         "colsample_bylevel": ("DOUBLE", 0.0, 1.0, (0.0, 1.0), "LINEAR"),
         "colsample_bynode": ("DOUBLE", 0.0, 1.0, (0.0, 1.0), "LINEAR"),
         "booster_type": ("CATEGORICAL", None, None, ("GBTREE", "DART"), None),
         "tree_method": ("CATEGORICAL", None, None, ("AUTO", "EXACT", "APPROX", "HIST"), None)}
_DNN = {"l1_reg": _REG, "l2_reg": _REG,
        "learn_rate": ("DOUBLE", 0.0, 1.0, (0.0, 1.0), "LINEAR"),
        "dropout": ("DOUBLE", 0.0, 1.0, (0.0, 0.8), "LINEAR"),
        "batch_size": ("INTEGER", 1, math.inf, (16, 1024), "LOG"),
        "hidden_units": ("CATEGORICAL", None, None, ((16,), (32,), (64,), (128,)), None),
        "optimizer": ("CATEGORICAL", None, None, ("ADAGRAD", "ADAM", "FTRL", "RMSPROP", "SGD"),
                      None),
        "activation_fn": ("CATEGORICAL", None, None,
                          ("RELU", "RELU6", "ELU", "SELU", "SIGMOID", "TANH"), None)}
SPACES = {
    "linear_reg": {"l1_reg": _REG, "l2_reg": _REG},
    "logistic_reg": {"l1_reg": _REG, "l2_reg": _REG},
    "kmeans": {"num_clusters": ("INTEGER", 2, 100, (2, 10), "LINEAR")},
    "boosted_tree": {**_TREE, "learn_rate": ("DOUBLE", 0.0, math.inf, (0.0, 1.0), "LINEAR")},
    "random_forest": _TREE,
    "dnn": _DNN,
}
DEFAULT_TUNED = {"linear_reg": ["l1_reg", "l2_reg"], "logistic_reg": ["l1_reg", "l2_reg"],
                 "kmeans": ["num_clusters"],
                 "boosted_tree": ["learn_rate", "max_tree_depth", "subsample", "l2_reg"],
                 "random_forest": ["max_tree_depth", "subsample", "l2_reg"],
                 "dnn": ["learn_rate", "dropout", "batch_size"]}
LOG_FLOOR = 1e-5


def family_of(model_type: str) -> str:
    for prefix in ("boosted_tree", "random_forest", "dnn"):
        if model_type.startswith(prefix):
            return prefix
    return model_type


@dataclass
class Plan:
    """What the tuning statement asks for, validated."""
    num_trials: int
    parallel: int
    algorithm: str
    objective: str
    params: list                         # labkit.hparams.Param
    fixed: dict = field(default_factory=dict)   # the options without HPARAM_* values

    @property
    def maximize(self) -> bool:
        return self.objective not in MINIMIZE


def objectives_for(model_type: str) -> list[str]:
    if model_type == "kmeans":
        return ["davies_bouldin_index"]
    from labkit.bigquery.ml.options import CLASSIFIERS

    return CLASSIFICATION if model_type in CLASSIFIERS else REGRESSION


def plan(options: dict) -> Plan | None:
    """The tuning plan of resolved CREATE MODEL options, or None without NUM_TRIALS."""
    model_type = options["model_type"]
    hparams = {k: v for k, v in options.items()
               if isinstance(v, (HparamRange, HparamCandidates))}
    if options.get("num_trials") is None:
        for key in ("max_parallel_trials", "hparam_tuning_algorithm",
                    "hparam_tuning_objectives"):
            if options.get(key) is not None:
                raise MLError(f"{key.upper()} can only be set when NUM_TRIALS is set")
        if hparams:
            raise MLError(f"HPARAM_RANGE and HPARAM_CANDIDATES need NUM_TRIALS; "
                          f"{sorted(hparams)[0].upper()} has one")
        return None
    family = family_of(model_type)
    if family not in SPACES:
        raise not_local(f"Hyperparameter tuning of {model_type.upper()} models")
    trials = options["num_trials"]
    if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= 100:
        raise MLError(f"NUM_TRIALS must be an integer between 1 and 100; got {trials}")
    parallel = options.get("max_parallel_trials") or 1
    if not isinstance(parallel, int) or not 1 <= parallel <= 5:
        raise MLError(f"MAX_PARALLEL_TRIALS must be an integer between 1 and 5; got {parallel}")
    if parallel > trials:
        raise MLError(f"MAX_PARALLEL_TRIALS ({parallel}) cannot be larger than NUM_TRIALS "
                      f"({trials})")
    algorithm = str(options.get("hparam_tuning_algorithm") or "VIZIER_DEFAULT").upper()
    if algorithm not in ALGORITHMS:
        raise MLError(f"Invalid value for HPARAM_TUNING_ALGORITHM: {algorithm}. Supported "
                      f"values: {', '.join(ALGORITHMS)}")
    objective = _objective(model_type, options.get("hparam_tuning_objectives"))
    space = SPACES[family]
    for name in hparams:
        if name not in space:
            raise MLError(f"Hyperparameter tuning is not supported for option "
                          f"{name.upper()} of model type {model_type.upper()}; tunable: "
                          f"{', '.join(k.upper() for k in space)}")
    if not hparams:
        hparams = {name: None for name in DEFAULT_TUNED[family]}
    params = [_param(name, value, space[name]) for name, value in hparams.items()]
    fixed = {k: v for k, v in options.items() if k not in hparams}
    return Plan(trials, parallel, algorithm, objective, params, fixed)


def _objective(model_type: str, value) -> str:
    allowed = objectives_for(model_type)
    default = "r2_score" if allowed is REGRESSION else "roc_auc" \
        if allowed is CLASSIFICATION else allowed[0]
    if value is None:
        return default
    names = value if isinstance(value, list) else [value]
    if len(names) != 1:
        raise not_local("Multi-objective hyperparameter tuning (more than one "
                        "HPARAM_TUNING_OBJECTIVES)")
    name = str(names[0]).lower()
    if name not in allowed:
        raise MLError(f"Invalid HPARAM_TUNING_OBJECTIVES {names[0]} for model type "
                      f"{model_type.upper()}; supported: "
                      f"{', '.join(a.upper() for a in allowed)}")
    return name


def _param(name: str, value, spec):
    kind, low_ok, high_ok, default, scale = spec
    scale_name = "UNIT_LOG_SCALE" if scale == "LOG" else "UNIT_LINEAR_SCALE"
    if kind == "CATEGORICAL":
        values = default if value is None else value.values if isinstance(
            value, HparamCandidates) else None
        if values is None:
            raise MLError(f"{name.upper()} takes HPARAM_CANDIDATES([...]), not HPARAM_RANGE")
        values = tuple(tuple(int(u) for u in v) if isinstance(v, tuple) else
                       (str(v).upper() if isinstance(v, str) else v) for v in values)
        return Param(name, "CATEGORICAL", values=values)
    if isinstance(value, HparamCandidates):
        numbers = value.values
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise MLError(f"HPARAM_CANDIDATES of {name.upper()} must be numbers")
        for v in numbers:
            _in_range(name, v, low_ok, high_ok)
        return Param(name, "CATEGORICAL", values=tuple(sorted(set(numbers))))
    low, high = default if value is None else (value.low, value.high)
    for v in (low, high):
        _in_range(name, v, low_ok, high_ok)
    if scale_name == "UNIT_LOG_SCALE" and low <= 0:
        low = min(LOG_FLOOR, high)
    return Param(name, kind, float(low), float(high), scale=scale_name)


def _in_range(name: str, value, low, high) -> None:
    if not low <= value <= high:
        raise MLError(f"The value {value} of {name.upper()} is outside its valid range "
                      f"[{low}, {high}]")


def proposals(plan_: Plan):
    """A generator of trial hyperparameter batches: send it the finished (params, objective)
    list, get back up to MAX_PARALLEL_TRIALS new parameter dicts."""
    try:
        return Suggester(plan_.params, ALGORITHMS[plan_.algorithm], plan_.maximize, seed=0)
    except SearchSpaceError as exc:
        raise MLError(str(exc).replace("Grid search", "GRID_SEARCH")) from None


def value_for(param, value):
    """A proposed value as the option takes it (INTEGER rounded, hidden_units a list)."""
    if param.kind == "INTEGER":
        return int(round(value))
    if isinstance(value, tuple):
        return list(value)
    return value


def run_trials(plan_: Plan, train_one, score) -> list[dict]:
    """Runs the trials: train_one(options) -> model (raises MLError for an infeasible
    one), score(model) -> objective. Returns one record per trial."""
    suggester = proposals(plan_)
    trials: list[dict] = []
    done: list[tuple[dict, float]] = []
    while len(trials) < plan_.num_trials:
        batch = []
        for _ in range(min(plan_.parallel, plan_.num_trials - len(trials))):
            proposal = suggester.suggest(done)
            if proposal is None:
                break
            batch.append(proposal)
        if not batch:
            break          # a grid with fewer points than NUM_TRIALS
        for proposal in batch:
            hparams = {p.id: value_for(p, proposal[p.id]) for p in plan_.params}
            started = time.time()
            record = {"trial_id": len(trials) + 1, "hparams": hparams,
                      "start": started, "status": "SUCCEEDED", "error": None, "model": None,
                      "objective": None}
            try:
                model = train_one({**plan_.fixed, **hparams})
                record["model"] = model
                record["objective"] = score(model)
                if record["objective"] is None or not math.isfinite(record["objective"]):
                    record.update(status="INFEASIBLE", error="The objective is not finite")
                else:
                    done.append((proposal, record["objective"]))
            except MLError as exc:
                record.update(status="FAILED", error=exc.message, model=None)
            record["end"] = time.time()
            trials.append(record)
    if not done:
        raise MLError("Hyperparameter tuning failed: no trial succeeded. First error: "
                      f"{next((t['error'] for t in trials if t['error']), 'unknown')}")
    best = (max if plan_.maximize else min)(
        (t for t in trials if t["status"] == "SUCCEEDED"), key=lambda t: t["objective"])
    for t in trials:
        t["is_optimal"] = t is best
    return trials
