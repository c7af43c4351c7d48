"""Batch prediction jobs through the real SDK: Cloud Storage JSONL/CSV in, JSONL out with
Vertex's layout, BigQuery in and out, bad input and cancel."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery


@pytest.fixture()
def prefix(bucket):
    return f"tests/vertex/batch-{uuid.uuid4().hex[:8]}"


def _outputs(bucket, job, kind):
    folder = job.output_info.gcs_output_directory.split(f"gs://{bucket.name}/", 1)[1]
    name = {"predictions": "prediction.results", "errors": "prediction.errors_stats"}[kind]
    blob = bucket.blob(f"{folder}/{name}-00000-of-00001")  # as Vertex names them
    return [json.loads(line) for line in blob.download_as_text().splitlines()]


def test_jsonl_to_gcs(bucket, sklearn_model, sklearn_uri, data, prefix):
    features = data[0][:50]
    bucket.blob(f"{prefix}/in.jsonl").upload_from_string(
        "\n".join(json.dumps(row) for row in features.tolist()))
    job = sklearn_model.batch_predict(
        job_display_name="batch-jsonl", gcs_source=f"gs://{bucket.name}/{prefix}/in.jsonl",
        gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out",
        instances_format="jsonl", machine_type="n1-standard-4", starting_replica_count=1,
        max_replica_count=2)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert job.output_info.gcs_output_directory.startswith(
        f"gs://{bucket.name}/{prefix}/out/prediction-{sklearn_model.display_name}-")
    lines = _outputs(bucket, job, "predictions")
    assert [line["instance"] for line in lines] == features.tolist()
    assert [line["prediction"] for line in lines] == sklearn_uri[1].predict(features).tolist()
    assert _outputs(bucket, job, "errors") == []
    assert job.completion_stats.successful_count == 50
    assert job.resource_name in [j.resource_name for j in aiplatform.BatchPredictionJob.list()]


def test_csv_with_bad_rows_reports_errors(bucket, sklearn_model, prefix):
    rows = ["a,b,c", "0.1,0.2,0.3", "0.9,0.8,0.7"]
    bucket.blob(f"{prefix}/good.csv").upload_from_string("\n".join(rows))
    bucket.blob(f"{prefix}/bad.csv").upload_from_string("a,b\n0.1,0.2\n")
    job = sklearn_model.batch_predict(
        job_display_name="batch-csv", gcs_source=[f"gs://{bucket.name}/{prefix}/good.csv",
                                                  f"gs://{bucket.name}/{prefix}/bad.csv"],
        gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out", instances_format="csv",
        machine_type="n1-standard-2", batch_size=1)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert [line["instance"] for line in _outputs(bucket, job, "predictions")] == [
        [0.1, 0.2, 0.3], [0.9, 0.8, 0.7]]
    errors = _outputs(bucket, job, "errors")
    assert errors[0]["instance"] == [0.1, 0.2] and "features" in errors[0]["error"]["message"]


def test_missing_input_fails_the_job(bucket, sklearn_model, prefix):
    job = sklearn_model.batch_predict(
        job_display_name="batch-missing", gcs_source=f"gs://{bucket.name}/{prefix}/nope.jsonl",
        gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out", instances_format="jsonl",
        machine_type="n1-standard-2", sync=False)
    with pytest.raises(RuntimeError, match="does not exist"):
        job.wait()
    assert job.state.name == "JOB_STATE_FAILED"
    with pytest.raises(exceptions.BadRequest, match="not supported for machine type"):
        sklearn_model.batch_predict(
            job_display_name="bad-machine", gcs_source=f"gs://{bucket.name}/{prefix}/x.jsonl",
            gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out",
            machine_type="e2-standard-4", accelerator_type="NVIDIA_TESLA_T4",
            accelerator_count=1)


def test_bigquery_in_and_out(local_env, sklearn_model, sklearn_uri, data):
    client = bigquery.Client()
    dataset = f"batch_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    features = data[0][:30]
    rows = [{"a": float(r[0]), "b": float(r[1]), "c": float(r[2])} for r in features]
    table = f"{local_env.project}.{dataset}.inputs"
    client.load_table_from_json(rows, table).result()
    job = aiplatform.BatchPredictionJob.create(
        job_display_name="batch-bq", model_name=sklearn_model.resource_name,
        bigquery_source=f"bq://{table}", bigquery_destination_prefix=f"bq://{local_env.project}",
        instances_format="bigquery", predictions_format="bigquery",
        machine_type="n1-standard-2")  # rows reach the model as [a, b, c]
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    out = job.output_info.bigquery_output_dataset.removeprefix("bq://")
    assert out.split(".")[1].startswith(f"prediction_{sklearn_model.display_name}_".replace(
        "-", "_"))
    result = client.query(f"SELECT a, b, c, prediction FROM `{out}.predictions`").to_dataframe()
    assert len(result) == 30
    expected = sklearn_uri[1].predict(result[["a", "b", "c"]].to_numpy())
    assert np.array_equal(result["prediction"].to_numpy(), expected)
    assert client.get_dataset(out).location == "US"  # where the input is
    client.delete_dataset(dataset, delete_contents=True)
    client.delete_dataset(out, delete_contents=True)


def test_bigquery_input_outside_the_job_region_fails_the_job(local_env, sklearn_model):
    # Vertex AI in us-central1 uses BigQuery data in us-central1 or the US multi-region.
    client = bigquery.Client()
    eu = bigquery.Dataset(f"{local_env.project}.batch_eu_{uuid.uuid4().hex[:8]}")
    eu.location = "EU"
    client.create_dataset(eu)
    table = f"{eu.dataset_id}.inputs"
    client.load_table_from_json([{"a": 0.1, "b": 0.2, "c": 0.3}], table).result()
    job = aiplatform.BatchPredictionJob.create(
        job_display_name="batch-eu", model_name=sklearn_model.resource_name,
        bigquery_source=f"bq://{local_env.project}.{table}",
        bigquery_destination_prefix=f"bq://{local_env.project}", instances_format="bigquery",
        predictions_format="bigquery", machine_type="n1-standard-2", sync=False)
    with pytest.raises(RuntimeError, match=f"{eu.dataset_id} is in EU, and Vertex AI in "
                                           "us-central1 uses BigQuery data in us-central1 "
                                           "or the US multi-region"):
        job.wait()
    assert job.state.name == "JOB_STATE_FAILED"
    regional = bigquery.Dataset(f"{local_env.project}.batch_r_{uuid.uuid4().hex[:8]}")
    regional.location = "us-central1"
    client.create_dataset(regional)
    client.load_table_from_json([{"a": 0.1, "b": 0.2, "c": 0.3}],
                                f"{regional.dataset_id}.inputs").result()
    job = aiplatform.BatchPredictionJob.create(
        job_display_name="batch-region", model_name=sklearn_model.resource_name,
        bigquery_source=f"bq://{local_env.project}.{regional.dataset_id}.inputs",
        bigquery_destination_prefix=f"bq://{local_env.project}.{eu.dataset_id}.out",
        instances_format="bigquery", predictions_format="bigquery",
        machine_type="n1-standard-2", sync=False)
    with pytest.raises(RuntimeError, match="Batch prediction output"):
        job.wait()
    client.delete_dataset(eu, delete_contents=True)
    client.delete_dataset(regional, delete_contents=True)


def test_cancel_a_running_job(bucket, prefix):
    import io

    import joblib
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    features = rng.random((300, 4))
    forest = RandomForestClassifier(n_estimators=100, random_state=0)
    forest.fit(features, features[:, 0] > 0.5)
    buffer = io.BytesIO()
    joblib.dump(forest, buffer)
    bucket.blob(f"{prefix}/forest/model.joblib").upload_from_string(buffer.getvalue())
    bucket.blob(f"{prefix}/many.jsonl").upload_from_string(  # ~15 s of one-row batches
        "\n".join(json.dumps(row) for row in rng.random((3000, 4)).tolist()))
    model = aiplatform.Model.upload(
        display_name="forest", artifact_uri=f"gs://{bucket.name}/{prefix}/forest",
        serving_container_image_uri="us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest")
    job = aiplatform.BatchPredictionJob.submit(
        job_display_name="to-cancel", model_name=model, instances_format="jsonl",
        gcs_source=f"gs://{bucket.name}/{prefix}/many.jsonl", batch_size=1,
        gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out", machine_type="n1-standard-2")
    job.cancel()
    with pytest.raises(RuntimeError, match="CANCELED"):
        job.wait_for_completion()
    assert job.state.name == "JOB_STATE_CANCELLED"
    job.delete()
    model.delete()
