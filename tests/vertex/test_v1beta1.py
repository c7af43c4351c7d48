"""Vertex AI's v1beta1 surface: every v1 resource answers on /v1beta1/ too, through the
v1beta1 GAPIC clients and raw HTTP (tests/pipelines/test_v1beta1.py: the SDK's preview
PipelineJob)."""

from __future__ import annotations

import uuid

import pytest
import requests
from google.api_core import exceptions
from google.cloud import aiplatform
from google.cloud.aiplatform import initializer

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


def _v1beta1(client_class):
    """A v1beta1 GAPIC client configured as labkit.start() configured the SDK."""
    config = initializer.global_config
    return client_class(credentials=config.credentials, transport="rest",
                        client_options={"api_endpoint": config.api_endpoint})


def test_gapic_v1beta1_model_and_endpoint_operations(local_env, sklearn_uri):
    from google.cloud.aiplatform_v1beta1 import (
        EndpointServiceClient,
        Model,
        ModelContainerSpec,
        ModelServiceClient,
    )

    parent = f"projects/{local_env.project}/locations/{local_env.region}"
    models = _v1beta1(ModelServiceClient)
    name = f"beta-{uuid.uuid4().hex[:6]}"
    # The upload is a long-running operation: its response unpacks as the v1beta1 message.
    uploaded = models.upload_model(parent=parent, model=Model(
        display_name=name, artifact_uri=sklearn_uri[0],
        container_spec=ModelContainerSpec(image_uri=SKLEARN_IMAGE))).result(timeout=30)
    assert uploaded.model.startswith(f"projects/{local_env.project}/locations/")
    model = models.get_model(name=uploaded.model)
    assert model.display_name == name
    assert name in [m.display_name for m in models.list_models(parent=parent)]
    # the same resource through the GA SDK (v1)
    assert aiplatform.Model(uploaded.model).display_name == name

    endpoints = _v1beta1(EndpointServiceClient)
    created = endpoints.create_endpoint(parent=parent, endpoint={"display_name": name}) \
        .result(timeout=30)
    assert endpoints.get_endpoint(name=created.name).display_name == name
    endpoints.delete_endpoint(name=created.name).result(timeout=30)
    models.delete_model(name=uploaded.model).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        models.get_model(name=uploaded.model)


def test_raw_http_v1beta1(local_env):
    token = local_env_token(local_env)
    base = f"{local_env.endpoint}/v1beta1/projects/{local_env.project}/locations/" \
           f"{local_env.region}"
    auth = {"Authorization": f"Bearer {token}"}
    for collection in ("models", "endpoints", "customJobs", "pipelineJobs", "tensorboards",
                       "batchPredictionJobs", "datasets", "hyperparameterTuningJobs",
                       "trainingPipelines", "schedules", "modelDeploymentMonitoringJobs"):
        response = requests.get(f"{base}/{collection}", headers=auth, timeout=10)
        assert response.status_code == 200, (collection, response.text)
    # a created resource's operation names the v1beta1 message types
    response = requests.post(f"{base}/endpoints", headers=auth, timeout=10,
                             json={"displayName": "raw-beta"})
    assert response.status_code == 200, response.text
    operation = response.json()
    assert operation["response"]["@type"] == \
        "type.googleapis.com/google.cloud.aiplatform.v1beta1.Endpoint"
    assert operation["metadata"]["@type"].startswith(
        "type.googleapis.com/google.cloud.aiplatform.v1beta1.")
    polled = requests.get(f"{local_env.endpoint}/v1beta1/{operation['name']}", headers=auth,
                          timeout=10).json()
    assert polled["response"]["@type"].endswith("v1beta1.Endpoint")
    endpoint = operation["response"]["name"]
    # the same endpoint on v1 keeps v1 types
    assert requests.get(f"{local_env.endpoint}/v1/{endpoint}", headers=auth,
                        timeout=10).json()["displayName"] == "raw-beta"
    assert requests.delete(f"{local_env.endpoint}/v1beta1/{endpoint}", headers=auth,
                           timeout=10).status_code == 200
    # the HTTP layer's policies hold: no secret, wrong method, unknown path
    assert requests.get(f"{base}/models", timeout=10).status_code == 401
    wrong = requests.put(f"{base}/models", headers=auth, timeout=10)
    assert wrong.status_code == 405 and wrong.json()["error"]["status"] == "METHOD_NOT_ALLOWED"
    unknown = requests.get(f"{base}/noSuchThings", headers=auth, timeout=10)
    assert unknown.status_code == 404 and "LAB_BACKEND=gcp" in unknown.json()["error"]["message"]
    refused = requests.get(f"{base}/models", headers={**auth, "Host": "evil.example"},
                           timeout=10)
    assert refused.status_code == 403


def local_env_token(local_env) -> str:
    from labkit.workspace import Workspace

    return Workspace(local_env.workspace).token
