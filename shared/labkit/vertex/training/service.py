"""Vertex AI REST v1 routes for training: customJobs, hyperparameterTuningJobs,
trainingPipelines (HTTP <-> the engines in this package)."""

from __future__ import annotations

from labkit.services.http import Request, Router
from labkit.vertex.models import Registry
from labkit.vertex.store import ResourceStore
from labkit.vertex.training.custom_jobs import CustomJobs
from labkit.vertex.training.pipelines import TrainingPipelines
from labkit.vertex.training.tuning import TuningJobs
from labkit.workspace import Workspace

PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def _parent(r: Request) -> str:
    return f"projects/{r.params['project']}/locations/{r.params['location']}"


def _query(r: Request) -> dict:
    return {k: v[0] for k, v in r.query.items()}


def register(router: Router, workspace: Workspace) -> None:
    store = ResourceStore(workspace)
    registry = Registry(store)
    custom_jobs = CustomJobs(store, workspace)
    engines = {"customJobs": custom_jobs,
               "hyperparameterTuningJobs": TuningJobs(store, workspace),
               "trainingPipelines": TrainingPipelines(store, registry, custom_jobs)}
    for collection, engine in engines.items():
        item = PARENT + f"/{collection}/(?P<id>[^/:]+)"
        router.add("POST", PARENT + f"/{collection}",
                   lambda r, e=engine: e.create(_parent(r), r.json()))
        router.add("GET", PARENT + f"/{collection}",
                   lambda r, e=engine: e.list(_parent(r), _query(r)))
        router.add("GET", item, lambda r, e=engine: e.get(_parent(r), r.params["id"]))
        router.add("POST", item + ":cancel",
                   lambda r, e=engine: e.cancel(_parent(r), r.params["id"]))
        router.add("DELETE", item, lambda r, e=engine: e.delete(_parent(r), r.params["id"]))
