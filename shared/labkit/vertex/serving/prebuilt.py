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
import re
import zlib
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


class IncompatibleArtifact(Exception):
    """The artifact was written by a newer framework than the container serves."""


# A pickled estimator's state holds "_sklearn_version": "<version>" (pickle protocols 2-5:
# SHORT_BINUNICODE / BINUNICODE / BINUNICODE8, optionally memoized); read without unpickling.
_SKLEARN = re.compile(rb"_sklearn_version(?:\x94|q.|r....)?"
                      rb"(?:\x8c(?P<n1>.)|X(?P<n4>....)|\x8d(?P<n8>.{8}))", re.DOTALL)
# XGBoost models (JSON, UBJSON, and the UBJSON raw bytes inside a pickled XGBModel) carry
# "version": [major, minor, patch].
_XGB_UBJ = re.compile(rb"version\[#(?:L.{8}|l.{4}|I..|[iU].)[iU](.)[iU](.)[iU](.)", re.DOTALL)
_XGB_JSON = re.compile(rb'"version"\s*:\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]')


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:1] == b"\x78":  # joblib's zlib compression
        try:
            return zlib.decompress(data)
        except zlib.error:
            return data
    return data


def sklearn_versions(path: Path) -> list[str]:
    """The scikit-learn versions that wrote the estimators in a pickle / joblib file."""
    data = _file_bytes(path)
    found = []
    for m in _SKLEARN.finditer(data):
        size = int.from_bytes(m["n1"] or m["n4"] or m["n8"], "little")
        found.append(data[m.end():m.end() + size].decode("utf-8", "replace"))
    return found


def xgboost_versions(path: Path) -> list[str]:
    data = _file_bytes(path)
    return [".".join(str(b[0]) for b in m.groups()) for m in _XGB_UBJ.finditer(data)] + \
        [b".".join(m.groups()).decode() for m in _XGB_JSON.finditer(data)]


def writer_versions(engine: str, path: Path) -> list[str]:
    """The framework versions recorded in a scikit-learn or XGBoost model file."""
    return sklearn_versions(path) if engine == "sklearn" else xgboost_versions(path)


def minor(version: str) -> tuple[int, int]:
    parts = re.findall(r"\d+", version)[:2]
    return tuple(int(p) for p in parts + ["0"] * (2 - len(parts)))


def check_artifact(engine: str, path: Path, framework_version: str | None) -> None:
    """Refuses an artifact a newer scikit-learn / XGBoost wrote than the container serves
    (read from the file's bytes, before anything is unpickled)."""
    if not framework_version or engine not in ("sklearn", "xgboost"):
        return
    label, reader, image = {
        "sklearn": ("scikit-learn", sklearn_versions, "sklearn-cpu"),
        "xgboost": ("XGBoost", xgboost_versions, "xgboost-cpu")}[engine]
    versions = reader(path)
    if not versions:
        return  # nothing recorded (a very old pickle): the framework decides when it loads
    newest = max(versions, key=minor)
    if minor(newest) > minor(framework_version):
        tag = f"{image}.{framework_version.replace('.', '-')}"
        raise IncompatibleArtifact(
            f"{path.name} was written by {label} {newest}, newer than {label} "
            f"{framework_version} in the prebuilt prediction container {tag}, which cannot "
            f"load it. Train with {label} {framework_version}, or serve with a prebuilt "
            f"container for {label} {'.'.join(map(str, minor(newest)))} if Google offers one.")


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


def open_predictor(engine: str, folder: Path, path: Path,
                   framework_version: str | None = None):
    """Load the model the way the prebuilt image does (in the model server process), after
    checking that the container's framework version can read it."""
    check_artifact(engine, path, framework_version)
    if engine == "sklearn":
        return SklearnPredictor(path)
    if engine == "xgboost":
        return XGBoostPredictor(path)
    return TensorFlowPredictor(folder)
