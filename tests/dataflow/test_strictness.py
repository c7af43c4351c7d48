"""The local Dataflow refuses what Dataflow refuses, in its error shape, through the real
google-cloud-dataflow-client (and Beam's DataflowRunner where Beam itself sends it)."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import dataflow_v1beta3 as dataflow


def _job(name: str, pipeline_url: str = "gs://some-bucket/staging/pipeline.pb", **more):
    from google.protobuf import struct_pb2

    options = struct_pb2.Struct()
    options.update({"options": {"pipelineUrl": pipeline_url}})
    return dataflow.Job(name=name, type_=dataflow.JobType.JOB_TYPE_BATCH,
                        environment=dataflow.Environment(sdk_pipeline_options=options,
                                                         **more))


def _create(client, project, job, location="us-central1"):
    return client.create_job(request={"project_id": project, "location": location,
                                      "job": job})


@pytest.mark.parametrize("name", ["Upper-Case", "1starts-with-digit", "ends-with-", "under_score",
                                  ""])
def test_job_names_follow_dataflow_rules(jobs_client, local_env, name):
    with pytest.raises(exceptions.InvalidArgument, match="job name"):
        _create(jobs_client, local_env.project, _job(name))


def test_unknown_region_is_refused(jobs_client, local_env):
    with pytest.raises(exceptions.InvalidArgument, match="moon-central1"):
        _create(jobs_client, local_env.project, _job("fine-name"), location="moon-central1")


def test_a_job_needs_a_staged_pipeline_in_cloud_storage(jobs_client, local_env):
    with pytest.raises(exceptions.InvalidArgument, match="Cloud Storage"):
        _create(jobs_client, local_env.project, _job("local-pipeline", "/tmp/pipeline.pb"))
    with pytest.raises(exceptions.InvalidArgument, match="temp_location must be gs://"):
        _create(jobs_client, local_env.project,
                _job("local-temp", temp_storage_prefix="/tmp/temp"))
    no_pipeline = dataflow.Job(name="no-pipeline", type_=dataflow.JobType.JOB_TYPE_BATCH)
    with pytest.raises(exceptions.InvalidArgument, match="no staged pipeline"):
        _create(jobs_client, local_env.project, no_pipeline)


def test_streaming_jobs_fail_loudly(jobs_client, local_env):
    job = _job("streaming-job")
    job.type_ = dataflow.JobType.JOB_TYPE_STREAMING
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        _create(jobs_client, local_env.project, job)


def test_templates_fail_loudly(local_env):
    client = dataflow.FlexTemplatesServiceClient()
    with pytest.raises(exceptions.MethodNotImplemented, match="Flex Template.*LAB_BACKEND=gcp"):
        client.launch_flex_template(request={
            "project_id": local_env.project, "location": "us-central1",
            "launch_parameter": {"job_name": "flex", "container_spec_gcs_path": "gs://b/t.json"}})
    with pytest.raises(exceptions.MethodNotImplemented, match="template.*LAB_BACKEND=gcp"):
        dataflow.TemplatesServiceClient().launch_template(request={
            "project_id": local_env.project, "location": "us-central1",
            "gcs_path": "gs://dataflow-templates/latest/Word_Count"})


def test_unknown_jobs_are_not_found(jobs_client, local_env):
    for job_id in ("2026-01-01_00_00_00-123", "../../etc/passwd", "nonsense"):
        with pytest.raises(exceptions.NotFound):
            jobs_client.get_job(request={"project_id": local_env.project,
                                         "location": "us-central1", "job_id": job_id})


def test_active_job_names_are_unique_and_terminal_jobs_cannot_be_cancelled(
        pipeline_options, jobs_client, local_env):
    import time

    import apache_beam as beam

    def slow(value):
        time.sleep(120)
        return value

    name = f"unique-{uuid.uuid4().hex[:8]}"
    first = beam.Pipeline(options=pipeline_options("DataflowRunner", job_name=name))
    first | beam.Create([1]) | beam.Map(slow)
    running = first.run()
    try:
        second = beam.Pipeline(options=pipeline_options("DataflowRunner", job_name=name))
        second | beam.Create([1])
        with pytest.raises(exceptions.Conflict, match="already an active job named " + name):
            second.run()
        # the job lives in its own project: another project sees no such job
        with pytest.raises(exceptions.NotFound):
            jobs_client.get_job(request={"project_id": "another-project",
                                         "location": "us-central1",
                                         "job_id": running.job_id()})
    finally:
        running.cancel()
    request = {"project_id": local_env.project, "location": "us-central1",
               "job_id": running.job_id(),
               "job": {"requested_state": dataflow.JobState.JOB_STATE_CANCELLED}}
    deadline = time.monotonic() + 60
    while jobs_client.get_job(request={k: request[k] for k in (
            "project_id", "location", "job_id")}).current_state.name != "JOB_STATE_CANCELLED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with pytest.raises(exceptions.FailedPrecondition, match="terminated"):
        jobs_client.update_job(request=request)
    # a cancelled job's name is free again
    again = beam.Pipeline(options=pipeline_options("DataflowRunner", job_name=name))
    again | beam.Create([1, 2])
    assert again.run().wait_until_finish() == "DONE"
