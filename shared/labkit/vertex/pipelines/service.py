"""Vertex AI Pipelines REST v1 routes: pipelineJobs and schedules."""

from __future__ import annotations

from labkit.services.http import Router
from labkit.vertex.pipelines.pipeline_jobs import PipelineJobs
from labkit.vertex.pipelines.schedules import Schedules
from labkit.vertex.routes import PARENT, parent_of, query_of

JOB = PARENT + r"/pipelineJobs/(?P<job>[^/:]+)"
SCHEDULE = PARENT + r"/schedules/(?P<schedule>[^/:]+)"




def register(router: Router, services) -> None:
    metadata = services.metadata
    jobs = PipelineJobs(services.workspace, services.vertex_store, metadata,
                        services.client_environment)
    schedules = Schedules(metadata.store, jobs, services.model_monitors)
    add = router.add

    add("POST", PARENT + r"/pipelineJobs",
        lambda r: jobs.create(parent_of(r), r.json(), r.arg("pipelineJobId")))
    add("GET", PARENT + r"/pipelineJobs", lambda r: jobs.list(parent_of(r), query_of(r)))
    add("GET", JOB, lambda r: jobs.get(parent_of(r), r.params["job"]))
    add("POST", JOB + r":cancel", lambda r: jobs.cancel(parent_of(r), r.params["job"]))
    add("DELETE", JOB, lambda r: jobs.delete(parent_of(r), r.params["job"]))

    add("POST", PARENT + r"/schedules", lambda r: schedules.create(parent_of(r), r.json()))
    add("GET", PARENT + r"/schedules", lambda r: schedules.list(parent_of(r), query_of(r)))
    add("GET", SCHEDULE, lambda r: schedules.get(parent_of(r), r.params["schedule"]))
    add("PATCH", SCHEDULE, lambda r: schedules.patch(parent_of(r), r.params["schedule"], r.json(),
                                                     r.arg("updateMask")))
    add("POST", SCHEDULE + r":pause", lambda r: schedules.pause(parent_of(r), r.params["schedule"]))
    add("POST", SCHEDULE + r":resume",
        lambda r: schedules.resume(parent_of(r), r.params["schedule"], r.json()))
    add("DELETE", SCHEDULE, lambda r: schedules.delete(parent_of(r), r.params["schedule"]))
