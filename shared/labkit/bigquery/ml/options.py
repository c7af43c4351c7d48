"""CREATE MODEL options: which ones each model type takes, their defaults, and their
names in the REST Model resource (trainingOptions)."""

from __future__ import annotations

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.sqlscan import HparamCandidates, HparamRange

# model_type option -> REST modelType
MODEL_TYPES = {
    "linear_reg": "LINEAR_REGRESSION",
    "logistic_reg": "LOGISTIC_REGRESSION",
    "kmeans": "KMEANS",
    "boosted_tree_classifier": "BOOSTED_TREE_CLASSIFIER",
    "boosted_tree_regressor": "BOOSTED_TREE_REGRESSOR",
    "random_forest_classifier": "RANDOM_FOREST_CLASSIFIER",
    "random_forest_regressor": "RANDOM_FOREST_REGRESSOR",
    "dnn_classifier": "DNN_CLASSIFIER",
    "dnn_regressor": "DNN_REGRESSOR",
    "arima_plus": "ARIMA_PLUS",
    "matrix_factorization": "MATRIX_FACTORIZATION",
    "automl_classifier": "AUTOML_CLASSIFIER",
    "automl_regressor": "AUTOML_REGRESSOR",
}
NOT_LOCAL_TYPES = {
    "tensorflow", "tensorflow_lite", "onnx", "xgboost", "dnn_linear_combined_classifier",
    "dnn_linear_combined_regressor",
    "autoencoder", "pca", "arima_plus_xreg", "contribution_analysis", "transform_only",
    "arima",
}
CLASSIFIERS = {"logistic_reg", "boosted_tree_classifier", "random_forest_classifier",
               "dnn_classifier", "automl_classifier"}
REGRESSORS = {"linear_reg", "boosted_tree_regressor", "random_forest_regressor",
              "dnn_regressor", "automl_regressor"}

_COMMON = {"model_type", "model_registry", "vertex_ai_model_id", "vertex_ai_model_version_aliases",
           "kms_key_name"}
_SUPERVISED = {"input_label_cols", "data_split_method", "data_split_eval_fraction",
               "data_split_col", "enable_global_explain", "max_iterations", "early_stop",
               "min_rel_progress", "warm_start", "category_encoding_method"}
_LINEAR = {"l1_reg", "l2_reg", "learn_rate", "learn_rate_strategy", "ls_init_learn_rate",
           "optimize_strategy", "calculate_p_values", "fit_intercept"}
_TREES = {"num_parallel_tree", "tree_method", "booster_type", "min_tree_child_weight",
          "colsample_bytree", "colsample_bylevel", "colsample_bynode", "min_split_loss",
          "max_tree_depth", "subsample", "l1_reg", "l2_reg", "dart_normalize_type",
          "learn_rate", "instance_weight_col", "xgboost_version"}
_AUTOML = {"input_label_cols", "budget_hours", "optimization_objective", "data_split_method",
           "data_split_eval_fraction", "data_split_col", "enable_global_explain"}
_DNN = {"activation_fn", "batch_size", "dropout", "hidden_units", "learn_rate", "optimizer",
        "l1_reg", "l2_reg"}
