"""ML.EVALUATE, ML.CONFUSION_MATRIX, ML.ROC_CURVE and ML.ARIMA_EVALUATE. Without input
data they use the evaluation rows held out at training (or the training rows when there
was no split), as BigQuery does."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from labkit.bigquery.ml import metrics
from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.functions.common import FLOAT, INT, base_sql, label_type, require, table
from labkit.bigquery.ml.functions.predict import _threshold, predicted_classes
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.options import CLASSIFIERS
from labkit.bigquery.ml.statements import MLCall

CLASSIFICATION = ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"]
REGRESSION = ["mean_absolute_error", "mean_squared_error", "mean_squared_log_error",
              "median_absolute_error", "r2_score", "explained_variance"]
CLUSTERING = ["davies_bouldin_index", "mean_squared_distance"]


def labelled(model: TrainedModel, call: MLCall, run_query) -> tuple[np.ndarray, np.ndarray]:
    """(labels, model outputs) for the call's input data or the stored evaluation rows."""
    sql = base_sql(call)
    if sql is None:
        return model.eval_y, model.eval_out
    if model.transform is not None:
        frame = model.transform.apply(run_query(model.transform.select_sql(sql)).to_pandas())
    else:
        frame = run_query(sql).to_pandas()
    if model.label in frame.columns:
        frame = frame[frame[model.label].notna()]
    return model.label_values(frame), model.output(frame)


