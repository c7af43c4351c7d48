"""Vector Search index endpoints: public endpoints, deployed indexes, and the match service.

Only public endpoints exist locally (public_endpoint_enabled=True); VPC-peered and Private
Service Connect endpoints are refused. A public endpoint gets a publicEndpointDomainName
shaped as Google's (<number>.<region>-<project>.vdb.vertexai.goog). The Vertex SDK's
MatchingEngineIndexEndpoint sends find_neighbors / read_index_datapoints to that domain
only when no api_endpoint is configured (aiplatform.initializer.get_client_options applies
api_path_override only then); labkit.start() configures one, so the SDK's MatchService
client reaches these routes over the same local REST endpoint
(POST /v1beta1/{indexEndpoint}:findNeighbors and :readIndexDatapoints).

Google's rules kept here (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/
projects.locations.indexEndpoints): a deployed index id starts with a letter and holds
letters, numbers and underscores, and is unique in its endpoint; an endpoint with deployed
indexes is not deleted; neighbours of a DOT_PRODUCT_DISTANCE index are reported with the
dot product as distance (see labkit.vectors for each distance).
"""

from __future__ import annotations

import re

from labkit.vectors import VectorError
from labkit.vertex import errors, operations
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.vertex.vector_search import datapoints
from labkit.vertex.vector_search.indexes import Indexes

DEPLOYED_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
PATCHABLE = {"displayName", "description", "labels"}
QUERY_FIELDS = {"datapoint", "neighborCount", "perCrowdingAttributeNeighborCount",
                "approximateNeighborCount", "fractionLeafNodesToSearchOverride", "rrf"}