ALLOWED = {
    "linear_reg": _COMMON | _SUPERVISED | _LINEAR,
    "logistic_reg": _COMMON | _SUPERVISED | _LINEAR | {"auto_class_weights", "class_weights"},
    "boosted_tree_classifier": _COMMON | _SUPERVISED | _TREES | {"auto_class_weights",
                                                                   "class_weights"},
    "boosted_tree_regressor": _COMMON | _SUPERVISED | _TREES,
    "random_forest_classifier": _COMMON | _SUPERVISED | _TREES | {"auto_class_weights",
                                                                    "class_weights"},
    "random_forest_regressor": _COMMON | _SUPERVISED | _TREES,
    "dnn_classifier": _COMMON | _SUPERVISED | _DNN | {"auto_class_weights", "class_weights"},
    "dnn_regressor": _COMMON | _SUPERVISED | _DNN,
    "automl_classifier": _COMMON | _AUTOML,
    "automl_regressor": _COMMON | _AUTOML,
    "kmeans": _COMMON | {"num_clusters", "kmeans_init_method", "kmeans_init_col",
                         "distance_type", "standardize_features", "max_iterations",
                         "early_stop", "min_rel_progress", "warm_start"},
    "arima_plus": _COMMON | {"time_series_timestamp_col", "time_series_data_col",
                             "time_series_id_col", "horizon", "auto_arima",
                             "auto_arima_max_order", "auto_arima_min_order", "non_seasonal_order",
                             "data_frequency", "include_drift", "holiday_region",
                             "clean_spikes_and_dips", "adjust_step_changes",
                             "decompose_time_series", "time_series_length_fraction",
                             "min_time_series_length", "max_time_series_length",
                             "trend_smoothing_window_size", "seasonalities",
                             "forecast_limit_lower_bound",
                             "forecast_limit_upper_bound"},
    "matrix_factorization": _COMMON | {"user_col", "item_col", "rating_col", "num_factors",
                                       "feedback_type", "l2_reg", "max_iterations",
                                       "early_stop", "min_rel_progress", "data_split_method",
                                       "data_split_eval_fraction", "data_split_col",
                                       "wals_alpha"},
}
TUNING = {"num_trials", "max_parallel_trials", "hparam_tuning_algorithm",
          "hparam_tuning_objectives"}

DEFAULTS = {
    "common": {"input_label_cols": None, "data_split_method": "AUTO_SPLIT",
               "data_split_eval_fraction": 0.2, "data_split_col": None, "early_stop": True,
               "min_rel_progress": 0.01, "enable_global_explain": False,
               "auto_class_weights": False, "class_weights": None, "l1_reg": 0.0},
    "linear_reg": {"max_iterations": 20, "l2_reg": 0.0, "learn_rate_strategy": "LINE_SEARCH",
                   "optimize_strategy": "AUTO_STRATEGY"},
    "logistic_reg": {"max_iterations": 20, "l2_reg": 0.0, "learn_rate_strategy": "LINE_SEARCH",
                     "optimize_strategy": "AUTO_STRATEGY"},
    "boosted_tree": {"max_iterations": 20, "learn_rate": 0.3, "max_tree_depth": 6,
                     "l2_reg": 1.0, "subsample": 1.0, "num_parallel_tree": 1,
                     "min_split_loss": 0.0, "min_tree_child_weight": 1, "colsample_bytree": 1.0,
                     "colsample_bylevel": 1.0, "colsample_bynode": 1.0, "tree_method": "AUTO",
                     "booster_type": "GBTREE"},
    "random_forest": {"max_iterations": 1, "num_parallel_tree": 100, "max_tree_depth": 20,
                      "l2_reg": 1.0, "subsample": 0.8, "min_split_loss": 0.0,
                      "min_tree_child_weight": 1, "colsample_bytree": 1.0,
                      "colsample_bylevel": 1.0, "colsample_bynode": 0.8, "tree_method": "AUTO",
                      "early_stop": False},
    "dnn": {"max_iterations": 20, "learn_rate": 0.001, "optimizer": "ADAM",
            "activation_fn": "RELU", "dropout": 0.0, "batch_size": None, "hidden_units": None,
            "l2_reg": 0.0},
    "kmeans": {"max_iterations": 20, "num_clusters": None, "kmeans_init_method": "RANDOM",
               "distance_type": "EUCLIDEAN", "standardize_features": True},
    "arima_plus": {"horizon": 1000, "auto_arima": True, "auto_arima_max_order": 5,
                   "auto_arima_min_order": 0, "data_frequency": "AUTO_FREQUENCY",
                   "include_drift": False, "clean_spikes_and_dips": True,
                   "adjust_step_changes": True, "decompose_time_series": True,
                   "holiday_region": None, "time_series_id_col": None},
    "automl": {"budget_hours": 1.0},
    "matrix_factorization": {"feedback_type": "EXPLICIT", "l2_reg": 1.0, "max_iterations": 20,
                             "num_factors": None},
}


