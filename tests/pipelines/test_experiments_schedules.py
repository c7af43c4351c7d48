"""Experiments, schedules and Google Cloud Pipeline Components through the real SDK."""

from __future__ import annotations

import time
import uuid

from google.cloud import aiplatform, bigquery, storage

from labkit.storage.paths import local_path
from labkit.vertex.pipelines.cron import Cron
from labkit.workspace import Workspace

from .conftest import SERVICE_ACCOUNT


def test_experiments_log_and_compare(local_env):
    name = f"exp-{uuid.uuid4().hex[:8]}"
    aiplatform.init(experiment=name)
    for i, lr in enumerate((0.1, 0.01)):
        aiplatform.start_run(f"run-{i}")
        aiplatform.log_params({"learning_rate": lr, "model": "logreg"})
        aiplatform.log_metrics({"accuracy": 0.8 + i / 10})
        aiplatform.end_run()
    df = aiplatform.get_experiment_df(name)
    assert sorted(df["run_name"]) == ["run-0", "run-1"]
    assert sorted(df["param.learning_rate"]) == [0.01, 0.1]
    assert sorted(df["metric.accuracy"]) == [0.8, 0.9]
    aiplatform.init(experiment=None)


def test_schedule_runs_pauses_and_deletes(local_env, compiled):
    root = f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root"
    job = aiplatform.PipelineJob(display_name="scheduled", template_path=compiled("failing"),
                                 pipeline_root=root, parameter_values={"reason": "scheduled"})
    schedule = job.create_schedule(cron="* * * * *", display_name="every-minute",
                                   max_run_count=2, service_account=SERVICE_ACCOUNT)
    deadline = time.monotonic() + 30
    while not schedule.list_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    runs = schedule.list_jobs()
    assert len(runs) == 1
    schedule.pause()
    assert aiplatform.PipelineJobSchedule.get(schedule.resource_name).state.name == "PAUSED"
    schedule.resume()
    assert aiplatform.PipelineJobSchedule.get(schedule.resource_name).state.name == "ACTIVE"
    listed = {s.resource_name for s in aiplatform.PipelineJobSchedule.list()}
    assert schedule.resource_name in listed
    schedule.delete()
    assert schedule.resource_name not in {
        s.resource_name for s in aiplatform.PipelineJobSchedule.list()}


def test_cron_matcher():
    from datetime import UTC, datetime

    cron = Cron("*/15 9-17 * * mon-fri")
    start = datetime(2026, 11, 21, 12, 7, tzinfo=UTC)  # a Saturday
    assert cron.next_after(start) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert Cron("TZ=America/New_York 0 9 * * *").next_after(start).hour == 14


def test_google_cloud_pipeline_components(local_env, compiled):
    root = f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root"
    source = f"gs://{local_env.bucket}/pipelines-test/instances.jsonl"
    storage.Client().bucket(local_env.bucket).blob("pipelines-test/instances.jsonl") \
        .upload_from_string("[0.5]\n[2.5]\n")
    destination = f"gs://{local_env.bucket}/pipelines-test/batch"
    job = aiplatform.PipelineJob(
        display_name="gcpc", template_path=compiled("google_components"), pipeline_root=root,
        parameter_values={"project": local_env.project, "source": source,
                          "destination": destination}, enable_caching=False)
    job.run(service_account=SERVICE_ACCOUNT)
    tasks = {t.task_name: t for t in job.task_details}
    table = tasks["bigquery-query-job"].outputs["destination_table"].artifacts[0]
    assert table.schema_title == "google.BQTable"
    rows = bigquery.Client().query(
        f"SELECT SUM(n) AS total FROM `{table.metadata['projectId']}."
        f"{table.metadata['datasetId']}.{table.metadata['tableId']}`").result()
    assert next(iter(rows))["total"] > 300  # the penguins table has 344 rows
    model = tasks["model-upload"].outputs["model"].artifacts[0]
    assert model.schema_title == "google.VertexModel"
    assert model.uri.endswith(model.metadata["resourceName"])
    endpoint_artifact = tasks["endpoint-create"].outputs["endpoint"].artifacts[0]
    endpoint = aiplatform.Endpoint(endpoint_artifact.metadata["resourceName"])
    assert endpoint.list_models()[0].model.startswith(model.metadata["resourceName"])
    predictions = endpoint.predict(instances=[[0.0], [3.0]]).predictions
    assert [int(p) for p in predictions] == [0, 1]
    batch = tasks["model-batch-predict"].outputs["batchpredictionjob"].artifacts[0]
    out_dir = batch.metadata["gcsOutputDirectory"]
    assert any(local_path(out_dir + "/", Workspace.from_env()).iterdir())
    endpoint.undeploy_all()
    endpoint.delete()
    aiplatform.Model(model.metadata["resourceName"]).delete()


TRAINER = '''
import json, os
model_dir = os.environ["AIP_MODEL_DIR"]
from google.cloud import storage
bucket, _, name = model_dir[len("gs://"):].partition("/")
storage.Client().bucket(bucket).blob(name + "result.json").upload_from_string(
    json.dumps({"trained": True}))
'''


def _trainer_package(tmp_path) -> bytes:
    """A source distribution with trainer/task.py, as Vertex's python_package_spec expects."""
    import io
    import tarfile

    files = {"trainer-0.1/setup.py": "from setuptools import setup\n"
             "setup(name='trainer', version='0.1', packages=['trainer'])\n",
             "trainer-0.1/trainer/__init__.py": "", "trainer-0.1/trainer/task.py": TRAINER}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_custom_training_job_op_runs_a_custom_job(local_env, compiled, tmp_path):
    run_id = uuid.uuid4().hex[:8]
    blob = storage.Client().bucket(local_env.bucket).blob(f"pipelines-test/{run_id}/trainer.tgz")
    blob.upload_from_string(_trainer_package(tmp_path))
    output = f"gs://{local_env.bucket}/pipelines-test/{run_id}/out"
    job = aiplatform.PipelineJob(
        display_name="custom-training", template_path=compiled("custom_training"),
        pipeline_root=f"gs://pipeline-root-{run_id}/root", enable_caching=False,
        parameter_values={"project": local_env.project, "output": output,
                          "package": f"gs://{local_env.bucket}/{blob.name}"})
    job.run(service_account=SERVICE_ACCOUNT)
    resources = [t for t in job.task_details if t.task_name == "custom-training-job"][0]
    gcp_resources = resources.execution.metadata["output:gcp_resources"]
    assert "customJobs/" in gcp_resources
    result = local_path(f"{output}/model/result.json", Workspace.from_env())
    assert result.read_text() == '{"trained": true}'


def test_cancel_stops_a_running_pipeline(local_env, compiled):
    job = aiplatform.PipelineJob(
        display_name="slow", template_path=compiled("slow"),
        pipeline_root=f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root",
        parameter_values={"seconds": 120.0}, enable_caching=False)
    job.submit(service_account=SERVICE_ACCOUNT)
    deadline = time.monotonic() + 30
    while not any(t.task_name == "nap" for t in job.task_details) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
        job = aiplatform.PipelineJob.get(job.resource_name)
    job.cancel()
    started = time.monotonic()
    while job.state.name not in ("PIPELINE_STATE_CANCELLED", "PIPELINE_STATE_FAILED"):
        assert time.monotonic() - started < 30
    assert job.state.name == "PIPELINE_STATE_CANCELLED"
    assert [t.state.name for t in job.task_details if t.task_name == "nap"] == ["CANCELLED"]
