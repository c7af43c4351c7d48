"""The ML.* table functions, each returning an Arrow table with BigQuery's documented
output columns. Grouped by what they do: predict (PREDICT, EXPLAIN_PREDICT, FORECAST,
RECOMMEND), evaluate (EVALUATE, CONFUSION_MATRIX, ROC_CURVE) and inspect (TRAINING_INFO,
FEATURE_INFO, WEIGHTS, CENTROIDS, FEATURE_IMPORTANCE, GLOBAL_EXPLAIN, ARIMA_*)."""

from __future__ import annotations

import pyarrow as pa

from labkit.bigquery.ml.errors import not_local
from labkit.bigquery.ml.functions import evaluate, inspect, predict, trials
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import MLCall

HANDLERS = {
    "PREDICT": predict.predict,
    "EXPLAIN_PREDICT": predict.explain_predict,
    "FORECAST": predict.forecast,
    "EXPLAIN_FORECAST": predict.explain_forecast,
    "RECOMMEND": predict.recommend,
    "EVALUATE": evaluate.evaluate,
    "CONFUSION_MATRIX": evaluate.confusion_matrix,
    "ROC_CURVE": evaluate.roc_curve,
    "TRAINING_INFO": inspect.training_info,
    "FEATURE_INFO": inspect.feature_info,
    "WEIGHTS": inspect.weights,
    "CENTROIDS": inspect.centroids,
    "FEATURE_IMPORTANCE": inspect.feature_importance,
    "GLOBAL_EXPLAIN": inspect.global_explain,
    "ARIMA_EVALUATE": evaluate.arima_evaluate,
    "ARIMA_COEFFICIENTS": inspect.arima_coefficients,
    "TRIAL_INFO": trials.trial_info,
}


def run(call: MLCall, model: TrainedModel, run_query) -> pa.Table:
    handler = HANDLERS.get(call.fn)
    if handler is None:
        raise not_local(f"ML.{call.fn}")
    result = handler(model, call, run_query)
    if call.fn == "EVALUATE" and model.trial_id is not None:
        # a tuned model's evaluation names its trial (the optimal one by default)
        result = result.add_column(0, "trial_id", pa.array([model.trial_id] * len(result),
                                                           pa.int64()))
    return result
