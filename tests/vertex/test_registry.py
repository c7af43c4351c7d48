"""Model Registry through the real Vertex AI SDK: versions, aliases, list, delete."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


def test_upload_versions_and_aliases(sklearn_uri):
    name = f"reg-{uuid.uuid4().hex[:6]}"
    v1 = aiplatform.Model.upload(display_name=name, artifact_uri=sklearn_uri[0],
                                 serving_container_image_uri=SKLEARN_IMAGE,
                                 version_aliases=["champion"], labels={"team": "ml"})
    assert v1.version_id == "1"
    assert set(v1.version_aliases) == {"default", "champion"}
    assert v1.labels == {"team": "ml"}
    assert v1.gca_resource.supported_deployment_resources_types
    v2 = aiplatform.Model.upload(display_name=name, parent_model=v1.resource_name,
                                 artifact_uri=sklearn_uri[0],
                                 serving_container_image_uri=SKLEARN_IMAGE,
                                 version_aliases=["challenger"], is_default_version=False)
    assert v2.resource_name == v1.resource_name and v2.version_id == "2"
    assert aiplatform.Model(v1.resource_name).version_id == "1"  # ID means the default
    assert aiplatform.Model(f"{v1.resource_name}@challenger").version_id == "2"
    assert aiplatform.Model(v1.resource_name, version="2").version_aliases == ["challenger"]
    versions = v1.versioning_registry.list_versions()
    assert [v.version_id for v in versions] == ["1", "2"]
    # moving "champion" to version 2 takes it from version 1
    v1.versioning_registry.add_version_aliases(["champion"], version="2")
    assert set(aiplatform.Model(f"{v1.resource_name}@2").version_aliases) == {
        "challenger", "champion"}
    assert aiplatform.Model(f"{v1.resource_name}@1").version_aliases == ["default"]
    listed = aiplatform.Model.list(filter=f'display_name="{name}"')
    assert [m.resource_name for m in listed] == [v1.resource_name]
    assert v1.resource_name in [m.resource_name for m in aiplatform.Model.list(
        filter='labels.team="ml"')]
    assert v1.resource_name not in [m.resource_name for m in aiplatform.Model.list(
        filter='labels.team="nobody"')]
    v1.versioning_registry.delete_version("2")
    assert [v.version_id for v in v1.versioning_registry.list_versions()] == ["1"]
    v1.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model(v1.resource_name)


def test_upload_errors(bucket, sklearn_uri):
    with pytest.raises(exceptions.BadRequest, match="expected to contain exactly one of"):
        aiplatform.Model.upload(display_name="empty", artifact_uri=f"gs://{bucket.name}/none",
                                serving_container_image_uri=SKLEARN_IMAGE)
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model("1234567890123456789")
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model.upload(display_name="orphan", parent_model="1234567890123456789",
                                artifact_uri=sklearn_uri[0],
                                serving_container_image_uri=SKLEARN_IMAGE)


def test_model_persists_in_workspace(sklearn_model, local_env):
    """A fresh engine over the same workspace (a restarted services process) sees it."""
    from labkit.vertex.registry import Registry
    from labkit.vertex.store import ResourceStore
    from labkit.workspace import Workspace

    registry = Registry(ResourceStore(Workspace(local_env.workspace)))
    parent = sklearn_model.resource_name.split("/models/")[0]
    stored = registry.get(parent, sklearn_model.name)
    assert stored["displayName"] == sklearn_model.display_name
    assert stored["artifactUri"] == sklearn_model.uri


def test_local_artifact_folder_is_staged_to_the_bucket(tmp_path, data, local_env):
    """The SDK copies a local artifact folder to the staging bucket before uploading."""
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    joblib.dump(DecisionTreeClassifier(max_depth=2).fit(*data), tmp_path / "model.joblib")
    model = aiplatform.Model.upload(display_name="staged", artifact_uri=str(tmp_path),
                                    serving_container_image_uri=SKLEARN_IMAGE)
    assert model.uri.startswith(f"gs://{local_env.bucket}/")
    assert model.list_model_evaluations() == []
    model.delete()


def test_operations_are_kept(sklearn_uri, local_env):
    """The raw wire: upload answers a finished operation that GET .../operations/ID returns."""
    import requests

    headers = {"Authorization": f"Bearer {(local_env.workspace / 'token').read_text().strip()}"}
    parent = f"projects/{local_env.project}/locations/{local_env.region}"
    body = {"model": {"displayName": "raw", "artifactUri": sklearn_uri[0],
                      "containerSpec": {"imageUri": SKLEARN_IMAGE}}}
    operation = requests.post(f"{local_env.endpoint}/v1/{parent}/models:upload", json=body,
                              headers=headers).json()
    assert operation["done"] is True
    polled = requests.get(f"{local_env.endpoint}/ui/{operation['name']}", headers=headers)
    assert polled.status_code == 200 and polled.json() == operation
    assert operation["response"]["@type"].endswith("UploadModelResponse")
    aiplatform.Model(operation["response"]["model"]).delete()