def evaluate(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if model.model_type == "arima_plus":
        return arima_evaluate(model, call, run_query) if base_sql(call) is None \
            else _forecast_accuracy(model, call, run_query)
    if model.model_type == "kmeans":
        sql = base_sql(call)
        if sql is None:
            values = model.eval_metrics
        else:
            _, features = model.inputs(run_query, sql)
            X = model.encode(features)
            values = metrics.clustering(X, model.trainer.predict(X))
        return table([values], [(c, FLOAT) for c in CLUSTERING])
    if model.model_type == "matrix_factorization":
        y, out = _mf_labelled(model, call, run_query)
        return table([metrics.regression(y, out)], [(c, FLOAT) for c in REGRESSION])
    y, out = labelled(model, call, run_query)
    if model.classifier:
        values = metrics.classification(y, out, _threshold(model, call))
        if len(model.classes) == 2:
            values = {"threshold": _threshold(model, call), **values}
            return table([values], [("threshold", FLOAT)] + [(c, FLOAT) for c in
                                                                   CLASSIFICATION])
        return table([values], [(c, FLOAT) for c in CLASSIFICATION])
    return table([metrics.regression(y, out)], [(c, FLOAT) for c in REGRESSION])


def _mf_labelled(model: TrainedModel, call: MLCall, run_query):
    sql = base_sql(call)
    if sql is None:
        return model.eval_y, model.eval_out
    frame = run_query(sql).to_pandas()
    opts = model.options
    cols = [opts.get("user_col", "user"), opts.get("item_col", "item"), model.label]
    frame = frame.dropna(subset=[c for c in cols if c in frame.columns])
    if any(c not in frame.columns for c in cols):
        raise MLError(f"ML.EVALUATE input needs the columns {', '.join(cols)}")
    return (frame[cols[2]].to_numpy(float),
            model.trainer.predict(frame[cols[0]].tolist(), frame[cols[1]].tolist()))


def column_name(value) -> str:
    """A class label as BigQuery writes it as a column name: invalid characters become _
    and a name that does not start with a letter or _ gets a leading _."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(value))
    return name if re.match(r"[A-Za-z_]", name) else "_" + name


def confusion_matrix(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, CLASSIFIERS, "classification models")
    y, out = labelled(model, call, run_query)
    pred = predicted_classes(model, out, _threshold(model, call))
    k = len(model.classes)
    matrix = metrics.confusion(y, pred, k)
    columns = {"expected_label": pa.array(model.classes, type=label_type(model))}
    for j, c in enumerate(model.classes):
        columns[column_name(c)] = pa.array(matrix[:, j], type=INT)
    return pa.table(columns)


def roc_curve(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if not model.classifier or len(model.classes) != 2:
        raise MLError("ML.ROC_CURVE applies only to binary classification models")
    y, out = labelled(model, call, run_query)
    rows = metrics.roc_points(np.asarray(y), out[:, 1], call.settings.get("thresholds"))
    return table(rows, [("threshold", FLOAT), ("recall", FLOAT), ("false_positive_rate", FLOAT),
                        ("true_positives", INT), ("false_positives", INT),
                        ("true_negatives", INT), ("false_negatives", INT)])


def arima_evaluate(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, {"arima_plus"}, "ARIMA_PLUS models")
    trainer = model.trainer
    rows = []
    for key, s in trainer.series:
        row = dict(zip(trainer.id_cols, key, strict=False))
        row.update(non_seasonal_p=s.p, non_seasonal_d=s.d, non_seasonal_q=s.q,
                   has_drift=s.has_drift, log_likelihood=float(s.loglik), AIC=float(s.aic),
                   variance=float(s.sigma2),
                   seasonal_periods=[name for _, name, _ in s.seasons] or ["NO_SEASONALITY"],
                   has_holiday_effect=False, has_spikes_and_dips=s.has_spikes,
                   has_step_changes=False)
        rows.append(row)
    ids = [(c, pa.array([k[i] for k, _ in trainer.series]).type)
           for i, c in enumerate(trainer.id_cols)]
    return table(rows, ids + [("non_seasonal_p", INT), ("non_seasonal_d", INT),
                              ("non_seasonal_q", INT), ("has_drift", pa.bool_()),
                              ("log_likelihood", FLOAT), ("AIC", FLOAT), ("variance", FLOAT),
                              ("seasonal_periods", pa.list_(pa.string())),
                              ("has_holiday_effect", pa.bool_()),
                              ("has_spikes_and_dips", pa.bool_()),
                              ("has_step_changes", pa.bool_())])


def _forecast_accuracy(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    """ML.EVALUATE of an ARIMA_PLUS model against actual values at forecast timestamps."""
    trainer = model.trainer
    frame = run_query(base_sql(call)).to_pandas()
    rows = []
    for key, s in trainer.series:
        part = frame
        for col, value in zip(trainer.id_cols, key, strict=False):
            part = part[part[col] == value]
        times = pd.to_datetime(part[trainer.ts_col])
        times = times.dt.tz_localize(None) if times.dt.tz is not None else times
        lookup = {pd.Timestamp(t).tz_localize(None) if pd.Timestamp(t).tzinfo else
                  pd.Timestamp(t): k for k, t in enumerate(s.forecast_times)}
        actual, pred = [], []
        for t, v in zip(times, part[trainer.data_col], strict=False):
            if t in lookup and pd.notna(v):
                actual.append(float(v))
                pred.append(float(s.forecast[lookup[t]]))
        if not actual:
            continue
        a, p = np.array(actual), np.array(pred)
        row = dict(zip(trainer.id_cols, key, strict=False))
        nonzero = a != 0
        row.update(mean_absolute_error=float(np.mean(np.abs(a - p))),
                   mean_squared_error=float(np.mean((a - p) ** 2)),
                   root_mean_squared_error=float(np.sqrt(np.mean((a - p) ** 2))),
                   mean_absolute_percentage_error=float(np.mean(np.abs((a - p)[nonzero] /
                                                                       a[nonzero])) * 100)
                   if nonzero.any() else None,
                   symmetric_mean_absolute_percentage_error=float(np.mean(
                       2 * np.abs(a - p) / np.maximum(np.abs(a) + np.abs(p), 1e-12)) * 100))
        rows.append(row)
    if not rows:
        raise MLError("ML.EVALUATE found no input rows at the model's forecast timestamps")
    ids = [(c, pa.array([k[i] for k, _ in trainer.series]).type)
           for i, c in enumerate(trainer.id_cols)]
    return table(rows, ids + [(c, FLOAT) for c in (
        "mean_absolute_error", "mean_squared_error", "root_mean_squared_error",
        "mean_absolute_percentage_error", "symmetric_mean_absolute_percentage_error")])
