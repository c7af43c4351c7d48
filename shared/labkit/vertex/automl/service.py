"""Vertex AI REST v1 routes for managed datasets: HTTP <-> labkit.vertex.automl.datasets.

AutoML training pipelines arrive through the training pipelines routes, which hand
AutoML task definitions to labkit.vertex.automl.start_training_pipeline.
"""

from __future__ import annotations

from labkit.services.http import Router
from labkit.vertex.automl import pipelines
from labkit.vertex.automl.datasets import Datasets
from labkit.vertex.routes import PARENT, parent_of, query_of, refuse

DATASET = PARENT + r"/datasets/(?P<dataset>[^/:]+)"




def register(router: Router, services) -> None:
    store = services.vertex_store
    datasets = Datasets(store, services.bigquery)
    pipelines.recover(store)

    router.add("POST", PARENT + r"/datasets", lambda r: datasets.create(parent_of(r), r.json()))
    router.add("GET", PARENT + r"/datasets", lambda r: datasets.list(parent_of(r), query_of(r)))
    router.add("GET", DATASET, lambda r: datasets.find(parent_of(r), r.params["dataset"]))
    router.add("PATCH", DATASET, lambda r: datasets.patch(
        parent_of(r), r.params["dataset"], r.json(), r.arg("updateMask")))
    router.add("DELETE", DATASET, lambda r: datasets.delete(parent_of(r), r.params["dataset"]))

    # Data items (image, text, video) are not built locally; tabular data stays in its source.
    router.add("POST", DATASET + r":import", refuse("Importing data items into a dataset"))
    router.add("POST", DATASET + r":export", refuse("Exporting a dataset's data items"))
    router.add("GET", DATASET + r"/dataItems", refuse("Listing a dataset's data items"))
