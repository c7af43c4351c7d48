"""Nearest-neighbour search over vectors: exact, or approximate with ScaNN's tree-AH (the
library behind Vertex AI Vector Search). Neutral: no HTTP, no Vertex, no BigQuery; rooms map
VectorError to their own error shape.

The API, small on purpose:
- `VectorIndex(dimensions, distance=..., feature_norm=..., tree_ah=None)`: tree_ah=None is a
  brute-force index; `TreeAH(...)` carries Vector Search's treeAhConfig knobs.
- `upsert(datapoints)`, `remove(ids)`, `get(ids)`, `len(index)`, `ids()`; `prepare()`
  builds the tree-AH searcher ahead of the first search.
- `search(queries, k, ...)`: one list of `Neighbor(id, distance)` per query, best first, with
  token restricts, numeric filters and crowding applied as Vector Search defines them.
- `VectorError` for bad input; its subclass `EngineUnavailable` where ScaNN cannot run
  (non-Linux): brute force works everywhere.
- `save(folder)` / `VectorIndex.load(folder)`: vectors as .npy (no pickle) and the rest as
  JSON, written atomically. A ScaNN searcher is never serialized: it is rebuilt from the
  stored vectors on load (its own serialize format is pickle-based).

Distances, as Vector Search's distanceMeasureType defines them
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.indexes and
the DistanceMeasureType enum in google/cloud/aiplatform/v1): DOT_PRODUCT_DISTANCE (the
default; ranked by the dot product, largest first, and the dot product is the reported
distance), COSINE_DISTANCE (vectors normalised, ranked by cosine similarity, which is what
is reported), SQUARED_L2_DISTANCE (smallest first) and L1_DISTANCE (smallest first; brute
force only here). featureNormType UNIT_L2_NORM normalises stored and query vectors.

Filtering (https://cloud.google.com/vertex-ai/docs/vector-search/filtering): token restricts
AND across namespaces and OR within one; a datapoint with no tokens in a namespace the query
restricts does not match; a query's deny token excludes datapoints allowing it, and a
datapoint's deny token excludes it from queries allowing that token. Numeric filters compare
the datapoint's value in the namespace (one without a value does not match) with op LESS,
LESS_EQUAL, EQUAL, GREATER_EQUAL, GREATER or NOT_EQUAL.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from labkit.services.files import write_atomic

DISTANCES = ("DOT_PRODUCT_DISTANCE", "COSINE_DISTANCE", "SQUARED_L2_DISTANCE", "L1_DISTANCE")
FEATURE_NORMS = ("NONE", "UNIT_L2_NORM")
NUMERIC_OPS = ("LESS", "LESS_EQUAL", "EQUAL", "GREATER_EQUAL", "GREATER", "NOT_EQUAL")
_LARGER_IS_CLOSER = {"DOT_PRODUCT_DISTANCE", "COSINE_DISTANCE"}
# Below this many points a partitioned index has too little to train on: ScaNN scores them all.
_MIN_TREE_POINTS = 256


class VectorError(ValueError):
    """Bad input for an index or a query; the message says what and why."""


class EngineUnavailable(VectorError):
    """ScaNN cannot run on this machine (it has Linux wheels only): rooms answer it as a
    feature that is not local, not as bad input."""


@dataclass(frozen=True)
class Restrict:
    namespace: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class NumericRestrict:
    """A datapoint's value in a namespace."""
    namespace: str
    value: float


@dataclass(frozen=True)
class NumericFilter:
    """A query's condition on a namespace's value: datapoint value OP filter value."""
    namespace: str
    value: float
    op: str

    def __post_init__(self):
        if self.op not in NUMERIC_OPS:
            raise VectorError(f"numeric restrict op must be one of {', '.join(NUMERIC_OPS)}, "
                              f"got {self.op!r}")


