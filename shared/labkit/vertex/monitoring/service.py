"""Vertex AI REST v1 routes for model deployment monitoring jobs, plus one local route.

POST /labkit/vertex/monitoring/JOB_ID:analyze runs a job's analysis at once (the local
stand-in for waiting for the next scheduled run; labkit.monitoring_helpers uses it).
"""

from __future__ import annotations

from labkit.services.http import Request, Router
from labkit.vertex import errors
from labkit.vertex.monitoring import hooks
from labkit.workspace import Workspace

PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
JOBS = PARENT + r"/modelDeploymentMonitoringJobs"
JOB = JOBS + r"/(?P<job>[^/:]+)"


def _parent(r: Request) -> str:
    return f"projects/{r.params['project']}/locations/{r.params['location']}"


def register(router: Router, workspace: Workspace) -> None:
    jobs = hooks.engine(workspace)
    jobs.start_timer()

    router.add("POST", JOBS, lambda r: jobs.create(_parent(r), r.json()))
    router.add("GET", JOBS, lambda r: jobs.list(_parent(r), {k: v[0] for k, v in
                                                               r.query.items()}))
    router.add("GET", JOB, lambda r: jobs.get(_parent(r), r.params["job"]))
    router.add("PATCH", JOB, lambda r: jobs.patch(_parent(r), r.params["job"], r.json(),
                                                  r.arg("updateMask")))
    router.add("DELETE", JOB, lambda r: jobs.delete(_parent(r), r.params["job"]))
    router.add("POST", JOB + ":pause", lambda r: jobs.pause(_parent(r), r.params["job"]))
    router.add("POST", JOB + ":resume", lambda r: jobs.resume(_parent(r), r.params["job"]))
    router.add("POST", JOB + ":searchModelDeploymentMonitoringStatsAnomalies",
               lambda r: jobs.search(_parent(r), r.params["job"], r.json()))

    def analyze(r: Request):
        job = jobs.store.get("modelDeploymentMonitoringJobs", r.params["job"])
        if job is None:
            raise errors.not_found("ModelDeploymentMonitoringJob", r.params["job"])
        parent = job["name"].split("/modelDeploymentMonitoringJobs/")[0]
        return jobs.analyze_now(parent, r.params["job"])

    router.add("POST", r"/labkit/vertex/monitoring/(?P<job>[0-9]+):analyze", analyze)
