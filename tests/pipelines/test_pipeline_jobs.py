"""pipelineJobs through the real SDK: spec checks, control flow, caching, failures, metadata."""

from __future__ import annotations

import random
import uuid

import pytest
import yaml
from google.api_core import exceptions
from google.cloud import aiplatform

from labkit.storage.paths import local_path
from labkit.workspace import Workspace

from .conftest import SERVICE_ACCOUNT


def run(template, root, caching=True, **params):
    # Each submission gets a fresh pipeline root bucket (see conftest) and its own job id:
    # the SDK's default id has one-second resolution, and these runs take less than that.
    root = root.replace("/root", f"-{uuid.uuid4().hex[:6]}/root")
    job = aiplatform.PipelineJob(display_name="test", template_path=template, pipeline_root=root,
                                 parameter_values=params, enable_caching=caching,
                                 job_id=f"test-{uuid.uuid4().hex[:12]}")
    job.submit(service_account=SERVICE_ACCOUNT)
    return job


def by_name(job) -> dict:
    found: dict = {}
    for task in job.task_details:
        found.setdefault(task.task_name, []).append(task)
    return found


def test_invalid_spec_is_rejected_with_invalid_argument(local_env, compiled, root, tmp_path):
    spec = yaml.safe_load(open(compiled("control_flow")))
    spec["root"]["dag"]["tasks"]["exit-handler-1"]["componentRef"]["name"] = "comp-missing"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(spec))
    with pytest.raises(exceptions.BadRequest, match="comp-missing"):
        run(str(broken), root)
    spec["root"]["dag"]["tasks"]["exit-handler-1"]["componentRef"]["name"] = \
        "comp-exit-handler-1"
    spec["pipelineInfo"]["name"] = "Not A Valid Name"
    broken.write_text(yaml.safe_dump(spec))
    with pytest.raises(exceptions.BadRequest, match="pipelineInfo.name"):
        run(str(broken), root)


def test_control_flow_outputs_and_caching(local_env, compiled, root):
    n = random.randint(3, 9)  # fresh inputs: nothing cached from earlier sessions
    job = run(compiled("control_flow"), root, n=n)
    job.wait()
    assert job.state == aiplatform.gapic.PipelineState.PIPELINE_STATE_SUCCEEDED
    tasks = by_name(job)
    states = {name: [t.state.name for t in found] for name, found in tasks.items()}
    assert states["big"] == ["SUCCEEDED"] and states["small"] == ["NOT_TRIGGERED"]
    assert states["say"] in (["SUCCEEDED"], ["SKIPPED"])  # the exit handler (maybe cached)
    loop_sizes = sorted(t.execution.metadata["output:Output"] for t in tasks["make-2"])
    assert loop_sizes == [2, 4, 8]  # ParallelFor([1, 2, 4]) -> make(n) returns 2n
    inner_out = tasks["inner"][0].execution.metadata["output:Output"]
    assert inner_out == 4 * n  # make(n) -> 2n, nested make(2n) -> 4n
    made = [t for t in tasks["make"] if t.execution.metadata["input:n"] == n][0]
    data = made.outputs["data"].artifacts[0]
    assert data.uri.startswith("gs://pipeline-root-")
    assert local_path(data.uri, Workspace.from_env()).read_text() == "x" * n
    metrics = tasks["measure"][0].outputs["metrics"].artifacts[0]
    assert metrics.schema_title == "system.Metrics" and metrics.metadata["size"] == n

    again = run(compiled("control_flow"), root, n=n)
    again.wait()
    retasks = by_name(again)
    assert retasks["make"][0].state.name == "SKIPPED"
    assert retasks["make"][0].execution.state.name == "CACHED"
    assert retasks["measure"][0].outputs["metrics"].artifacts[0].uri == metrics.uri

    other = run(compiled("control_flow"), root, n=1)  # new inputs: runs, other branch
    other.wait()
    other_states = {name: [t.state.name for t in found] for name, found in by_name(other).items()}
    assert other_states["small"] == ["SUCCEEDED"] and other_states["big"] == ["NOT_TRIGGERED"]

    listed = aiplatform.PipelineJob.list(filter='display_name="test"')
    assert {job.resource_name, again.resource_name} <= {j.resource_name for j in listed}


def test_failed_task_fails_the_run_and_keeps_its_log(local_env, compiled, root):
    job = run(compiled("failing"), root, caching=False, reason="bad data")
    with pytest.raises(RuntimeError, match="explode"):
        job.wait()
    tasks = by_name(job)
    assert tasks["explode"][0].state.name == "FAILED"
    assert "boom: bad data" in tasks["explode"][0].error.message
    assert tasks["say-2"][0].state.name == "SUCCEEDED"  # the exit handler still ran
    log = local_env.workspace / "logs" / "pipelines" / job.name / "explode.log"
    assert "ValueError: boom: bad data" in log.read_text()
    with pytest.raises(exceptions.BadRequest, match="terminal"):
        job.cancel()  # already terminal
    job.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.PipelineJob.get(job.resource_name)


def test_a_package_pin_the_environment_misses_fails_the_task(local_env, compiled, root):
    """Vertex pip-installs packages_to_install; offline the task would run on other versions,
    so it fails naming the pin and the installed version."""
    from sklearn import __version__ as installed

    job = run(compiled("pinned"), root, caching=False)
    with pytest.raises(RuntimeError, match="old-sklearn"):
        job.wait()
    message = by_name(job)["old-sklearn"][0].error.message
    assert f"scikit-learn==0.20.4: scikit-learn {installed} is installed" in message
    assert "pandas" not in message  # unpinned and installed: satisfied
    assert "LAB_BACKEND=gcp" in message


def test_run_metadata_and_lineage(local_env, compiled, root):
    job = run(compiled("control_flow"), root, caching=False, n=5)
    job.wait()
    run_context = aiplatform.Context(job.gca_resource.job_detail.pipeline_run_context.name)
    assert run_context.schema_title == "system.PipelineRun"
    artifacts = aiplatform.Artifact.list(filter=f'in_context("{run_context.resource_name}")')
    schemas = {a.schema_title for a in artifacts}
    assert {"system.Dataset", "system.Metrics"} <= schemas
    executions = aiplatform.Execution.list(
        filter=f'in_context("{run_context.resource_name}") AND '
               f'schema_title="system.ContainerExecution"')
    assert {"make", "measure"} <= {e.display_name for e in executions}
    measure = [e for e in executions if e.display_name == "measure"][0]
    inputs = measure.get_input_artifacts()
    outputs = measure.get_output_artifacts()
    assert [a.schema_title for a in inputs] == ["system.Dataset"]
    assert [a.schema_title for a in outputs] == ["system.Metrics"]
    graph = run_context.query_lineage_subgraph()
    assert len(graph.events) >= 4 and len(graph.artifacts) >= 3
