"""What every training resource shares: storage, states, long-polled GET, cancel, delete.

Jobs run in background threads of the services process; their state is written to the
store on every change, so a GET from any client sees it. A GET of a running job waits up
to LONG_POLL_S for it to finish: the SDK sleeps 5 s between polls, and a short local job
then finishes without that wait. It stays short because the SDK also GETs inside
submit() and the `state` property, which should answer promptly.
"""

from __future__ import annotations

import threading

from labkit.vertex import errors, operations
from labkit.vertex.resources import matches_filter, page
from labkit.vertex.store import ResourceStore, now

LONG_POLL_S = 3.0


class JobTable:
    """One collection of job-like resources (customJobs, hyperparameterTuningJobs, ...)."""

    def __init__(self, store: ResourceStore, collection: str, kind: str, prefix: str = "JOB"):
        self.store = store
        self.collection = collection
        self.kind = kind
        self.state = lambda name: f"{prefix}_STATE_{name}"  # JOB_STATE_X / PIPELINE_STATE_X
        self.terminal = {self.state(s) for s in ("SUCCEEDED", "FAILED", "CANCELLED")}
        self.finished: dict[str, threading.Event] = {}
        self.cancels: dict[str, threading.Event] = {}

    def recover(self, owned=lambda job: True) -> None:
        """Jobs of a services process that ended while they ran cannot resume: they failed."""
        for job in self.store.all(self.collection):
            if owned(job) and job.get("state") not in self.terminal:
                self.finish(job["name"].rsplit("/", 1)[-1], "FAILED",
                            "The local services stopped while the job ran; run it again.")

    def name(self, parent: str, job_id: str) -> str:
        return f"{parent}/{self.collection}/{job_id}"

    # ---- reads
    def load(self, parent: str, job_id: str) -> dict:
        job = self.store.get(self.collection, job_id) if job_id.isdigit() else None
        if job is None or not job["name"].startswith(parent + "/"):
            raise errors.not_found(self.kind, self.name(parent, job_id))
        return job

    def get(self, parent: str, job_id: str) -> dict:
        job = self.load(parent, job_id)
        event = self.finished.get(job_id)
        if job["state"] not in self.terminal and event is not None:
            event.wait(LONG_POLL_S)
            job = self.load(parent, job_id)
        return job

    def list(self, parent: str, query: dict, keep=lambda job: True) -> dict:
        jobs = [j for j in self.store.all(self.collection)
                if j["name"].startswith(parent + "/") and keep(j)
                and matches_filter(j, query.get("filter"))]
        return page(jobs, self.collection, query.get("pageSize"), query.get("pageToken"))

    # ---- writes
    def add(self, job_id: str, job: dict) -> dict:
        self.finished[job_id] = threading.Event()
        self.cancels[job_id] = threading.Event()
        stamp = now()
        job.update(state=self.state("PENDING"), createTime=stamp, updateTime=stamp)
        return self.store.put(self.collection, job_id, job)

    def update(self, job_id: str, **fields) -> dict:
        with self.store.lock:
            job = self.store.get(self.collection, job_id)
            job.update(fields, updateTime=now())
            if fields.get("state") == self.state("RUNNING") and "startTime" not in job:
                job["startTime"] = job["updateTime"]
            return self.store.put(self.collection, job_id, job)

    def finish(self, job_id: str, outcome: str, message: str = "", **fields) -> dict:
        """outcome: SUCCEEDED, FAILED or CANCELLED."""
        extra = dict(fields)
        if outcome == "FAILED":
            extra["error"] = {"code": 3, "message": message}  # as Vertex reports a failed replica
        elif outcome == "CANCELLED":
            extra["error"] = {"code": 1, "message": message or "The job was cancelled."}
        job = self.update(job_id, state=self.state(outcome), endTime=now(), **extra)
        event = self.finished.get(job_id)
        if event is not None:
            event.set()
        return job

    def cancel(self, parent: str, job_id: str) -> dict:
        with self.store.lock:
            job = self.load(parent, job_id)
            if job["state"] in self.terminal:
                raise errors.failed_precondition(
                    f"Cannot cancel {self.kind} {job['name']}: it is already in state "
                    f"{job['state']}.")
            self.update(job_id, state=self.state("CANCELLING"))
        event = self.cancels.get(job_id)
        if event is not None:
            event.set()
        return {}

    def cancel_requested(self, job_id: str) -> bool:
        event = self.cancels.get(job_id)
        if event is not None and event.is_set():
            return True
        job = self.store.get(self.collection, job_id) or {}
        return job.get("state") == self.state("CANCELLING")

    def delete(self, parent: str, job_id: str) -> dict:
        with self.store.lock:
            job = self.load(parent, job_id)
            if job["state"] not in self.terminal:
                raise errors.failed_precondition(
                    f"{self.kind} {job['name']} is in state {job['state']}; cancel it and "
                    f"wait for it to end before deleting it.")
            self.store.delete(self.collection, job_id)
        return operations.done(self.store, job["name"], "DeleteOperationMetadata", None)


class JobCollection:
    """The read, list, cancel and delete routes every job kind answers from its table."""

    table: JobTable

    def get(self, parent, job_id):
        return self.table.get(parent, job_id)

    def list(self, parent, query):
        return self.table.list(parent, query)

    def cancel(self, parent, job_id):
        return self.table.cancel(parent, job_id)

    def delete(self, parent, job_id):
        return self.table.delete(parent, job_id)
