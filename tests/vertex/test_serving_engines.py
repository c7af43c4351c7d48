"""XGBoost, TensorFlow SavedModel and custom prediction routine models served through
deployModel and endpoint.predict, compared with the framework called directly."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from google.cloud import aiplatform

from labkit.storage import local_path
from labkit.workspace import Workspace

PREDICTOR = '''
import joblib
import numpy as np
from google.cloud.aiplatform.prediction.predictor import Predictor
from google.cloud.aiplatform.utils import prediction_utils


class ProbabilityPredictor(Predictor):
    def load(self, artifacts_uri):
        prediction_utils.download_model_artifacts(artifacts_uri)
        self._model = joblib.load("model.joblib")

    def predict(self, instances):
        features = np.asarray(instances["instances"])
        return {"predictions": self._model.predict_proba(features)[:, 1].tolist()}
'''


def _serve(endpoint, name, uri, image, env=None):
    model = aiplatform.Model.upload(display_name=name, artifact_uri=uri,
                                    serving_container_image_uri=image,
                                    serving_container_environment_variables=env)
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    return model


@pytest.fixture()
def prefix(bucket):
    return f"gs://{bucket.name}/tests/vertex/engines-{uuid.uuid4().hex[:8]}"


def test_xgboost_booster(endpoint, data, prefix):
    import xgboost

    booster = xgboost.train({"objective": "binary:logistic"},
                            xgboost.DMatrix(data[0], label=data[1]), num_boost_round=5)
    booster.save_model(str(local_path(f"{prefix}/xgb/model.bst", Workspace.from_env())))
    _serve(endpoint, "xgb", f"{prefix}/xgb",
           "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.2-1:latest")
    got = endpoint.predict(instances=data[0][:5].tolist()).predictions
    want = booster.predict(xgboost.DMatrix(data[0][:5]))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_xgboost_sklearn_api_joblib(endpoint, data, prefix):
    import joblib
    import xgboost

    classifier = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(*data)
    joblib.dump(classifier, local_path(f"{prefix}/xgbj/model.joblib", Workspace.from_env()))
    _serve(endpoint, "xgbj", f"{prefix}/xgbj",
           "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.2-1:latest")
    got = endpoint.predict(instances=data[0][:5].tolist()).predictions
    assert got == classifier.predict(data[0][:5]).tolist()


def test_tensorflow_saved_model(endpoint, data, prefix):
    import keras

    model = keras.Sequential([keras.Input((3,), name="features"),
                              keras.layers.Dense(2, activation="softmax")])
    model.export(str(local_path(f"{prefix}/tf/", Workspace.from_env())), verbose=False)
    _serve(endpoint, "tf", f"{prefix}/tf",
           "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest")
    got = endpoint.predict(instances=data[0][:4].tolist()).predictions
    want = model.predict(data[0][:4], verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # instances may also be objects keyed by the signature's input name
    import tensorflow as tf

    folder = local_path(f"{prefix}/tf/", Workspace.from_env())
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]
    keyed = [{name: row} for row in data[0][:4].tolist()]
    np.testing.assert_allclose(endpoint.predict(instances=keyed).predictions, want, rtol=1e-5)


def test_custom_prediction_routine(endpoint, data, sklearn_uri, prefix, bucket):
    # the predictor module travels with the model, next to its artifact
    source = bucket.blob(sklearn_uri[0].split(f"{bucket.name}/", 1)[1] + "/model.joblib")
    bucket.copy_blob(source, bucket, prefix.split(f"{bucket.name}/", 1)[1] + "/cpr/model.joblib")
    bucket.blob(prefix.split(f"{bucket.name}/", 1)[1] + "/cpr/predictor.py") \
        .upload_from_string(PREDICTOR)
    _serve(endpoint, "cpr", f"{prefix}/cpr",
           "us-central1-docker.pkg.dev/my-project/serving/proba-cpr:latest",
           {"PREDICTOR_MODULE": "predictor", "PREDICTOR_CLASS": "ProbabilityPredictor"})
    got = endpoint.predict(instances=data[0][:5].tolist()).predictions
    np.testing.assert_allclose(got, sklearn_uri[1].predict_proba(data[0][:5])[:, 1])
