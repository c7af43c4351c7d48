"""The local Dataflow's jobs: created from what DataflowRunner submits, run by a worker
child process (labkit.dataflow.worker), kept as JSON files in the workspace.

A job goes JOB_STATE_PENDING -> JOB_STATE_RUNNING -> JOB_STATE_DONE / JOB_STATE_FAILED, or
JOB_STATE_CANCELLING -> JOB_STATE_CANCELLED when the caller asks (UpdateJob with
requested_state JOB_STATE_CANCELLED, which is what `result.cancel()` sends). Messages and
metrics answer as Dataflow's MessagesV1Beta3 and MetricsV1Beta3 do.

Refusals follow Dataflow's (REST reference, cloud.google.com/dataflow/docs/reference/rest/
v1b3/projects.locations.jobs): a job name must match [a-z]([-a-z0-9]{0,1022}[a-z0-9])?;
an active job's name cannot be reused (409 ALREADY_EXISTS, "(id): There is already an active
job named N. If you want to submit a second job, try again by setting a different name.",
as seen in apache/beam issue 21121 and pull request 29441).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from labkit.services.files import write_atomic
from labkit.services.http import gcp_only_message
from labkit.services.paging import BadPage, page_of
from labkit.workspace import Workspace

NAME = re.compile(r"[a-z]([-a-z0-9]{0,1022}[a-z0-9])?")
JOB_ID = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}_[0-9]{2}_[0-9]{2}-[0-9]{1,20}")
TERMINAL = ("JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_UPDATED", "JOB_STATE_DRAINED")
# Dataflow's regional endpoints (cloud.google.com/dataflow/docs/resources/locations).
REGIONS = (
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2",
    "asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
    "australia-southeast1", "australia-southeast2", "europe-central2", "europe-north1",
    "europe-north2", "europe-southwest1", "europe-west1", "europe-west2", "europe-west3",
    "europe-west4", "europe-west6", "europe-west8", "europe-west9", "europe-west10",
    "europe-west12", "me-central1", "me-central2", "me-west1", "northamerica-northeast1",
    "northamerica-northeast2", "northamerica-south1", "southamerica-east1",
    "southamerica-west1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
    "us-west1", "us-west2", "us-west3", "us-west4")
IMPORTANCE = ("JOB_MESSAGE_DEBUG", "JOB_MESSAGE_DETAILED", "JOB_MESSAGE_BASIC",
              "JOB_MESSAGE_WARNING", "JOB_MESSAGE_ERROR")
SERVICE = "Dataflow"


class DataflowError(Exception):
    """A refusal in Dataflow's shape: a gRPC status code name and Google's message."""

    def __init__(self, message: str, code: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.message, self.code = message, code


def not_local(feature: str) -> DataflowError:
    return DataflowError(gcp_only_message(feature, SERVICE), "UNIMPLEMENTED")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp() -> str:
    """A short hex id, as Dataflow's messages start with one in parentheses."""
    return secrets.token_hex(8)


def _location(location: str) -> str:
    # The v1b3 methods without a location (projects.jobs.*) work in us-central1.
    location = location or "us-central1"
    if location not in REGIONS:
        raise DataflowError(f"({_stamp()}): The workflow could not be created. Causes: "
                            f"Region {location!r} is not a Dataflow regional endpoint.")
    return location


