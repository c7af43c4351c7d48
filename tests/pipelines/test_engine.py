"""Engine checks without HTTP: restart recovery, bad input in the service's error shape."""

from __future__ import annotations

import pytest

from labkit.vertex.errors import VertexError
from labkit.vertex.metadata.engine import Metadata
from labkit.vertex.metadata.filters import Relations, compile_filter
from labkit.vertex.pipelines import spec as specs
from labkit.vertex.pipelines.pipeline_jobs import PipelineJobs
from labkit.vertex.pipelines.schedules import Schedules
from labkit.vertex.store import ResourceStore
from labkit.workspace import Workspace

PARENT = "projects/p/locations/us-central1"


@pytest.fixture
def engines(tmp_path):
    workspace = Workspace(tmp_path)
    store = ResourceStore(workspace)
    return workspace, store, Metadata(store)


def test_jobs_running_when_services_stopped_are_failed_on_restart(engines):
    workspace, store, metadata = engines
    store.put("pipelineJobs", "j1", {"name": f"{PARENT}/pipelineJobs/j1",
                                     "state": "PIPELINE_STATE_RUNNING", "createTime": "1"})
    PipelineJobs(workspace, store, metadata, lambda project: {})
    job = store.get("pipelineJobs", "j1")
    assert job["state"] == "PIPELINE_STATE_FAILED" and "interrupted" in job["error"]["message"]


def test_bad_input_gets_invalid_argument(engines):
    workspace, store, metadata = engines
    jobs = PipelineJobs(workspace, store, metadata, lambda project: {})
    with pytest.raises(VertexError) as caught:
        jobs.create(PARENT, {"pipelineSpec": {}}, None)
    assert caught.value.status == 400 and "pipeline_spec is required" in caught.value.message
    schedules = Schedules(store, jobs)
    schedules.stop.set()
    with pytest.raises(VertexError, match="five fields|out of range"):
        schedules.create(PARENT, {"displayName": "s", "cron": "61 * * *",
                                  "createPipelineJobRequest": {"pipelineJob": {"x": 1}}})
    assert store.all("schedules") == []  # nothing half-written
    with pytest.raises(VertexError, match="Unsupported filter field"):
        metadata.list("artifacts", f"{PARENT}/metadataStores/default", {"filter": 'bogus="x"'})


def test_conditions_and_filters():
    assert specs.evaluate_condition("inputs.parameter_values['a'] > 0.5 && "
                                    "!(inputs.parameter_values['b'] == 'x')", {"a": 0.7, "b": "y"})
    assert not specs.evaluate_condition("int(inputs.parameter_values['n']) >= 3", {"n": "2"})
    matches = compile_filter('(schema_title="a" OR schema_title="b") AND display_name!="z"',
                             Relations(lambda name, ctx: False))
    assert matches({"schemaTitle": "b", "displayName": "y"})
    assert not matches({"schemaTitle": "c", "displayName": "y"})
