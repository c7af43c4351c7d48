"""Endpoints through the real SDK: deploy, predict, canary traffic split, errors."""

from __future__ import annotations

from collections import Counter

import pytest
import requests
from google.api_core import exceptions
from google.cloud import aiplatform


def test_deploy_and_predict_matches_the_model(endpoint, sklearn_model, sklearn_uri, data):
    sklearn_model.deploy(endpoint=endpoint, machine_type="n1-standard-4",
                         accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1,
                         min_replica_count=1, max_replica_count=3)
    features = data[0][:20]
    response = endpoint.predict(instances=features.tolist())
    assert response.predictions == sklearn_uri[1].predict(features).tolist()
    deployed = endpoint.list_models()[0]
    assert response.deployed_model_id == deployed.id
    assert response.model_version_id == "1"
    assert response.model_resource_name == sklearn_model.resource_name
    spec = deployed.dedicated_resources
    assert spec.machine_spec.machine_type == "n1-standard-4"
    assert spec.machine_spec.accelerator_type.name == "NVIDIA_TESLA_T4"
    assert (spec.min_replica_count, spec.max_replica_count) == (1, 3)
    # a deployed model can't be deleted, nor its endpoint
    with pytest.raises(exceptions.BadRequest, match="Undeploy"):
        sklearn_model.delete()
    with pytest.raises(exceptions.BadRequest, match="deployed"):
        endpoint.delete()
    endpoint.undeploy_all()
    assert endpoint.list_models() == []
    with pytest.raises(exceptions.BadRequest, match="no DeployedModel"):
        endpoint.predict(instances=features.tolist())


def test_canary_traffic_split(endpoint, sklearn_model, sklearn_uri):
    sklearn_model.deploy(endpoint=endpoint, machine_type="e2-standard-2")
    challenger = aiplatform.Model.upload(
        parent_model=sklearn_model.resource_name, display_name=sklearn_model.display_name,
        artifact_uri=sklearn_uri[0], is_default_version=False,
        serving_container_image_uri=sklearn_model.container_spec.image_uri)
    challenger.deploy(endpoint=endpoint, machine_type="e2-standard-2", traffic_percentage=30)
    split = endpoint.traffic_split
    assert sorted(split.values()) == [30, 70]
    served = Counter(endpoint.predict(instances=[[0.1, 0.2, 0.3]]).model_version_id
                     for _ in range(200))
    assert set(served) == {"1", "2"} and 20 < served["2"] < 100
    # all traffic to the challenger, then only version 2 answers
    ids = {d.model_version_id: d.id for d in endpoint.list_models()}
    endpoint.update(traffic_split={ids["1"]: 0, ids["2"]: 100})
    assert {endpoint.predict(instances=[[0.1, 0.2, 0.3]]).model_version_id
            for _ in range(20)} == {"2"}
    with pytest.raises(exceptions.BadRequest, match="add up to 100"):
        endpoint.update(traffic_split={ids["1"]: 10, ids["2"]: 10})


def test_machine_validation(endpoint, sklearn_model):
    with pytest.raises(exceptions.BadRequest, match="not supported for machine type"):
        sklearn_model.deploy(endpoint=endpoint, machine_type="e2-standard-4",
                             accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1)
    with pytest.raises(exceptions.BadRequest, match='Machine type "n9-giant-1"'):
        sklearn_model.deploy(endpoint=endpoint, machine_type="n9-giant-1")
    assert endpoint.list_models() == []


def test_bad_input_keeps_serving(endpoint, sklearn_model, local_env):
    sklearn_model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    with pytest.raises(exceptions.BadRequest, match="features"):
        endpoint.predict(instances=[[1.0, 2.0]])  # the model expects 3 features
    with pytest.raises(exceptions.BadRequest, match="Prediction failed"):
        endpoint.predict(instances=[["a", "b", "c"]])
    # the raw wire: instances missing altogether
    token = (local_env.workspace / "token").read_text().strip()
    answer = requests.post(f"{local_env.endpoint}/v1/{endpoint.resource_name}:predict",
                           json={"rows": []}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert len(endpoint.predict(instances=[[0.5, 0.5, 0.5]]).predictions) == 1


def test_unloadable_artifact_fails_deploy(endpoint, bucket):
    prefix = f"tests/vertex/broken-{endpoint.name}"
    bucket.blob(f"{prefix}/model.joblib").upload_from_string(b"not a pickle")
    model = aiplatform.Model.upload(
        display_name="broken", artifact_uri=f"gs://{bucket.name}/{prefix}",
        serving_container_image_uri="us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest")
    with pytest.raises(exceptions.GoogleAPICallError, match="never became ready"):
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    assert aiplatform.Endpoint(endpoint.resource_name).list_models() == []
    model.delete()


def test_deploy_to_deleted_endpoint(sklearn_model):
    gone = aiplatform.Endpoint.create(display_name="gone")
    gone.delete()
    with pytest.raises(exceptions.NotFound):
        sklearn_model.deploy(endpoint=gone, machine_type="n1-standard-2")


def test_what_runs_only_on_vertex(endpoint, sklearn_model, sklearn_uri, local_env):
    custom = aiplatform.Model.upload(display_name="custom", artifact_uri=sklearn_uri[0],
                                     serving_container_image_uri="gcr.io/acme/server:1")
    with pytest.raises(exceptions.GoogleAPICallError, match="LAB_BACKEND=gcp"):
        custom.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    custom.delete()
    with pytest.raises(exceptions.GoogleAPICallError, match="dedicated endpoint"):
        aiplatform.Endpoint.create(display_name="d", dedicated_endpoint_enabled=True)
    sklearn_model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    with pytest.raises(exceptions.GoogleAPICallError, match="no explanation_spec"):
        endpoint.explain(instances=[[0.1, 0.2, 0.3]])  # uploaded without one
    token = (local_env.workspace / "token").read_text().strip()
    answer = requests.post(f"{local_env.endpoint}/v1/{endpoint.resource_name}:rawPredict",
                           data=b"{}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 501 and "raw_predict" in answer.json()["error"]["message"]


def test_endpoint_list_and_get(endpoint):
    assert endpoint.resource_name in [e.resource_name for e in aiplatform.Endpoint.list()]
    assert aiplatform.Endpoint(endpoint.name).display_name == endpoint.display_name


def test_missing_endpoint_is_not_found(local_env):
    with pytest.raises(exceptions.NotFound, match="is not found"):
        aiplatform.Endpoint("1234567890123456789").gca_resource  # noqa: B018 - fetched lazily


def test_requires_token(local_env, endpoint):
    answer = requests.get(f"{local_env.endpoint}/v1/{endpoint.resource_name}")
    assert answer.status_code == 401



def test_deployment_survives_a_restart(endpoint, sklearn_model, local_env, data):
    """A fresh engine over the same workspace (a restarted services process) serves the
    stored deployment, loading the model again on the first request."""
    from labkit.vertex.endpoints import Endpoints
    from labkit.vertex.registry import Registry
    from labkit.vertex.store import ResourceStore
    from labkit.workspace import Workspace

    sklearn_model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    store = ResourceStore(Workspace(local_env.workspace))
    restarted = Endpoints(store, Registry(store))
    parent = endpoint.resource_name.split("/endpoints/")[0]
    answer = restarted.predict(parent, endpoint.name, {"instances": data[0][:3].tolist()})
    assert answer["predictions"] == endpoint.predict(instances=data[0][:3].tolist()).predictions
