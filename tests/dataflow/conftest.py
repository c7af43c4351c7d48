"""Beam pipelines on the local Dataflow (DataflowRunner, which submits through
google-cloud-dataflow-client over gRPC to dataflow.googleapis.com, routed by the proxy)
and on the DirectRunner, against the local Cloud Storage and BigQuery."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def gcs_prefix(local_env) -> str:
    """A fresh folder in the lab bucket for one test session."""
    return f"gs://{local_env.bucket}/dataflow-tests/{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def pipeline_options(local_env, gcs_prefix):
    """options(runner, **more): the options a learner passes, for either runner."""
    from apache_beam.options.pipeline_options import PipelineOptions

    def options(runner: str, **more) -> PipelineOptions:
        settings = {"runner": runner, "project": local_env.project, "region": "us-central1",
                    "temp_location": f"{gcs_prefix}/temp"}
        if runner == "DataflowRunner":
            settings["job_name"] = more.pop("job_name", f"test-{uuid.uuid4().hex[:10]}")
        return PipelineOptions(**{**settings, **more})

    return options


@pytest.fixture(scope="session")
def jobs_client(local_env):
    from google.cloud import dataflow_v1beta3

    return dataflow_v1beta3.JobsV1Beta3Client()
