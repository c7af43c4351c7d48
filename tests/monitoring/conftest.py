"""Fixtures for monitoring through the real SDK: a scikit-learn pipeline on (age, colour)
served from the prebuilt container, its training table in BigQuery and an instance schema
in Cloud Storage, as a learner sets them up."""

from __future__ import annotations

import io
import json
import uuid

import joblib
import numpy as np
import pandas as pd
import pytest
from google.cloud import aiplatform, bigquery, storage
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
SCHEMA = """type: object
properties:
  age:
    type: number
  colour:
    type: string
required: [age, colour]
"""


@pytest.fixture(scope="session")
def training(local_env):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 1000).round(1),
                          "colour": rng.choice(["red", "blue"], 1000)})
    frame["label"] = ((frame.age > 40) & (frame.colour == "red")).astype(int)
    dataset = f"{local_env.project}.monitoring_tests_{uuid.uuid4().hex[:6]}"
    client = bigquery.Client()
    client.create_dataset(dataset)
    client.load_table_from_dataframe(frame, f"{dataset}.train").result()
    yield frame, f"bq://{dataset}.train"
    client.delete_dataset(dataset, delete_contents=True)


@pytest.fixture(scope="session")
def served(local_env, training):
    """(endpoint, model, deployed_model_id, schema_uri) with the pipeline deployed."""
    frame, _ = training
    pipeline = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), [0]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), [1])]),
        RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0))
    pipeline.fit(frame[["age", "colour"]].to_numpy(dtype=object), frame.label)
    bucket = storage.Client().bucket(local_env.bucket)
    prefix = f"tests/monitoring/{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    bucket.blob(f"{prefix}/model/model.joblib").upload_from_string(buffer.getvalue())
    bucket.blob(f"{prefix}/schema.yaml").upload_from_string(SCHEMA)
    model = aiplatform.Model.upload(
        display_name=f"mon-{uuid.uuid4().hex[:6]}",
        artifact_uri=f"gs://{bucket.name}/{prefix}/model",
        serving_container_image_uri=SKLEARN_IMAGE,
        explanation_parameters=aiplatform.explain.ExplanationParameters(
            {"sampled_shapley_attribution": {"path_count": 10}}),
        # from_json: proto-plus cannot build input_baselines (repeated Value) from keywords
        explanation_metadata=aiplatform.explain.ExplanationMetadata.from_json(json.dumps({
            "inputs": {"features": {"encoding": "BAG_OF_FEATURES",
                                    "indexFeatureMapping": ["age", "colour"],
                                    "inputBaselines": [[40.0, "blue"]]}},
            "outputs": {"score": {}}})))
    endpoint = aiplatform.Endpoint.create(display_name=f"mon-{uuid.uuid4().hex[:6]}")
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    deployed_id = endpoint.list_models()[0].id
    yield endpoint, model, deployed_id, f"gs://{bucket.name}/{prefix}/schema.yaml"
    endpoint.undeploy_all()
    endpoint.delete()
    model.delete()


def pytest_configure(config):
    config.addinivalue_line("markers", "wired: needs the endpoint routes to call "
                                       "labkit.vertex.monitoring.hooks")
