"""Vertex AI's prebuilt prediction containers: what runs inside the model server.

These classes run only in a model server child process (`labkit.vertex.serving.host`),
never in the services process: loading an artifact unpickles the learner's file, which
can run any code. They import nothing of the services (numpy and the framework only).
`labkit.vertex.serving.process` is the services-side handle that starts the child.

Each loads the artifact folder's model file as the prebuilt image does and answers
predict with the same `predictions` list:
- scikit-learn: model.joblib or model.pkl; predictions = model.predict(np.array(instances)).
- XGBoost: model.bst (a Booster), model.joblib or model.pkl; Booster.predict(DMatrix).
- TensorFlow: a SavedModel (saved_model.pb) called through its serving_default signature;
  instances are lists (one input) or dicts keyed by input name. It also answers
  gradients() for integrated-gradients explanations (tf.GradientTape on that signature).
predict raises the framework's own exception; the handle wraps it in Vertex's error.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

MODEL_FILES = {
    "sklearn": ["model.joblib", "model.pkl"],
    "xgboost": ["model.bst", "model.joblib", "model.pkl"],
    "tensorflow": ["saved_model.pb", "saved_model.pbtxt"],
}
LABELS = {"sklearn": "sklearn", "xgboost": "xgboost", "tensorflow": "TensorFlow"}


class ContainerError(Exception):
    """What the container reports in a Vertex status of its own (not a framework error)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def present_model_files(engine: str, folder: Path) -> list[Path]:
    return [folder / name for name in MODEL_FILES[engine] if (folder / name).is_file()]


def _jsonable(values) -> list:
    return np.asarray(values).tolist()


class SklearnPredictor:
    engine = "sklearn"

    def __init__(self, path: Path):
        if path.suffix == ".joblib":
            import joblib

            self.model = joblib.load(path)
        else:
            with open(path, "rb") as f:
                self.model = pickle.load(f)  # noqa: S301 - the learner's own artifact

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        return _jsonable(self.model.predict(np.asarray(instances)))


class XGBoostPredictor(SklearnPredictor):
    engine = "xgboost"

    def __init__(self, path: Path):
        try:
            import xgboost
        except ImportError:
            raise ContainerError(
                "FAILED_PRECONDITION",
                "XGBoost serving needs the xgboost package (xgboost-cpu), which is not "
                "installed in this environment.") from None
        self.xgboost = xgboost
        if path.suffix == ".bst":
            self.model = xgboost.Booster()
            self.model.load_model(str(path))
        else:
            super().__init__(path)

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        data = np.asarray(instances, dtype=float)
        if isinstance(self.model, self.xgboost.Booster):
            return _jsonable(self.model.predict(self.xgboost.DMatrix(data)))
        return _jsonable(self.model.predict(data))


class TensorFlowPredictor:
    engine = "tensorflow"

    def __init__(self, folder: Path):
        import tensorflow as tf

        self.tf = tf
        loaded = tf.saved_model.load(str(folder))
        if "serving_default" not in loaded.signatures:
            raise ContainerError("INVALID_ARGUMENT",
                                 "The SavedModel has no serving_default signature.")
        self.loaded = loaded  # keeps the signature's variables alive
        self.signature = loaded.signatures["serving_default"]
        self.inputs = self.signature.structured_input_signature[1]

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        tf = self.tf
        if instances and isinstance(instances[0], dict):
            feed = {name: tf.constant(np.asarray([i[name] for i in instances]),
                                      dtype=spec.dtype)
                    for name, spec in self.inputs.items()}
        else:
            if len(self.inputs) != 1:
                raise ValueError(f"the model has inputs {sorted(self.inputs)}; send "
                                 f"instances as objects keyed by input name")
            name, spec = next(iter(self.inputs.items()))
            feed = {name: tf.constant(np.asarray(instances), dtype=spec.dtype)}
        outputs = self.signature(**feed)
        arrays = {k: v.numpy() for k, v in outputs.items()}
        if len(arrays) == 1:
            return _jsonable(next(iter(arrays.values())))
        return [{k: _jsonable(v[i]) for k, v in arrays.items()} for i in range(len(instances))]

    def gradients(self, points: list, names: list | None, key: str | None,
                  index: int | None) -> tuple[list, list]:
        """d output[key][:, index] / d points, and that output, for numeric features:
        points are rows of feature values; names maps the columns to the inputs of a model
        fed by name (dict instances), None for a model with one input."""
        tf = self.tf
        x = tf.constant(np.asarray(points, dtype=float), dtype=tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            if names is not None:
                feed = {}
                for j, name in enumerate(names):
                    rank = len(self.inputs[name].shape)
                    feed[name] = tf.cast(tf.reshape(x[:, j], [-1] + [1] * (rank - 1)),
                                         self.inputs[name].dtype)
            else:
                name, spec = next(iter(self.inputs.items()))
                feed = {name: tf.cast(x, spec.dtype)}
            result = self.signature(**feed)
            tensor = result[key] if key in result else next(iter(result.values()))
            tensor = tf.reshape(tensor, [len(points), -1])
            target = tensor[:, index or 0]
        grads = tape.gradient(target, x)
        if grads is None:
            raise ValueError("the model's output does not depend differentiably on its inputs")
        return grads.numpy().astype(float).tolist(), target.numpy().astype(float).tolist()


def open_predictor(engine: str, folder: Path, path: Path):
    """Load the model the way the prebuilt image does (in the model server process)."""
    if engine == "sklearn":
        return SklearnPredictor(path)
    if engine == "xgboost":
        return XGBoostPredictor(path)
    return TensorFlowPredictor(folder)