def family(model_type: str) -> str:
    for prefix in ("boosted_tree", "random_forest", "dnn", "automl"):
        if model_type.startswith(prefix):
            return prefix
    return model_type


def resolve_options(raw: dict) -> dict:
    """Validated options with defaults filled in; keys lower case, enums upper case."""
    if "model_type" not in raw:
        raise MLError("Missing required option: model_type")
    model_type = str(raw["model_type"]).lower()
    if model_type in NOT_LOCAL_TYPES:
        raise not_local(f"Model type {model_type.upper()}")
    if model_type not in MODEL_TYPES:
        raise MLError(f"Invalid value for option model_type: {raw['model_type']}. Supported "
                      f"model types: {', '.join(t.upper() for t in MODEL_TYPES)}")
    if "labels" in raw and model_type in CLASSIFIERS | REGRESSORS:
        # LABELS = ['col']: the label columns under their older name, which the REST
        # resource still carries (ModelDefinition.modelOptions.labels, "label columns",
        # deprecated) and Google's official samples use (vertex-ai-samples,
        # notebooks/official/bigquery_ml/get_started_with_bqml_training.ipynb)
        if "input_label_cols" in raw:
            raise MLError("Options labels and input_label_cols name the same thing; set "
                          "only input_label_cols")
        names = raw["labels"] if isinstance(raw["labels"], list) else [raw["labels"]]
        if not all(isinstance(n, str) for n in names):
            raise MLError("Option labels names the label columns: an ARRAY<STRING>")
        raw = {("input_label_cols" if k == "labels" else k): v for k, v in raw.items()}
    for key in raw:
        if key in TUNING or key == "data_split_test_fraction":
            continue     # checked by labkit.bigquery.ml.tuning.plan
        if key not in ALLOWED[model_type]:
            raise MLError(f"Unknown option: {key} for model type {model_type.upper()}")
    options = {}
    if model_type in CLASSIFIERS | REGRESSORS:
        options.update(DEFAULTS["common"])
    if model_type == "matrix_factorization":
        options.update({k: DEFAULTS["common"][k] for k in
                        ("data_split_method", "data_split_eval_fraction", "data_split_col",
                         "early_stop", "min_rel_progress")})
    if model_type == "kmeans":
        options.update({"early_stop": True, "min_rel_progress": 0.01})
    options.update(DEFAULTS.get(family(model_type), {}))
    for key, value in raw.items():
        options[key] = value.upper() if isinstance(value, str) and key in _ENUMS else value
    options["model_type"] = model_type
    if isinstance(options.get("input_label_cols"), str):
        options["input_label_cols"] = [options["input_label_cols"]]
    if options.get("data_split_method") not in (None, "AUTO_SPLIT", "RANDOM", "CUSTOM", "SEQ",
                                                "NO_SPLIT"):
        raise MLError(f"Invalid value for option data_split_method: "
                      f"{options['data_split_method']}")
    if options.get("data_split_method") in ("CUSTOM", "SEQ") and not options.get("data_split_col"):
        raise MLError(f"data_split_col must be set when data_split_method is "
                      f"{options['data_split_method']}")
    if options.get("feedback_type") == "IMPLICIT":
        raise not_local("Implicit-feedback matrix factorization (feedback_type='IMPLICIT')")
    return options


_ENUMS = {"data_split_method", "learn_rate_strategy", "optimize_strategy", "kmeans_init_method",
          "distance_type", "optimizer", "activation_fn", "tree_method", "booster_type",
          "data_frequency", "holiday_region", "feedback_type", "category_encoding_method",
          "model_registry", "hparam_tuning_algorithm"}

