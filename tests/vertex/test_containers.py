"""Prebuilt containers as strict as Vertex AI: Google's list (labkit/vertex/containers.json)
decides which images exist, retired ones are refused at upload, deploy and custom job
creation, one past end of patch is logged, and a pickle written by a newer scikit-learn than
the container's makes the deployment fail with the reason. Batch output is named as Vertex
names it for custom models. All through the real SDK."""

from __future__ import annotations

import io
import logging
import uuid

import joblib
import pytest
import sklearn
from google.api_core import exceptions
from google.cloud import aiplatform
from sklearn.linear_model import LogisticRegression

PREDICTION = "us-docker.pkg.dev/vertex-ai/prediction/"
RETIRED = PREDICTION + "sklearn-cpu.1-3:latest"      # end of availability 2025-11-28
PAST_PATCH = PREDICTION + "sklearn-cpu.1-5:latest"   # end of patch 2026-07-14
NEWEST = PREDICTION + "sklearn-cpu.1-6:latest"


def _pickle_uri(bucket, data) -> str:
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression().fit(*data), buffer)
    prefix = f"tests/containers/{uuid.uuid4().hex[:8]}"
    bucket.blob(f"{prefix}/model.joblib").upload_from_string(buffer.getvalue())
    return f"gs://{bucket.name}/{prefix}"


def test_retired_prediction_image_is_refused_at_upload(bucket, data):
    with pytest.raises(exceptions.BadRequest, match="end of availability on 2025-11-28"):
        aiplatform.Model.upload(display_name="retired", artifact_uri=_pickle_uri(bucket, data),
                                serving_container_image_uri=RETIRED)


def test_unknown_prebuilt_image_is_refused(bucket, data):
    with pytest.raises(exceptions.BadRequest, match="not a Vertex AI prebuilt prediction"):
        aiplatform.Model.upload(display_name="unknown", artifact_uri=_pickle_uri(bucket, data),
                                serving_container_image_uri=PREDICTION + "sklearn-cpu.1-9:latest")


def test_retired_image_with_nothing_newer_listed_runs_with_a_loud_warning(caplog):
    """tf-cpu.2-17 (training) is past its end of availability in our copy of Google's list,
    which names no newer TensorFlow training image: the copy is likely older than Google's,
    so the job runs and the log says to check the list (a refusal needs a version to name)."""
    job = aiplatform.CustomJob(
        display_name="retired-train",
        worker_pool_specs=[{"machine_spec": {"machine_type": "n1-standard-4"},
                            "replica_count": 1, "container_spec": {
                                "image_uri": "us-docker.pkg.dev/vertex-ai/training/"
                                             "tf-cpu.2-17.py310:latest",
                                "command": ["python", "-c", "print(1)"]}}])
    with caplog.at_level(logging.WARNING, logger="labkit.vertex.containers"):
        job.run()
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert any("past its end of availability" in r.getMessage() and "no newer" in r.getMessage()
               for r in caplog.records)


def test_image_past_end_of_patch_is_accepted_with_a_warning(bucket, data, caplog):
    with caplog.at_level(logging.WARNING, logger="labkit.vertex.containers"):
        model = aiplatform.Model.upload(display_name="past-patch",
                                        artifact_uri=_pickle_uri(bucket, data),
                                        serving_container_image_uri=PAST_PATCH)
    assert model.resource_name
    assert any("past its end of patch" in r.getMessage() and "2026-07-14" in r.getMessage()
               for r in caplog.records)
    model.delete()


def _claiming(bucket, data, version: str) -> str:
    """A scikit-learn pickle whose recorded writer version reads `version` (same length as
    the installed one, patched in the bytes: what the services read before unpickling)."""
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression().fit(*data), buffer)
    raw = buffer.getvalue().replace(sklearn.__version__.encode(), version.encode())
    prefix = f"tests/containers/{uuid.uuid4().hex[:8]}"
    bucket.blob(f"{prefix}/model.joblib").upload_from_string(raw)
    return f"gs://{bucket.name}/{prefix}"


def test_newer_pickle_fails_the_deployment_with_the_reason(bucket, data):
    """Written by scikit-learn 1.6, served on sklearn-cpu.1-5: Vertex's server cannot load
    it, and a listed container (1.6) could."""
    model = aiplatform.Model.upload(display_name="newer-pickle",
                                    artifact_uri=_claiming(bucket, data, "1.6.1"),
                                    serving_container_image_uri=PAST_PATCH)
    endpoint = aiplatform.Endpoint.create(display_name="newer-pickle")
    with pytest.raises(Exception, match="Model server never became ready") as raised:
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    assert "written by scikit-learn 1.6.1" in str(raised.value)
    assert "sklearn-cpu.1-5" in str(raised.value)
    endpoint.delete()
    model.delete()


