"""EXPORT MODEL and model extract jobs: a trained model written in the format BigQuery ML
exports it in, so that Vertex AI's prebuilt prediction containers serve it.

docs: "Export models" (https://cloud.google.com/bigquery/docs/exporting-models) and the
export tutorial (https://cloud.google.com/bigquery/docs/export-model-tutorial):
- LINEAR_REG, LOGISTIC_REG, DNN_CLASSIFIER/REGRESSOR, KMEANS (and AUTOML_*, MATRIX_FACTORIZATION,
  PCA, AUTOENCODER, which the local BigQuery does not export) are TensorFlow SavedModels
  (destinationFormat ML_TF_SAVED_MODEL): saved_model.pb, variables/, assets/. The serving
  signature takes one input per feature column, named as the column, so Vertex's TensorFlow
  container takes instances as {"feature": value, ...}; classifiers answer
  predicted_<label>, <label>_probs and <label>_values, regressors predicted_<label>.
  The preprocessing BigQuery ML did in training (mean imputation, standardization, one-hot
  encoding over the training categories) is inside the graph.
- BOOSTED_TREE_* and RANDOM_FOREST_* are an XGBoost Booster (ML_XGBOOST_BOOSTER): model.bst
  and assets/ with model_metadata.json (the features in the order the booster reads them)
  and one vocabulary file per STRING feature (<index>.txt, one category a line, in encoding
  order). Vertex's XGBoost container feeds the instances (rows of numbers in that order)
  to Booster.predict. BigQuery also writes main.py and xgboost_predictor-0.1.tar.gz, a
  prediction routine for the retired AI Platform: not written here.
- ARIMA_PLUS cannot be exported. Neither can a model trained on ARRAY, TIMESTAMP or
  GEOGRAPHY features (docs, Limitations).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.options import MODEL_TYPES

TF_SAVED_MODEL, XGBOOST_BOOSTER = "ML_TF_SAVED_MODEL", "ML_XGBOOST_BOOSTER"
TF_TYPES = {"linear_reg", "logistic_reg", "dnn_classifier", "dnn_regressor", "kmeans"}
XGB_TYPES = {"boosted_tree_classifier", "boosted_tree_regressor", "random_forest_classifier",
             "random_forest_regressor"}
# What Vertex AI serves each format with (labkit.vertex.containers lists the versions)
CONTAINER_FRAMEWORK = {TF_SAVED_MODEL: "tf2", XGBOOST_BOOSTER: "xgboost"}


def format_of(model: TrainedModel, requested: str | None = None) -> str:
    """The destination format for this model, checked as BigQuery checks it."""
    kind = MODEL_TYPES[model.model_type]
    if model.model_type in XGB_TYPES:
        native = XGBOOST_BOOSTER
    elif model.model_type in TF_TYPES:
        native = TF_SAVED_MODEL
    elif model.model_type == "arima_plus":
        raise MLError(f"Model export is not supported for model type {kind}.")
    else:
        raise not_local(f"Exporting {kind} models")
    fmt = (requested or native).upper()
    if fmt not in (TF_SAVED_MODEL, XGBOOST_BOOSTER):
        raise MLError(f"Invalid destination format {fmt} for a model extract: use "
                      f"{TF_SAVED_MODEL} or {XGBOOST_BOOSTER}.")
    if fmt != native:
        raise MLError(f"Destination format {fmt} is not supported for model type {kind}; "
                      f"it exports as {native}.")
    if model.transform is not None:
        raise not_local("Exporting a model trained with a TRANSFORM clause")
    for column in model.encoder.columns:
        if column["kind"] == "timestamp":
            raise MLError(f"Model export is not supported for models trained with TIMESTAMP "
                          f"(or ARRAY, GEOGRAPHY) features; {column['name']} is "
                          f"{column['type']}.")
    return fmt


def export(model: TrainedModel, folder: Path, requested: str | None = None) -> str:
    """Writes the model into `folder` (created or emptied); returns the format. Built
    beside the folder and moved into place, so readers never see half an export."""
    fmt = format_of(model, requested)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".export-{uuid.uuid4().hex}"
    try:
        if fmt == XGBOOST_BOOSTER:
            _write_booster(model, staging)
        else:
            _write_saved_model(model, staging)
        for item in staging.iterdir():   # merge into the destination, file by file
            target = folder / item.name
            if target.is_dir():
                shutil.rmtree(target)
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return fmt


# --- XGBoost Booster -------------------------------------------------------------------

def _write_booster(model: TrainedModel, folder: Path) -> None:
    assets = folder / "assets"
    assets.mkdir(parents=True)
    booster = model.trainer.model.get_booster()
    with warnings.catch_warnings():   # "model.bst": XGBoost picks its UBJSON format itself
        warnings.simplefilter("ignore", UserWarning)
        booster.save_model(str(folder / "model.bst"))
    features = []
    for index, column in enumerate(model.encoder.columns):
        entry = {"name": column["name"], "type": column["type"]}
        if column["kind"] == "string":
            categories = [c for c in column["categories"]]
            (assets / f"{index}.txt").write_text("".join(f"{c}\n" for c in categories))
            entry.update(encode_type="ONE_HOT_ENCODING", vocabulary_file=f"{index}.txt",
                         columns=len(categories))
        else:
            entry.update(encode_type="NONE", columns=1, impute_value=column["mean"])
        features.append(entry)
    metadata = {"model_type": MODEL_TYPES[model.model_type], "features": features,
                "feature_names": [c["name"] for c in model.encoder.columns],
                "label_col": model.label}
    if model.classifier:
        metadata["label_values"] = [str(c) for c in model.classes]
    (assets / "model_metadata.json").write_text(json.dumps(metadata, indent=1))


# --- TensorFlow SavedModel --------------------------------------------------------------

def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "elu": "elu", "selu": "selu",
                "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax", "linear": None}


def _dense_layers(model: TrainedModel) -> list[tuple[np.ndarray, np.ndarray, str | None]]:
    """The network as (kernel, bias, activation) per Dense layer: linear models are one
    layer; dropout does nothing at prediction time."""
    trainer = model.trainer
    if model.model_type in ("linear_reg", "logistic_reg"):
        coef, intercept = trainer.coefficients()
        if model.model_type == "linear_reg":
            return [(coef.T, intercept, None)]
        if coef.shape[0] == 1:            # binary: p(class 1) = sigmoid(x.w + b)
            return [(np.hstack([-coef.T, coef.T]) / 2, np.r_[-intercept, intercept] / 2,
                     "softmax")]
        return [(coef.T, intercept, "softmax")]
    layers = []
    for layer in trainer.model.layers:
        weights = layer.get_weights()
        if len(weights) != 2:
            continue
        name = layer.get_config().get("activation", "linear")
        if name not in _ACTIVATIONS:
            raise not_local(f"Exporting a DNN with activation {name}")
        layers.append((weights[0], weights[1], _ACTIVATIONS[name]))
    return layers


def _write_saved_model(model: TrainedModel, folder: Path) -> None:
    tf = _tf()
    columns = model.encoder.columns
    standardize = model.encoder.standardize
    vocabularies = Path(tempfile.mkdtemp(prefix="bqml-vocab-"))  # SavedModel copies them
    try:
        _save_graph(tf, model, columns, standardize, vocabularies, folder)
    finally:
        shutil.rmtree(vocabularies, ignore_errors=True)


def _save_graph(tf, model, columns, standardize, vocabularies: Path, folder: Path) -> None:

    class Exported(tf.Module):
        pass

    module = Exported()
    tables = {}
    for index, column in enumerate(columns):
        if column["kind"] == "string":
            vocab = vocabularies / f"{index}.txt"
            vocab.write_text("".join(f"{c}\n" for c in column["categories"]))
            init = tf.lookup.TextFileInitializer(
                str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER)
            tables[column["name"]] = tf.lookup.StaticHashTable(init, -1)
    module.tables = list(tables.values())
    dtypes = {"string": tf.string, "bool": tf.bool}
    spec = {c["name"]: tf.TensorSpec([None], dtypes.get(c["kind"], tf.float64), name=c["name"])
            for c in columns}

    def features(inputs):
        blocks = []
        for column in columns:
            value = inputs[column["name"]]
            if column["kind"] == "string":
                index = tables[column["name"]].lookup(value)
                blocks.append(tf.one_hot(index, len(column["categories"]), dtype=tf.float64))
                continue
            x = tf.cast(value, tf.float64)
            x = tf.where(tf.math.is_nan(x), tf.constant(column["mean"], tf.float64), x)
            if standardize:
                x = (x - column["mean"]) / column["std"]
            blocks.append(x[:, None])
        return tf.concat(blocks, axis=1)

    label = model.label
    if model.model_type == "kmeans":
        centroids = tf.constant(model.trainer.centroids, tf.float64)

        def serve(inputs):
            x = features(inputs)
            distances = tf.sqrt(tf.reduce_sum(
                (x[:, None, :] - centroids[None, :, :]) ** 2, axis=2))
            return {"centroid_distances": distances,
                    "nearest_centroid_ids": tf.argmin(distances, axis=1)[:, None] + 1}
    else:
        layers = [(tf.constant(w, tf.float64), tf.constant(b, tf.float64), act)
                  for w, b, act in _dense_layers(model)]
        scale = (getattr(model.trainer, "y_std", 1.0), getattr(model.trainer, "y_mean", 0.0))
        values = tf.constant([str(c) for c in (model.classes or [])], tf.string)

        def serve(inputs):
            x = features(inputs)
            for w, b, act in layers:
                x = tf.matmul(x, w) + b
                if act is not None:
                    x = getattr(tf.nn, act)(x)
            if not model.classifier:
                return {f"predicted_{label}": x * scale[0] + scale[1]}
            n = tf.shape(x)[0]
            best = tf.argmax(x, axis=1)
            return {f"{label}_probs": x,
                    f"{label}_values": tf.tile(values[None, :], [n, 1]),
                    f"predicted_{label}": tf.gather(values, best)[:, None]}

    module.serve = tf.function(serve, input_signature=[spec])
    tf.saved_model.save(module, str(folder),
                        signatures={"serving_default": module.serve.get_concrete_function()})
