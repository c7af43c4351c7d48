"""Vector Search indexes: create from gs:// input files, batch and streaming updates.

An Index resource is a JSON file in the Vertex store (collection "indexes"); its datapoints
live beside it in vertex/index_data/<id>/ as labkit.vectors stores them (vectors.npy and
index.json, written atomically; nothing is unpickled). Each index is opened once per
process and searched in memory; one lock per index orders its updates and searches.

What Google documents and this follows
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.indexes,
https://cloud.google.com/vertex-ai/docs/vector-search/configuring-indexes):
- metadata.config: dimensions (required), approximateNeighborsCount (required for
  tree-AH), distanceMeasureType (default DOT_PRODUCT_DISTANCE), featureNormType (NONE),
  shardSize (SHARD_SIZE_SMALL | MEDIUM | LARGE | SO_DYNAMIC; one shard locally, the size
  is kept and reported), algorithmConfig treeAhConfig {leafNodeEmbeddingCount (1000),
  leafNodesToSearchPercent (10)} or bruteForceConfig {}.
- indexUpdateMethod BATCH_UPDATE (default; PATCH metadata.contentsDeltaUri, with
  isCompleteOverwrite) or STREAM_UPDATE (upsertDatapoints / removeDatapoints, which a
  batch index refuses: "StreamUpdate is not enabled on this Index.").
- An index is deleted only once every DeployedIndex made from it has been undeployed.
Operations finish before the answer (done: true), so the SDK does not poll.
"""

from __future__ import annotations

import shutil
import threading

from labkit.vectors import EngineUnavailable, TreeAH, VectorError, VectorIndex
from labkit.vertex import errors, operations
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.vertex.vector_search import datapoints

SCHEMA = ("gs://google-cloud-aiplatform/schema/matchingengine/metadata/"
          "nearest_neighbor_search_1.0.0.yaml")
UPDATE_METHODS = {0: "BATCH_UPDATE", 1: "BATCH_UPDATE", 2: "STREAM_UPDATE",
                  "INDEX_UPDATE_METHOD_UNSPECIFIED": "BATCH_UPDATE",
                  "BATCH_UPDATE": "BATCH_UPDATE", "STREAM_UPDATE": "STREAM_UPDATE"}
SHARD_SIZES = ("SHARD_SIZE_SMALL", "SHARD_SIZE_MEDIUM", "SHARD_SIZE_LARGE",
               "SHARD_SIZE_SO_DYNAMIC")
CONFIG_FIELDS = {"dimensions", "approximateNeighborsCount", "distanceMeasureType",
                 "featureNormType", "shardSize", "algorithmConfig"}
PATCHABLE = {"displayName", "description", "labels", "metadata"}


def _vertex(error: VectorError) -> errors.VertexError:
    if isinstance(error, EngineUnavailable):
        return errors.VertexError("UNIMPLEMENTED", str(error))
    return errors.invalid(str(error))


