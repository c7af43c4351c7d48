"""Fixtures for the local Vertex AI tests: small models written to Cloud Storage the way a
learner does it (train, save, upload the file with the storage client)."""

from __future__ import annotations

import io
import uuid

import joblib
import numpy as np
import pytest
from google.cloud import aiplatform, storage
from sklearn.linear_model import LogisticRegression

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


@pytest.fixture(scope="session")
def data():
    rng = np.random.default_rng(0)
    features = rng.random((300, 3))
    labels = (features[:, 0] + features[:, 1] > 1).astype(int)
    return features, labels


@pytest.fixture(scope="session")
def bucket(local_env):
    return storage.Client().bucket(local_env.bucket)


@pytest.fixture(scope="session")
def sklearn_uri(bucket, data):
    """gs:// folder holding a trained scikit-learn model.joblib."""
    model = LogisticRegression().fit(*data)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    prefix = f"tests/vertex/{uuid.uuid4().hex[:8]}/sklearn"
    bucket.blob(f"{prefix}/model.joblib").upload_from_string(buffer.getvalue())
    return f"gs://{bucket.name}/{prefix}", model


@pytest.fixture()
def sklearn_model(local_env, sklearn_uri):
    model = aiplatform.Model.upload(display_name=f"t-{uuid.uuid4().hex[:6]}",
                                    artifact_uri=sklearn_uri[0],
                                    serving_container_image_uri=SKLEARN_IMAGE)
    yield model
    try:
        model.delete()
    except Exception:  # noqa: BLE001 - the test may have deleted it already
        pass


@pytest.fixture()
def endpoint(local_env):
    endpoint = aiplatform.Endpoint.create(display_name=f"t-{uuid.uuid4().hex[:6]}")
    yield endpoint
    try:
        endpoint.undeploy_all()
        endpoint.delete()
    except Exception:  # noqa: BLE001
        pass
