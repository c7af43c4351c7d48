"""Tensorboard resources, as far as Vertex AI Experiments needs them.

aiplatform.init(experiment=...) looks for the project's default Tensorboard
(filter is_default=true), creates one if none exists and records it as the experiment's
backing Tensorboard. Time-series logging into it runs with LAB_BACKEND=gcp.
"""

from __future__ import annotations

from labkit.vertex import errors, operations
from labkit.vertex.resources import page
from labkit.vertex.store import ResourceStore, new_id, now


class Tensorboards:
    def __init__(self, store: ResourceStore):
        self.store = store

    def create(self, parent: str, body: dict) -> dict:
        if not body.get("displayName"):
            raise errors.invalid("Tensorboard display_name is required.")
        tid = new_id()
        stamp = now()
        resource = {"name": f"{parent}/tensorboards/{tid}", "displayName": body["displayName"],
                    "description": body.get("description", ""), "labels": body.get("labels", {}),
                    "isDefault": bool(body.get("isDefault")), "createTime": stamp,
                    "updateTime": stamp, "etag": new_id(), "runCount": 0,
                    "blobStoragePathPrefix": f"local-tensorboard/{tid}"}
        with self.store.lock:
            if resource["isDefault"]:
                for other in self.store.all("tensorboards"):  # one default per project
                    if other["isDefault"] and other["name"].startswith(parent + "/"):
                        other["isDefault"] = False
                        self.store.put("tensorboards", other["name"].rsplit("/", 1)[-1], other)
            self.store.put("tensorboards", tid, resource)
        return operations.done(self.store, resource["name"], "CreateTensorboardOperationMetadata",
                               "Tensorboard", resource)

    def get(self, parent: str, tid: str) -> dict:
        resource = self.store.get("tensorboards", tid)
        if resource is None or not resource["name"].startswith(parent + "/"):
            raise errors.not_found("Tensorboard", f"{parent}/tensorboards/{tid}")
        return resource

    def list(self, parent: str, query: dict) -> dict:
        wanted = (query.get("filter") or "").replace(" ", "")
        items = [t for t in self.store.all("tensorboards") if t["name"].startswith(parent + "/")]
        if wanted in ("is_default=true", "isDefault=true"):
            items = [t for t in items if t["isDefault"]]
        elif wanted.startswith("display_name="):
            items = [t for t in items if t["displayName"] == wanted.split("=", 1)[1].strip('"')]
        elif wanted:
            raise errors.invalid(f"Unsupported Tensorboard filter: {query['filter']!r}.")
        return page(items, "tensorboards", query.get("pageSize"), query.get("pageToken"))

    def delete(self, parent: str, tid: str) -> dict:
        resource = self.get(parent, tid)
        self.store.delete("tensorboards", tid)
        return operations.done(self.store, resource["name"], "DeleteOperationMetadata", None)


class TensorboardChildren:
    """Tensorboard experiments and runs (created by Experiments' start_run), stored by name."""

    KINDS = {"experiments": ("TensorboardExperiment", "tensorboardExperimentId"),
             "runs": ("TensorboardRun", "tensorboardRunId")}

    def __init__(self, store: ResourceStore):
        self.store = store

    def _key(self, name: str) -> str:
        return name.replace("/", "~")

    def create(self, parent: str, kind: str, body: dict, rid: str | None) -> dict:
        if self.store.get("tensorboardChildren", self._key(parent)) is None and \
                "/experiments/" in parent:
            raise errors.not_found("TensorboardExperiment", parent)
        name = f"{parent}/{kind}/{rid or new_id()}"
        with self.store.lock:
            if self.store.get("tensorboardChildren", self._key(name)) is not None:
                raise errors.VertexError("ALREADY_EXISTS", f"{self.KINDS[kind][0]} {name} "
                                                           f"already exists.")
            stamp = now()
            resource = {"name": name, "displayName": body.get("displayName", ""),
                        "description": body.get("description", ""),
                        "labels": body.get("labels", {}), "createTime": stamp,
                        "updateTime": stamp, "etag": new_id()}
            return self.store.put("tensorboardChildren", self._key(name), resource)

    def get(self, name: str, kind: str) -> dict:
        resource = self.store.get("tensorboardChildren", self._key(name))
        if resource is None:
            raise errors.not_found(self.KINDS[kind][0], name)
        return resource

    def list(self, parent: str, kind: str, query: dict) -> dict:
        prefix = f"{parent}/{kind}/"
        items = [r for r in self.store.all("tensorboardChildren")
                 if r["name"].startswith(prefix) and "/" not in r["name"][len(prefix):]]
        key = {"experiments": "tensorboardExperiments", "runs": "tensorboardRuns"}[kind]
        return page(items, key, query.get("pageSize"), query.get("pageToken"))
