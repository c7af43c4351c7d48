"""Training pipelines through the real SDK: CustomTrainingJob (script -> model in the
registry -> deployed), CustomPythonPackageTrainingJob (an sdist on Cloud Storage),
CustomContainerTrainingJob with a prebuilt image, cancel."""

from __future__ import annotations

import io
import re
import tarfile
import time
import uuid

import pandas as pd
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery, storage
from sklearn.datasets import load_iris

SKLEARN_TRAIN = "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest"
SKLEARN_SERVE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
TF_TRAIN = SKLEARN_TRAIN  # this trainer needs no TensorFlow; no TF training image is available


def test_custom_training_job_registers_and_serves_its_model(trainers):
    job = aiplatform.CustomTrainingJob(
        display_name="iris-train", script_path=str(trainers / "sklearn_model.py"),
        container_uri=SKLEARN_TRAIN, model_serving_container_image_uri=SKLEARN_SERVE)
    model = job.run(model_display_name="iris-model", replica_count=1,
                    machine_type="n1-standard-4")
    assert isinstance(model, aiplatform.Model)
    assert job.state.name == "PIPELINE_STATE_SUCCEEDED"
    assert model.display_name == "iris-model" and model.version_id == "1"
    assert model.uri.endswith("/model")  # <base_output_dir>/model, i.e. AIP_MODEL_DIR
    backing = job.gca_resource.training_task_metadata["backingCustomJob"]
    assert aiplatform.CustomJob.get(backing).state.name == "JOB_STATE_SUCCEEDED"
    endpoint = model.deploy(machine_type="n1-standard-2")
    try:
        x, y = load_iris(return_X_y=True)
        predictions = endpoint.predict(instances=x[:5].tolist()).predictions
        assert [int(p) for p in predictions] == list(y[:5])
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
        model.delete()
        job.delete()


