"""BigQuery vector search: the VECTOR_SEARCH table function and CREATE / DROP VECTOR INDEX.

Docs:
- VECTOR_SEARCH: https://cloud.google.com/bigquery/docs/reference/standard-sql/
  search_functions#vector_search: VECTOR_SEARCH({TABLE base | (base query)},
  'column_to_search', {TABLE query_table | (query)} [, 'query_column_to_search']
  [, top_k => 10] [, distance_type => 'EUCLIDEAN' | 'COSINE' | 'DOT_PRODUCT']
  [, options => '{"fraction_lists_to_search": f, "use_brute_force": b}']); columns
  query STRUCT (the query row), base STRUCT (the base row), distance FLOAT64 (DOT_PRODUCT's
  is the negative dot product, so smaller is nearer in every type).
- CREATE VECTOR INDEX: https://cloud.google.com/bigquery/docs/reference/standard-sql/
  data-definition-language#create_vector_index_statement and "Manage vector indexes"
  (https://cloud.google.com/bigquery/docs/vector-index): one index per table on an
  ARRAY<FLOAT64> column; index_type IVF (ivf_options num_lists 1..5000) or TREE_AH
  (tree_ah_options leaf_node_embedding_count 500..1000, normalization_type NONE | L2);
  "If you create a vector index on a table that's smaller than 10 MB, then the vector index
  isn't populated", and VECTOR_SEARCH then searches by brute force.

The index here is real: IVF is k-means lists (centroids trained when the table first
reaches 10 MB, stored as .npy next to the index's JSON), searched by probing the nearest
fraction_lists_to_search of them; TREE_AH is the same partitioning with
leaf_node_embedding_count vectors per leaf and optional L2 normalisation (exact distances in
the probed leaves, without the asymmetric-hashing compression Google adds).
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.sqlscan import close_paren, literal, mask, split_top
from labkit.services.files import write_atomic

DISTANCE_TYPES = ("EUCLIDEAN", "COSINE", "DOT_PRODUCT")
MIN_INDEXED_BYTES = 10 * 1024 * 1024  # below 10 MB an index is not populated
DEFAULT_PROBE = 0.1  # the fraction of lists searched when options do not say
_NAME = r"(?:`[^`]+`|[A-Za-z_][\w-]*)(?:\s*\.\s*(?:`[^`]+`|[A-Za-z_][\w-]*))*"
SEARCH = re.compile(r"\bVECTOR_SEARCH\s*\(", re.I)
_CREATE = re.compile(rf"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?VECTOR\s+INDEX\s+"
                     rf"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<index>{_NAME})\s+ON\s+"
                     rf"(?P<table>{_NAME})\s*\(\s*(?P<column>`[^`]+`|\w+)\s*\)"
                     r"(?P<rest>.*?)\s*;?\s*$", re.I | re.S)
_DROP = re.compile(rf"^\s*DROP\s+VECTOR\s+INDEX\s+(?P<ie>IF\s+EXISTS\s+)?(?P<index>{_NAME})"
                   rf"\s+ON\s+(?P<table>{_NAME})\s*;?\s*$", re.I)
_SAFE = re.compile(r"^[A-Za-z0-9_:.-]+$")


def is_index_ddl(sql: str) -> bool:
    masked = mask(sql)
    return bool(_CREATE.match(masked) or _DROP.match(masked))


def _table_ref(name: str, project: str, dataset: str | None) -> tuple[str, str, str]:
    parts = [p.strip() for p in name.replace("`", "").split(".")]
    if len(parts) == 2:
        parts = [project, *parts]
    elif len(parts) == 1 and dataset:
        parts = [project, dataset, parts[0]]
    if len(parts) != 3 or not all(_SAFE.match(p) and not p.startswith(".") for p in parts):
        raise MLError(f"Table \"{name.strip()}\" must be qualified with a dataset "
                      "(e.g. dataset.table).")
    return parts[0], parts[1], parts[2]


# --- the index: definition on disk, lists in memory -------------------------------------

@dataclass
class Index:
    name: str
    column: str
    index_type: str
    distance_type: str
    num_lists: int | None
    leaf_size: int | None
    normalize: bool
    stored: list[str]
    table_created: str | None = None  # the table's creationTime: a recreated table has none


class VectorIndexes:
    """Index definitions (root/<project>/<dataset>/<table>.json) and their trained lists."""

    def __init__(self, root: Path, table_meta):
        self.root = Path(root)
        self.table_meta = table_meta  # (project, dataset, table) -> the table's REST resource
        self._lock = threading.Lock()
        self._lists: dict[tuple, tuple] = {}  # (table, fingerprint) -> _kmeans_lists(...)

    def _path(self, ref: tuple[str, str, str]) -> Path:
        return self.root.joinpath(*ref).with_suffix(".json")

    def get(self, ref: tuple[str, str, str]) -> Index | None:
        """The table's index; none once the table was dropped or replaced (which drops its
        index in BigQuery)."""
        try:
            index = Index(**json.loads(self._path(ref).read_text()))
        except FileNotFoundError:
            return None
        if index.table_created != self.table_meta(*ref).get("creationTime"):
            return None
        return index

    def create(self, sql: str, project: str, dataset: str | None, run_query) -> str:
        masked = mask(sql)
        match = _CREATE.match(masked)
        ref = _table_ref(sql[match.start("table"):match.end("table")], project, dataset)
        name = sql[match.start("index"):match.end("index")].replace("`", "").strip()
        column = match["column"].strip("`")
        rest = sql[match.start("rest"):match.end("rest")].strip()
        stored, options = _index_clauses(rest, mask(rest))
        index = _validate(name, column, stored, options)
        index.table_created = self.table_meta(*ref).get("creationTime")
        table = run_query(f"SELECT * FROM `{'.'.join(ref)}` LIMIT 0")   # notFound if missing
        field = table.schema.field(column) if column in table.column_names else None
        if field is None:
            raise MLError(f"Column {column} does not exist in table {'.'.join(ref[1:])}")
        if not (pa.types.is_list(field.type) and pa.types.is_floating(field.type.value_type)):
            raise MLError(f"The column {column} of a vector index must be ARRAY<FLOAT64>, "
                          f"not {field.type}")
        missing = [c for c in stored if c not in table.column_names]
        if missing:
            raise MLError(f"STORING column {missing[0]} does not exist in the table")
        path = self._path(ref)
        with self._lock:
            existing = self.get(ref)
            if existing is not None:
                if match["ine"]:
                    return "SKIP"
                if not match["replace"] or existing.name != name:
                    raise MLError(f"Already Exists: a vector index ({existing.name}) on table "
                                  f"{'.'.join(ref)}; a table has one vector index", "duplicate")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(index.__dict__))
            self._forget(ref)
        return "REPLACE" if existing else "CREATE"

    def drop(self, sql: str, project: str, dataset: str | None) -> str:
        masked = mask(sql)
        match = _DROP.match(masked)
        ref = _table_ref(sql[match.start("table"):match.end("table")], project, dataset)
        name = sql[match.start("index"):match.end("index")].replace("`", "").strip()
        with self._lock:
            existing = self.get(ref)
            if existing is None or existing.name != name:
                if match["ie"]:
                    return "SKIP"
                raise MLError(f"Not found: Index {name} on table {'.'.join(ref)}", "notFound")
            self._path(ref).unlink()
            self._forget(ref)
        return "DROP"

    def _forget(self, ref) -> None:
        self._lists = {k: v for k, v in self._lists.items() if k[0] != ref}

    def lists(self, ref, index: Index, base: np.ndarray, original: np.ndarray) -> tuple:
        """(centroids, bounds, order, `original` in list order): the lists (_kmeans_lists) of
        `base`, the table's current vectors (normalised for L2 indexes), trained once per
        version of the data (BigQuery refreshes an index in the background as rows change)."""
        key = (ref, base.shape, float(base[:: max(1, len(base) // 64)].sum()))
        with self._lock:
            found = self._lists.get(key)
        if found is None:
            count = index.num_lists or max(1, min(5000, round(math.sqrt(len(base))))) \
                if index.index_type == "IVF" else max(1, math.ceil(len(base) / index.leaf_size))
            found = _kmeans_lists(base, min(count, len(base)))
            found = (*found[:3], np.ascontiguousarray(original[found[2]]))
            with self._lock:
                self._forget(ref)
                self._lists[key] = found
        return found


def _index_clauses(rest: str, masked: str) -> tuple[list[str], dict]:
    stored, options, pos = [], {}, 0
    while masked[pos:].strip():
        word = re.match(r"\s*(\w+)\s*\(", masked[pos:])
        if not word or word.group(1).upper() not in ("STORING", "OPTIONS"):
            raise MLError(f"Syntax error: unexpected {rest[pos:].strip()[:30]!r} in CREATE "
                          "VECTOR INDEX")
        open_at = pos + word.end() - 1
        close = close_paren(masked, open_at)
        body = rest[open_at + 1:close]
        if word.group(1).upper() == "STORING":
            stored = [c.strip().strip("`") for c in split_top(body)]
        else:
            for item in split_top(body):
                key, eq, value = item.partition("=")
                if not eq:
                    raise MLError(f"Syntax error: expected name = value in OPTIONS: {item}")
                options[key.strip().lower()] = literal(value)
        pos = close + 1
    return stored, options


def _json_option(options: dict, name: str) -> dict:
    text = options.get(name)
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise MLError(f"{name} must be a JSON object in a STRING, e.g. "
                      f"'{{\"num_lists\": 100}}', got {text!r}")
    return value


def _validate(name, column, stored, options) -> Index:
    known = {"index_type", "distance_type", "ivf_options", "tree_ah_options"}
    unknown = set(options) - known
    if unknown:
        raise MLError(f"Unknown option for CREATE VECTOR INDEX: {sorted(unknown)[0]}")
    kind = str(options.get("index_type") or "").upper()
    if kind not in ("IVF", "TREE_AH"):
        raise MLError(f"index_type must be 'IVF' or 'TREE_AH', got {options.get('index_type')!r}")
    distance = str(options.get("distance_type", "EUCLIDEAN")).upper()
    if distance not in DISTANCE_TYPES:
        raise MLError(f"Invalid distance_type '{options.get('distance_type')}': use "
                      f"{', '.join(DISTANCE_TYPES)}")
    other = "tree_ah_options" if kind == "IVF" else "ivf_options"
    if other in options:
        raise MLError(f"{other} can only be set for index_type "
                      f"{'TREE_AH' if kind == 'IVF' else 'IVF'}")
    num_lists = leaf = None
    normalize = False
    if kind == "IVF" and "ivf_options" in options:
        ivf = _json_option(options, "ivf_options")
        if set(ivf) - {"num_lists"}:
            raise MLError(f"Unknown ivf_options field: {sorted(set(ivf) - {'num_lists'})[0]}")
        num_lists = ivf.get("num_lists")
        if num_lists is not None and (not isinstance(num_lists, int) or isinstance(
                num_lists, bool) or not 1 <= num_lists <= 5000):
            raise MLError(f"num_lists must be an integer in [1, 5000], got {num_lists!r}")
    if kind == "TREE_AH":
        tree = _json_option(options, "tree_ah_options") if "tree_ah_options" in options else {}
        extra = set(tree) - {"leaf_node_embedding_count", "normalization_type"}
        if extra:
            raise MLError(f"Unknown tree_ah_options field: {sorted(extra)[0]}")
        leaf = tree.get("leaf_node_embedding_count", 1000)
        if not isinstance(leaf, int) or isinstance(leaf, bool) or not 500 <= leaf <= 1000:
            raise MLError(f"leaf_node_embedding_count must be an integer in [500, 1000], "
                          f"got {leaf!r}")
        norm = str(tree.get("normalization_type", "NONE")).upper()
        if norm not in ("NONE", "L2"):
            raise MLError(f"normalization_type must be NONE or L2, got {norm!r}")
        normalize = norm == "L2"
    return Index(name, column, kind, distance, num_lists, leaf, normalize, stored)


def _kmeans_lists(base: np.ndarray, k: int, rounds: int = 8) -> tuple:
    """Lloyd's k-means (seeded, on a sample of at most 64 vectors per list, as IVF trainers
    do), then every vector in its nearest list: (centroids, list bounds, row numbers sorted
    by list)."""
    rng = np.random.default_rng(0)
    sample = base[rng.choice(len(base), min(len(base), 64 * k), replace=False)]
    centroids = sample[rng.choice(len(sample), k, replace=False)].copy()
    for _ in range(rounds):
        nearest = _nearest_centroid(sample, centroids)
        order = np.argsort(nearest, kind="stable")
        present, starts = np.unique(nearest[order], return_index=True)
        sums = np.add.reduceat(sample[order], starts, axis=0)
        centroids[present] = sums / np.diff(np.append(starts, len(order)))[:, None]
    nearest = _nearest_centroid(base, centroids)
    order = np.argsort(nearest, kind="stable")
    bounds = np.searchsorted(nearest[order], np.arange(k + 1))
    return centroids, bounds, order


def _nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), 8192):
        block = x[start:start + 8192]
        d = (centroids ** 2).sum(1)[None, :] - 2 * block @ centroids.T
        out[start:start + 8192] = d.argmin(axis=1)
    return out


# --- VECTOR_SEARCH -------------------------------------------------------------------------

def find_searches(sql: str) -> list[tuple[int, int]]:
    """(start, end) of every top-level VECTOR_SEARCH(...) call in `sql`."""
    masked, out = mask(sql), []
    for match in SEARCH.finditer(masked):
        if out and match.start() < out[-1][1]:
            continue  # inside an earlier call's arguments: its own query runs it
        open_at = masked.index("(", match.start())
        out.append((match.start(), close_paren(masked, open_at) + 1))
    return out


def vector_search(text: str, project: str, dataset: str | None, run_query,
                  indexes: VectorIndexes | None) -> tuple[pa.Table, dict | None]:
    """One VECTOR_SEARCH(...) call (its whole text): its rows, and None when a vector index
    served it or the IndexUnusedReason (REST JobStatistics2.vectorSearchStatistics) why not."""
    masked = mask(text)
    open_at = masked.index("(")
    args = split_top(text[open_at + 1:close_paren(masked, open_at)])
    positional, named = [], {}
    for arg in args:
        m = re.match(r"^\s*(\w+)\s*=>\s*(.*)$", arg, re.S)
        if m:
            named[m.group(1).lower()] = m.group(2).strip()
        elif named:
            raise MLError("VECTOR_SEARCH: positional arguments must come before named ones")
        else:
            positional.append(arg)
    unknown = set(named) - {"base_table", "column_to_search", "query_table",
                            "query_column_to_search", "top_k", "distance_type", "options"}
    if unknown:
        raise MLError(f"VECTOR_SEARCH has no argument named {sorted(unknown)[0]}")
    if len(positional) + len(set(named) & {"base_table", "column_to_search",
                                           "query_table"}) < 3:
        raise MLError("VECTOR_SEARCH needs a base table, the column to search and a query "
                      "table: VECTOR_SEARCH(TABLE base, 'embedding', TABLE queries, ...)")
    order = ["base_table", "column_to_search", "query_table", "query_column_to_search"]
    spec = dict(zip(order, positional, strict=False))
    spec.update({k: v for k, v in named.items() if k in order})
    column = _string(spec.get("column_to_search"), "column_to_search")
    query_column = _string(spec.get("query_column_to_search"), "query_column_to_search") \
        if spec.get("query_column_to_search") else column
    top_k = literal(named["top_k"]) if "top_k" in named else 10
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise MLError(f"top_k must be a positive INT64, got {named.get('top_k')}")
    distance = _string(named.get("distance_type", "'EUCLIDEAN'"), "distance_type").upper()
    if distance not in DISTANCE_TYPES:
        raise MLError(f"Invalid distance_type '{distance}': use EUCLIDEAN, COSINE or "
                      "DOT_PRODUCT")
    options = _search_options(named.get("options"))
    base_arg, base_ref = spec["base_table"].strip(), None
    if re.match(r"^TABLE\s", base_arg, re.I):
        base_ref = _table_ref(base_arg[5:].strip(), project, dataset)
    base = run_query(_relation_sql(base_arg))
    queries = run_query(_relation_sql(spec["query_table"].strip()))
    b = _matrix(base, column, "base table")
    q = _matrix(queries, query_column, "query table")
    if len(b) and len(q) and b.shape[1] != q.shape[1]:
        raise MLError(f"VECTOR_SEARCH: the query vectors have {q.shape[1]} dimensions and the "
                      f"base vectors {b.shape[1]}; they must have the same dimension")
    index = indexes.get(base_ref) if (indexes and base_ref) else None
    if index is not None and index.column != column:
        index = None
    if options.get("fraction_lists_to_search") is not None and index is None:
        raise MLError("fraction_lists_to_search needs a vector index on the column searched")
    unused = _unused_reason(base_ref, index, options, b, distance, indexes)
    use_index = unused is None
    valid = np.flatnonzero(~np.isnan(b).any(axis=1)) if len(b) else np.array([], int)
    if use_index:
        rows, dist = _index_search(indexes, base_ref, index, b[valid], q, top_k, distance,
                                   options.get("fraction_lists_to_search"))
    else:
        rows, dist = _exact(b[valid], q, top_k, distance)
    rows = [valid[r] for r in rows]  # rows with a NULL vector are never neighbours
    return _output(queries, base, rows, dist), unused


def _unused_reason(ref, index, options, b, distance, indexes) -> dict | None:
    """Why no index serves this search (codes of the REST IndexUnusedReason), or None."""
    if ref is None:
        code, message = "OTHER_REASON", ("The local BigQuery uses a vector index when the base "
                                         "is TABLE name; a base query is searched exactly.")
    elif index is None:
        code, message = "INDEX_CONFIG_NOT_AVAILABLE", "There is no vector index on the column."
    elif options.get("use_brute_force"):
        code, message = "INDEX_SUPPRESSED_BY_FUNCTION_OPTION", "use_brute_force is true."
    elif b.nbytes < MIN_INDEXED_BYTES:
        code, message = "BASE_TABLE_TOO_SMALL", ("The base table is smaller than 10 MB, so its "
                                                 "vector index is not populated.")
    elif index.distance_type != distance:
        code, message = "OTHER_REASON", (f"The index was built for {index.distance_type}, the "
                                         f"search asks for {distance}.")
    else:
        return None
    reason = {"code": code, "message": message}
    if ref is not None:
        reason["baseTable"] = {"projectId": ref[0], "datasetId": ref[1], "tableId": ref[2]}
    if index is not None:
        reason["indexName"] = index.name
    return reason


def statistics(reasons: list) -> dict:
    """vectorSearchStatistics of a query that ran these searches (None: index used)."""
    unused = [r for r in reasons if r is not None]
    mode = "FULLY_USED" if not unused else "UNUSED" if len(unused) == len(reasons) \
        else "PARTIALLY_USED"
    return {"indexUsageMode": mode, **({"indexUnusedReasons": unused} if unused else {})}


def _string(text, what: str) -> str:
    value = literal(text) if isinstance(text, str) else None
    if not isinstance(value, str):
        raise MLError(f"VECTOR_SEARCH: {what} must be a STRING literal, got {text}")
    return value


def _search_options(text) -> dict:
    if text is None:
        return {}
    value = literal(text)
    try:
        options = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise MLError(f"VECTOR_SEARCH: options must be a JSON object in a STRING, got {text}")
    unknown = set(options) - {"fraction_lists_to_search", "use_brute_force"}
    if unknown:
        raise MLError(f"VECTOR_SEARCH: unknown option {sorted(unknown)[0]}")
    fraction = options.get("fraction_lists_to_search")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(
            fraction, (int, float)) or not 0 < fraction <= 1):
        raise MLError(f"fraction_lists_to_search must be in (0.0, 1.0], got {fraction!r}")
    if options.get("use_brute_force") and fraction is not None:
        raise MLError("fraction_lists_to_search cannot be set when use_brute_force is true")
    if not isinstance(options.get("use_brute_force", False), bool):
        raise MLError("use_brute_force must be a JSON boolean")
    return options


def _relation_sql(arg: str) -> str:
    if re.match(r"^TABLE\s", arg, re.I):
        return f"SELECT * FROM {arg[5:].strip()}"
    if arg.startswith("(") and arg.endswith(")"):
        return arg[1:-1].strip()
    raise MLError(f"VECTOR_SEARCH: expected TABLE name or (query), got {arg[:40]}")


def _matrix(table: pa.Table, column: str, what: str) -> np.ndarray:
    if column not in table.column_names:
        raise MLError(f"VECTOR_SEARCH: column {column} is not in the {what}")
    arr = table.column(column).combine_chunks()
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise MLError(f"VECTOR_SEARCH: column {column} must be ARRAY<FLOAT64>, not {arr.type}")
    lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
    present = lengths[~np.isnan(lengths.astype(float))] if len(lengths) else lengths
    dims = set(present.astype(int).tolist()) - {0}
    if len(dims) > 1:
        raise MLError(f"VECTOR_SEARCH: the vectors of {column} in the {what} have different "
                      f"lengths ({', '.join(map(str, sorted(dims)[:3]))})")
    d = dims.pop() if dims else 0
    out = np.full((len(arr), d), np.nan)
    keep = np.flatnonzero(np.nan_to_num(lengths.astype(float)) == d) if d else []
    if len(keep):
        values = arr.take(pa.array(keep)).flatten().to_numpy(zero_copy_only=False)
        out[keep] = values.astype(float).reshape(len(keep), d)
    return out


def _distances(b: np.ndarray, q: np.ndarray, kind: str) -> np.ndarray:
    dot = q @ b.T
    if kind == "DOT_PRODUCT":
        return -dot
    if kind == "COSINE":
        norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1 - dot / norms
    sq = (q ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * dot
    return np.sqrt(np.maximum(sq, 0))


def _top(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, d.shape[1])
    part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else \
        np.tile(np.arange(d.shape[1]), (len(d), 1))
    picked = np.take_along_axis(d, part, axis=1)
    order = np.argsort(picked, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(picked, order, axis=1)


def _exact(b, q, k, kind) -> tuple[list, list]:
    rows, dists = [], []
    if not len(b):
        return [np.array([], int)] * len(q), [np.array([])] * len(q)
    for start in range(0, len(q), 256):
        block = q[start:start + 256]
        if np.isnan(block).any():
            for row in block:
                if np.isnan(row).any():
                    rows.append(np.array([], int))
                    dists.append(np.array([]))
                else:
                    r, d = _top(_distances(b, row[None, :], kind), k)
                    rows.append(r[0])
                    dists.append(d[0])
            continue
        r, d = _top(_distances(b, block, kind), k)
        rows.extend(r)
        dists.extend(d)
    return rows, dists


def _index_search(indexes, ref, index, b, q, k, kind, fraction) -> tuple[list, list]:
    """The approximate search: each query scans only its nearest lists, list by list for all
    the queries that probe it (one matrix product per list)."""
    vectors = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) \
        if index.normalize else b
    # the vectors in list order, contiguous so that a list is one slice
    centroids, bounds, order, stored = indexes.lists(ref, index, vectors, b)
    probes = max(1, math.ceil((fraction or DEFAULT_PROBE) * len(centroids)))
    ok = ~np.isnan(q).any(axis=1) if len(q) else np.zeros(0, bool)
    probe_q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12) \
        if index.normalize else q
    near = np.zeros((len(q), 0), int) if not ok.any() else \
        _top(_distances(centroids, np.nan_to_num(probe_q), "EUCLIDEAN"), probes)[0]
    found: list[list] = [[] for _ in q]
    for j in np.unique(near):
        lo, hi = bounds[j], bounds[j + 1]
        asking = np.flatnonzero((near == j).any(axis=1) & ok)
        if hi == lo or not len(asking):
            continue
        r, d = _top(_distances(stored[lo:hi], q[asking], kind), k)
        for row, ids, dist in zip(asking, r, d, strict=True):
            found[row].append((order[lo + ids], dist))
    rows, dists = [], []
    for parts in found:
        if not parts:
            rows.append(np.array([], int))
            dists.append(np.array([]))
            continue
        ids = np.concatenate([p[0] for p in parts])
        dist = np.concatenate([p[1] for p in parts])
        best = np.argsort(dist, kind="stable")[:k]
        rows.append(ids[best])
        dists.append(dist[best])
    return rows, dists


def _output(queries: pa.Table, base: pa.Table, rows: list, dists: list) -> pa.Table:
    query_index = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)] or
                                 [np.array([], int)]).astype(np.int64)
    base_index = np.concatenate(rows or [np.array([], int)]).astype(np.int64)
    distance = np.concatenate(dists or [np.array([])]).astype(float)
    q = queries.take(pa.array(query_index))
    b = base.take(pa.array(base_index))
    return pa.table({
        "query": pa.StructArray.from_arrays([c.combine_chunks() for c in q.columns],
                                            names=q.column_names) if q.num_columns else
        pa.nulls(len(q), pa.struct([])),
        "base": pa.StructArray.from_arrays([c.combine_chunks() for c in b.columns],
                                           names=b.column_names),
        "distance": pa.array(distance, pa.float64())})