@dataclass(frozen=True)
class Datapoint:
    id: str
    vector: tuple[float, ...]
    restricts: tuple[Restrict, ...] = ()
    numeric_restricts: tuple[NumericRestrict, ...] = ()
    crowding_tag: str = ""


@dataclass(frozen=True)
class Neighbor:
    id: str
    distance: float


@dataclass(frozen=True)
class TreeAH:
    """Vector Search's treeAhConfig and approximateNeighborsCount: points per leaf (the
    number of leaves is the point count over this), the share of leaves a query searches,
    and how many candidates are scored approximately before the exact reordering."""
    approximate_neighbors_count: int
    leaf_node_embedding_count: int = 1000
    leaf_nodes_to_search_percent: float = 10

    def __post_init__(self):
        if self.approximate_neighbors_count <= 0:
            raise VectorError("approximateNeighborsCount must be a positive number")
        if self.leaf_node_embedding_count <= 0:
            raise VectorError("leafNodeEmbeddingCount must be a positive number")
        if not 0 < self.leaf_nodes_to_search_percent <= 100:
            raise VectorError("leafNodesToSearchPercent must be in (0, 100]")


def load_scann():
    """scann_ops_pybind without the scann package's __init__, which loads TensorFlow ops
    built for another TensorFlow (NotFoundError when TensorFlow is installed)."""
    if not sys.platform.startswith("linux"):
        raise EngineUnavailable("Tree-AH indexes use ScaNN, whose wheels exist only for "
                                "Linux; use a brute-force index here, or LAB_BACKEND=gcp")
    if "scann.scann_ops.py.scann_ops_pybind" not in sys.modules:
        spec = importlib.util.find_spec("scann")
        if spec is None or not spec.submodule_search_locations:
            raise EngineUnavailable("ScaNN is not installed; tree-AH indexes need it")
        if "scann" not in sys.modules:
            package = types.ModuleType("scann")
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules["scann"] = package
    try:
        from scann.scann_ops.py import scann_ops_pybind
    except ImportError as e:
        raise EngineUnavailable(f"ScaNN does not load here ({e}); tree-AH indexes need "
                                f"it") from None
    return scann_ops_pybind


@dataclass
class _Rows:
    """Datapoints in row order, their vectors kept apart (no tuples of floats per point):
    `raw` as given, `vectors` as searched (normalised when the index normalises; the same
    array otherwise). Removing a row moves the last row into its place."""
    dimensions: int
    raw: np.ndarray = None
    vectors: np.ndarray = None
    points: list[Datapoint] = field(default_factory=list)  # vector=() in each
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.raw is None:
            self.raw = np.empty((0, self.dimensions), np.float32)
            self.vectors = self.raw


