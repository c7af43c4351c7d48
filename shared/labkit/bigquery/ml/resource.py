"""The BigQuery REST Model resource for a trained model (what client.get_model returns)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pyarrow as pa

from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.options import MODEL_TYPES, rest_training_options
from labkit.bigquery.ml.statements import ModelRef

_METRIC_NAMES = {"precision": "precision", "recall": "recall", "accuracy": "accuracy",
                 "f1_score": "f1Score", "log_loss": "logLoss", "roc_auc": "rocAuc",
                 "threshold": "threshold", "mean_absolute_error": "meanAbsoluteError",
                 "mean_squared_error": "meanSquaredError",
                 "mean_squared_log_error": "meanSquaredLogError",
                 "median_absolute_error": "medianAbsoluteError", "r2_score": "rSquared",
                 "explained_variance": "explainedVariance",
                 "davies_bouldin_index": "daviesBouldinIndex",
                 "mean_squared_distance": "meanSquaredDistance"}


def type_kind(t: pa.DataType | None) -> str:
    if t is None or pa.types.is_string(t) or pa.types.is_large_string(t):
        return "STRING"
    if pa.types.is_integer(t):
        return "INT64"
    if pa.types.is_floating(t):
        return "FLOAT64"
    if pa.types.is_boolean(t):
        return "BOOL"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    return "STRING"


def _camel(values: dict) -> dict:
    return {_METRIC_NAMES[k]: v for k, v in values.items() if v is not None and k in
            _METRIC_NAMES}


def evaluation_metrics(model: TrainedModel) -> dict:
    m = model.eval_metrics
    if not m:
        return {}
    if model.model_type == "kmeans":
        return {"clusteringMetrics": _camel(m)}
    if not model.classifier:
        return {"regressionMetrics": _camel(m)}
    aggregate = _camel(m)
    if len(model.classes) == 2:
        return {"binaryClassificationMetrics": {
            "aggregateClassificationMetrics": {**aggregate, "threshold": 0.5},
            "positiveLabel": str(model.classes[1]), "negativeLabel": str(model.classes[0])}}
    return {"multiClassClassificationMetrics": {"aggregateClassificationMetrics": aggregate}}


def _ms(t: float) -> str:
    return str(int(t * 1000))


def build(ref: ModelRef, model: TrainedModel, started: float, finished: float) -> dict:
    if model.encoder is not None:
        features = [{"name": c["name"], "type": {"typeKind": c["type"]}}
                    for c in model.encoder.columns]
    elif model.model_type == "arima_plus":
        features = [{"name": model.options["time_series_timestamp_col"],
                     "type": {"typeKind": "TIMESTAMP"}}]
    else:
        features = [{"name": model.options.get(c, c.split("_")[0]), "type": {"typeKind": "STRING"}}
                    for c in ("user_col", "item_col")]
    if model.supervised:
        labels = [{"name": model.predicted_name, "type": {"typeKind": type_kind(model.label_type)}}]
    elif model.model_type == "kmeans":
        labels = [{"name": "centroid_id", "type": {"typeKind": "INT64"}}]
    elif model.model_type == "arima_plus":
        labels = [{"name": "forecast_value", "type": {"typeKind": "FLOAT64"}}]
    else:
        labels = [{"name": f"predicted_{model.label}", "type": {"typeKind": "FLOAT64"}}]
    results = [{"index": h["iteration"], "durationMs": str(h["duration_ms"]),
                **({"trainingLoss": h["loss"]} if h.get("loss") is not None else {}),
                **({"evalLoss": h["eval_loss"]} if h.get("eval_loss") is not None else {}),
                **({"learnRate": h["learning_rate"]} if h.get("learning_rate") else {})}
               for h in model.history]
    run = {"trainingOptions": rest_training_options(model.options),
           "trainingStartTime": _ms(started),
           "startTime": dt.datetime.fromtimestamp(started, dt.UTC).isoformat()
           .replace("+00:00", "Z"),
           "results": results,
           "evaluationMetrics": evaluation_metrics(model),
           "dataSplitResult": {}}
    resource = {"modelReference": ref.as_dict(), "creationTime": _ms(finished),
                "lastModifiedTime": _ms(finished), "modelType": MODEL_TYPES[model.model_type],
                "trainingRuns": [run], "featureColumns": features, "labelColumns": labels,
                "location": "US"}
    if model.trials:
        resource.update(_trials(model))
    resource["etag"] = etag(resource)
    return resource


_STATUS = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "INFEASIBLE": "INFEASIBLE"}


def _trials(model: TrainedModel) -> dict:
    """hparamTrials, defaultTrialId and optimalTrialIds (REST Model resource)."""
    out = []
    for t in model.trials:
        entry = {"trialId": str(t["trial_id"]), "startTimeMs": _ms(t["start"]),
                 "endTimeMs": _ms(t["end"]), "status": _STATUS[t["status"]],
                 "hparams": rest_training_options(t["hparams"])}
        if t["error"]:
            entry["errorMessage"] = t["error"]
        if t["model"] is not None and t["model"].history:
            last = t["model"].history[-1]
            if last.get("loss") is not None:
                entry["trainingLoss"] = last["loss"]
            if last.get("eval_loss") is not None:
                entry["evalLoss"] = last["eval_loss"]
            entry["evaluationMetrics"] = evaluation_metrics(t["model"])
        out.append(entry)
    best = str(model.trial_id)
    return {"hparamTrials": out, "defaultTrialId": best, "optimalTrialIds": [best]}


def etag(resource: dict) -> str:
    body = json.dumps({k: v for k, v in resource.items() if k != "etag"}, sort_keys=True)
    return hashlib.md5(body.encode()).hexdigest()[:16]


PATCHABLE = {"description", "friendlyName", "labels", "expirationTime", "encryptionConfiguration"}


def patch(resource: dict, body: dict, now: float) -> dict:
    for key, value in body.items():
        if key not in PATCHABLE:
            continue
        if key == "labels":
            labels = dict(resource.get("labels", {}))
            for name, v in (value or {}).items():
                if v is None:
                    labels.pop(name, None)
                else:
                    labels[name] = v
            resource["labels"] = labels
        elif value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    resource["lastModifiedTime"] = _ms(now)
    resource["etag"] = etag(resource)
    return resource
