"""Vertex AI's prebuilt prediction containers, in process.

Each loads the artifact folder's model file as the prebuilt image does and answers
predict with the same `predictions` list:
- scikit-learn: model.joblib or model.pkl; predictions = model.predict(np.array(instances)).
- XGBoost: model.bst (a Booster), model.joblib or model.pkl; Booster.predict(DMatrix).
- TensorFlow: a SavedModel (saved_model.pb) called through its serving_default signature;
  instances are lists (one input) or dicts keyed by input name.
"""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np

from labkit.vertex import errors

MODEL_FILES = {
    "sklearn": ["model.joblib", "model.pkl"],
    "xgboost": ["model.bst", "model.joblib", "model.pkl"],
    "tensorflow": ["saved_model.pb", "saved_model.pbtxt"],
}
LABELS = {"sklearn": "sklearn", "xgboost": "xgboost", "tensorflow": "TensorFlow"}


def find_model_file(engine: str, folder: Path, uri: str) -> Path:
    present = [folder / name for name in MODEL_FILES[engine] if (folder / name).is_file()]
    if len(present) != 1:
        raise errors.invalid(f"Model directory {uri} is expected to contain exactly one of: "
                             f"[{', '.join(MODEL_FILES[engine])}].")
    return present[0]


def _prediction_failed(engine: str, exc: Exception) -> errors.VertexError:
    # The prebuilt containers answer 400 with the framework's message wrapped like this.
    return errors.failed_precondition(
        f'{{"error": "Prediction failed: Exception during {LABELS[engine]} prediction: '
        f'{exc}"}}')


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
        try:
            return _jsonable(self.model.predict(np.asarray(instances)))
        except Exception as exc:  # noqa: BLE001 - any framework error is the caller's input
            raise _prediction_failed(self.engine, exc) from None

    def close(self) -> None:
        pass


class XGBoostPredictor(SklearnPredictor):
    engine = "xgboost"

    def __init__(self, path: Path):
        try:
            import xgboost
        except ImportError:
            raise errors.failed_precondition(
                "XGBoost serving needs the xgboost package (xgboost-cpu), which is not "
                "installed in this environment.") from None
        self.xgboost = xgboost
        if path.suffix == ".bst":
            self.model = xgboost.Booster()
            self.model.load_model(str(path))
        else:
            super().__init__(path)

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        try:
            data = np.asarray(instances, dtype=float)
            if isinstance(self.model, self.xgboost.Booster):
                return _jsonable(self.model.predict(self.xgboost.DMatrix(data)))
            return _jsonable(self.model.predict(data))
        except Exception as exc:  # noqa: BLE001
            raise _prediction_failed(self.engine, exc) from None


class TensorFlowPredictor:
    engine = "tensorflow"
    _import_lock = threading.Lock()

    def __init__(self, folder: Path):
        with self._import_lock:
            import tensorflow as tf
        self.tf = tf
        loaded = tf.saved_model.load(str(folder))
        if "serving_default" not in loaded.signatures:
            raise errors.invalid("The SavedModel has no serving_default signature.")
        self.loaded = loaded  # keeps the signature's variables alive
        self.signature = loaded.signatures["serving_default"]
        self.inputs = self.signature.structured_input_signature[1]

    def predict(self, instances: list, parameters: dict | None = None) -> list:
        tf = self.tf
        try:
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
        except Exception as exc:  # noqa: BLE001
            raise _prediction_failed(self.engine, exc) from None
        arrays = {k: v.numpy() for k, v in outputs.items()}
        if len(arrays) == 1:
            return _jsonable(next(iter(arrays.values())))
        return [{k: _jsonable(v[i]) for k, v in arrays.items()} for i in range(len(instances))]

    def close(self) -> None:
        pass


def load(engine: str, folder: Path, uri: str):
    path = find_model_file(engine, folder, uri)
    try:
        if engine == "sklearn":
            return SklearnPredictor(path)
        if engine == "xgboost":
            return XGBoostPredictor(path)
        return TensorFlowPredictor(folder)
    except errors.VertexError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unloadable artifact is the caller's input
        raise errors.failed_precondition(
            f"Model server never became ready: failed to load {uri}/{path.name} with the "
            f"{LABELS[engine]} prediction container: {type(exc).__name__}: {exc}") from None
