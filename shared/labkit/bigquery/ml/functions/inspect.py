"""ML.TRAINING_INFO, ML.FEATURE_INFO, ML.WEIGHTS, ML.CENTROIDS, ML.FEATURE_IMPORTANCE,
ML.GLOBAL_EXPLAIN and ML.ARIMA_COEFFICIENTS."""

from __future__ import annotations

import pyarrow as pa

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.features import NULL_CATEGORY
from labkit.bigquery.ml.functions.common import FLOAT, INT, require, table
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import MLCall

_CATEGORY_WEIGHTS = pa.list_(pa.struct([("category", pa.string()), ("weight", FLOAT)]))


def training_info(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    schema = [("training_run", INT), ("iteration", INT), ("loss", FLOAT), ("eval_loss", FLOAT),
              ("learning_rate", FLOAT), ("duration_ms", INT)]
    rows = [{"training_run": 0, **h} for h in model.history]
    if model.model_type == "kmeans":
        schema.append(("cluster_info", pa.list_(pa.struct([
            ("centroid_id", INT), ("cluster_radius", FLOAT), ("cluster_size", INT)]))))
    else:
        rows = [{k: v for k, v in r.items() if k != "cluster_info"} for r in rows]
    return table(rows, schema)


def feature_info(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if model.encoder is None:
        raise MLError(f"ML.FEATURE_INFO is not supported for {model.model_type.upper()} models")
    rows = []
    for c in model.encoder.columns:
        numeric = c["kind"] != "string"
        rows.append({"input": c["name"], "min": c.get("min") if numeric else None,
                     "max": c.get("max") if numeric else None,
                     "mean": c.get("mean") if numeric else None,
                     "median": c.get("median") if numeric else None,
                     "stddev": c.get("stddev") if numeric else None,
                     "category_count": None if numeric else c["category_count"],
                     "null_count": c["null_count"], "dimension": 1})
    return table(rows, [("input", pa.string()), ("min", FLOAT), ("max", FLOAT), ("mean", FLOAT),
                        ("median", FLOAT), ("stddev", FLOAT), ("category_count", INT),
                        ("null_count", INT), ("dimension", INT)])


def _category(value: str) -> str | None:
    return None if value == NULL_CATEGORY else value


def weights(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if model.model_type == "matrix_factorization":
        return _factor_weights(model)
    require(model, call, {"linear_reg", "logistic_reg"}, "linear and logistic regression and "
            "matrix factorization models")
    standardize = bool(call.settings.get("standardize", False))
    coef, intercepts = model.trainer.coefficients()
    multiclass = coef.shape[0] > 1
    rows = []
    for k in range(coef.shape[0]):
        intercept = float(intercepts[k])
        position = 0
        class_rows = []
        for info in model.encoder.columns:
            if info["kind"] == "string":
                width = len(info["categories"])
                cats = [{"category": _category(c), "weight": float(w)}
                        for c, w in zip(info["categories"],
                                        coef[k, position:position + width], strict=False)]
                class_rows.append({"processed_input": info["name"], "weight": None,
                                   "category_weights": cats})
                position += width
                continue
            w = float(coef[k, position])
            if model.encoder.standardize and not standardize:
                # back to the feature's own units
                intercept -= w * info["mean"] / info["std"]
                w = w / info["std"]
            elif standardize and not model.encoder.standardize:
                w = w * info["std"]
            class_rows.append({"processed_input": info["name"], "weight": w,
                               "category_weights": []})
            position += 1
        class_rows.append({"processed_input": "__INTERCEPT__", "weight": intercept,
                           "category_weights": []})
        if multiclass:
            for r in class_rows:
                r["class_label"] = str(model.classes[k])
        rows += class_rows
    schema = [("processed_input", pa.string()), ("weight", FLOAT),
              ("category_weights", _CATEGORY_WEIGHTS)]
    if multiclass:
        schema.insert(1, ("class_label", pa.string()))
    return table(rows, schema)


def _factor_weights(model: TrainedModel) -> pa.Table:
    als, opts = model.trainer, model.options
    rows = []
    for col, names, factors, bias in ((opts.get("user_col", "user"), als.users, als.P, als.bu),
                                      (opts.get("item_col", "item"), als.items, als.Q, als.bi)):
        for name, vec, b in zip(names, factors, bias, strict=False):
            rows.append({"processed_input": col, "feature": str(name),
                         "factor_weights": [{"factor": i + 1, "weight": float(w)}
                                            for i, w in enumerate(vec)],
                         "intercept": float(b)})
    return table(rows, [("processed_input", pa.string()), ("feature", pa.string()),
                        ("factor_weights", pa.list_(pa.struct([("factor", INT),
                                                               ("weight", FLOAT)]))),
                        ("intercept", FLOAT)])


def centroids(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, {"kmeans"}, "KMEANS models")
    rows = []
    for c, centre in enumerate(model.trainer.centroids):
        position = 0
        for info in model.encoder.columns:
            if info["kind"] == "string":
                width = len(info["categories"])
                cats = [{"category": _category(cat), "value": float(v)}
                        for cat, v in zip(info["categories"],
                                          centre[position:position + width], strict=False)]
                rows.append({"centroid_id": c + 1, "feature": info["name"],
                             "numerical_value": None, "categorical_value": cats,
                             "geography_value": None})
                position += width
                continue
            v = float(centre[position])
            if model.encoder.standardize:
                v = v * info["std"] + info["mean"]
            rows.append({"centroid_id": c + 1, "feature": info["name"], "numerical_value": v,
                         "categorical_value": [], "geography_value": None})
            position += 1
    return table(rows, [("centroid_id", INT), ("feature", pa.string()),
                        ("numerical_value", FLOAT),
                        ("categorical_value", pa.list_(pa.struct([("category", pa.string()),
                                                                  ("value", FLOAT)]))),
                        ("geography_value", pa.string())])


def feature_importance(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, {"boosted_tree_classifier", "boosted_tree_regressor",
                          "random_forest_classifier", "random_forest_regressor"},
            "boosted tree and random forest models")
    per_column = model.trainer.importance()
    totals: dict[str, dict] = {name: {"weight": 0.0, "gain": 0.0, "cover": 0.0}
                               for name in model.encoder.names}
    for j, (feature, _) in enumerate(model.encoder.outputs):
        score = per_column.get(j)
        if not score:
            continue
        t = totals[feature]
        splits = score.get("weight", 0.0)
        # averages per split, combined over the feature's one-hot columns by split count
        t["gain"] += score.get("gain", 0.0) * splits
        t["cover"] += score.get("cover", 0.0) * splits
        t["weight"] += splits
    rows = [{"feature": name, "importance_weight": int(t["weight"]),
             "importance_gain": t["gain"] / t["weight"] if t["weight"] else 0.0,
             "importance_cover": t["cover"] / t["weight"] if t["weight"] else 0.0}
            for name, t in totals.items()]
    rows.sort(key=lambda r: -r["importance_gain"])
    return table(rows, [("feature", pa.string()), ("importance_weight", INT),
                        ("importance_gain", FLOAT), ("importance_cover", FLOAT)])


def global_explain(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if model.global_attributions is None:
        raise MLError("ML.GLOBAL_EXPLAIN needs a model trained with the option "
                      "enable_global_explain = TRUE")
    rows = [{"feature": f, "attribution": a} for f, a in model.global_attributions]
    top_k = call.settings.get("top_k_features")
    return table(rows[:int(top_k)] if top_k else rows,
                 [("feature", pa.string()), ("attribution", FLOAT)])


def arima_coefficients(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    require(model, call, {"arima_plus"}, "ARIMA_PLUS models")
    trainer = model.trainer
    rows = []
    for key, s in trainer.series:
        row = dict(zip(trainer.id_cols, key, strict=False))
        row.update(ar_coefficients=[float(v) for v in s.ar],
                   ma_coefficients=[float(v) for v in s.ma], intercept_or_drift=float(s.c))
        rows.append(row)
    ids = [(c, pa.array([k[i] for k, _ in trainer.series]).type)
           for i, c in enumerate(trainer.id_cols)]
    return table(rows, ids + [("ar_coefficients", pa.list_(FLOAT)),
                              ("ma_coefficients", pa.list_(FLOAT)),
                              ("intercept_or_drift", FLOAT)])