class IndexEndpoints:
    def __init__(self, store: ResourceStore, indexes: Indexes):
        self.store = store
        self.indexes = indexes

    def _get(self, parent: str, endpoint_id: str) -> dict:
        found = self.store.get("indexEndpoints", endpoint_id) if endpoint_id.isdigit() else None
        if found is None or not found["name"].startswith(parent + "/"):
            raise errors.not_found("IndexEndpoint", f"{parent}/indexEndpoints/{endpoint_id}")
        return found

    def get(self, parent: str, endpoint_id: str) -> dict:
        return self._get(parent, endpoint_id)

    def list(self, parent: str, query: dict) -> dict:
        found = [e for e in self.store.all("indexEndpoints")
                 if e["name"].startswith(parent + "/") and matches_filter(e, query.get("filter"))]
        return page(found, "indexEndpoints", query.get("pageSize"), query.get("pageToken"))

    def create(self, parent: str, body: dict) -> dict:
        if body.get("network") or body.get("privateServiceConnectConfig"):
            raise errors.gcp_only("A private Vector Search index endpoint (VPC network "
                                  "peering or Private Service Connect); create it with "
                                  "public_endpoint_enabled=True locally")
        if body.get("encryptionSpec"):
            raise errors.gcp_only("Customer-managed encryption keys (encryption_spec)")
        if not body.get("publicEndpointEnabled"):
            raise errors.invalid("An IndexEndpoint needs public_endpoint_enabled=True, a "
                                 "network, or Private Service Connect.")
        if not body.get("displayName"):
            raise errors.invalid("IndexEndpoint.display_name is required.")
        endpoint_id = new_id()
        project, location = parent.split("/")[1], parent.split("/")[3]
        stamp = now()
        endpoint = {
            "name": f"{parent}/indexEndpoints/{endpoint_id}",
            "displayName": body["displayName"], "description": body.get("description", ""),
            "labels": body.get("labels") or {}, "deployedIndexes": [],
            "publicEndpointEnabled": True,
            "publicEndpointDomainName": f"{new_id()[:10]}.{location}-{project}.vdb.vertexai.goog",
            "createTime": stamp, "updateTime": stamp, "etag": new_id()}
        with self.store.lock:
            self.store.put("indexEndpoints", endpoint_id, endpoint)
        return operations.done(self.store, endpoint["name"],
                               "CreateIndexEndpointOperationMetadata", "IndexEndpoint", endpoint)

    def patch(self, parent: str, endpoint_id: str, body: dict, mask: str | None) -> dict:
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            apply_mask(endpoint, body, mask, PATCHABLE)
            endpoint["updateTime"] = now()
            return self.store.put("indexEndpoints", endpoint_id, endpoint)

    def delete(self, parent: str, endpoint_id: str) -> dict:
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            if endpoint["deployedIndexes"]:
                ids = ", ".join(d["id"] for d in endpoint["deployedIndexes"])
                raise errors.failed_precondition(
                    f"IndexEndpoint {endpoint['name']} has deployed indexes ({ids}); "
                    f"undeploy them first (or delete with force=True).")
            self.store.delete("indexEndpoints", endpoint_id)
        return operations.done(self.store, endpoint["name"], "DeleteOperationMetadata", None)

    def deploy(self, parent: str, endpoint_id: str, body: dict) -> dict:
        deployed = body.get("deployedIndex")
        if not isinstance(deployed, dict):
            raise errors.invalid("DeployIndexRequest.deployed_index is required.")
        if deployed.get("pscAutomationConfigs") or deployed.get("privateEndpoints"):
            raise errors.gcp_only("Private Service Connect automation for a deployed index")
        deployed_id = deployed.get("id")
        if not isinstance(deployed_id, str) or not DEPLOYED_ID.fullmatch(deployed_id):
            raise errors.invalid(f"DeployedIndex.id must start with a letter and contain only "
                                 f"letters, numbers and underscores; got {deployed_id!r}.")
        self._get(parent, endpoint_id)
        # the searcher is built before the index serves (outside the store's lock: it takes
        # seconds on 100k vectors)
        self.indexes.prepare(self.indexes.by_name(deployed.get("index") or ""))
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            index = self.indexes.by_name(deployed.get("index") or "")
            if any(d["id"] == deployed_id for d in endpoint["deployedIndexes"]):
                raise errors.VertexError(
                    "ALREADY_EXISTS", f"DeployedIndex with id {deployed_id} already exists "
                                      f"in IndexEndpoint {endpoint['name']}.")
            entry = {key: value for key, value in deployed.items() if key in (
                "displayName", "enableAccessLogging", "reservedIpRanges", "deploymentGroup",
                "deployedIndexAuthConfig", "deploymentTier")}
            resources = deployed.get("dedicatedResources")
            for key in ("dedicatedResources", "automaticResources"):
                if not isinstance(deployed.get(key) or {}, dict):
                    raise errors.invalid(f"DeployedIndex.{key} must be an object.")
            entry.update({"id": deployed_id, "index": index["name"], "createTime": now(),
                          "indexSyncTime": now()})
            if resources:
                entry["dedicatedResources"] = resources
            else:
                # Vector Search's defaults: at least 2 replicas, max the larger of min and 2
                automatic = deployed.get("automaticResources") or {}
                low = _count(automatic, "minReplicaCount", "automaticResources") or 2
                high = _count(automatic, "maxReplicaCount", "automaticResources") or max(low, 2)
                entry["automaticResources"] = {"minReplicaCount": low, "maxReplicaCount": high}
            endpoint["deployedIndexes"].append(entry)
            endpoint["updateTime"] = now()
            self.indexes.set_deployed(index["name"], endpoint["name"], deployed_id, True)
            self.store.put("indexEndpoints", endpoint_id, endpoint)
        return operations.done(self.store, endpoint["name"], "DeployIndexOperationMetadata",
                               "DeployIndexResponse", {"deployedIndex": entry})

    def undeploy(self, parent: str, endpoint_id: str, body: dict) -> dict:
        deployed_id = body.get("deployedIndexId")
        with self.store.lock:
            endpoint = self._get(parent, endpoint_id)
            entry = self._deployed(endpoint, deployed_id)
            endpoint["deployedIndexes"].remove(entry)
            endpoint["updateTime"] = now()
            try:
                self.indexes.set_deployed(entry["index"], endpoint["name"], deployed_id, False)
            except errors.VertexError:
                pass  # the index is gone already: nothing to keep in step
            self.store.put("indexEndpoints", endpoint_id, endpoint)
        return operations.done(self.store, endpoint["name"], "UndeployIndexOperationMetadata",
                               "UndeployIndexResponse", {})

    @staticmethod
    def _deployed(endpoint: dict, deployed_id) -> dict:
        for entry in endpoint["deployedIndexes"]:
            if entry["id"] == deployed_id:
                return entry
        raise errors.not_found("DeployedIndex", f"{deployed_id!s} of {endpoint['name']}")

    # ---------------------------------------------------------------- match service
    def _serving(self, parent: str, endpoint_id: str, deployed_id) -> dict:
        endpoint = self._get(parent, endpoint_id)
        if not isinstance(deployed_id, str) or not deployed_id:
            raise errors.invalid("deployed_index_id is required.")
        return self.indexes.by_name(self._deployed(endpoint, deployed_id)["index"])

    def find_neighbors(self, parent: str, endpoint_id: str, body: dict) -> dict:
        index = self._serving(parent, endpoint_id, body.get("deployedIndexId"))
        queries = body.get("queries")
        if not isinstance(queries, list) or not queries:
            raise errors.invalid("FindNeighborsRequest.queries must list at least one query.")
        full = bool(body.get("returnFullDatapoint"))
        parsed = [self._query(q, f"queries[{k}]") for k, q in enumerate(queries)]
        index_id = index["name"].rsplit("/", 1)[-1]
        with self.indexes.lock(index_id):
            engine = self.indexes.engine(index)
            results = []
            # queries alike in all but the vector go to the engine as one batch
            groups: dict = {}
            for k, (point, options) in enumerate(parsed):
                groups.setdefault(options, []).append((k, point))
            answers: dict[int, list] = {}
            for options, members in groups.items():
                vectors = [self._vector_of(engine, point, f"queries[{k}]")
                           for k, point in members]
                try:
                    found = engine.search(vectors, **dict(options))
                except VectorError as e:
                    raise errors.invalid(str(e)) from None
                for (k, _), neighbours in zip(members, found, strict=True):
                    answers[k] = neighbours
            ids = {n.id for neighbours in answers.values() for n in neighbours}
            stored = {p.id: p for p in engine.get(ids)}
            for k, (point, _) in enumerate(parsed):
                results.append({"id": point.id, "neighbors": [
                    {"datapoint": datapoints.to_rest(stored[n.id], full=full),
                     "distance": n.distance} for n in answers[k]]})
        return {"nearestNeighbors": results}

    @staticmethod
    def _vector_of(engine, point, where: str):
        if point.vector:
            return point.vector
        if point.id:
            found = engine.get([point.id])
            if not found:
                raise errors.not_found("Datapoint", f"{point.id} ({where}.datapoint)")
            return found[0].vector
        raise errors.invalid(f"{where}.datapoint needs a featureVector or a datapointId.")

    @staticmethod
    def _query(q, where: str):
        if not isinstance(q, dict):
            raise errors.invalid(f"{where} must be a Query object.")
        for key in q:
            if key not in QUERY_FIELDS:
                raise errors.invalid(f'Invalid JSON payload received. Unknown name "{key}" '
                                     f"at '{where}': Cannot find field.")
        if q.get("rrf"):
            raise errors.gcp_only("Hybrid search ranking (rrf)")
        d = q.get("datapoint")
        point = datapoints.from_rest(d, f"{where}.datapoint", query=True)
        filters = datapoints.query_filters(d, f"{where}.datapoint")
        fraction = q.get("fractionLeafNodesToSearchOverride") or None
        if fraction is not None and (isinstance(fraction, bool)
                                     or not isinstance(fraction, (int, float))):
            raise errors.invalid(f"{where}.fractionLeafNodesToSearchOverride must be a number.")
        options = (("k", _count(q, "neighborCount", where) or 10),  # the service's default
                   ("restricts", point.restricts), ("numeric_filters", filters),
                   ("per_crowding_attribute_neighbor_count",
                    _count(q, "perCrowdingAttributeNeighborCount", where) or 0),
                   ("approximate_neighbor_count",
                    _count(q, "approximateNeighborCount", where) or None),
                   ("fraction_leaf_nodes_to_search", fraction))
        return point, options

    def read_datapoints(self, parent: str, endpoint_id: str, body: dict) -> dict:
        index = self._serving(parent, endpoint_id, body.get("deployedIndexId"))
        ids = body.get("ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise errors.invalid("ReadIndexDatapointsRequest.ids must be a list of strings.")
        with self.indexes.lock(index["name"].rsplit("/", 1)[-1]):
            found = self.indexes.engine(index).get(ids)
        return {"datapoints": [datapoints.to_rest(p) for p in found]}


def _count(q: dict, key: str, where: str) -> int | None:
    """An int32 field of a query (JSON may carry it as a number or a numeric string)."""
    value = q.get(key)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number != value and str(number) != value:
        raise errors.invalid(f"{where}.{key} must be an integer, got {value!r}.")
    if number < 0:
        raise errors.invalid(f"{where}.{key} must not be negative.")
    return number