# option -> (trainingOptions field, kind) for the REST resource
REST_NAMES = {
    "max_iterations": ("maxIterations", "int"), "l1_reg": ("l1Regularization", "float"),
    "l2_reg": ("l2Regularization", "float"), "learn_rate": ("learnRate", "float"),
    "learn_rate_strategy": ("learnRateStrategy", "str"), "early_stop": ("earlyStop", "bool"),
    "min_rel_progress": ("minRelativeProgress", "float"),
    "data_split_method": ("dataSplitMethod", "str"),
    "data_split_eval_fraction": ("dataSplitEvalFraction", "float"),
    "data_split_col": ("dataSplitColumn", "str"),
    "input_label_cols": ("inputLabelColumns", "list"),
    "auto_class_weights": ("autoClassWeights", "bool"),
    "num_clusters": ("numClusters", "int"),
    "kmeans_init_method": ("kmeansInitializationMethod", "str"),
    "distance_type": ("distanceType", "str"),
    "standardize_features": ("standardizeFeatures", "bool"),
    "hidden_units": ("hiddenUnits", "intlist"), "dropout": ("dropout", "float"),
    "batch_size": ("batchSize", "int"), "optimizer": ("optimizer", "str"),
    "activation_fn": ("activationFn", "str"),
    "max_tree_depth": ("maxTreeDepth", "int"), "subsample": ("subsample", "float"),
    "num_parallel_tree": ("numParallelTree", "int"), "min_split_loss": ("minSplitLoss", "float"),
    "colsample_bytree": ("colsampleBytree", "float"),
    "colsample_bynode": ("colsampleBynode", "float"),
    "tree_method": ("treeMethod", "str"), "booster_type": ("boosterType", "str"),
    "enable_global_explain": ("enableGlobalExplain", "bool"),
    "optimize_strategy": ("optimizationStrategy", "str"),
    "time_series_timestamp_col": ("timeSeriesTimestampColumn", "str"),
    "time_series_data_col": ("timeSeriesDataColumn", "str"),
    "time_series_id_col": ("timeSeriesIdColumns", "list"),
    "horizon": ("horizon", "int"), "auto_arima": ("autoArima", "bool"),
    "auto_arima_max_order": ("autoArimaMaxOrder", "int"),
    "data_frequency": ("dataFrequency", "str"), "include_drift": ("includeDrift", "bool"),
    "clean_spikes_and_dips": ("cleanSpikesAndDips", "bool"),
    "decompose_time_series": ("decomposeTimeSeries", "bool"),
    "user_col": ("userColumn", "str"), "item_col": ("itemColumn", "str"),
    "rating_col": ("ratingColumn", "str"), "num_factors": ("numFactors", "int"),
    "feedback_type": ("feedbackType", "str"),
    "budget_hours": ("budgetHours", "float"),
    "optimization_objective": ("optimizationObjective", "str"),
    "model_registry": ("modelRegistry", "str"),
    "num_trials": ("numTrials", "int"), "max_parallel_trials": ("maxParallelTrials", "int"),
    "hparam_tuning_algorithm": ("hparamTuningAlgorithm", "str"),
    "hparam_tuning_objectives": ("hparamTuningObjectives", "list"),
    "vertex_ai_model_version_aliases": ("vertexAiModelVersionAliases", "list"),
}


def rest_training_options(options: dict) -> dict:
    out = {}
    for key, value in options.items():
        if key not in REST_NAMES or value is None or isinstance(value, (HparamRange,
                                                                          HparamCandidates)):
            continue
        name, kind = REST_NAMES[key]
        if kind == "int":
            out[name] = str(int(value))
        elif kind == "intlist":
            out[name] = [str(int(v)) for v in value]
        elif kind == "float":
            out[name] = float(value)
        elif kind == "list":
            out[name] = list(value) if isinstance(value, (list, tuple)) else [value]
        else:
            out[name] = value
    if options.get("class_weights"):
        out["labelClassWeights"] = {str(k): float(v) for k, v in options["class_weights"]}
    return out
