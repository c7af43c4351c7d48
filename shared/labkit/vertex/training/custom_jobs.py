"""CustomJobs: validate a job spec as Vertex does, run it locally, keep its state.

Job folders (packages, replica working directories, logs) live under the workspace at
vertex/training/<job id>/.
"""

from __future__ import annotations

import threading

from labkit.vertex import errors
from labkit.vertex.store import ResourceStore, new_id
from labkit.vertex.training import contract, runner
from labkit.vertex.training.job_table import JobCollection, JobTable
from labkit.vertex.training.machines import validate_machine_spec
from labkit.workspace import Workspace


def validate_job_spec(spec: dict) -> dict:
    """Checks a CustomJobSpec; returns it with machine specs normalised."""
    pools = list(spec.get("workerPoolSpecs") or [])
    if not pools or not pools[0]:
        raise errors.invalid("CustomJobSpec.worker_pool_specs must contain at least one "
                             "worker pool; the first one is the primary replica.")
    checked = []
    for i, pool in enumerate(pools):
        if not pool:
            checked.append({})
            continue
        count = int(pool.get("replicaCount") or 0)
        if i == 0 and count != 1:
            raise errors.invalid("The replica count of the first worker pool (the primary "
                                 f"replica) must be 1, got {count}.")
        if count < 1:
            raise errors.invalid(f"worker_pool_specs[{i}].replica_count must be positive.")
        pool = {**pool, "replicaCount": str(count),
                "machineSpec": validate_machine_spec(pool.get("machineSpec"), i)}
        package, container = pool.get("pythonPackageSpec"), pool.get("containerSpec")
        if bool(package) == bool(container):
            raise errors.invalid(f"worker_pool_specs[{i}] must set exactly one of "
                                 f"python_package_spec and container_spec.")
        if package:
            contract.check_image(package.get("executorImageUri"))
            if not package.get("packageUris") or not package.get("pythonModule"):
                raise errors.invalid(f"worker_pool_specs[{i}].python_package_spec needs "
                                     f"package_uris and python_module.")
        else:
            if "reductionserver" in (container.get("imageUri") or ""):
                raise errors.gcp_only("Reduction Server (a worker pool of reduction servers)")
            contract.check_image(container.get("imageUri"))
        checked.append(pool)
    base = (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix")
    if base and not base.startswith("gs://"):
        raise errors.invalid(f"base_output_directory must be a gs:// URI, got {base!r}.")
    return {**spec, "workerPoolSpecs": checked}


class CustomJobs(JobCollection):
    def __init__(self, store: ResourceStore, workspace: Workspace, clients):
        self.workspace = workspace
        self.clients = clients  # project -> environment for the job's Google clients
        self.table = JobTable(store, "customJobs", "CustomJob")
        self.table.recover()

    def folder(self, job_id: str):
        return self.workspace.root / "vertex" / "training" / job_id

    def create(self, parent: str, body: dict, on_end=None, extra_env=None) -> dict:
        """Creates and starts a CustomJob; on_end(job) runs after it ends and extra_env
        reaches every replica (both for training pipelines)."""
        if not body.get("displayName"):
            raise errors.invalid("CustomJob.display_name is required.")
        spec = validate_job_spec(body.get("jobSpec") or {})
        job_id = new_id()
        job = {**body, "jobSpec": spec, "name": self.table.name(parent, job_id)}
        job = self.table.add(job_id, job)
        threading.Thread(target=self._run, args=(job_id, on_end, extra_env), daemon=True,
                         name=f"custom-job-{job_id}").start()
        return job

    def _run(self, job_id: str, on_end, extra_env) -> None:
        table = self.table
        job = table.update(job_id, state=table.state("RUNNING"))
        try:
            outcome = runner.run(self.workspace, self.clients, job, self.folder(job_id),
                                 table.cancels[job_id], extra_env=extra_env)
        except errors.VertexError as exc:
            outcome = runner.Outcome("JOB_STATE_FAILED", exc.message)
        except Exception as exc:  # noqa: BLE001 - the job must end, whatever happened
            outcome = runner.Outcome("JOB_STATE_FAILED", f"Internal error: {exc!r}")
        job = table.finish(job_id, outcome.state.rsplit("_", 1)[-1], outcome.message)
        if on_end is not None:
            on_end(job)


