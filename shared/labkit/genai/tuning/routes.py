"""Vertex AI's tuningJobs REST resource (what google-genai's client.tunings and the Vertex
SDK's vertexai.tuning.sft send) and generateContent on tuned models, by endpoint
(projects/P/locations/L/endpoints/E, the tuned model's endpoint) or by model resource.

Paths take google-genai's optional /aiplatform.googleapis.com prefix and /v1 or /v1beta1,
as labkit.genai.routes does; generation reuses that module's request parsing and answer
shapes, so a tuned model accepts exactly what the base model accepts.
"""

from __future__ import annotations

from labkit.genai import routes as genai_routes
from labkit.genai.engine import Engine
from labkit.genai.tuning.jobs import TuningJobs
from labkit.genai.tuning.tuned import TunedModels
from labkit.services.http import Request, Router
from labkit.vertex.routes import parent_of, query_of

PARENT = genai_routes.PREFIX + r"/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
JOB = PARENT + r"/tuningJobs/(?P<job>[^/:]+)"
ENDPOINT = PARENT + r"/endpoints/(?P<endpoint>[^/:]+)"
MODEL = PARENT + r"/models/(?P<tuned>[^/:]+)"


def register(router: Router, services) -> None:
    engine = Engine()  # the base model's weights are memory-mapped: shared with Gen AI's
    jobs = TuningJobs(services.vertex_store, services.metadata, services.objects,
                      services.workspace, engine)
    tuned = TunedModels(engine)

    def add(method: str, pattern: str, handler) -> None:
        router.add(method, pattern, genai_routes.wrap(handler))

    add("POST", PARENT + r"/tuningJobs", lambda r: jobs.create(parent_of(r), r.json()))
    add("GET", PARENT + r"/tuningJobs", lambda r: jobs.list(parent_of(r), query_of(r)))
    add("GET", JOB, lambda r: jobs.get(parent_of(r), r.params["job"]))
    add("POST", JOB + r":cancel", lambda r: jobs.cancel(parent_of(r), r.params["job"]))

    def answering(verb):
        def handler(r: Request):
            parent = parent_of(r)
            if "endpoint" in r.params:
                job, folder = jobs.adapters_for(parent, endpoint_id=r.params["endpoint"])
            else:
                job, folder = jobs.adapters_for(parent, model_id=r.params["tuned"])
            # the request is checked as one for the base model the job tuned
            r.params["model"] = job["baseModel"]
            return verb(tuned.engine(folder), r)
        return handler

    for suffix, verb in ((":generateContent", genai_routes._generate),
                         (":streamGenerateContent", genai_routes._stream),
                         (":countTokens", genai_routes._count)):
        add("POST", ENDPOINT + suffix, answering(verb))
        add("POST", MODEL + suffix, answering(verb))
