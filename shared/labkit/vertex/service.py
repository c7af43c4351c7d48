"""Vertex AI REST v1 routes: HTTP <-> registry, endpoints, batch jobs, operations.

The SDK (api_transport="rest") addresses /v1/projects/P/locations/L/... and polls
operations under /ui/projects/...; resource IDs in paths may carry @version (URL-encoded).
"""

from __future__ import annotations

import functools

from labkit.services.http import Request, Router
from labkit.vertex import operations
from labkit.vertex.batch import BatchJobs
from labkit.vertex.endpoints import Endpoints
from labkit.vertex.monitoring import hooks
from labkit.vertex.routes import PARENT, parent_of, query_of, refuse, serve_v1beta1

MODEL = PARENT + r"/models/(?P<model>[^/:]+)"
ENDPOINT = PARENT + r"/endpoints/(?P<endpoint>[^/:]+)"
JOB = PARENT + r"/batchPredictionJobs/(?P<job>[^/:]+)"




def register(router: Router, services) -> None:
    store, registry = services.vertex_store, services.registry
    endpoints = Endpoints(store, registry,
                          on_predict=functools.partial(hooks.after_predict, services.monitoring))
    services.closers.append(endpoints.close_all)
    jobs = BatchJobs(store, registry, services.workspace, services.bigquery)

    def add(method: str, pattern: str, handler) -> None:
        router.add(method, pattern, handler)

    # ---- models
    add("POST", PARENT + r"/models:upload", lambda r: registry.upload(parent_of(r), r.json()))
    add("GET", PARENT + r"/models", lambda r: registry.list(parent_of(r), query_of(r)))
    add("GET", MODEL, lambda r: registry.get(parent_of(r), r.params["model"]))
    add("PATCH", MODEL, lambda r: registry.patch(parent_of(r), r.params["model"], r.json(),
                                                 r.arg("updateMask")))
    add("DELETE", MODEL, lambda r: registry.delete(parent_of(r), r.params["model"]))
    add("DELETE", MODEL + r":deleteVersion",
        lambda r: registry.delete(parent_of(r), r.params["model"], version_only=True))
    add("GET", MODEL + r":listVersions",
        lambda r: registry.list_versions(parent_of(r), r.params["model"], query_of(r)))
    add("POST", MODEL + r":mergeVersionAliases",
        lambda r: registry.merge_aliases(parent_of(r), r.params["model"], r.json()))
    add("GET", MODEL + r"/evaluations",
        lambda r: registry.evaluations(parent_of(r), r.params["model"], query_of(r)))
    add("GET", MODEL + r"/evaluations/(?P<evaluation>[^/:]+)",
        lambda r: registry.evaluation(parent_of(r), r.params["model"], r.params["evaluation"]))

    # ---- endpoints
    add("POST", PARENT + r"/endpoints",
        lambda r: endpoints.create(parent_of(r), r.json(), r.arg("endpointId")))
    add("GET", PARENT + r"/endpoints", lambda r: endpoints.list(parent_of(r), query_of(r)))
    add("GET", ENDPOINT, lambda r: endpoints.get(parent_of(r), r.params["endpoint"]))
    add("PATCH", ENDPOINT, lambda r: endpoints.patch(parent_of(r), r.params["endpoint"],
                                                     r.json(), r.arg("updateMask")))
    add("DELETE", ENDPOINT, lambda r: endpoints.delete(parent_of(r), r.params["endpoint"]))
    add("POST", ENDPOINT + r":deployModel",
        lambda r: endpoints.deploy(parent_of(r), r.params["endpoint"], r.json()))
    add("POST", ENDPOINT + r":undeployModel",
        lambda r: endpoints.undeploy(parent_of(r), r.params["endpoint"], r.json()))
    add("POST", ENDPOINT + r":predict",
        lambda r: endpoints.predict(parent_of(r), r.params["endpoint"], r.json()))

    add("POST", ENDPOINT + r":explain",
        lambda r: endpoints.explain(parent_of(r), r.params["endpoint"], r.json(),
                                    functools.partial(hooks.explain, services.monitoring)))
    for verb, feature in (("rawPredict", "raw_predict"),
                          ("streamRawPredict", "stream_raw_predict"),
                          ("directPredict", "direct_predict"),
                          ("directRawPredict", "direct_raw_predict"),
                          ("serverStreamingPredict", "server streaming predict")):
        add("POST", ENDPOINT + f":{verb}", refuse(f"Endpoint {feature}"))

    # ---- batch prediction jobs
    add("POST", PARENT + r"/batchPredictionJobs", lambda r: jobs.create(parent_of(r), r.json()))
    add("GET", PARENT + r"/batchPredictionJobs", lambda r: jobs.list(parent_of(r), query_of(r)))
    add("GET", JOB, lambda r: jobs.get(parent_of(r), r.params["job"]))
    add("POST", JOB + r":cancel", lambda r: jobs.cancel(parent_of(r), r.params["job"]))
    add("DELETE", JOB, lambda r: jobs.delete(parent_of(r), r.params["job"]))

    # ---- operations (the SDK polls them under /ui/)
    def get_operation(r: Request):
        name = r.params["name"]
        return operations.get(store, name.rsplit("/", 1)[-1], name)

    for prefix in ("/ui/", "/v1/"):
        add("GET", prefix + r"(?P<name>projects/[^:]+/operations/[^/:]+)", get_operation)

    # Every Vertex room's /v1/ routes, whenever registered, on /v1beta1/ too.
    serve_v1beta1(router)