def test_pickle_newer_than_every_listed_container_deploys_with_a_warning(bucket, data, caplog):
    """A pickle from a scikit-learn newer than the newest container in our copy of Google's
    list (1.6), which may be older than Google's page: the deployment goes ahead and the log
    says what to check."""
    model = aiplatform.Model.upload(display_name="newest-pickle",
                                    artifact_uri=_claiming(bucket, data, "1.9.1"),
                                    serving_container_image_uri=NEWEST)
    endpoint = aiplatform.Endpoint.create(display_name="newest-pickle")
    with caplog.at_level(logging.WARNING, logger="labkit.vertex"):
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    assert endpoint.predict(instances=[data[0][0].tolist()]).predictions
    assert any("written by sklearn 1.9.1" in r.getMessage() for r in caplog.records)
    endpoint.undeploy_all()
    endpoint.delete()
    model.delete()


def test_retired_image_older_than_the_newest_listed_is_refused():
    """tf-cpu.2-16 (training, end of availability 2026-06-28) is older than the newest
    TensorFlow row of the list (2.17): it is certainly retired, so the job is refused even
    though 2.17 itself is past its date in our copy."""
    job = aiplatform.CustomJob(
        display_name="retired-older",
        worker_pool_specs=[{"machine_spec": {"machine_type": "n1-standard-4"},
                            "replica_count": 1, "container_spec": {
                                "image_uri": "us-docker.pkg.dev/vertex-ai/training/"
                                             "tf-cpu.2-16.py310:latest",
                                "command": ["python", "-c", "print(1)"]}}])
    with pytest.raises(exceptions.BadRequest, match="end of availability on 2026-06-28"):
        job.run()


def test_retired_xgboost_image_names_the_supported_one(bucket, data):
    """xgboost-cpu.1-7 (prediction) left availability on 2025-12-30 (Google's table, read
    2026-12-02); the refusal names the newest available XGBoost image."""
    with pytest.raises(exceptions.BadRequest, match="2025-12-30.*XGBoost 2.1"):
        aiplatform.Model.upload(display_name="retired-xgb", artifact_uri=_pickle_uri(bucket, data),
                                serving_container_image_uri=PREDICTION + "xgboost-cpu.1-7:latest")


def test_pipeline_model_upload_of_a_retired_image_fails_the_task(local_env, bucket, data,
                                                                tmp_path):
    """ModelUploadOp (Google Cloud Pipeline Components) is refused like Model.upload: the
    task fails with Vertex's message and the run fails."""
    from tests.vertex.retired_pipeline import compile_upload

    path = tmp_path / "retired.yaml"
    compile_upload(str(path), _pickle_uri(bucket, data), RETIRED)
    job = aiplatform.PipelineJob(
        display_name="retired-upload", template_path=str(path),
        pipeline_root=f"gs://{bucket.name}/tests/containers-pipeline",
        parameter_values={"project": local_env.project, "location": "us-central1"})
    with pytest.raises(RuntimeError):
        job.run()
    assert job.state.name == "PIPELINE_STATE_FAILED"
    failed = [t for t in job.task_details if t.state.name == "FAILED"]
    assert failed and any("end of availability on 2025-11-28" in t.error.message
                          for t in failed)


def test_pipeline_uploads_a_new_version_named_by_parameters(local_env, bucket, data, tmp_path):
    """dsl.importer(metadata={"resourceName": param}) gets the parameter's value (KFP compiles
    it to a placeholder), so ModelUploadOp(parent_model=...) adds a version, and ModelDeployOp's
    traffic_split (numbers arrive as floats) gives it all the traffic."""
    from tests.vertex.new_version_pipeline import compile_new_version

    uri = _pickle_uri(bucket, data)
    parent = aiplatform.Model.upload(display_name="versioned", artifact_uri=uri,
                                     serving_container_image_uri=NEWEST)
    endpoint = aiplatform.Endpoint.create(display_name="versioned")
    path = tmp_path / "new_version.yaml"
    compile_new_version(str(path), NEWEST)
    job = aiplatform.PipelineJob(
        display_name="new-version", template_path=str(path),
        pipeline_root=f"gs://{bucket.name}/tests/containers-pipeline",
        parameter_values={"project": local_env.project, "location": "us-central1",
                          "artifact_uri": uri, "parent": parent.resource_name,
                          "endpoint": endpoint.resource_name})
    job.run()
    versions = aiplatform.ModelRegistry(parent.resource_name).list_versions()
    assert sorted(v.version_id for v in versions) == ["1", "2"]
    [deployed] = endpoint.list_models()
    assert deployed.model_version_id == "2"
    assert list(endpoint.traffic_split.values()) == [100]
    endpoint.undeploy_all()
    endpoint.delete()
    parent.delete()