class VectorIndex:
    def __init__(self, dimensions: int, *, distance: str = "DOT_PRODUCT_DISTANCE",
                 feature_norm: str = "NONE", tree_ah: TreeAH | None = None):
        if not isinstance(dimensions, int) or dimensions <= 0:
            raise VectorError(f"dimensions must be a positive integer, got {dimensions!r}")
        if distance not in DISTANCES:
            raise VectorError(f"distanceMeasureType must be one of {', '.join(DISTANCES)}, "
                              f"got {distance!r}")
        if feature_norm not in FEATURE_NORMS:
            raise VectorError(f"featureNormType must be one of {', '.join(FEATURE_NORMS)}, "
                              f"got {feature_norm!r}")
        if tree_ah is not None and distance == "L1_DISTANCE":
            raise VectorError("L1_DISTANCE is served by brute-force indexes only here "
                              "(ScaNN's tree-AH scores dot products and squared L2); "
                              "use LAB_BACKEND=gcp for a tree-AH L1 index")
        if tree_ah is not None:
            load_scann()  # fail at creation, not at the first query
        self.dimensions = dimensions
        self.distance = distance
        self.feature_norm = feature_norm
        self.tree_ah = tree_ah
        self._rows = _Rows(dimensions)
        self._searcher = None  # ScaNN's, built on the first search after a full change
        self._searcher_kind = None

    # ---------------------------------------------------------------- contents
    def __len__(self) -> int:
        return len(self._rows.points)

    def ids(self) -> list[str]:
        return [p.id for p in self._rows.points]

    def get(self, ids: Iterable[str]) -> list[Datapoint]:
        """The stored datapoints among `ids`, in that order; unknown ids are skipped."""
        rows = self._rows
        return [replace(rows.points[rows.row_of[i]],
                        vector=tuple(float(x) for x in rows.raw[rows.row_of[i]]))
                for i in ids if i in rows.row_of]

    def _normalises(self) -> bool:
        return self.feature_norm == "UNIT_L2_NORM" or self.distance == "COSINE_DISTANCE"

    def _searched(self, raw: np.ndarray) -> np.ndarray:
        if not self._normalises():
            return raw
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        if (norms == 0).any():
            raise VectorError("a zero vector cannot be normalised (UNIT_L2_NORM / cosine)")
        return raw / norms

    def _checked(self, vectors) -> np.ndarray:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise VectorError(f"feature vectors must be lists of numbers: {error}") from None
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.dimensions:
            got = matrix.shape[-1] if matrix.ndim >= 1 and matrix.size else 0
            raise VectorError(f"Incorrect dimensionality. Expected {self.dimensions}, got {got}")
        if not np.isfinite(matrix).all():
            raise VectorError("feature vectors must hold finite numbers")
        return matrix

    def upsert(self, datapoints: Sequence[Datapoint]) -> None:
        """Adds new ids and replaces existing ones. All are checked before any is stored."""
        if not datapoints:
            return
        seen = set()
        for p in datapoints:
            if not isinstance(p.id, str) or not p.id:
                raise VectorError("every datapoint needs a non-empty datapoint_id")
            if p.id in seen:
                raise VectorError(f"datapoint_id {p.id!r} appears twice in one request")
            seen.add(p.id)
        raw = self._checked([p.vector for p in datapoints])
        searched = self._searched(raw)
        rows = self._rows
        fresh = [k for k, p in enumerate(datapoints) if p.id not in rows.row_of]
        for k, p in enumerate(datapoints):
            row = rows.row_of.get(p.id)
            if row is not None:
                rows.raw[row] = raw[k]
                rows.vectors[row] = searched[k]
                rows.points[row] = replace(p, vector=())
        if fresh:
            rows.raw = np.concatenate([rows.raw, raw[fresh]])
            rows.vectors = (np.concatenate([rows.vectors, searched[fresh]])
                            if self._normalises() else rows.raw)
            for k in fresh:
                rows.row_of[datapoints[k].id] = len(rows.points)
                rows.points.append(replace(datapoints[k], vector=()))
        if self._searcher is not None:
            self._searcher.upsert([p.id for p in datapoints], searched)

    def remove(self, ids: Iterable[str]) -> int:
        """Removes the ids present; returns how many were removed."""
        rows = self._rows
        gone = [i for i in dict.fromkeys(ids) if i in rows.row_of]
        for i in gone:
            row = rows.row_of.pop(i)
            last = len(rows.points) - 1
            if row != last:
                moved = rows.points[last]
                rows.points[row] = moved
                rows.vectors[row] = rows.vectors[last]
                rows.raw[row] = rows.raw[last]
                if rows.vectors is not rows.raw:
                    rows.vectors[row] = rows.vectors[last]
                rows.row_of[moved.id] = row
            rows.points.pop()
            normalised = rows.vectors is not rows.raw
            rows.raw = rows.raw[:last]
            rows.vectors = rows.vectors[:last] if normalised else rows.raw
        if gone and self._searcher is not None:
            if len(rows.points) == 0:
                self._searcher = None
            else:
                self._searcher.delete(gone)
        return len(gone)

    # ---------------------------------------------------------------- search
    def search(self, queries, k: int, *, restricts: Sequence[Restrict] = (),
               numeric_filters: Sequence[NumericFilter] = (),
               per_crowding_attribute_neighbor_count: int = 0,
               approximate_neighbor_count: int | None = None,
               fraction_leaf_nodes_to_search: float | None = None,
               exact: bool = False) -> list[list[Neighbor]]:
        """The k nearest datapoints for each query (a vector or a matrix of them).
        exact=True scores every point even on a tree-AH index; the last two arguments
        override the index's approximateNeighborsCount and leafNodesToSearchPercent."""
        if not isinstance(k, int) or k <= 0:
            raise VectorError(f"neighbor_count must be a positive integer, got {k!r}")
        if per_crowding_attribute_neighbor_count < 0:
            raise VectorError("per_crowding_attribute_neighbor_count must not be negative")
        if fraction_leaf_nodes_to_search is not None and not 0 < fraction_leaf_nodes_to_search <= 1:
            raise VectorError("fraction_leaf_nodes_to_search_override must be in (0, 1]")
        if approximate_neighbor_count is not None and approximate_neighbor_count <= 0:
            raise VectorError("approximate_neighbor_count must be positive")
        matrix = self._searched(self._checked(queries))
        n = len(self)
        if n == 0:
            return [[] for _ in range(len(matrix))]
        mask = self._allowed(restricts, numeric_filters)
        crowd = per_crowding_attribute_neighbor_count
        if self.tree_ah is None or exact:
            return [self._exact(q, k, mask, crowd) for q in matrix]
        if mask is None and not crowd:
            return self._approximate(matrix, k, approximate_neighbor_count,
                                     fraction_leaf_nodes_to_search)
        return [self._approximate_filtered(q, k, mask, crowd, approximate_neighbor_count,
                                           fraction_leaf_nodes_to_search) for q in matrix]

    def _scores(self, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Distances of q to the given rows (all when None), in the reported sense."""
        base = self._rows.vectors if rows is None else self._rows.vectors[rows]
        if self.distance in _LARGER_IS_CLOSER:
            return base @ q
        diff = base - q
        if self.distance == "L1_DISTANCE":
            return np.abs(diff).sum(axis=1)
        return np.einsum("ij,ij->i", diff, diff)

    def _order(self, scores: np.ndarray) -> np.ndarray:
        return np.argsort(-scores if self.distance in _LARGER_IS_CLOSER else scores,
                          kind="stable")

    def _exact(self, q, k, mask, crowd) -> list[Neighbor]:
        rows = None if mask is None else np.flatnonzero(mask)
        scores = self._scores(q, rows)
        if not crowd and len(scores) > k:  # only the k best need sorting
            key = -scores if self.distance in _LARGER_IS_CLOSER else scores
            best = np.argpartition(key, k - 1)[:k]
            order = best[np.argsort(key[best], kind="stable")]
        else:
            order = self._order(scores)
        chosen = order if rows is None else rows[order]
        return self._take(chosen, scores[order], k, crowd)

    def _take(self, rows, scores, k, crowd) -> list[Neighbor]:
        out, per_tag = [], {}
        points = self._rows.points
        for row, score in zip(rows, scores, strict=True):
            point = points[int(row)]
            if crowd:
                count = per_tag.get(point.crowding_tag, 0)
                if count >= crowd:
                    continue
                per_tag[point.crowding_tag] = count + 1
            out.append(Neighbor(point.id, float(score)))
            if len(out) == k:
                break
        return out

    def _leaves(self) -> int:
        n = len(self)
        if n < _MIN_TREE_POINTS:
            return 0
        return max(2, min(n // 2, math.ceil(n / self.tree_ah.leaf_node_embedding_count)))

    def _build(self):
        scann = load_scann()
        rows = self._rows
        measure = "dot_product" if self.distance in _LARGER_IS_CLOSER else "squared_l2"
        config = self.tree_ah
        builder = scann.builder(rows.vectors, 10, measure)
        leaves = self._leaves()
        if leaves:
            search = max(1, math.ceil(leaves * config.leaf_nodes_to_search_percent / 100))
            # Normalised vectors: spherical k-means, as ScaNN advises. ScaNN's default
            # smallest partition (50 points) is Vector Search's leaf size order: with leaves
            # of 50, points in smaller partitions were missed (a point's own nearest
            # neighbour in 1 of 15 builds); a tenth of a leaf keeps them.
            builder = builder.tree(num_leaves=leaves, num_leaves_to_search=search,
                                   training_sample_size=min(len(rows.points), 100_000),
                                   min_partition_size=max(1, config.leaf_node_embedding_count
                                                          // 10),
                                   spherical=self._normalises())
            # Dot products: ScaNN's recommended 2 dimensions per block with anisotropic
            # quantization (residual, as ScaNN does under a tree). Squared L2 gets neither
            # residuals nor anisotropy from ScaNN, and at 2 dimensions per block its recall
            # fell to 0.44 on 100k x 64 clustered vectors; 1 dimension per block gave 0.95.
            if measure == "dot_product":
                builder = builder.score_ah(2, anisotropic_quantization_threshold=0.2,
                                           training_sample_size=min(len(rows.points), 100_000))
            else:
                builder = builder.score_ah(1, training_sample_size=min(len(rows.points), 100_000))
            builder = builder.reorder(config.approximate_neighbors_count)
        else:
            builder = builder.score_brute_force()
        self._searcher = builder.build(docids=[p.id for p in rows.points])
        self._searcher_kind = leaves

    def prepare(self) -> None:
        """Builds the ScaNN searcher now (it is otherwise built by the first search), as
        Vector Search builds an index before it serves it; no-op for brute force."""
        if self.tree_ah is not None and len(self):
            self._searcher_for_query()

    def _searcher_for_query(self):
        if self._searcher is None or (self._searcher_kind == 0 and self._leaves()):
            self._build()  # first search, or grown past brute-force size
        return self._searcher

    def _approximate(self, matrix, k, approximate, fraction) -> list[list[Neighbor]]:
        searcher = self._searcher_for_query()
        leaves = self._searcher_kind
        pre = max(k, approximate or self.tree_ah.approximate_neighbors_count)
        to_search = (max(1, math.ceil(leaves * fraction)) if fraction and leaves else None)
        k = min(k, len(self))
        ids, dists = searcher.search_batched(matrix, final_num_neighbors=k,
                                             pre_reorder_num_neighbors=pre if leaves else None,
                                             leaves_to_search=to_search)
        return [[Neighbor(i, float(d)) for i, d in zip(row_ids, row_d, strict=True)]
                for row_ids, row_d in zip(ids, dists, strict=True)]

    def _approximate_filtered(self, q, k, mask, crowd, approximate, fraction):
        """Candidates from ScaNN, over-fetched in proportion to how few points pass the
        filter; when they do not yield k neighbours, the passing points are scored exactly
        (what a filtered tree-AH search returns when the filter is very selective)."""
        n = len(self)
        allowed = n if mask is None else int(mask.sum())
        if allowed == 0:
            return []
        if allowed <= max(4 * k, n // 20):
            return self._exact(q, k, mask, crowd)
        factor = math.ceil(n / allowed) * (4 if crowd else 2)
        fetch = min(n, k * factor)
        approximate = approximate or self.tree_ah.approximate_neighbors_count
        found = self._approximate(q[None, :], fetch, max(fetch, approximate), fraction)[0]
        row_of = self._rows.row_of
        rows = np.array([row_of[nb.id] for nb in found], dtype=np.int64)
        scores = np.array([nb.distance for nb in found])
        if mask is not None and len(rows):
            keep = mask[rows]
            rows, scores = rows[keep], scores[keep]
        result = self._take(rows, scores, k, crowd)
        if len(result) < min(k, allowed) and fetch < n:
            return self._exact(q, k, mask, crowd)
        return result

    # ---------------------------------------------------------------- filters
    def _allowed(self, restricts, numeric_filters) -> np.ndarray | None:
        """A boolean mask over rows, or None when nothing is filtered."""
        if not restricts and not numeric_filters:
            return None
        by_namespace: dict[str, tuple[set, set]] = {}
        for r in restricts:
            allow, deny = by_namespace.setdefault(r.namespace, (set(), set()))
            allow.update(r.allow)
            deny.update(r.deny)
        points = self._rows.points
        return np.fromiter((_matches(p, by_namespace, numeric_filters) for p in points),
                           dtype=bool, count=len(points))

    # ---------------------------------------------------------------- storage
    def save(self, folder: Path) -> None:
        """vectors.npy (as given) then index.json (the JSON names the row count, so a
        reader never pairs a new JSON with old vectors unnoticed)."""
        buffer = io.BytesIO()
        np.save(buffer, self._rows.raw, allow_pickle=False)
        write_atomic(folder / "vectors.npy", buffer.getvalue())
        write_atomic(folder / "index.json", json.dumps({
            "dimensions": self.dimensions, "distance": self.distance,
            "feature_norm": self.feature_norm,
            "tree_ah": None if self.tree_ah is None else vars(self.tree_ah),
            "rows": len(self), "points": [_point_json(p) for p in self._rows.points]}))

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        meta = json.loads((folder / "index.json").read_text())
        tree = meta["tree_ah"]
        index = cls(meta["dimensions"], distance=meta["distance"],
                    feature_norm=meta["feature_norm"],
                    tree_ah=None if tree is None else TreeAH(**tree))
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        if vectors.shape != (meta["rows"], meta["dimensions"]):
            raise VectorError(f"stored vectors in {folder.name} do not match their index")
        rows = index._rows
        rows.raw = vectors.astype(np.float32, copy=False)
        rows.vectors = index._searched(rows.raw)
        rows.points = [_point_from_json(p) for p in meta["points"]]
        rows.row_of = {p.id: k for k, p in enumerate(rows.points)}
        return index


_COMPARE = {
    "LESS": np.less, "LESS_EQUAL": np.less_equal, "EQUAL": np.equal,
    "GREATER_EQUAL": np.greater_equal, "GREATER": np.greater, "NOT_EQUAL": np.not_equal,
}


def _matches(point: Datapoint, by_namespace, numeric_filters) -> bool:
    if by_namespace:
        own = {}
        for r in point.restricts:
            allow, deny = own.setdefault(r.namespace, (set(), set()))
            allow.update(r.allow)
            deny.update(r.deny)
        for namespace, (q_allow, q_deny) in by_namespace.items():
            p_allow, p_deny = own.get(namespace, (set(), set()))
            if q_allow and not (q_allow & p_allow):
                return False
            if not q_allow and not p_allow:
                return False  # no tokens in a namespace the query restricts
            if (q_deny & p_allow) or (p_deny & q_allow):
                return False
    for f in numeric_filters:
        values = [r.value for r in point.numeric_restricts if r.namespace == f.namespace]
        if not values or not _COMPARE[f.op](values[0], f.value):
            return False
    return True


def _point_json(p: Datapoint) -> dict:
    return {"id": p.id, "restricts": [[r.namespace, list(r.allow), list(r.deny)]
                                      for r in p.restricts],
            "numeric": [[r.namespace, r.value] for r in p.numeric_restricts],
            "crowding": p.crowding_tag}


def _point_from_json(d: dict) -> Datapoint:
    return Datapoint(d["id"], (),
                     tuple(Restrict(n, tuple(a), tuple(x)) for n, a, x in d["restricts"]),
                     tuple(NumericRestrict(n, v) for n, v in d["numeric"]), d["crowding"])
