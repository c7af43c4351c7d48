"""pipelineJobs on Vertex's v1beta1 surface, through the SDK's preview PipelineJob (its
submit() and batch calls use the v1beta1 client)."""

from __future__ import annotations

import logging
import uuid

from google.cloud import aiplatform
from google.cloud.aiplatform.preview.pipelinejob import pipeline_jobs

from .conftest import SERVICE_ACCOUNT


def test_preview_pipeline_job_submit_wait_get_list(local_env, compiled, root, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    job = pipeline_jobs._PipelineJob(
        display_name="beta", template_path=compiled("control_flow"),
        pipeline_root=root, parameter_values={"n": 3}, enable_caching=False,
        job_id=f"beta-{uuid.uuid4().hex[:12]}")
    job.submit(service_account=SERVICE_ACCOUNT)  # CreatePipelineJob on /v1beta1/
    assert '"POST /v1beta1/projects/' in caplog.text  # it went through v1beta1
    job.wait()
    assert job.state == aiplatform.gapic.PipelineState.PIPELINE_STATE_SUCCEEDED
    again = aiplatform.PipelineJob.get(job.resource_name)  # the same job on /v1/
    assert again.display_name == "beta"
    assert job.resource_name in [j.resource_name for j in pipeline_jobs._PipelineJob.list()]
    job.delete()
