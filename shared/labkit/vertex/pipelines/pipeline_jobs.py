"""pipelineJobs: create, get, list, cancel, delete; each job runs in a background thread.

A job is answered at once in PIPELINE_STATE_PENDING, as on Vertex, and then runs in this
services process (at most MAX_RUNNING at a time; the rest wait queued). Its resource is
saved after every task so job.task_details shows progress. Jobs that were running when the
services stopped are marked FAILED when they start again.
"""

from __future__ import annotations

import re
import threading
import time

from labkit.vertex import errors, operations
from labkit.vertex.metadata.engine import Metadata
from labkit.vertex.pipelines import spec as specs
from labkit.vertex.pipelines.runner import Cancelled, Run, TaskFailed
from labkit.vertex.resources import matches_filter, page
from labkit.vertex.store import ResourceStore, now
from labkit.workspace import Workspace

MAX_RUNNING = 2
TERMINAL = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
# The SDK's wait() polls every 5 s after a first GET; a GET on an unfinished job holds its
# answer up to this long for the job to finish, so a short pipeline's run() returns when it
# ends rather than at the next 5 s poll.
HOLD_GET_S = 8.0
JOB_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")


class PipelineJobs:
    def __init__(self, workspace: Workspace, store: ResourceStore, metadata: Metadata, clients):
        self.workspace = workspace
        self.clients = clients  # project -> environment for the tasks' Google clients
        self.store = store
        self.metadata = metadata
        self.slots = threading.Semaphore(MAX_RUNNING)
        self.runs: dict[str, Run] = {}
        self.changed = threading.Condition()
        for job in store.all("pipelineJobs"):
            if job["state"] not in TERMINAL:
                job.update(state="PIPELINE_STATE_FAILED", endTime=now(), error={
                    "code": 10, "message": "The run was interrupted: the local services "
                                           "stopped while it ran. Submit it again."})
                self._save(job)

    def _save(self, job: dict) -> dict:
        job["updateTime"] = now()
        with self.store.lock:
            self.store.put("pipelineJobs", job["name"].rsplit("/", 1)[-1], job)
        with self.changed:
            self.changed.notify_all()
        return job

    def _find(self, parent: str, job_id: str) -> dict:
        job = self.store.get("pipelineJobs", job_id)
        if job is None or not job["name"].startswith(parent + "/"):
            raise errors.not_found("PipelineJob", f"{parent}/pipelineJobs/{job_id}")
        return job

    def create(self, parent: str, body: dict, job_id: str | None,
               schedule: str | None = None) -> dict:
        config = dict(body.get("runtimeConfig") or {})
        values = dict(config.get("parameterValues") or {})
        for key, value in (config.get("parameters") or {}).items():  # the older field
            values.setdefault(key, next(iter(value.values()), None) if value else None)
        spec = specs.validate(body.get("pipelineSpec"), values)
        root = config.get("gcsOutputDirectory") or spec.get("defaultPipelineRoot")
        if not root or not root.startswith("gs://"):
            raise errors.invalid("Invalid PipelineJob: runtime_config.gcs_output_directory "
                                 "(pipeline_root) must be a gs:// path.")
        name = spec["pipelineInfo"]["name"]
        job_id = job_id or f"{name}-{time.strftime('%Y%m%d%H%M%S')}"
        if not JOB_ID.fullmatch(job_id):
            raise errors.invalid(f"Invalid PipelineJob id {job_id!r}: it must match "
                                 f"{JOB_ID.pattern}.")
        with self.store.lock:
            store_name = f"{parent}/metadataStores/default"
            # Job ids are unique per project and location, and stay taken after a delete (the
            # run's ML Metadata context outlives the job). The SDK's default id has one-second
            # resolution: a second run in the same second is refused as Vertex refuses it
            # ("AlreadyExists: Pipeline job with the specified ID already exists."), never
            # with a bare metadata "Context ... already exists".
            if self.store.get("pipelineJobs", job_id) is not None or \
                    self.metadata.find("contexts", f"{store_name}/contexts/{job_id}"):
                raise errors.VertexError("ALREADY_EXISTS",
                                         f"Pipeline job with the specified ID already exists: "
                                         f"{parent}/pipelineJobs/{job_id}. Give the run its "
                                         f"own job_id.")
            pipeline_ctx = self.metadata.find("contexts", f"{store_name}/contexts/{name}") or \
                self.metadata.create("contexts", store_name, {
                    "displayName": name, "schemaTitle": "system.Pipeline"}, name)
            run_ctx = self.metadata.create("contexts", store_name, {
                "displayName": job_id, "schemaTitle": "system.PipelineRun",
                "parentContexts": [pipeline_ctx["name"]]}, job_id)
            stamp = now()
            job = {"name": f"{parent}/pipelineJobs/{job_id}",
                   "displayName": body.get("displayName") or name,
                   "createTime": stamp, "updateTime": stamp, "state": "PIPELINE_STATE_PENDING",
                   "pipelineSpec": spec, "labels": body.get("labels") or {},
                   "runtimeConfig": {**config, "parameterValues": values,
                                     "gcsOutputDirectory": root},
                   "serviceAccount": body.get("serviceAccount", ""),
                   "jobDetail": {"pipelineContext": pipeline_ctx, "pipelineRunContext": run_ctx,
                                 "taskDetails": []}}
            for key in ("templateUri", "templateMetadata", "network", "encryptionSpec"):
                if key in body:
                    job[key] = body[key]
            if schedule:
                job["scheduleName"] = schedule
            self._save(job)
        threading.Thread(target=self._execute, args=(job,), daemon=True,
                         name=f"pipeline-{job_id}").start()
        return job

    def _execute(self, job: dict) -> None:
        run = Run(self.workspace, self.store, self.metadata, job, self._save, self.clients)
        self.runs[job["name"]] = run
        try:
            with self.slots:
                if run.cancelled.is_set():
                    raise Cancelled()
                job.update(state="PIPELINE_STATE_RUNNING", startTime=now())
                self._save(job)
                run.execute()
            job["state"] = "PIPELINE_STATE_SUCCEEDED"
        except Cancelled:
            job["state"] = "PIPELINE_STATE_CANCELLED"
            job["error"] = {"code": 1, "message": "The pipeline job was cancelled."}
        except TaskFailed as exc:
            job["state"] = "PIPELINE_STATE_FAILED"
            job["error"] = {"code": 9, "message": f"{exc}; Job (project_id = {run.project}, job_id"
                                                  f" = {run.job_id}) is failed due to the above "
                                                  f"error."}
        except Exception as exc:  # an engine fault fails this job, not the services
            job["state"] = "PIPELINE_STATE_FAILED"
            job["error"] = {"code": 13, "message": f"Internal error running the pipeline "
                                                   f"locally: {type(exc).__name__}: {exc}"}
        finally:
            job["endTime"] = now()
            self._save(job)
            self.runs.pop(job["name"], None)

    def get(self, parent: str, job_id: str) -> dict:
        deadline = time.monotonic() + HOLD_GET_S
        job = self._find(parent, job_id)
        with self.changed:
            while job["state"] not in TERMINAL and time.monotonic() < deadline:
                self.changed.wait(deadline - time.monotonic())
                job = self._find(parent, job_id)
        return job

    def list(self, parent: str, query: dict) -> dict:
        schedule = None
        rest = []
        for clause in re.split(r"\s+AND\s+", (query.get("filter") or "").strip()):
            m = re.fullmatch(r'\s*schedule_name\s*=\s*"?([^"]+)"?\s*', clause)
            if m:
                schedule = m[1]
            elif clause.strip():
                rest.append(clause)
        text = " AND ".join(rest)
        items = [j for j in self.store.all("pipelineJobs") if j["name"].startswith(parent + "/")
                 and matches_filter(j, text)
                 and (schedule is None or j.get("scheduleName") == schedule)]
        items.sort(key=lambda j: j["createTime"], reverse=True)
        return page(items, "pipelineJobs", query.get("pageSize"), query.get("pageToken"))

    def cancel(self, parent: str, job_id: str) -> dict:
        job = self._find(parent, job_id)
        if job["state"] in TERMINAL:
            raise errors.failed_precondition(f"PipelineJob {job['name']} is already in a "
                                             f"terminal state {job['state']}.")
        run = self.runs.get(job["name"])
        if run:
            run.cancel()
        return {}

    def delete(self, parent: str, job_id: str) -> dict:
        job = self._find(parent, job_id)
        if job["state"] not in TERMINAL:
            raise errors.failed_precondition(f"PipelineJob {job['name']} is still running; "
                                             f"cancel it before deleting it.")
        self.store.delete("pipelineJobs", job_id)
        return operations.done(self.store, job["name"], "DeleteOperationMetadata", None)
