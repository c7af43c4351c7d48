"""Vertex AI REST v1 routes for model deployment monitoring jobs, v1beta1 routes for Model
Monitoring v2 (modelMonitors and their modelMonitoringJobs), plus one local route.

POST /labkit/vertex/monitoring/JOB_ID:analyze runs a job's analysis at once (the local
stand-in for waiting for the next scheduled run; labkit.monitoring_helpers uses it).
"""

from __future__ import annotations

from labkit.services.http import Request, Router
from labkit.vertex import errors
from labkit.vertex.routes import PARENT, parent_of, query_of

JOBS = PARENT + r"/modelDeploymentMonitoringJobs"
JOB = JOBS + r"/(?P<job>[^/:]+)"
# Model Monitoring v2 (labkit.vertex.monitoring.monitors) is served on v1beta1 only, as on
# Vertex AI.
BETA_PARENT = r"/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
MONITORS = BETA_PARENT + r"/modelMonitors"
MONITOR = MONITORS + r"/(?P<monitor>[^/:]+)"
MONITOR_JOBS = MONITOR + r"/modelMonitoringJobs"
MONITOR_JOB = MONITOR_JOBS + r"/(?P<job>[^/:]+)"



def register(router: Router, services) -> None:
    jobs = services.monitoring
    jobs.start_timer()

    router.add("POST", JOBS, lambda r: jobs.create(parent_of(r), r.json()))
    router.add("GET", JOBS, lambda r: jobs.list(parent_of(r), query_of(r)))
    router.add("GET", JOB, lambda r: jobs.get(parent_of(r), r.params["job"]))
    router.add("PATCH", JOB, lambda r: jobs.patch(parent_of(r), r.params["job"], r.json(),
                                                  r.arg("updateMask")))
    router.add("DELETE", JOB, lambda r: jobs.delete(parent_of(r), r.params["job"]))
    router.add("POST", JOB + ":pause", lambda r: jobs.pause(parent_of(r), r.params["job"]))
    router.add("POST", JOB + ":resume", lambda r: jobs.resume(parent_of(r), r.params["job"]))
    router.add("POST", JOB + ":searchModelDeploymentMonitoringStatsAnomalies",
               lambda r: jobs.search(parent_of(r), r.params["job"], r.json()))

    monitors = services.model_monitors  # schedules run its jobs too
    m = lambda r: (parent_of(r), r.params["monitor"])  # noqa: E731
    router.add("POST", MONITORS, lambda r: monitors.create(parent_of(r), r.json(),
                                                           r.arg("modelMonitorId")))
    router.add("GET", MONITORS, lambda r: monitors.list(parent_of(r), query_of(r)))
    router.add("GET", MONITOR, lambda r: monitors.get(*m(r)))
    router.add("PATCH", MONITOR, lambda r: monitors.patch(*m(r), r.json(), r.arg("updateMask")))
    router.add("DELETE", MONITOR, lambda r: monitors.delete(
        *m(r), (r.arg("force") or "").lower() == "true"))
    router.add("POST", MONITOR + ":searchModelMonitoringStats",
               lambda r: monitors.search_stats(*m(r), r.json()))
    router.add("POST", MONITOR + ":searchModelMonitoringAlerts",
               lambda r: monitors.search_alerts(*m(r), r.json()))
    router.add("POST", MONITOR_JOBS, lambda r: monitors.create_job(
        *m(r), r.json(), r.arg("modelMonitoringJobId")))
    router.add("GET", MONITOR_JOBS, lambda r: monitors.list_jobs(*m(r), query_of(r)))
    router.add("GET", MONITOR_JOB, lambda r: monitors.get_job(*m(r), r.params["job"]))
    router.add("DELETE", MONITOR_JOB, lambda r: monitors.delete_job(*m(r), r.params["job"]))

    def analyze(r: Request):
        job = jobs.store.get("modelDeploymentMonitoringJobs", r.params["job"])
        if job is None:
            raise errors.not_found("ModelDeploymentMonitoringJob", r.params["job"])
        parent = job["name"].split("/modelDeploymentMonitoringJobs/")[0]
        return jobs.analyze_now(parent, r.params["job"])

    router.add("POST", r"/labkit/vertex/monitoring/(?P<job>[0-9]+):analyze", analyze)
