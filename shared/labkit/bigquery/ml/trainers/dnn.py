"""dnn_classifier and dnn_regressor on Keras (TensorFlow backend): one ML.TRAINING_INFO
iteration per epoch. TensorFlow is imported only when a DNN model is used."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.trainers.base import rel_progress_stop


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


class DNNTrainer:
    def __init__(self, model_type: str):
        self.classifier = model_type == "dnn_classifier"
        self.model = None

    def fit(self, X, y, w, X_eval, y_eval, options, n_classes=None) -> list[dict]:
        keras = _keras()
        keras.utils.set_random_seed(0)
        n, features = X.shape
        outputs = n_classes if self.classifier else 1
        units = options.get("hidden_units") or [
            int(min(128, max(8, n // (10 * (features + outputs)))))]
        activation = {"RELU": "relu", "RELU6": "relu6", "ELU": "elu", "SELU": "selu",
                      "SIGMOID": "sigmoid", "TANH": "tanh", "CRELU": "relu"}.get(
            str(options["activation_fn"]).upper())
        if activation is None:
            raise MLError(f"Invalid value for option activation_fn: {options['activation_fn']}")
        l1, l2 = float(options.get("l1_reg") or 0), float(options.get("l2_reg") or 0)
        reg = keras.regularizers.L1L2(l1, l2) if l1 or l2 else None
        layers = [keras.Input((features,))]
        for u in units:
            layers.append(keras.layers.Dense(int(u), activation=activation,
                                             kernel_regularizer=reg))
            if options.get("dropout"):
                layers.append(keras.layers.Dropout(float(options["dropout"])))
        layers.append(keras.layers.Dense(outputs, activation="softmax" if self.classifier
                                         else None))
        self.model = keras.Sequential(layers)
        rate = float(options["learn_rate"])
        optimizers = {"ADAM": keras.optimizers.Adam, "ADAGRAD": keras.optimizers.Adagrad,
                      "SGD": keras.optimizers.SGD, "RMSPROP": keras.optimizers.RMSprop,
                      "FTRL": keras.optimizers.Ftrl}
        opt = optimizers.get(str(options["optimizer"]).upper())
        if opt is None:
            raise MLError(f"Invalid value for option optimizer: {options['optimizer']}")
        self.model.compile(optimizer=opt(learning_rate=rate),
                           loss="sparse_categorical_crossentropy" if self.classifier
                           else "mean_squared_error")
        batch = int(options.get("batch_size") or min(1024, n))
        history: list[dict] = []
        eval_losses: list[float] = []
        # regression targets are standardized for training and scaled back in predict
        self.y_mean, self.y_std = (0.0, 1.0) if self.classifier else (
            float(np.mean(y)), float(np.std(y)) or 1.0)
        scale = self.y_std ** 2
        target = (np.asarray(y, dtype="int32") if self.classifier
                  else ((np.asarray(y, float) - self.y_mean) / self.y_std).astype("float32"))
        for epoch in range(int(options["max_iterations"])):
            start = time.perf_counter()
            result = self.model.fit(X.astype("float32"), target, sample_weight=w,
                                    batch_size=batch, epochs=1, verbose=0, shuffle=True)
            ms = int((time.perf_counter() - start) * 1000)
            eval_loss = None
            if X_eval is not None:
                eval_target = (np.asarray(y_eval, dtype="int32") if self.classifier else
                               (np.asarray(y_eval, float) - self.y_mean) / self.y_std)
                eval_loss = float(self.model.evaluate(
                    X_eval.astype("float32"), eval_target.astype(target.dtype),
                    batch_size=4096, verbose=0)) * (1 if self.classifier else scale)
                eval_losses.append(eval_loss)
            train_loss = float(result.history["loss"][-1]) * (1 if self.classifier else scale)
            history.append({"iteration": epoch, "loss": train_loss,
                            "eval_loss": eval_loss, "learning_rate": rate, "duration_ms": ms})
            if options.get("early_stop") and rel_progress_stop(
                    eval_losses or [h["loss"] for h in history],
                    float(options["min_rel_progress"])):
                break
        return history

    def predict(self, X) -> np.ndarray:
        out = self.model.predict(X.astype("float32"), batch_size=4096, verbose=0)
        if self.classifier:
            out = out.astype(float)
            return out / out.sum(axis=1, keepdims=True)
        return out[:, 0].astype(float) * self.y_std + self.y_mean

    # Keras models are stored as .keras archives inside the model artifact.
    def __getstate__(self):
        state = dict(self.__dict__)
        if self.model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                self.model.save(path)
                with open(path, "rb") as f:
                    state["model"] = f.read()
        return state

    def __setstate__(self, state):
        blob = state.get("model")
        self.__dict__.update(state)
        if isinstance(blob, bytes):
            keras = _keras()
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                with open(path, "wb") as f:
                    f.write(blob)
                self.model = keras.models.load_model(path)
