"""CustomJob through the real Vertex AI SDK: package upload, the environment contract,
multi-worker TF_CONFIG, failure, cancel, and machine validation."""

from __future__ import annotations

import json
import os
import time
from importlib import metadata

import numpy as np
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform

from labkit.storage import local_path
from labkit.workspace import Workspace

TF_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest"


def _base(job: aiplatform.CustomJob) -> str:
    return job.job_spec.base_output_directory.output_uri_prefix.rstrip("/")


def test_script_job_sees_vertex_contract(trainers, read_json):
    job = aiplatform.CustomJob.from_local_script(
        display_name="env-contract", script_path=str(trainers / "env_dump.py"),
        container_uri=SKLEARN_IMAGE, args=["--epochs", "3"],
        environment_variables={"MY_FLAG": "on"})
    job.run()
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert job.start_time and job.end_time and job.end_time >= job.start_time
    package = job.job_spec.worker_pool_specs[0].python_package_spec.package_uris[0]
    assert package.startswith("gs://")
    assert local_path(package, Workspace.from_env()).is_file()  # the SDK uploaded it
    seen = read_json(f"{_base(job)}/model/env.json")
    env = seen["env"]
    assert seen["argv"] == ["--epochs", "3"]
    assert env["MY_FLAG"] == "on"
    assert env["AIP_MODEL_DIR"] == f"{_base(job)}/model/"
    assert env["AIP_CHECKPOINT_DIR"] == f"{_base(job)}/checkpoints/"
    assert env["AIP_TENSORBOARD_LOG_DIR"] == f"{_base(job)}/logs/"
    assert env["CLOUD_ML_JOB_ID"] == job.name
    assert env["CLOUD_ML_PROJECT_ID"] == job.project
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # n1-standard-4 without accelerators has no GPU
    assert "TF_CONFIG" not in env  # single-replica jobs get none
    cluster = json.loads(env["CLUSTER_SPEC"])
    assert cluster["task"] == {"type": "workerpool0", "index": 0}
    assert list(cluster["cluster"]) == ["workerpool0"]
    assert job.resource_name in [j.resource_name for j in aiplatform.CustomJob.list(
        filter='display_name="env-contract"')]


def test_multi_worker_replicas_train_one_model(trainers, read_json):
    job = aiplatform.CustomJob.from_local_script(
        display_name="multiworker", script_path=str(trainers / "multiworker.py"),
        container_uri=TF_IMAGE, replica_count=2, machine_type="n1-standard-4")
    job.run()
    pools = job.job_spec.worker_pool_specs
    assert [p.replica_count for p in pools] == [1, 1]
    chief = read_json(f"{_base(job)}/model-replicas/chief-0.json")
    worker = read_json(f"{_base(job)}/model-replicas/worker-0.json")
    assert chief["replicas"] == worker["replicas"] == 2
    assert set(chief["tf_config"]["cluster"]) == {"chief", "worker"}
    assert chief["tf_config"]["cluster"] == worker["tf_config"]["cluster"]
    assert worker["tf_config"]["task"] == {"type": "worker", "index": 0}
    # different data on each replica, identical weights: gradients were all-reduced
    for a, b in zip(chief["weights"], worker["weights"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert chief["last_loss"] < chief["first_loss"] / 10


def test_failing_trainer_fails_the_job_with_its_error_and_log(trainers):
    job = aiplatform.CustomJob.from_local_script(
        display_name="fails", script_path=str(trainers / "fail.py"), container_uri=SKLEARN_IMAGE)
    with pytest.raises(RuntimeError, match="species_typo") as info:
        job.run()
    assert job.state.name == "JOB_STATE_FAILED"
    message = job.error.message
    assert "workerpool0-0 exited with a non-zero status of 1" in message
    log = message.split("check the log: ", 1)[1].split("\n", 1)[0]
    assert os.path.isfile(log) and "ValueError" in open(log).read()
    assert log in str(info.value)
    # job start says which framework the image declares and which one runs here
    first = open(log).readline()
    installed = metadata.version("scikit-learn")
    if installed.startswith("1.6."):
        assert "scikit-learn" not in first
    else:
        assert first.startswith("labkit: the trainer runs on this lab environment's packages")
        assert f"scikit-learn 1.6 in the image, {installed} here" in first


def test_cancel_kills_the_replicas(trainers):
    job = aiplatform.CustomJob.from_local_script(
        display_name="sleeps", script_path=str(trainers / "sleep.py"),
        container_uri=SKLEARN_IMAGE)
    job.submit()
    pid_file = local_path(f"{_base(job)}/model/pid", Workspace.from_env())
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    job.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        job.wait_for_completion()
    assert job.state.name == "JOB_STATE_CANCELLED"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(exceptions.BadRequest, match="already in state JOB_STATE_CANCELLED"):
        job.cancel()
    job.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.CustomJob.get(job.resource_name)


def _job(**machine) -> aiplatform.CustomJob:
    spec = {"machine_spec": {"machine_type": "n1-standard-4", **machine}, "replica_count": 1,
            "python_package_spec": {"executor_image_uri": SKLEARN_IMAGE,
                                    "package_uris": ["gs://nowhere/p.tar.gz"],
                                    "python_module": "trainer.task"}}
    return aiplatform.CustomJob(display_name="bad-machine", worker_pool_specs=[spec])


@pytest.mark.parametrize("machine, error, text", [
    ({"accelerator_type": "NVIDIA_TESLA_A100", "accelerator_count": 1},
     exceptions.BadRequest, 'Accelerator "NVIDIA_TESLA_A100" is not supported for machine type'),
    ({"accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 3},
     exceptions.BadRequest, "allowed: 1, 2, 4"),
    ({"machine_type": "n1-standard-3"}, exceptions.BadRequest, "is not supported"),
    ({"machine_type": "cloud-tpu", "accelerator_type": "TPU_V3", "accelerator_count": 8},
     exceptions.MethodNotImplemented, "LAB_BACKEND=gcp"),
])
def test_invalid_machine_specs_fail_as_vertex_does(local_env, machine, error, text):
    with pytest.raises(error, match=text):
        _job(**machine).run()


def test_custom_container_images_name_the_gcp_backend(trainers):
    job = aiplatform.CustomJob.from_local_script(
        display_name="own-image", script_path=str(trainers / "env_dump.py"),
        container_uri="us-central1-docker.pkg.dev/my-project/repo/trainer:latest")
    with pytest.raises(exceptions.MethodNotImplemented, match="custom container image"):
        job.run()