class Jobs:
    """The jobs of one workspace. `environment(project)` is the environment that points a
    worker's Google clients at the local services (Services.client_environment; None: the
    local project)."""

    def __init__(self, workspace: Workspace, environment: Callable[[str], dict]):
        self.root = workspace.path("dataflow", "jobs")
        self.root.mkdir(parents=True, exist_ok=True)
        self.environment = environment
        self.lock = threading.RLock()
        self.processes: dict[str, subprocess.Popen] = {}
        self.spare_lock = threading.Lock()
        self.spare: subprocess.Popen | None = None  # started after the first job
        self.closed = False
        self._recover()

    # ---- storage -------------------------------------------------------------------
    def _folder(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id or ""):
            raise DataflowError(f"({_stamp()}): Job {job_id!r} not found.", "NOT_FOUND")
        return self.root / job_id

    def _load(self, job_id: str):
        from google.cloud import dataflow_v1beta3 as dataflow

        path = self._folder(job_id) / "job.json"
        if not path.exists():
            raise DataflowError(f"(job {job_id}): Job {job_id} not found.", "NOT_FOUND")
        return dataflow.Job.from_json(path.read_text(), ignore_unknown_fields=True)

    def _save(self, job) -> None:
        from google.cloud import dataflow_v1beta3 as dataflow

        write_atomic(self._folder(job.id) / "job.json", dataflow.Job.to_json(job))

    def _all(self) -> list:
        jobs = []
        for folder in sorted(self.root.iterdir()):
            if (folder / "job.json").exists():
                jobs.append(self._load(folder.name))
        return jobs

    def _messages(self, job_id: str) -> list[dict]:
        path = self._folder(job_id) / "messages.json"
        return json.loads(path.read_text()) if path.exists() else []

    def _say(self, job_id: str, text: str, importance: str = "JOB_MESSAGE_BASIC") -> None:
        messages = self._messages(job_id)
        messages.append({"id": str(len(messages) + 1), "time": _now().isoformat(),
                         "message_text": text, "message_importance": importance})
        write_atomic(self._folder(job_id) / "messages.json", json.dumps(messages))

    def _set_state(self, job, state: str) -> None:
        job.current_state = state
        job.current_state_time = _now()
        self._save(job)

    def _owned(self, project: str, location: str, job_id: str):
        job = self._load(job_id)
        if job.project_id != project or job.location != (location or "us-central1"):
            raise DataflowError(f"(job {job_id}): Job {job_id} not found in project "
                                f"{project}, location {location}.", "NOT_FOUND")
        return job

    # ---- the API -------------------------------------------------------------------
    def create(self, project: str, location: str, job):
        location = _location(location)
        if not project:
            raise DataflowError("The project id must be set.")
        if not NAME.fullmatch(job.name or ""):
            raise DataflowError(
                f"({_stamp()}): The workflow could not be created. Causes: Invalid job name "
                f"({job.name!r}): the name must match [a-z]([-a-z0-9]{{0,1022}}[a-z0-9])?, "
                f"consisting of only lowercase letters, digits and hyphens, starting with a "
                f"letter and ending with a letter or a digit.")
        if job.type_.name == "JOB_TYPE_STREAMING":
            raise not_local("Streaming jobs")
        if job.replace_job_id:
            raise not_local("Updating a running job (--update)")
        if job.steps or job.steps_location:
            raise not_local("Jobs described by Dataflow steps (not a portable pipeline)")
        spec = self._spec(job)
        with self.lock:
            for other in self._all():
                if (other.project_id == project and other.location == location
                        and other.name == job.name
                        and other.current_state.name not in TERMINAL):
                    raise DataflowError(
                        f"({_stamp()}): There is already an active job named {job.name}. "
                        f"If you want to submit a second job, try again by setting a "
                        f"different name.", "ALREADY_EXISTS")
            now = _now()
            job.id = (f"{now:%Y-%m-%d_%H_%M_%S}-"
                      f"{int.from_bytes(os.urandom(8), 'big') % 10**19}")
            job.project_id, job.location = project, location
            job.create_time = job.start_time = now
            job.current_state, job.current_state_time = "JOB_STATE_PENDING", now
            folder = self._folder(job.id)
            folder.mkdir(parents=True)
            write_atomic(folder / "spec.json", json.dumps(spec))
            self._save(job)
            self._say(job.id, f"Submitted job: {job.id}", "JOB_MESSAGE_DETAILED")
        threading.Thread(target=self._run, args=(job.id,), daemon=True,
                         name=f"dataflow-{job.id}").start()
        return job

    @staticmethod
    def _spec(job) -> dict:
        """What the worker needs from the job, checked as Dataflow checks it at submission."""
        from google.cloud import dataflow_v1beta3 as dataflow
        from google.protobuf import json_format

        sdk = json_format.MessageToDict(
            dataflow.Environment.pb(job.environment).sdk_pipeline_options)
        options = dict(sdk.get("options") or {})
        url = options.get("pipelineUrl") or ""
        if not url:
            raise DataflowError(f"({_stamp()}): The workflow could not be created. Causes: "
                                f"the job has no staged pipeline (sdk_pipeline_options."
                                f"options.pipelineUrl).")
        if not url.startswith("gs://"):
            raise DataflowError(f"({_stamp()}): The workflow could not be created. Causes: "
                                f"the staged pipeline {url!r} is not a Cloud Storage path "
                                f"(gs://bucket/object).")
        temp = job.environment.temp_storage_prefix
        if temp and not temp.startswith("storage.googleapis.com/"):
            raise DataflowError(f"({_stamp()}): The workflow could not be created. Causes: "
                                f"temp location {temp!r} is not a Cloud Storage path; "
                                f"temp_location must be gs://bucket/path.")
        packages = [{"name": p.name, "location": p.location}
                    for pool in job.environment.worker_pools for p in pool.packages]
        # A Struct holds every number as a double; Dataflow's workers see 0, not 0.0, for
        # an integer option (argparse's int refuses "0.0").
        options = {k: _integral(v) for k, v in options.items()
                   if k not in ("pipelineUrl", "pipelineProtoHash")}
        return {"pipeline_url": url, "options": options, "packages": packages}

    def get(self, project: str, location: str, job_id: str, view: str = "JOB_VIEW_SUMMARY"):
        job = self._owned(project, location, job_id)
        return job if view in ("JOB_VIEW_ALL", "JOB_VIEW_DESCRIPTION") else _summary(job)

    def list(self, project: str, location: str | None, state_filter: str, page_size: int,
             page_token: str):
        from google.cloud import dataflow_v1beta3 as dataflow

        jobs = [j for j in self._all() if j.project_id == project
                and (not location or j.location == location)]
        if state_filter == "TERMINATED":
            jobs = [j for j in jobs if j.current_state.name in TERMINAL]
        elif state_filter == "ACTIVE":
            jobs = [j for j in jobs if j.current_state.name not in TERMINAL]
        jobs.sort(key=lambda j: j.create_time, reverse=True)  # newest first, as Dataflow
        try:
            page, token = page_of(jobs, page_size, page_token, 50)
        except BadPage as exc:
            raise DataflowError(str(exc)) from None
        return dataflow.ListJobsResponse(jobs=[_summary(j) for j in page],
                                         next_page_token=token or "")

    def update(self, project: str, location: str, job_id: str, update):
        """Cancel (requested_state JOB_STATE_CANCELLED) is the update a batch job takes."""
        requested = update.requested_state.name
        with self.lock:
            job = self._owned(project, location, job_id)
            if requested == "JOB_STATE_UNKNOWN":
                raise not_local("Job updates other than a requested state")
            if requested in ("JOB_STATE_DRAINED", "JOB_STATE_DRAINING"):
                raise DataflowError(f"({_stamp()}): Workflow modification failed. Causes: "
                                    f"Cannot drain a batch job; only streaming jobs can be "
                                    f"drained.", "FAILED_PRECONDITION")
            if requested != "JOB_STATE_CANCELLED":
                raise DataflowError(f"({_stamp()}): The requested state {requested} cannot "
                                    f"be set on a job; request JOB_STATE_CANCELLED.")
            state = job.current_state.name
            if state in TERMINAL:
                raise DataflowError(
                    f"({_stamp()}): Workflow modification failed. Causes: Cannot perform "
                    f"operation 'cancel' on Job: {job_id}. Job has terminated in state "
                    f"{state}.", "FAILED_PRECONDITION")
            job.requested_state = requested
            self._set_state(job, "JOB_STATE_CANCELLING")
            self._say(job_id, "Cancel request is committed for workflow job: " + job_id)
            process = self.processes.get(job_id)
        if process is not None:
            _kill(process)
        else:  # not started yet: the runner thread sees the request and never starts it
            with self.lock:
                job = self._load(job_id)
                self._set_state(job, "JOB_STATE_CANCELLED")
        return self._load(job_id)

    def messages(self, project: str, location: str, job_id: str, minimum: str,
                 start: datetime.datetime | None, end: datetime.datetime | None,
                 page_size: int, page_token: str):
        from google.cloud import dataflow_v1beta3 as dataflow

        self._owned(project, location, job_id)
        floor = IMPORTANCE.index(minimum) if minimum in IMPORTANCE else 0
        chosen = []
        for m in self._messages(job_id):
            when = datetime.datetime.fromisoformat(m["time"])
            if IMPORTANCE.index(m["message_importance"]) < floor:
                continue
            if (start and when < start) or (end and when >= end):
                continue
            chosen.append(dataflow.JobMessage(id=m["id"], time=when,
                                              message_text=m["message_text"],
                                              message_importance=m["message_importance"]))
        try:
            page, token = page_of(chosen, page_size, page_token, 100)
        except BadPage as exc:
            raise DataflowError(str(exc)) from None
        return dataflow.ListJobMessagesResponse(job_messages=page, next_page_token=token or "")

    def metrics(self, project: str, location: str, job_id: str):
        from google.cloud import dataflow_v1beta3 as dataflow

        self._owned(project, location, job_id)
        path = self._folder(job_id) / "outcome.json"
        updates = json.loads(path.read_text()).get("metrics", []) if path.exists() else []
        now = _now()
        return dataflow.JobMetrics(metric_time=now, metrics=[
            dataflow.MetricUpdate(update_time=now, **update) for update in updates])

    # ---- running -------------------------------------------------------------------
    def _run(self, job_id: str) -> None:
        folder = self._folder(job_id)
        with self.lock:
            job = self._load(job_id)
            if job.current_state.name != "JOB_STATE_PENDING":
                return  # cancelled before it started
            environment = {**self.environment(job.project_id), "PYTHONUNBUFFERED": "1",
                           "LAB_JOB_OF_SERVICES": "1"}
            (folder / "worker.log").touch(mode=0o600)
            process = self._take_spare()
            try:
                process.stdin.write(json.dumps({"folder": str(folder),
                                                "environment": environment}) + "\n")
                process.stdin.close()
            except OSError:  # the spare died: its exit fails the job with its log
                pass
            self.processes[job_id] = process
            write_atomic(folder / "worker.pid", str(process.pid))
            self._set_state(job, "JOB_STATE_RUNNING")
            self._say(job_id, "Starting the workers on this machine (the local Dataflow runs "
                              "the pipeline with Beam's FnApiRunner in one process).")
        threading.Thread(target=self._keep_spare, daemon=True).start()  # for the next job
        process.wait()
        self._finish(job_id)

    def _take_spare(self) -> subprocess.Popen:
        """A worker that has already imported Beam (a job does not wait for the imports);
        a new one when there is none or it died."""
        with self.spare_lock:
            spare, self.spare = self.spare, None
        if spare is None or spare.poll() is not None:
            spare = _spawn(self.root / "spare.log", self.environment(None))
        return spare

    def _keep_spare(self) -> None:
        with self.spare_lock:
            if self.spare is None and not self.closed:
                self.spare = _spawn(self.root / "spare.log", self.environment(None))

    def _finish(self, job_id: str) -> None:
        folder = self._folder(job_id)
        with self.lock:
            self.processes.pop(job_id, None)
            job = self._load(job_id)
            if job.current_state.name in TERMINAL:
                return
            if job.current_state.name == "JOB_STATE_CANCELLING":
                self._say(job_id, "Workers have been stopped: the job was cancelled.")
                self._set_state(job, "JOB_STATE_CANCELLED")
                return
            path = folder / "outcome.json"
            outcome = json.loads(path.read_text()) if path.exists() else {
                "state": "JOB_STATE_FAILED",
                "error": "The worker process stopped before the pipeline finished:\n"
                         + _tail(folder / "worker.log")}
            if outcome["state"] == "JOB_STATE_DONE":
                self._say(job_id, "Workers have finished: the pipeline ran to completion.")
            else:
                self._say(job_id, outcome.get("error") or "The job failed.",
                          "JOB_MESSAGE_ERROR")
                self._say(job_id, f"Workflow failed. Causes: the pipeline's code failed on "
                                  f"the workers (job {job_id}).", "JOB_MESSAGE_ERROR")
            self._set_state(job, outcome["state"])

    def _recover(self) -> None:
        """Jobs a previous services process ran: finished ones take their outcome; a worker
        left running is stopped (nothing would watch it) and its job failed."""
        for job in self._all():
            if job.current_state.name in TERMINAL:
                continue
            pid_file = self._folder(job.id) / "worker.pid"
            if pid_file.exists():
                _kill_stale(int(pid_file.read_text()), self._folder(job.id))
            if not (self._folder(job.id) / "outcome.json").exists():
                self._say(job.id, "The local services stopped while the job ran.",
                          "JOB_MESSAGE_ERROR")
                self._set_state(job, "JOB_STATE_FAILED")
            else:
                self._finish(job.id)

    def close(self) -> None:
        with self.spare_lock:
            self.closed = True
            spare, self.spare = self.spare, None
        for process in [*self.processes.values(), *([spare] if spare else [])]:
            _kill(process)


def _integral(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _summary(job):
    """JOB_VIEW_SUMMARY: the job without its environment and steps."""
    from google.cloud import dataflow_v1beta3 as dataflow

    summary = dataflow.Job(job)
    summary.environment = None
    summary.steps = []
    return summary


def _spawn(log: Path, environment: dict) -> subprocess.Popen:
    """A spare worker: it imports, then waits on stdin for its job (labkit.dataflow.worker),
    writing to `log` until the job's own log takes over; its own session, so a cancel kills
    its whole process group. It starts with the clients' environment already (some
    libraries read it on import: httplib2 its CA file); the job's project comes later."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "labkit.dataflow.worker", "--spare"],
                                env={**_base_environ(), **environment},
                                stdin=subprocess.PIPE, text=True,
                                stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
                                start_new_session=True)


def _base_environ() -> dict[str, str]:
    """The services' environment (their Python path too: the workers run the packages the
    pipeline was submitted with) minus what would confuse a Beam worker."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIP_")}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _kill_stale(pid: int, folder: Path) -> None:
    """Stops a worker an earlier services process started, if that pid is still it."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")  # a worker works in its job's folder
    except OSError:
        return
    if b"labkit.dataflow.worker" in command and cwd == str(folder):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
