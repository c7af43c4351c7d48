"""Tensorboard resources, as far as Vertex AI Experiments needs them.

aiplatform.init(experiment=...) looks for the project's default Tensorboard
(filter is_default=true), creates one if none exists and records it as the experiment's
backing Tensorboard. Experiment runs log time series into it (log_time_series_metrics:
timeSeries create, runs/*:write; get_time_series_data_frame: tensorboards/*:batchRead;
timeSeries/*:read and :exportTensorboardTimeSeries), and deleting an experiment with its
backing runs deletes runs (and their time series) and Tensorboard experiments.
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


VALUE_TYPES = {0: "VALUE_TYPE_UNSPECIFIED", 1: "SCALAR", 2: "TENSOR", 3: "BLOB_SEQUENCE"}
READ_MAX_POINTS = 1000  # Vertex's default (and maximum) for :read and :batchRead


class TensorboardChildren:
    """Tensorboard experiments, runs (created by Experiments' start_run) and time series,
    stored by name; a time series' data points are stored with it."""

    KINDS = {"experiments": ("TensorboardExperiment", "tensorboardExperimentId"),
             "runs": ("TensorboardRun", "tensorboardRunId"),
             "timeSeries": ("TensorboardTimeSeries", "tensorboardTimeSeriesId")}

    def __init__(self, store: ResourceStore):
        self.store = store

    def _key(self, name: str) -> str:
        return name.replace("/", "~")

    def create(self, parent: str, kind: str, body: dict, rid: str | None) -> dict:
        if self.store.get("tensorboardChildren", self._key(parent)) is None and \
                "/experiments/" in parent:
            raise errors.not_found("TensorboardRun" if "/runs/" in parent else
                                   "TensorboardExperiment", parent)
        if kind == "timeSeries":
            return self._create_time_series(parent, body, rid)
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
        items = [self._public(r) for r in self.store.all("tensorboardChildren")
                 if r["name"].startswith(prefix) and "/" not in r["name"][len(prefix):]]
        wanted = (query.get("filter") or "").replace(" ", "")
        if wanted.startswith(("display_name=", "displayName=")):
            items = [r for r in items if r["displayName"] == wanted.split("=", 1)[1].strip('"')]
        elif wanted:
            raise errors.invalid(f"Unsupported {self.KINDS[kind][0]} filter: "
                                 f"{query['filter']!r}.")
        key = {"experiments": "tensorboardExperiments", "runs": "tensorboardRuns",
               "timeSeries": "tensorboardTimeSeries"}[kind]
        return page(items, key, query.get("pageSize"), query.get("pageToken"))

    def delete(self, name: str, kind: str) -> dict:
        """Deletes the resource and everything under it (a run's time series)."""
        self.get(name, kind)
        with self.store.lock:
            for other in self.store.all("tensorboardChildren"):
                if other["name"] == name or other["name"].startswith(name + "/"):
                    self.store.delete("tensorboardChildren", self._key(other["name"]))
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- time series
    @staticmethod
    def _public(resource: dict) -> dict:
        return {k: v for k, v in resource.items() if k != "points"}

    def _create_time_series(self, run: str, body: dict, rid: str | None) -> dict:
        if not body.get("displayName"):
            raise errors.invalid("TensorboardTimeSeries.display_name is required.")
        value_type = body.get("valueType")
        value_type = VALUE_TYPES.get(value_type, value_type) if isinstance(value_type, int) \
            else value_type
        if value_type not in ("SCALAR", "TENSOR", "BLOB_SEQUENCE"):
            raise errors.invalid("TensorboardTimeSeries.value_type must be SCALAR, TENSOR or "
                                 "BLOB_SEQUENCE.")
        with self.store.lock:
            for other in self.store.all("tensorboardChildren"):
                if other["name"].startswith(run + "/timeSeries/") and \
                        other["displayName"] == body["displayName"]:
                    raise errors.VertexError(
                        "ALREADY_EXISTS", f"TensorboardTimeSeries with display name "
                                          f"{body['displayName']!r} already exists in {run}.")
            stamp = now()
            resource = {"name": f"{run}/timeSeries/{rid or new_id()}",
                        "displayName": body["displayName"],
                        "description": body.get("description", ""), "valueType": value_type,
                        "pluginName": body.get("pluginName", "scalars"),
                        "pluginData": body.get("pluginData", ""), "createTime": stamp,
                        "updateTime": stamp, "etag": new_id(), "points": []}
            self.store.put("tensorboardChildren", self._key(resource["name"]), resource)
        return self._public(resource)

    def write(self, run: str, body: dict) -> dict:
        """runs/*:write: appends each time series' points (all checked before any is kept)."""
        self.get(run, "runs")
        batches = []
        for data in body.get("timeSeriesData") or []:
            name = f"{run}/timeSeries/{data.get('tensorboardTimeSeriesId', '')}"
            series = self.get(name, "timeSeries")
            for value in data.get("values") or []:
                if series["valueType"] == "SCALAR" and "value" not in (value.get("scalar") or {}):
                    raise errors.invalid(f"Time series {name} is SCALAR: every value needs "
                                         f"scalar.value.")
            batches.append((name, data.get("values") or []))
        with self.store.lock:
            for name, values in batches:
                series = self.get(name, "timeSeries")
                series["points"] = series["points"] + [
                    {**v, "step": str(v.get("step", 0)), "wallTime": v.get("wallTime") or now()}
                    for v in values]
                series["updateTime"] = now()
                self.store.put("tensorboardChildren", self._key(name), series)
        return {}

    def _data(self, series: dict, max_points: int | None = None) -> dict:
        points = sorted(series["points"], key=lambda p: int(p["step"]))
        if max_points and len(points) > max_points:  # Vertex samples down; keep the last
            stride = len(points) / max_points
            points = [points[int(i * stride)] for i in range(max_points - 1)] + [points[-1]]
        return {"tensorboardTimeSeriesId": series["name"].rsplit("/", 1)[-1],
                "valueType": series["valueType"], "values": points}

    def read(self, name: str, query: dict) -> dict:
        """timeSeries/*:read."""
        limit = int(query.get("maxDataPoints") or READ_MAX_POINTS)
        return {"timeSeriesData": self._data(self.get(name, "timeSeries"),
                                             min(limit, READ_MAX_POINTS))}

    def batch_read(self, tensorboard: str, names: list[str]) -> dict:
        """tensorboards/*:batchRead?timeSeries=...: every named series of this Tensorboard."""
        data = []
        for name in names:
            if not name.startswith(tensorboard + "/"):
                raise errors.invalid(f"Time series {name} is not in {tensorboard}.")
            data.append(self._data(self.get(name, "timeSeries"), READ_MAX_POINTS))
        return {"timeSeriesData": data}

    def export(self, name: str, body: dict) -> dict:
        """timeSeries/*:exportTensorboardTimeSeries: every point, paged, step order."""
        if body.get("filter"):
            raise errors.invalid("Filters on exportTensorboardTimeSeries run with "
                                 "LAB_BACKEND=gcp.")
        points = self._data(self.get(name, "timeSeries"))["values"]
        if (body.get("orderBy") or "").replace(" ", "").lower() == "stepdesc":
            points = points[::-1]
        listing = page(points, "timeSeriesDataPoints", body.get("pageSize"),
                       body.get("pageToken"))
        return listing