def _count(value, name: str, *, required: bool) -> int | None:
    """A struct number (JSON may carry 768 as 768.0) that must be a positive integer."""
    if value is None:
        if required:
            raise errors.invalid(f"metadata.config.{name} is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or value != int(value) or value <= 0:
        raise errors.invalid(f"metadata.config.{name} must be a positive integer, "
                             f"got {value!r}.")
    return int(value)


def engine_for(config: dict) -> VectorIndex:
    """An empty labkit.vectors index for a checked metadata.config."""
    algorithm = config.get("algorithmConfig") or {"treeAhConfig": {}}
    tree = None
    if "treeAhConfig" in algorithm:
        tree_config = algorithm["treeAhConfig"] or {}
        tree = TreeAH(
            approximate_neighbors_count=config["approximateNeighborsCount"],
            leaf_node_embedding_count=int(tree_config.get("leafNodeEmbeddingCount") or 1000),
            leaf_nodes_to_search_percent=float(tree_config.get("leafNodesToSearchPercent")
                                               or 10))
    try:
        return VectorIndex(config["dimensions"], distance=config["distanceMeasureType"],
                           feature_norm=config["featureNormType"], tree_ah=tree)
    except VectorError as e:
        raise _vertex(e) from None


def checked_config(config) -> dict:
    """metadata.config with defaults filled in; a 400 for what Vertex refuses."""
    if not isinstance(config, dict):
        raise errors.invalid("Index.metadata.config is required.")
    for key in config:
        if key not in CONFIG_FIELDS:
            raise errors.invalid(f"metadata.config.{key} is not a field of the index "
                                 f"config ({', '.join(sorted(CONFIG_FIELDS))}).")
    algorithm = config.get("algorithmConfig") or {"treeAhConfig": {}}
    if not isinstance(algorithm, dict) or len(algorithm) != 1 or \
            next(iter(algorithm)) not in ("treeAhConfig", "bruteForceConfig"):
        raise errors.invalid("metadata.config.algorithmConfig must hold exactly one of "
                             "treeAhConfig or bruteForceConfig.")
    tree = "treeAhConfig" in algorithm
    tree_config = algorithm.get("treeAhConfig") or {}
    if not isinstance(tree_config, dict) or not isinstance(
            algorithm.get("bruteForceConfig") or {}, dict):
        raise errors.invalid("metadata.config.algorithmConfig's treeAhConfig or "
                             "bruteForceConfig must be an object.")
    for key in tree_config:
        if key not in ("leafNodeEmbeddingCount", "leafNodesToSearchPercent"):
            raise errors.invalid(f"metadata.config.algorithmConfig.treeAhConfig.{key} is "
                                 f"not a field of the tree-AH config.")
    out = {
        "dimensions": _count(config.get("dimensions"), "dimensions", required=True),
        "approximateNeighborsCount": _count(config.get("approximateNeighborsCount"),
                                            "approximateNeighborsCount", required=tree),
        "distanceMeasureType": config.get("distanceMeasureType") or "DOT_PRODUCT_DISTANCE",
        "featureNormType": config.get("featureNormType") or "NONE",
        "shardSize": config.get("shardSize") or "SHARD_SIZE_MEDIUM",
        "algorithmConfig": algorithm,
    }
    if out["shardSize"] not in SHARD_SIZES:
        raise errors.invalid(f"metadata.config.shardSize must be one of "
                             f"{', '.join(SHARD_SIZES)}, got {out['shardSize']!r}.")
    if out["approximateNeighborsCount"] is None:
        out.pop("approximateNeighborsCount")
    engine_for(out)  # the engine's own checks: distance, norm, tree-AH knobs
    return out


class Indexes:
    def __init__(self, store: ResourceStore, objects):
        self.store = store
        self.objects = objects  # labkit.storage.engine.Store: where contentsDeltaUri is read
        self.data_root = store.root / "index_data"
        self._open: dict[str, VectorIndex] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    # ---------------------------------------------------------------- resources
    def _get(self, parent: str, index_id: str) -> dict:
        index = self.store.get("indexes", index_id) if index_id.isdigit() else None
        if index is None or not index["name"].startswith(parent + "/"):
            raise errors.not_found("Index", f"{parent}/indexes/{index_id}")
        return index

    def by_name(self, name) -> dict:
        parent, _, index_id = name.rpartition("/indexes/") if isinstance(name, str) else ("",) * 3
        if not parent:
            raise errors.invalid(f"DeployedIndex.index must be an index resource name, got "
                                 f"{name!r}.")
        return self._get(parent, index_id)

    def get(self, parent: str, index_id: str) -> dict:
        return self._get(parent, index_id)

    def list(self, parent: str, query: dict) -> dict:
        found = [i for i in self.store.all("indexes") if i["name"].startswith(parent + "/")
                 and matches_filter(i, query.get("filter"))]
        return page(found, "indexes", query.get("pageSize"), query.get("pageToken"))

    def lock(self, index_id: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(index_id, threading.RLock())

    def engine(self, index: dict) -> VectorIndex:
        """The index's datapoints, opened once per process (the caller holds its lock)."""
        index_id = index["name"].rsplit("/", 1)[-1]
        engine = self._open.get(index_id)
        if engine is None:
            folder = self.data_root / index_id
            if (folder / "index.json").exists():
                engine = VectorIndex.load(folder)
            else:
                engine = engine_for(index["metadata"]["config"])
            self._open[index_id] = engine
        return engine

    def prepare(self, index: dict) -> None:
        """Builds the index's searcher, as a deployment does before it serves."""
        with self.lock(index["name"].rsplit("/", 1)[-1]):
            self.engine(index).prepare()

    def _save(self, index: dict, engine: VectorIndex) -> None:
        index_id = index["name"].rsplit("/", 1)[-1]
        engine.save(self.data_root / index_id)
        stamp = now()
        index["indexStats"] = {"vectorsCount": str(len(engine)), "shardsCount": 1}
        index["updateTime"] = stamp
        index["etag"] = new_id()
        self.store.put("indexes", index_id, index)

    def create(self, parent: str, body: dict) -> dict:
        if not body.get("displayName"):
            raise errors.invalid("Index.display_name is required.")
        if body.get("encryptionSpec"):
            raise errors.gcp_only("Customer-managed encryption keys (encryption_spec)")
        metadata = body.get("metadata")
        if not isinstance(metadata, dict):
            raise errors.invalid("Index.metadata is required (its config says the "
                                 "dimensions and the algorithm).")
        for key in metadata:
            if key not in ("config", "contentsDeltaUri", "isCompleteOverwrite"):
                raise errors.invalid(f"Index.metadata.{key} is not an index metadata field.")
        config = checked_config(metadata.get("config"))
        method = UPDATE_METHODS.get(body.get("indexUpdateMethod", 0))
        if method is None:
            raise errors.invalid(f"indexUpdateMethod must be BATCH_UPDATE or STREAM_UPDATE, "
                                 f"got {body.get('indexUpdateMethod')!r}.")
        engine = engine_for(config)
        uri = metadata.get("contentsDeltaUri")
        if uri:
            engine = self._apply_batch(engine, uri, overwrite=True)
        index_id = new_id()
        stamp = now()
        index = {"name": f"{parent}/indexes/{index_id}", "displayName": body["displayName"],
                 "description": body.get("description", ""), "metadataSchemaUri": SCHEMA,
                 "metadata": {"config": config, **({"contentsDeltaUri": uri} if uri else {})},
                 "deployedIndexes": [], "labels": body.get("labels") or {},
                 "createTime": stamp, "updateTime": stamp, "indexUpdateMethod": method}
        with self.lock(index_id):
            self._open[index_id] = engine
            self._save(index, engine)
        return operations.done(self.store, index["name"], "CreateIndexOperationMetadata",
                               "Index", index)

    def patch(self, parent: str, index_id: str, body: dict, mask: str | None) -> dict:
        """update_metadata (display name, description, labels) and update_embeddings
        (metadata.contentsDeltaUri, isCompleteOverwrite: a batch update)."""
        with self.lock(index_id):
            index = self._get(parent, index_id)
            fields = [f.strip() for f in (mask or "").split(",") if f.strip()] or list(body)
            if "metadata" in fields:
                metadata = body.get("metadata") or {}
                if not isinstance(metadata, dict):
                    raise errors.invalid("Index.metadata must be an object.")
                for key in metadata:
                    if key not in ("contentsDeltaUri", "isCompleteOverwrite", "config"):
                        raise errors.invalid(f"Index.metadata.{key} is not an index "
                                             f"metadata field.")
                if metadata.get("config") and checked_config(metadata["config"]) != \
                        index["metadata"]["config"]:
                    raise errors.invalid("The index config cannot be changed; create a new "
                                         "index.")
                uri = metadata.get("contentsDeltaUri")
                if not uri:
                    raise errors.invalid("Updating metadata needs metadata.contentsDeltaUri.")
                engine = self._apply_batch(self.engine(index), uri, overwrite=bool(
                    metadata.get("isCompleteOverwrite")))
                self._open[index_id] = engine
                index["metadata"]["contentsDeltaUri"] = uri
                self._save(index, engine)
                fields.remove("metadata")
            if fields:
                apply_mask(index, body, ",".join(fields), PATCHABLE - {"metadata"})
                index["updateTime"] = now()
                self.store.put("indexes", index_id, index)
        return operations.done(self.store, index["name"], "UpdateIndexOperationMetadata",
                               "Index", index)

    def delete(self, parent: str, index_id: str) -> dict:
        with self.lock(index_id):
            index = self._get(parent, index_id)
            if index.get("deployedIndexes"):
                where = ", ".join(d["indexEndpoint"] for d in index["deployedIndexes"])
                raise errors.failed_precondition(
                    f"The Index {index['name']} is still deployed to IndexEndpoint(s) "
                    f"{where}. An Index can be deleted only once all its DeployedIndexes "
                    f"have been undeployed.")
            self.store.delete("indexes", index_id)
            self._open.pop(index_id, None)
            shutil.rmtree(self.data_root / index_id, ignore_errors=True)
        return operations.done(self.store, index["name"], "DeleteOperationMetadata", None)

    def set_deployed(self, index_name: str, endpoint: str, deployed_id: str, on: bool) -> None:
        """Keeps Index.deployedIndexes in step with the endpoints' deployments."""
        index = self.by_name(index_name)
        with self.lock(index["name"].rsplit("/", 1)[-1]):
            index = self.by_name(index_name)
            entry = {"indexEndpoint": endpoint, "deployedIndexId": deployed_id}
            rest = [d for d in index.get("deployedIndexes", []) if d != entry]
            index["deployedIndexes"] = rest + ([entry] if on else [])
            self.store.put("indexes", index["name"].rsplit("/", 1)[-1], index)

    # ---------------------------------------------------------------- datapoints
    def _streaming(self, parent: str, index_id: str) -> dict:
        index = self._get(parent, index_id)
        if index.get("indexUpdateMethod") != "STREAM_UPDATE":
            raise errors.failed_precondition("StreamUpdate is not enabled on this Index.")
        return index

    def upsert(self, parent: str, index_id: str, body: dict) -> dict:
        if body.get("updateMask"):
            raise errors.gcp_only("upsertDatapoints with an update_mask")
        points = body.get("datapoints")
        if not isinstance(points, list) or not points:
            raise errors.invalid("UpsertDatapointsRequest.datapoints must list at least one "
                                 "datapoint.")
        parsed = [datapoints.from_rest(d, f"datapoints[{k}]") for k, d in enumerate(points)]
        with self.lock(index_id):
            index = self._streaming(parent, index_id)
            engine = self.engine(index)
            try:
                engine.upsert(parsed)
            except VectorError as e:
                raise _vertex(e) from None
            self._save(index, engine)
        return {}

    def remove(self, parent: str, index_id: str, body: dict) -> dict:
        ids = body.get("datapointIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise errors.invalid("RemoveDatapointsRequest.datapoint_ids must be a list of "
                                 "strings.")
        with self.lock(index_id):
            index = self._streaming(parent, index_id)
            engine = self.engine(index)
            engine.remove(ids)
            self._save(index, engine)
        return {}

    # ---------------------------------------------------------------- input files
    def _apply_batch(self, engine: VectorIndex, uri: str, *, overwrite: bool) -> VectorIndex:
        """One batch from gs://BUCKET/ROOT: data files directly under ROOT, ids to delete in
        ROOT/delete/; other folders are ignored. A complete overwrite starts from an empty
        index; the engine returned replaces the one given (it is the same one otherwise).
        Everything is read and checked before the engine changes."""
        upserts, deletes = self._read_batch(uri, engine.dimensions)
        clash = set(upserts) & set(deletes)
        if clash:
            raise errors.invalid(f"Datapoint id {sorted(clash)[0]!r} is both in a data file "
                                 f"and under delete/ in {uri}; an id may appear in only one.")
        staged = engine
        if overwrite:
            staged = VectorIndex(engine.dimensions, distance=engine.distance,
                                 feature_norm=engine.feature_norm, tree_ah=engine.tree_ah)
        try:
            staged.upsert(list(upserts.values()))
        except VectorError as e:
            raise errors.invalid(f"{uri}: {e}") from None
        staged.remove(deletes)
        return staged

    def _read_batch(self, uri: str, dimensions: int):
        if not isinstance(uri, str) or not uri.startswith("gs://") or len(uri) <= 5:
            raise errors.invalid(f"contentsDeltaUri must be a gs:// folder, got {uri!r}.")
        bucket, _, root = uri[5:].partition("/")
        root = root.rstrip("/")
        prefix = f"{root}/" if root else ""
        from labkit.services.http import HttpError

        try:
            self.objects.get_bucket(bucket)
        except HttpError:
            raise errors.invalid(f"contentsDeltaUri {uri}: bucket {bucket} does not "
                                 f"exist.") from None
        upserts: dict = {}
        deletes: list[str] = []
        files = 0
        for name in self.objects.iter_names(bucket, prefix):
            rest = name[len(prefix):]
            if rest.startswith("delete/") and "/" not in rest[7:] and rest[7:]:
                text = self.objects.read_range(bucket, name, None)[0].decode("utf-8", "replace")
                deletes.extend(line.strip() for line in text.splitlines() if line.strip())
                files += 1
            elif "/" not in rest and rest.endswith((".json", ".csv", ".avro")):
                data = self.objects.read_range(bucket, name, None)[0]
                for p in datapoints.parse_file(f"gs://{bucket}/{name}", data, dimensions):
                    upserts[p.id] = p  # a repeated id counts once
                files += 1
        if not files:
            raise errors.invalid(f"contentsDeltaUri {uri} holds no data files (.json, .csv "
                                 f"or .avro directly under it) and no delete/ files.")
        return upserts, deletes
