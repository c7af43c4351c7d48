from __future__ import annotations

import uuid

import pytest
from kfp import compiler

from . import pipeline_defs

# An explicit service account, as on Vertex, keeps PipelineJob.submit() from looking the
# project number up at Cloud Resource Manager (unreachable offline) when it creates the
# pipeline root's bucket; a fresh bucket per test keeps the SDK's bucket check local too.
SERVICE_ACCOUNT = "pipelines-runner@pmle-labs-local.iam.gserviceaccount.com"


@pytest.fixture
def root():
    return f"gs://pipeline-root-{uuid.uuid4().hex[:12]}/root"


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compiled")

    def compile_(name: str) -> str:
        path = folder / f"{name}.yaml"
        if not path.exists():
            compiler.Compiler().compile(getattr(pipeline_defs, name), str(path))
        return str(path)
    return compile_