def _sdist(name: str) -> bytes:
    """A source distribution as `python setup.py sdist` lays it out."""
    files = {
        "setup.py": "from setuptools import setup, find_packages\n"
                    f"setup(name='{name}', version='0.1', packages=find_packages())\n",
        "trainer/__init__.py": "",
        "trainer/task.py": (
            "import json, os, sys\n"
            "from trainer import model\n"
            "out = os.environ['AIP_MODEL_DIR'].replace('gs://', '/gcs/', 1)\n"
            "os.makedirs(out, exist_ok=True)\n"
            "json.dump({'argv': sys.argv[1:], 'answer': model.answer(),\n"
            "           'tf_config': os.environ.get('TF_CONFIG'),\n"
            "           'job': os.environ['CLOUD_ML_JOB_ID']},\n"
            "          open(os.path.join(out, 'result.json'), 'w'))\n"),
        "trainer/model.py": "def answer():\n    return 42\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-0.1/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_python_package_training_job_runs_the_module(local_env, read_json):
    name = f"trainer_{uuid.uuid4().hex[:6]}"
    blob = storage.Client().bucket(local_env.bucket).blob(f"packages/{name}-0.1.tar.gz")
    blob.upload_from_string(_sdist(name))
    job = aiplatform.CustomPythonPackageTrainingJob(
        display_name="package-train", python_package_gcs_uri=f"gs://{local_env.bucket}/"
        f"{blob.name}", python_module_name="trainer.task", container_uri=TF_TRAIN)
    base = f"gs://{local_env.bucket}/runs/{name}"
    assert job.run(args=["--epochs=2"], base_output_dir=base, replica_count=1) is None
    result = read_json(f"{base}/model/result.json")
    backing = job.gca_resource.training_task_metadata["backingCustomJob"]
    assert result == {"argv": ["--epochs=2"], "answer": 42, "tf_config": None,
                      "job": backing.rsplit("/", 1)[-1]}


def test_container_training_job_with_a_prebuilt_image(local_env, read_json):
    job = aiplatform.CustomContainerTrainingJob(
        display_name="container-train", container_uri=SKLEARN_TRAIN,
        command=["python3", "-c", "import json, os, sys; d = os.environ['AIP_MODEL_DIR']"
                 ".replace('gs://', '/gcs/', 1); os.makedirs(d, exist_ok=True); "
                 "json.dump(sys.argv[1:], open(d + 'argv.json', 'w'))"])
    base = f"gs://{local_env.bucket}/runs/container-{uuid.uuid4().hex[:6]}"
    job.run(args=["--alpha", "0.5"], base_output_dir=base)
    assert read_json(f"{base}/model/argv.json") == ["--alpha", "0.5"]
    own = aiplatform.CustomContainerTrainingJob(
        display_name="own-image", container_uri="gcr.io/my-project/my-trainer:1")
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        own.run()


def test_cancel_a_training_pipeline(trainers):
    job = aiplatform.CustomTrainingJob(
        display_name="sleepy", script_path=str(trainers / "sleep.py"),
        container_uri=SKLEARN_TRAIN)
    job.submit()
    job.wait_for_resource_creation()
    job.cancel()
    deadline = time.monotonic() + 30
    while job.state.name not in ("PIPELINE_STATE_CANCELLED", "PIPELINE_STATE_FAILED",
                                 "PIPELINE_STATE_SUCCEEDED") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.state.name == "PIPELINE_STATE_CANCELLED"
    assert "cancelled" in job.gca_resource.error.message
    backing = job.gca_resource.training_task_metadata["backingCustomJob"]
    assert aiplatform.CustomJob.get(backing).state.name == "JOB_STATE_CANCELLED"
    listed = [p.resource_name for p in aiplatform.CustomTrainingJob.list(
        filter='display_name="sleepy"')]
    assert job.resource_name in listed


def test_managed_dataset_reaches_the_trainer_as_split_files(trainers, local_env, read_json):
    rows = "\n".join(f"{i},{i % 3},{i * 0.5}" for i in range(200))
    blob = storage.Client().bucket(local_env.bucket).blob(f"datasets/{uuid.uuid4().hex[:6]}.csv")
    blob.upload_from_string("id,label,value\n" + rows)
    dataset = aiplatform.TabularDataset.create(display_name="rows",
                                               gcs_source=f"gs://{local_env.bucket}/{blob.name}")
    job = aiplatform.CustomTrainingJob(display_name="with-dataset",
                                       script_path=str(trainers / "env_dump.py"),
                                       container_uri=SKLEARN_TRAIN)
    base = f"gs://{local_env.bucket}/runs/dataset-{uuid.uuid4().hex[:6]}"
    job.run(dataset=dataset, base_output_dir=base, training_fraction_split=0.7,
            validation_fraction_split=0.2, test_fraction_split=0.1)
    env = read_json(f"{base}/model/env.json")["env"]
    assert env["AIP_DATA_FORMAT"] == "csv"
    counts = {}
    for key, split in (("AIP_TRAINING_DATA_URI", "training"),
                       ("AIP_VALIDATION_DATA_URI", "validation"), ("AIP_TEST_DATA_URI", "test")):
        uri = env[key]
        assert uri.startswith(f"{base}/dataset-{dataset.name}-tables-") and uri.endswith(
            f"/{split}-*.csv")  # Vertex: "gcs_destination/dataset-.../training-*.csv"
        assert re.search(r"-tables-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/", uri)
        blobs = list(storage.Client().list_blobs(local_env.bucket, prefix=uri[5:].split(
            "/", 1)[1][:-len("*.csv")]))
        assert len(blobs) == 1
        counts[split] = len(blobs[0].download_as_text().splitlines()) - 1  # minus the header
    assert counts == {"training": 140, "validation": 40, "test": 20}
    dataset.delete()


def test_managed_dataset_exported_to_bigquery(trainers, local_env, read_json):
    """bigquery_destination: Vertex creates dataset_<id>_tables_<timestamp> in the project with
    tables training/validation/test and gives the trainer bq:// URIs (AIP_DATA_FORMAT=bigquery)."""
    client = bigquery.Client()
    source = f"rows_{uuid.uuid4().hex[:8]}"
    client.create_dataset(source)
    rows = pd.DataFrame({"id": range(100), "label": [i % 3 for i in range(100)],
                         "value": [i * 0.5 for i in range(100)]})
    client.load_table_from_dataframe(rows, f"{local_env.project}.{source}.rows").result()
    dataset = aiplatform.TabularDataset.create(
        display_name="bq-rows", bq_source=f"bq://{local_env.project}.{source}.rows")
    job = aiplatform.CustomTrainingJob(display_name="with-bq-dataset",
                                       script_path=str(trainers / "bq_splits.py"),
                                       container_uri=SKLEARN_TRAIN)
    base = f"gs://{local_env.bucket}/runs/bq-dataset-{uuid.uuid4().hex[:6]}"
    job.run(dataset=dataset, base_output_dir=base, bigquery_destination=f"bq://{local_env.project}",
            training_fraction_split=0.6, validation_fraction_split=0.2, test_fraction_split=0.2)
    found = read_json(f"{base}/model/splits.json")
    assert found["format"] == "bigquery"
    assert {k: found[k]["rows"] for k in ("training", "validation", "test")} == \
        {"training": 60, "validation": 20, "test": 20}
    uri = found["training"]["uri"]
    m = re.fullmatch(rf"bq://{local_env.project}\.(dataset_{dataset.name}_tables_"
                     r"\d{4}_\d\d_\d\dT\d\d_\d\d_\d\d_\d{3}Z)\.training", uri)
    assert m, uri
    assert found["test"]["uri"] == f"bq://{local_env.project}.{m[1]}.test"
    assert found["training"]["columns"] == ["id", "label", "value"]
    exported = {t.table_id for t in client.list_tables(m[1])}
    assert exported == {"training", "validation", "test"}
    assert client.get_dataset(m[1]).location == client.get_dataset(source).location
    # Vertex takes a project only, and a dataset with a BigQuery source only
    again = aiplatform.CustomTrainingJob(display_name="bq-dataset-table",
                                         script_path=str(trainers / "bq_splits.py"),
                                         container_uri=SKLEARN_TRAIN)
    with pytest.raises(exceptions.BadRequest, match="bq://<project>"):
        again.run(dataset=dataset, base_output_dir=base,
                  bigquery_destination=f"bq://{local_env.project}.{source}")
    files = storage.Client().bucket(local_env.bucket).blob(f"datasets/{uuid.uuid4().hex[:6]}.csv")
    files.upload_from_string("id,label\n1,0\n2,1\n")
    csv_dataset = aiplatform.TabularDataset.create(
        display_name="csv-rows", gcs_source=f"gs://{local_env.bucket}/{files.name}")
    other = aiplatform.CustomTrainingJob(display_name="csv-to-bq",
                                         script_path=str(trainers / "bq_splits.py"),
                                         container_uri=SKLEARN_TRAIN)
    with pytest.raises(exceptions.BadRequest, match="BigQuery source"):
        other.run(dataset=csv_dataset, base_output_dir=base,
                  bigquery_destination=f"bq://{local_env.project}")
    for d in (dataset, csv_dataset):
        d.delete()
    client.delete_dataset(m[1], delete_contents=True)
    client.delete_dataset(source, delete_contents=True)
