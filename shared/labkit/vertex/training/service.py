"""Vertex AI REST v1 routes for training: customJobs, hyperparameterTuningJobs,
trainingPipelines (HTTP <-> the engines in this package)."""

from __future__ import annotations

from labkit.services.http import Router
from labkit.vertex.routes import PARENT, parent_of, query_of
from labkit.vertex.training.custom_jobs import CustomJobs
from labkit.vertex.training.pipelines import TrainingPipelines
from labkit.vertex.training.tuning import TuningJobs


def register(router: Router, services) -> None:
    store, workspace = services.vertex_store, services.workspace
    custom_jobs = CustomJobs(store, workspace, services.client_environment)
    engines = {"customJobs": custom_jobs,
               "hyperparameterTuningJobs": TuningJobs(store, workspace,
                                                      services.client_environment),
               "trainingPipelines": TrainingPipelines(store, services.registry, custom_jobs,
                                                      services.bigquery)}
    for collection, engine in engines.items():
        item = PARENT + f"/{collection}/(?P<id>[^/:]+)"
        router.add("POST", PARENT + f"/{collection}",
                   lambda r, e=engine: e.create(parent_of(r), r.json()))
        router.add("GET", PARENT + f"/{collection}",
                   lambda r, e=engine: e.list(parent_of(r), query_of(r)))
        router.add("GET", item, lambda r, e=engine: e.get(parent_of(r), r.params["id"]))
        router.add("POST", item + ":cancel",
                   lambda r, e=engine: e.cancel(parent_of(r), r.params["id"]))
        router.add("DELETE", item, lambda r, e=engine: e.delete(parent_of(r), r.params["id"]))
