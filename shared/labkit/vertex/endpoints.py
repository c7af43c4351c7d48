"""Endpoints: deployments of model versions, traffic split, and online prediction.

Each deployed model is served by a model server child process of its own (serving.load),
started at deploy and ended at undeploy or when the services process exits; after a
restart of the services it is started again from the registry on the first request.
A request is routed to a deployed model at random, weighted by the endpoint's traffic
split, as Vertex does.
"""

from __future__ import annotations

import atexit
import random
import threading

from labkit.vertex import errors, operations, serving
from labkit.vertex.machines import validate_dedicated
from labkit.vertex.registry import Registry
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now

DEFAULT_MACHINE = "n1-standard-2"
PATCHABLE = {"displayName", "description", "labels", "trafficSplit"}


class Endpoints:
    def __init__(self, store: ResourceStore, registry: Registry, on_predict=None):
        self.store = store
        self.registry = registry
        # on_predict(endpoint, deployed_model_id, instances, predictions): request logging
        # and model monitoring watch served traffic through it.
        self.on_predict = on_predict
        self.predictors: dict[str, object] = {}  # deployedModelId -> its model server
        self.loading = threading.Lock()
        atexit.register(self.close_all)  # model server subprocesses end with the services

    def close_all(self) -> None:
        for predictor in list(self.predictors.values()):
            predictor.close()
        self.predictors.clear()

    def _get(self, parent: str, endpoint_id: str) -> dict:
        endpoint = self.store.get("endpoints", endpoint_id) if endpoint_id.isdigit() else None
        if endpoint is None or not endpoint["name"].startswith(parent + "/"):
            raise errors.not_found("Endpoint", f"{parent}/endpoints/{endpoint_id}")
        return endpoint

    def get(self, parent: str, endpoint_id: str) -> dict:
        return self._get(parent, endpoint_id)

    def create(self, parent: str, body: dict, endpoint_id: str | None) -> dict:
        if body.get("dedicatedEndpointEnabled"):
            raise errors.gcp_only("A dedicated endpoint (dedicated_endpoint_enabled)")
        if body.get("network") or body.get("privateServiceConnectConfig"):
            raise errors.gcp_only("A private endpoint (VPC peering or Private Service Connect)")
        if not body.get("displayName"):
            raise errors.invalid("Endpoint.display_name is required.")
        endpoint_id = endpoint_id or new_id()
        with self.store.lock:
            if self.store.get("endpoints", endpoint_id):
                raise errors.VertexError("ALREADY_EXISTS", f"Endpoint {parent}/endpoints/"
                                                           f"{endpoint_id} already exists.")
            stamp = now()
            endpoint = {"name": f"{parent}/endpoints/{endpoint_id}",
                        "displayName": body["displayName"],
                        "description": body.get("description", ""),
                        "labels": body.get("labels") or {}, "deployedModels": [],
                        "trafficSplit": {}, "createTime": stamp, "updateTime": stamp,
                        "etag": new_id()}
            if logging := body.get("predictRequestResponseLoggingConfig"):
                endpoint["predictRequestResponseLoggingConfig"] = logging  # read by the hooks
            self.store.put("endpoints", endpoint_id, endpoint)
        return operations.done(self.store, endpoint["name"], "CreateEndpointOperationMetadata",
                               "Endpoint", endpoint)

    def list(self, parent: str, query: dict) -> dict:
        found = [e for e in self.store.all("endpoints") if e["name"].startswith(parent + "/")
                 and matches_filter(e, query.get("filter"))]
        return page(found, "endpoints", query.get("pageSize"), query.get("pageToken"))

    def delete(self, parent: str, endpoint_id: str) -> dict:
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            if endpoint["deployedModels"]:
                raise errors.failed_precondition(
                    f'The Endpoint "{endpoint["name"]}" has deployed or being deployed '
                    f"DeployedModel(s). Undeploy them before deleting the endpoint.")
            self.store.delete("endpoints", endpoint_id)
        return operations.done(self.store, endpoint["name"], "DeleteOperationMetadata", None)

    def patch(self, parent: str, endpoint_id: str, body: dict, mask: str | None) -> dict:
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            if "trafficSplit" in body:
                ids = {d["id"] for d in endpoint["deployedModels"]}
                body = {**body, "trafficSplit": self._check_split(body["trafficSplit"], ids)}
            apply_mask(endpoint, body, mask, PATCHABLE)
            endpoint["updateTime"] = now()
            return self.store.put("endpoints", endpoint_id, endpoint)

    @staticmethod
    def _check_split(split: dict, ids: set[str]) -> dict:
        split = {k: int(v) for k, v in (split or {}).items()}
        unknown = set(split) - ids
        if unknown:
            raise errors.invalid(f"Traffic split names DeployedModel(s) {sorted(unknown)} that "
                                 f"are not deployed on this endpoint.")
        if ids and sum(split.values()) != 100:
            raise errors.invalid("The traffic split percentages must add up to 100.")
        if any(v < 0 for v in split.values()):
            raise errors.invalid("Traffic split percentages must not be negative.")
        return {k: v for k, v in split.items()}

    # ---- deploy / undeploy
    def deploy(self, parent: str, endpoint_id: str, body: dict) -> dict:
        spec = dict(body.get("deployedModel") or {})
        model_ref = (spec.get("model") or "").rsplit("/models/", 1)[-1]
        if not model_ref:
            raise errors.invalid("DeployedModel.model is required.")
        endpoint = self._get(parent, endpoint_id)
        _, version = self.registry.resolve(parent, model_ref)
        if spec.get("automaticResources") and not spec.get("dedicatedResources"):
            raise errors.invalid(f"Model {version['name']} does not support "
                                 f"AUTOMATIC_RESOURCES; set a machine type.")
        resources = spec.get("dedicatedResources") or {
            "machineSpec": {"machineType": DEFAULT_MACHINE}, "minReplicaCount": 1}
        spec["dedicatedResources"] = validate_dedicated(resources)
        serving.framework_of(version)  # what runs only on Vertex is refused before any work
        deployed_id = new_id()
        try:
            predictor = serving.load(version, self.store.workspace)
        except errors.VertexError as exc:
            # Vertex reports a model that cannot be served as a failed deploy operation.
            return operations.done(self.store, endpoint["name"], "DeployModelOperationMetadata",
                                   None, error=exc)
        with self.store.lock:
            try:
                endpoint = self._get(parent, endpoint_id)  # it may have gone while loading
                ids = {d["id"] for d in endpoint["deployedModels"]} | {deployed_id}
                requested = body.get("trafficSplit")
                if requested:
                    split = {(deployed_id if k == "0" else k): v for k, v in requested.items()}
                elif not endpoint["deployedModels"]:
                    split = {deployed_id: 100}
                else:
                    split = {**endpoint["trafficSplit"], deployed_id: 0}
                split = self._check_split(split, ids)
            except errors.VertexError:
                predictor.close()  # its model server process ends with the failed deploy
                raise
            deployed = {
                **{k: v for k, v in spec.items() if k not in ("model", "id")},
                "id": deployed_id, "model": f"{parent}/models/{version['name'].split('/')[-1]}",
                "modelVersionId": version["versionId"],
                "displayName": spec.get("displayName") or version["displayName"],
                "createTime": now(),
            }
            endpoint["deployedModels"].append(deployed)
            endpoint["trafficSplit"] = split
            endpoint["updateTime"] = now()
            self.store.put("endpoints", endpoint_id, endpoint)
            self.predictors[deployed_id] = predictor
            self.registry.mark_deployed(parent, f"{deployed['model'].split('/')[-1]}@"
                                                f"{version['versionId']}",
                                        endpoint["name"], deployed_id, True)
        return operations.done(self.store, endpoint["name"], "DeployModelOperationMetadata",
                               "DeployModelResponse", {"deployedModel": deployed})

    def undeploy(self, parent: str, endpoint_id: str, body: dict) -> dict:
        deployed_id = body.get("deployedModelId") or ""
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            deployed = next((d for d in endpoint["deployedModels"] if d["id"] == deployed_id),
                            None)
            if deployed is None:
                raise errors.not_found("DeployedModel", f"{endpoint['name']} deployed model "
                                                        f"{deployed_id}")
            remaining = {d["id"] for d in endpoint["deployedModels"]} - {deployed_id}
            if body.get("trafficSplit"):
                split = body["trafficSplit"]
            else:
                split = {k: v for k, v in endpoint["trafficSplit"].items() if k != deployed_id}
                if remaining and sum(split.values()) != 100:
                    raise errors.invalid(
                        f"DeployedModel {deployed_id} receives traffic; give a traffic_split "
                        f"for the remaining DeployedModels when undeploying it.")
            split = self._check_split(split, remaining)
            endpoint["deployedModels"] = [d for d in endpoint["deployedModels"]
                                          if d["id"] != deployed_id]
            endpoint["trafficSplit"] = split
            endpoint["updateTime"] = now()
            self.store.put("endpoints", endpoint_id, endpoint)
            try:
                self.registry.mark_deployed(
                    parent, f"{deployed['model'].split('/')[-1]}@{deployed['modelVersionId']}",
                    endpoint["name"], deployed_id, False)
            except errors.VertexError:
                pass  # the model version is gone; nothing to unmark
        predictor = self.predictors.pop(deployed_id, None)
        if predictor is not None:
            predictor.close()
        return operations.done(self.store, endpoint["name"], "UndeployModelOperationMetadata",
                               "UndeployModelResponse", {})

    # ---- predict
    def _predictor(self, parent: str, deployed: dict):
        with self.loading:
            predictor = self.predictors.get(deployed["id"])
            if predictor is None:
                ref = f"{deployed['model'].split('/')[-1]}@{deployed['modelVersionId']}"
                _, version = self.registry.resolve(parent, ref)
                predictor = serving.load(version, self.store.workspace)
                self.predictors[deployed["id"]] = predictor
            return predictor

    def _route(self, parent: str, endpoint_id: str, body: dict) -> tuple[dict, dict, list]:
        """(endpoint, the deployed model that serves this request, instances)."""
        endpoint = self._get(parent, endpoint_id)
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise errors.invalid('Invalid JSON payload: "instances" must be a non-empty list.')
        if wanted := body.get("deployedModelId"):  # explain may name its deployed model
            deployed = next((d for d in endpoint["deployedModels"] if d["id"] == wanted), None)
            if deployed is None:
                raise errors.not_found("DeployedModel", f"{endpoint['name']} deployedModels/"
                                                        f"{wanted}")
            return endpoint, deployed, instances
        weights = {k: v for k, v in endpoint["trafficSplit"].items() if v > 0}
        if not weights:
            raise errors.failed_precondition(
                f"Endpoint {endpoint['name']} has no DeployedModel receiving traffic; deploy a "
                f"model to it first.")
        deployed_id = random.choices(list(weights), weights=list(weights.values()))[0]
        deployed = next(d for d in endpoint["deployedModels"] if d["id"] == deployed_id)
        return endpoint, deployed, instances

    def explain(self, parent: str, endpoint_id: str, body: dict, explainer) -> dict:
        """explainer(endpoint, deployed_model_id, model_version, instances, parameters,
        predict_fn) -> the ExplainResponse body."""
        endpoint, deployed, instances = self._route(parent, endpoint_id, body)
        _, version = self.registry.resolve(
            parent, f"{deployed['model'].split('/')[-1]}@{deployed['modelVersionId']}")
        predictor = self._predictor(parent, deployed)
        parameters = body.get("parameters")
        return explainer(endpoint, deployed["id"], version, instances, parameters,
                         serving.PredictFn(predictor, parameters))

    def predict(self, parent: str, endpoint_id: str, body: dict) -> dict:
        endpoint, deployed, instances = self._route(parent, endpoint_id, body)
        deployed_id = deployed["id"]
        predictions = self._predictor(parent, deployed).predict(instances,
                                                                body.get("parameters"))
        if self.on_predict:
            self.on_predict(endpoint, deployed_id, instances, predictions)
        return {"predictions": predictions, "deployedModelId": deployed_id,
                "model": deployed["model"], "modelDisplayName": deployed["displayName"],
                "modelVersionId": deployed["modelVersionId"]}
