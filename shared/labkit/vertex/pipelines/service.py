"""Vertex AI Pipelines REST v1 routes: pipelineJobs and schedules."""

from __future__ import annotations

from labkit.services.http import Request, Router
from labkit.vertex.metadata.service import engine_for
from labkit.vertex.pipelines import resource_manager
from labkit.vertex.pipelines.jobs import PipelineJobs
from labkit.vertex.pipelines.schedules import Schedules
from labkit.workspace import Workspace

PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
JOB = PARENT + r"/pipelineJobs/(?P<job>[^/:]+)"
SCHEDULE = PARENT + r"/schedules/(?P<schedule>[^/:]+)"


def _parent(r: Request) -> str:
    return f"projects/{r.params['project']}/locations/{r.params['location']}"


def _query(r: Request) -> dict:
    return {k: v[0] for k, v in r.query.items()}


def register(router: Router, workspace: Workspace) -> None:
    metadata = engine_for(workspace)
    jobs = PipelineJobs(workspace, metadata.store, metadata)
    schedules = Schedules(metadata.store, jobs)
    resource_manager.start(workspace)
    add = router.add

    add("POST", PARENT + r"/pipelineJobs",
        lambda r: jobs.create(_parent(r), r.json(), r.arg("pipelineJobId")))
    add("GET", PARENT + r"/pipelineJobs", lambda r: jobs.list(_parent(r), _query(r)))
    add("GET", JOB, lambda r: jobs.get(_parent(r), r.params["job"]))
    add("POST", JOB + r":cancel", lambda r: jobs.cancel(_parent(r), r.params["job"]))
    add("DELETE", JOB, lambda r: jobs.delete(_parent(r), r.params["job"]))

    add("POST", PARENT + r"/schedules", lambda r: schedules.create(_parent(r), r.json()))
    add("GET", PARENT + r"/schedules", lambda r: schedules.list(_parent(r), _query(r)))
    add("GET", SCHEDULE, lambda r: schedules.get(_parent(r), r.params["schedule"]))
    add("POST", SCHEDULE + r":pause", lambda r: schedules.pause(_parent(r), r.params["schedule"]))
    add("POST", SCHEDULE + r":resume",
        lambda r: schedules.resume(_parent(r), r.params["schedule"], r.json()))
    add("DELETE", SCHEDULE, lambda r: schedules.delete(_parent(r), r.params["schedule"]))
