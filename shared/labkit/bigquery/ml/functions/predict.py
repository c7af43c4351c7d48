"""ML.PREDICT, ML.EXPLAIN_PREDICT, ML.FORECAST and ML.RECOMMEND."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import norm

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.functions.common import (
    FLOAT,
    INT,
    base_sql,
    label_type,
    require,
    require_input,
    table,
    with_inputs,
)
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.options import CLASSIFIERS, REGRESSORS
from labkit.bigquery.ml.statements import MLCall


def _threshold(model: TrainedModel, call: MLCall) -> float:
    threshold = call.settings.get("threshold")
    if threshold is None:
        return 0.5
    if not model.classifier or len(model.classes) != 2:
        raise MLError("threshold applies only to binary classification models")
    return float(threshold)


def predicted_classes(model: TrainedModel, probs: np.ndarray, threshold: float) -> np.ndarray:
    if probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).astype(int)
    return probs.argmax(axis=1)


def _class_array(model: TrainedModel, idx: np.ndarray) -> pa.Array:
    return pa.array(model.classes, type=label_type(model)).take(pa.array(idx))


def _ranked(values: np.ndarray, order: np.ndarray, keys: pa.Array, names: tuple[str, str]
            ) -> pa.Array:
    """ARRAY<STRUCT<key, value>> per row, entries in `order`; built column-wise (fast)."""
    n, k = values.shape
    struct = pa.StructArray.from_arrays(
        [keys.take(pa.array(order.ravel())),
         pa.array(np.take_along_axis(values, order, axis=1).ravel(), type=FLOAT)],
        names=list(names))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                                    struct)


def _probs_array(model: TrainedModel, probs: np.ndarray) -> pa.Array:
    order = np.argsort(-probs, axis=1, kind="stable")
    return _ranked(probs, order, pa.array(model.classes, type=label_type(model)),
                   ("label", "prob"))


def predict(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if model.model_type == "arima_plus":
        raise MLError("ML.PREDICT is not supported for ARIMA_PLUS models; use ML.FORECAST")
    if model.model_type == "matrix_factorization":
        return recommend(model, call, run_query)
    passthrough, features = model.inputs(run_query, require_input(call))
    if model.model_type == "kmeans":
        dist = model.output(features)
        order = np.argsort(dist, axis=1)
        nearest = _ranked(dist, order, pa.array(np.arange(1, dist.shape[1] + 1), type=INT),
                          ("centroid_id", "distance"))
        return with_inputs({"centroid_id": pa.array(order[:, 0] + 1, type=INT),
                            "nearest_centroids_distance": nearest}, passthrough)
    out = model.output(features)
    if not model.classifier:
        return with_inputs({model.predicted_name: pa.array(out, type=FLOAT)}, passthrough)
    idx = predicted_classes(model, out, _threshold(model, call))
    return with_inputs({model.predicted_name: _class_array(model, idx),
                        f"{model.predicted_name}_probs": _probs_array(model, out)}, passthrough)


def explain_predict(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, CLASSIFIERS | REGRESSORS, "supervised models (regression and "
            "classification)")
    from labkit.bigquery.ml.explain import attributions

    passthrough, features = model.inputs(run_query, require_input(call))
    top_k = int(call.settings.get("top_k_features") or 5)
    out = model.output(features)
    classes = None
    columns: dict[str, pa.Array] = {}
    if model.classifier:
        classes = predicted_classes(model, out, _threshold(model, call))
        columns[model.predicted_name] = _class_array(model, classes)
        columns["probability"] = pa.array(out[np.arange(len(out)), classes], type=FLOAT)
    else:
        columns[model.predicted_name] = pa.array(out, type=FLOAT)
    attr, baseline, value = attributions(model, features, classes)
    names = model.encoder.names
    order = np.argsort(-np.abs(attr), axis=1, kind="stable")[:, :top_k]
    columns["top_feature_attributions"] = pa.array(
        [[{"feature": names[j], "attribution": float(a[j])} for j in o]
         for a, o in zip(attr, order, strict=False)],
        type=pa.list_(pa.struct([("feature", pa.string()), ("attribution", FLOAT)])))
    columns["baseline_prediction_value"] = pa.array(baseline, type=FLOAT)
    columns["prediction_value"] = pa.array(value, type=FLOAT)
    columns["approximation_error"] = pa.array(
        np.abs(attr.sum(axis=1) - (value - baseline)), type=FLOAT)
    return with_inputs(columns, passthrough)


def forecast(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, {"arima_plus"}, "ARIMA_PLUS models")
    horizon = int(call.settings.get("horizon", 3))
    level = float(call.settings.get("confidence_level", 0.95))
    limit = int(model.options.get("horizon", 1000))
    if not 0 <= level < 1:
        raise MLError("confidence_level must be in [0, 1)")
    if horizon < 1 or horizon > limit:
        raise MLError(f"horizon must be between 1 and {limit} (the model's HORIZON option)")
    z = float(norm.ppf(0.5 + level / 2))
    trainer = model.trainer
    rows = []
    for key, series in trainer.series:
        for k in range(horizon):
            value, se = float(series.forecast[k]), float(series.std_err[k])
            row = dict(zip(trainer.id_cols, key, strict=False))
            row.update(forecast_timestamp=_utc(series.forecast_times[k]), forecast_value=value,
                standard_error=se, confidence_level=level,
                prediction_interval_lower_bound=value - z * se,
                prediction_interval_upper_bound=value + z * se,
                confidence_interval_lower_bound=value - z * se,
                confidence_interval_upper_bound=value + z * se)
            rows.append(row)
    ids = [(c, pa.array([k[i] for k, _ in trainer.series]).type)
           for i, c in enumerate(trainer.id_cols)]
    return table(rows, ids + [("forecast_timestamp", pa.timestamp("us", tz="UTC")),
                              ("forecast_value", FLOAT), ("standard_error", FLOAT),
                              ("confidence_level", FLOAT),
                              ("prediction_interval_lower_bound", FLOAT),
                              ("prediction_interval_upper_bound", FLOAT),
                              ("confidence_interval_lower_bound", FLOAT),
                              ("confidence_interval_upper_bound", FLOAT)])


_SEASON_COLUMNS = ["yearly", "quarterly", "monthly", "weekly", "daily"]


def explain_forecast(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    """The history and the forecast, split into trend, seasonal periods, spikes and residual."""
    require(model, call, {"arima_plus"}, "ARIMA_PLUS models")
    horizon = int(call.settings.get("horizon", 3))
    level = float(call.settings.get("confidence_level", 0.95))
    z = float(norm.ppf(0.5 + level / 2))
    trainer = model.trainer
    rows = []
    for key, s in trainer.series:
        ids = dict(zip(trainer.id_cols, key, strict=True))
        grid, original = s.history
        seasonal_at = {name.lower(): (period, pattern) for period, name, pattern in s.seasons}
        for k, stamp in enumerate(list(grid) + s.forecast_times[:horizon]):
            history = k < s.n
            row = {**ids, "time_series_timestamp": _utc(stamp),
                   "time_series_type": "history" if history else "forecast"}
            seasons = {f"seasonal_period_{c}": float(seasonal_at[c][1][k % seasonal_at[c][0]])
                       if c in seasonal_at else None for c in _SEASON_COLUMNS}
            seasonal_sum = sum(v for v in seasons.values() if v is not None)
            if history:
                residual = float(s.residuals[k]) if k < len(s.residuals) else 0.0
                row.update(time_series_data=float(original[k]),
                           time_series_adjusted_data=float(s.cleaned[k]),
                           standard_error=float(np.sqrt(s.sigma2)), confidence_level=None,
                           prediction_interval_lower_bound=None,
                           prediction_interval_upper_bound=None,
                           trend=float(s.adjusted[k]) - residual,
                           spikes_and_dips=float(original[k] - s.cleaned[k]),
                           residual=residual)
            else:
                h = k - s.n
                value, se = float(s.forecast[h]), float(s.std_err[h])
                row.update(time_series_data=value, time_series_adjusted_data=value,
                           standard_error=se, confidence_level=level,
                           prediction_interval_lower_bound=value - z * se,
                           prediction_interval_upper_bound=value + z * se,
                           trend=value - seasonal_sum, spikes_and_dips=None, residual=None)
            row.update(seasons, holiday_effect=None, step_changes=None)
            rows.append(row)
    ids = [(c, pa.array([k[i] for k, _ in trainer.series]).type)
           for i, c in enumerate(trainer.id_cols)]
    return table(rows, ids + [("time_series_timestamp", pa.timestamp("us", tz="UTC")),
                              ("time_series_type", pa.string()),
                              ("time_series_data", FLOAT), ("time_series_adjusted_data", FLOAT),
                              ("standard_error", FLOAT), ("confidence_level", FLOAT),
                              ("prediction_interval_lower_bound", FLOAT),
                              ("prediction_interval_upper_bound", FLOAT), ("trend", FLOAT)]
                 + [(f"seasonal_period_{c}", FLOAT) for c in _SEASON_COLUMNS]
                 + [("holiday_effect", FLOAT), ("spikes_and_dips", FLOAT),
                    ("step_changes", FLOAT), ("residual", FLOAT)])


def _utc(stamp) -> pd.Timestamp:
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def recommend(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, {"matrix_factorization"}, "MATRIX_FACTORIZATION models")
    als = model.trainer
    user_col, item_col = model.options.get("user_col", "user"), model.options.get("item_col",
                                                                                  "item")
    sql = base_sql(call)
    users, items = als.users, als.items
    if sql is None:
        pairs = [(u, i) for u in users for i in items]
    else:
        frame = run_query(sql).to_pandas()
        if user_col in frame.columns and item_col in frame.columns:
            pairs = list(zip(frame[user_col], frame[item_col], strict=False))
        elif user_col in frame.columns:
            pairs = [(u, i) for u in frame[user_col].drop_duplicates() for i in items]
        elif item_col in frame.columns:
            pairs = [(u, i) for u in users for i in frame[item_col].drop_duplicates()]
        else:
            raise MLError(f"ML.RECOMMEND input needs a {user_col} or {item_col} column")
    us = [p[0] for p in pairs]
    its = [p[1] for p in pairs]
    scores = als.predict(us, its)
    return pa.table({f"predicted_{model.label}": pa.array(scores, type=FLOAT),
                     user_col: pa.array(us), item_col: pa.array(its)})
