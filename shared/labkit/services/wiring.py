"""The one place that builds the services process: every shared object, once.

`build()` makes the objects that more than one room uses (the Vertex resource store, the
Model Registry, ML Metadata, model monitoring, the Cloud Storage store, the BigQuery client
the Vertex engines use, the Resource Manager stand-in) and `router()` hands them to each
room's `register(router, services)`. Rooms never build shared objects themselves, never
read the environment and never import the notebook entry module `labkit.env`: what a room
needs arrives here, explicitly.

A request flows: socket -> services.http (guard, secret, framing, error policy) -> the
room's routes (HTTP only) -> its engine (plain values) -> domain errors, mapped to the
service's error shape by the room's errors module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from labkit.services.http import Router
from labkit.workspace import Workspace

# Each module exposes register(router, services). Their URL prefixes do not overlap.
ROOMS = [
    "labkit.services.auth",
    "labkit.services.proxy",  # Google's hard-coded hostnames -> local stand-ins
    "labkit.services.discovery",  # request bodies checked as Google's front end does
    "labkit.bigquery.service",
    "labkit.storage.service",
    "labkit.vertex.service",
    "labkit.vertex.metadata.service",
    "labkit.vertex.pipelines.service",
    "labkit.vertex.automl.service",
    "labkit.vertex.training.service",
    "labkit.vertex.monitoring.service",
    "labkit.vertex.vector_search.service",  # Vector Search indexes and the match service
    "labkit.vertex.feature_store.routes",
    "labkit.genai.routes",
    "labkit.genai.tuning.routes",
    "labkit.dlp.service",  # gRPC behind the proxy: after labkit.services.proxy
    "labkit.bigquery.connections",  # gRPC behind the proxy, as DLP
    "labkit.dataflow.service",  # gRPC behind the proxy, as DLP
]


@dataclass
class Services:
    """What the rooms of one services process share."""
    workspace: Workspace
    endpoint: str  # this process's own base URL (engines call sibling services through it)
    project: str  # the local project's id
    vertex_store: object  # labkit.vertex.store.ResourceStore
    registry: object  # labkit.vertex.registry.Registry
    metadata: object  # labkit.vertex.metadata.engine.Metadata
    monitoring: object  # labkit.vertex.monitoring.engine.MonitoringJobs
    model_monitors: object  # labkit.vertex.monitoring.monitors.ModelMonitors (schedules too)
    objects: object  # labkit.storage.engine.Store (Cloud Storage)
    bigquery: object  # labkit.vertex.bq.LocalBigQuery: the real client, pointed here
    bigquery_models: object  # labkit.vertex.bigquery_models.VertexRegistration (BigQuery ML)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def client_environment(self, project: str | None = None) -> dict[str, str]:
        """Environment that points the real clients of a process the services start
        (training replicas, pipeline tasks; `project`: the job's) at these services."""
        from labkit.services.clients import client_environment

        return client_environment(self.workspace, self.endpoint, project or self.project)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def build(workspace: Workspace, endpoint: str, project: str) -> Services:
    from labkit.services import auth
    from labkit.storage.engine import Store
    from labkit.vertex.bigquery_models import VertexRegistration
    from labkit.vertex.bq import LocalBigQuery
    from labkit.vertex.metadata.engine import Metadata
    from labkit.vertex.monitoring.engine import MonitoringJobs
    from labkit.vertex.monitoring.monitors import ModelMonitors
    from labkit.vertex.registry import Registry
    from labkit.vertex.store import ResourceStore

    auth.write_credentials(workspace, endpoint)  # jobs this process starts sign in with it
    store = ResourceStore(workspace)
    bigquery = LocalBigQuery(endpoint, workspace.token, project)
    registry = Registry(store)
    monitoring = MonitoringJobs(store, workspace, bigquery)
    return Services(
        workspace=workspace, endpoint=endpoint, project=project, vertex_store=store,
        registry=registry, metadata=Metadata(store), monitoring=monitoring,
        model_monitors=ModelMonitors(store, workspace, registry, bigquery, monitoring.log),
        objects=Store(workspace, project), bigquery=bigquery,
        bigquery_models=VertexRegistration(registry, workspace.path("bigquery", "vertex_models")))


def router(services: Services) -> Router:
    import importlib

    routes = Router()
    names = []
    for name in ROOMS:
        importlib.import_module(name).register(routes, services)
        names.append(name.rsplit(".", 1)[-1])
    version = code_version()  # of the code this process loaded
    routes.add("GET", "/labkit/health", lambda request: {
        "status": "ok", "pid": _pid(), "services": names, "version": version})
    return routes


def _pid() -> int:
    import os

    return os.getpid()


@cache
def code_version() -> str:
    """A hash of the labkit package's source: labkit.start() restarts a services process
    that runs other code than the installed package (a `git pull`, an edited module)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
