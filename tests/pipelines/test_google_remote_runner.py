"""GCPC ops whose launcher is remote_runner (dataset create, AutoML training) through the real
SDK, job ids as Vertex checks them, and get_pipeline_df."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery

from .conftest import SERVICE_ACCOUNT


@pytest.fixture
def census(local_env):
    """1,500 rows of the public census table: AutoML tabular needs at least 1,000."""
    dataset = f"pipelines_{uuid.uuid4().hex[:8]}"
    client = bigquery.Client()
    client.create_dataset(dataset)
    client.query(f"CREATE TABLE {dataset}.census AS SELECT * FROM "
                 f"`bigquery-public-data.ml_datasets.census_adult_income` "
                 f"ORDER BY functional_weight LIMIT 1500").result()
    yield f"bq://{local_env.project}.{dataset}.census"
    client.delete_dataset(dataset, delete_contents=True)


def test_dataset_create_and_automl_training_ops(local_env, compiled, census):
    job = aiplatform.PipelineJob(
        display_name="automl-tabular", template_path=compiled("automl_tabular"),
        labels={"team": "ml"},
        pipeline_root=f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root", enable_caching=False,
        parameter_values={"project": local_env.project, "table": census,
                          "target": "income_bracket"})
    job.run(service_account=SERVICE_ACCOUNT)
    tasks = {t.task_name: t for t in job.task_details}
    artifact = tasks["tabular-dataset-create"].outputs["dataset"].artifacts[0]
    assert artifact.schema_title == "google.VertexDataset"
    dataset = aiplatform.TabularDataset(artifact.metadata["resourceName"])
    assert artifact.uri == f"https://us-central1-aiplatform.googleapis.com/v1/" \
                           f"{dataset.resource_name}"
    assert dataset.display_name == "test-gcpc-census"
    # remote_runner gives the dataset the run's labels (VERTEX_AI_PIPELINES_RUN_LABELS)
    assert dataset.labels.items() >= {"team": "ml"}.items()
    model_artifact = tasks["automl-tabular-training-job"].outputs["model"].artifacts[0]
    assert model_artifact.schema_title == "google.VertexModel"
    model = aiplatform.Model(model_artifact.metadata["resourceName"])
    assert model.display_name == "test-gcpc-automl-model"
    trained = aiplatform.AutoMLTabularTrainingJob.list(filter='display_name="test-gcpc-automl"')
    assert trained and trained[0].state.name == "PIPELINE_STATE_SUCCEEDED"
    model.delete()


def test_a_duplicate_job_id_is_already_exists(local_env, compiled):
    root = f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root"
    job_id = f"same-{uuid.uuid4().hex[:8]}"
    first = aiplatform.PipelineJob(display_name="dup", template_path=compiled("control_flow"),
                                   pipeline_root=root, job_id=job_id,
                                   parameter_values={"n": 1})
    first.submit(service_account=SERVICE_ACCOUNT)
    second = aiplatform.PipelineJob(display_name="dup", template_path=compiled("control_flow"),
                                    pipeline_root=root, job_id=job_id,
                                    parameter_values={"n": 1})
    # 409 over REST (google.api_core maps it to Conflict; AlreadyExists over gRPC)
    with pytest.raises(exceptions.Conflict, match="Pipeline job with the specified ID already"):
        second.submit(service_account=SERVICE_ACCOUNT)
    first.wait()
    first.delete()
    # the id stays taken after the job is deleted: its run context lives on in ML Metadata
    third = aiplatform.PipelineJob(display_name="dup", template_path=compiled("control_flow"),
                                   pipeline_root=root, job_id=job_id,
                                   parameter_values={"n": 1})
    with pytest.raises(exceptions.Conflict, match="Pipeline job with the specified ID already"):
        third.submit(service_account=SERVICE_ACCOUNT)


def test_get_pipeline_df_lists_the_runs_with_params_and_metrics(local_env, compiled):
    root = f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root"
    runs = {}
    for n in (2, 5):
        job = aiplatform.PipelineJob(display_name="scored", template_path=compiled("scored"),
                                     pipeline_root=root, parameter_values={"n": n},
                                     job_id=f"scored-{uuid.uuid4().hex[:8]}",
                                     enable_caching=False)
        job.run(service_account=SERVICE_ACCOUNT)
        runs[job.job_id] = n
    frame = aiplatform.get_pipeline_df(pipeline="scored")
    mine = frame[frame["run_name"].isin(runs)]
    assert len(mine) == 2 and set(mine["pipeline_name"]) == {"scored"}
    rows = mine.set_index("run_name")
    assert {r: int(rows.loc[r, "param.input:n"]) for r in runs} == runs
    assert {r: int(rows.loc[r, "metric.size"]) for r in runs} == runs
