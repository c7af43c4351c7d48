"""MLEngine: the BigQuery ML entry point used by the local BigQuery service. It takes the
ML statements (CREATE MODEL, DROP MODEL, queries calling ML.* table functions), trains
and stores models, and answers the models REST resources."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from labkit.bigquery.errors import BigQueryError
from labkit.bigquery.ml import export, functions, remote, vector
from labkit.bigquery.ml import resource as resources
from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.functions import ai, generate
from labkit.bigquery.ml.options import resolve_options
from labkit.bigquery.ml.sqlscan import mask
from labkit.bigquery.ml.statements import (
    ML_CALL,
    ModelRef,
    find_calls,
    is_create,
    is_drop,
    is_export,
    parse_create,
    parse_drop,
    parse_export,
)
from labkit.bigquery.ml.store import ModelStore
from labkit.bigquery.ml.training import train
from labkit.bigquery.ml.vertex_registry import check_options as check_registry_options


@dataclass
class MLResult:
    statement_type: str            # "CREATE_MODEL", "DROP_MODEL", "EXPORT_MODEL" or "SELECT"
    table: pa.Table | None         # rows, when the statement is exactly one ML function call
    model_ref: dict | None         # {"projectId", "datasetId", "modelId"} for DDL
    rewritten_sql: str | None = None
    relations: dict[str, pa.Table] | None = None
    operation: str | None = None   # DDL on vector indexes: CREATE, REPLACE, SKIP, DROP
    statistics: dict | None = None  # job statistics.query fields (vectorSearchStatistics)


_AI_CALL = re.compile(r"\bAI\s*\.\s*(?P<fn>[A-Za-z_]+)\s*\(", re.I)
_AI_SCALAR = re.compile(r"\bAI\s*\.\s*(?P<fn>[A-Za-z_]+)\s*\((?!\s*MODEL\b)", re.I)
_SINGLE = re.compile(r"^\s*SELECT\s+\*\s+FROM\s+(?P<rel>__bqml_\w+)\s*;?\s*$", re.I)


class MLEngine:
    """`storage_path(uri)`: the local file behind a gs:// URI (exports write there);
    `registry`: labkit.vertex.bigquery_models.VertexRegistration, which registers models in
    the Vertex AI Model Registry (model_registry='vertex_ai'). Without them
    (unit tests of the SQL engine alone) those statements fail loudly. `connections` (the
    BigQuery Connection API's store) and `vertex` (bigquery.vertex_ai.VertexCaller) serve
    remote models; `dataset_location(project, dataset)` and `table_meta(project, dataset,
    table)` (the warehouse's) place connections and tell a recreated table from its index.
    `scalar_function(name, function, duckdb_return_type)` makes a Python function callable
    from the statement's SQL (each AI.GENERATE call becomes one)."""

    def __init__(self, root: Path, run_query: Callable[[str], pa.Table],
                 storage_path: Callable[[str], Path] | None = None, registry=None,
                 connections=None, vertex=None, dataset_location=None, table_meta=None,
                 scalar_function=None):
        self.store = ModelStore(root)
        self.connections, self.remote = connections, vertex
        self.dataset_location = dataset_location or (lambda project, dataset: "US")
        self.indexes = vector.VectorIndexes(Path(root).parent / "vector_indexes",
                                            table_meta or (lambda *ref: {}))
        self.run_query = run_query
        self.scalar_function = scalar_function
        self.storage_path = storage_path
        self.vertex = registry
        self._creating: set[tuple] = set()
        self._lock = threading.Lock()

    def handles(self, sql: str) -> bool:
        masked = mask(sql)
        return is_create(sql) or is_drop(sql) or is_export(sql) or \
            bool(ML_CALL.search(masked) or vector.SEARCH.search(masked)
                 or _AI_CALL.search(masked)) or vector.is_index_ddl(sql)

    def execute(self, sql: str, project: str, dataset: str | None) -> MLResult:
        if is_create(sql):
            return self._create(sql, project, dataset)
        if is_drop(sql):
            stmt = parse_drop(sql, project, dataset)
            self._drop(stmt.ref, stmt.if_exists)
            return MLResult("DROP_MODEL", None, stmt.ref.as_dict())
        if is_export(sql):
            stmt = parse_export(sql, project, dataset)
            unknown = set(stmt.options) - {"uri", "trial_id"}
            if unknown:
                raise MLError(f"Unknown option for EXPORT MODEL: {sorted(unknown)[0]}")
            if not isinstance(stmt.options.get("uri"), str):
                raise MLError("EXPORT MODEL needs OPTIONS(URI = 'gs://bucket/folder')")
            self.export(stmt.ref, stmt.options["uri"], None, stmt.options.get("trial_id"))
            return MLResult("EXPORT_MODEL", None, stmt.ref.as_dict())
        if vector.is_index_ddl(sql):
            return self._index_ddl(sql, project, dataset)
        scalars = bool(ai.GENERATE.search(mask(sql)))
        if scalars:
            sql = self._ai_scalars(sql, project, dataset)
        other = _AI_SCALAR.search(mask(sql))
        if other:  # AI.GENERATE_BOOL, AI.IF, AI.EMBED, AI.SIMILARITY, AI.FORECAST, ...
            raise not_local(f"AI.{other.group('fn').upper()} (locally: AI.GENERATE, "
                            "AI.GENERATE_TABLE, AI.GENERATE_EMBEDDING, ML.GENERATE_TEXT)")
        if not scalars and not find_calls(sql, project, dataset) and \
                not vector.find_searches(sql):
            raise MLError("Expected an ML statement")
        searches: list = []
        rewritten, relations = self._rewrite(sql, project, dataset, {}, searches)
        single = _SINGLE.match(rewritten)
        return MLResult("SELECT", relations[single.group("rel")] if single else None, None,
                        rewritten, relations, statistics={"vectorSearchStatistics": vector
                                                          .statistics(searches)} if searches
                        else None)

    def _rewrite(self, sql: str, project: str, dataset: str | None,
                 outer: dict[str, pa.Table], searches: list) -> tuple[str, dict[str, pa.Table]]:
        """`sql` with each ML.<FN>(MODEL ...) call, then each VECTOR_SEARCH(...), replaced by
        the name of a relation holding its rows; (new sql, relations incl. `outer`). Each
        search adds to `searches` why no index served it (None when one did)."""
        relations = dict(outer)
        tag = uuid.uuid4().hex[:8]

        def query(text: str) -> pa.Table:
            return self._query(text, project, dataset, relations, searches)

        pieces, last = [], 0
        for i, call in enumerate(find_calls(sql, project, dataset)):
            if call.namespace == "AI" and call.fn not in ai.HANDLERS:
                raise not_local(f"{call.name} (locally: AI.GENERATE_TABLE, "
                                "AI.GENERATE_EMBEDDING and ML.GENERATE_TEXT)")
            model = self.store.load(call.ref)
            if "trial_id" in call.settings:
                model = model.for_trial(call.settings.pop("trial_id"))
            if call.namespace == "AI" or call.fn in generate.HANDLERS or \
                    model.model_type.startswith("remote_"):
                result = self._generate(call, model, project, query)
            else:
                result = functions.run(call, model, query)
            name = f"__bqml_{tag}_{i}"
            relations[name] = result
            pieces += [sql[last:call.start], name]
            last = call.end
        pieces.append(sql[last:])
        sql, pieces, last = "".join(pieces), [], 0
        for i, (start, end) in enumerate(vector.find_searches(sql)):
            name = f"__bqvs_{tag}_{i}"
            relations[name], unused = vector.vector_search(sql[start:end], project, dataset,
                                                           query, self.indexes)
            searches.append(unused)
            pieces += [sql[last:start], name]
            last = end
        pieces.append(sql[last:])
        return "".join(pieces), relations

    def _query(self, sql: str, project: str, dataset: str | None,
               relations: dict[str, pa.Table], searches: list) -> pa.Table:
        """A query an ML function or VECTOR_SEARCH reads: ML calls and vector searches in it
        run first; the relations of the statement so far stay visible to it."""
        if not (ML_CALL.search(mask(sql)) or vector.SEARCH.search(mask(sql)) or relations):
            return self.run_query(sql)
        rewritten, inner = self._rewrite(sql, project, dataset, relations, searches)
        named = {k: v for k, v in inner.items() if k in rewritten}
        return self.run_query(rewritten, named) if named else self.run_query(rewritten)

    def _index_ddl(self, sql: str, project: str, dataset: str | None) -> MLResult:
        if re.match(r"^\s*DROP\b", mask(sql), re.I):
            return MLResult("DROP_VECTOR_INDEX", None, None,
                            operation=self.indexes.drop(sql, project, dataset))
        operation = self.indexes.create(sql, project, dataset, self.run_query)
        return MLResult("CREATE_VECTOR_INDEX", None, None, operation=operation)

    def _ai_scalars(self, sql: str, project: str, dataset: str | None) -> str:
        """AI.GENERATE(...) calls made callable functions of this statement."""
        if self.remote is None or self.scalar_function is None:
            raise MLError("AI.GENERATE needs the local Vertex AI, which this BigQuery was "
                          "started without")
        location = self.dataset_location(project, dataset) if dataset else "US"
        return ai.rewrite_generate(sql, project, location.lower(), self.connections,
                                   self.remote, self.scalar_function)

    def _generate(self, call, model, project: str, query) -> pa.Table:
        """ML.GENERATE_* and AI.GENERATE_* on a remote model, answered by the local
        Vertex AI."""
        handler = (ai.HANDLERS if call.namespace == "AI" else generate.HANDLERS).get(call.fn)
        if handler is None or not model.model_type.startswith("remote_"):
            raise MLError(f"{call.name} is not supported for "
                          f"{'remote models' if handler is None else model.model_type.upper()}"
                          f"{'' if handler is None else ' models: it needs a remote model'}")
        if self.remote is None:
            raise MLError("Remote models need the local Vertex AI, which this BigQuery was "
                          "started without")
        if self.connections is not None:  # a deleted connection leaves its models unusable
            from labkit.bigquery.connections import ConnectionAPIError

            try:
                self.connections.get(model.options["connection"])
            except ConnectionAPIError:
                raise MLError(f"Not found: Connection {model.options['connection']}",
                              "notFound") from None
        return handler(model, call, query, self.remote, project)

    def _create(self, sql: str, project: str, dataset: str | None) -> MLResult:
        stmt = parse_create(sql, project, dataset)
        if stmt.connection is not None:
            return self._create_remote(stmt)
        options = resolve_options(stmt.options)
        check_registry_options(options)
        key = (stmt.ref.project, stmt.ref.dataset, stmt.ref.model)
        with self._lock:
            exists = self.store.exists(stmt.ref)
            if exists and stmt.if_not_exists:
                return MLResult("CREATE_MODEL", None, stmt.ref.as_dict())
            if exists and not stmt.replace:
                raise MLError(f"Already Exists: Model {stmt.ref}", "duplicate")
            if key in self._creating:
                raise MLError(f"Model {stmt.ref} is being created by another statement; "
                              "retry when it finishes")
            self._creating.add(key)
        try:
            self._check_dataset(stmt.ref)
            if options.get("model_registry") and self.vertex is None:
                raise MLError("model_registry='vertex_ai' needs the local Vertex AI Model "
                              "Registry, which this BigQuery was started without")
            started = time.time()
            model = train(stmt, options, self.run_query)
            resource = resources.build(stmt.ref, model, started, time.time())
            if options.get("model_registry"):
                resource["trainingRuns"][-1].update(
                    self.vertex.register(stmt.ref, model, resource))
                resource["etag"] = resources.etag(resource)
            self.store.save(stmt.ref, model, resource)
        finally:
            with self._lock:
                self._creating.discard(key)
        return MLResult("CREATE_MODEL", None, stmt.ref.as_dict())

    def _create_remote(self, stmt) -> MLResult:
        with self._lock:
            exists = self.store.exists(stmt.ref)
            if exists and stmt.if_not_exists:
                return MLResult("CREATE_MODEL", None, stmt.ref.as_dict())
            if exists and not stmt.replace:
                raise MLError(f"Already Exists: Model {stmt.ref}", "duplicate")
        self._check_dataset(stmt.ref)
        model = remote.create(stmt.ref, stmt.connection, stmt.options, stmt.query,
                              self.connections,
                              self.dataset_location(stmt.ref.project, stmt.ref.dataset))
        self.store.save(stmt.ref, model, remote.resource(stmt.ref, model, time.time()))
        return MLResult("CREATE_MODEL", None, stmt.ref.as_dict())

    def _drop(self, ref: ModelRef, if_exists: bool = False) -> None:
        try:
            resource = self.store.resource(ref)
        except KeyError:
            if if_exists:
                return
            raise MLError(f"Not found: Model {ref}", "notFound") from None
        if self.vertex is not None:
            self.vertex.unregister(ref, resource)
        self.store.delete(ref)

    def export(self, ref: ModelRef, uri: str, fmt: str | None = None,
               trial_id: int | None = None) -> str:
        """EXPORT MODEL / a model extract job: the model written under gs:// `uri`."""
        model = self.store.load(ref)
        if trial_id is not None:
            model = model.for_trial(trial_id)
        if not uri.startswith("gs://") or "*" in uri:
            raise MLError(f"Invalid export URI {uri!r}: give a Cloud Storage folder, "
                          "gs://bucket/folder", "invalid")
        if self.storage_path is None:
            raise MLError("Exporting models needs the local Cloud Storage")
        export.format_of(model, fmt)     # refuse before touching the bucket
        folder = self.storage_path(uri.rstrip("/") + "/")
        return export.export(model, folder, fmt)

    def _check_dataset(self, ref: ModelRef) -> None:
        """CREATE MODEL into a missing dataset fails as in BigQuery ("Not found: Dataset")."""
        try:
            self.run_query(f"SELECT table_name FROM `{ref.project}.{ref.dataset}"
                           ".INFORMATION_SCHEMA.TABLES` LIMIT 0")
        except Exception as exc:  # noqa: BLE001 - only a notFound answer is meaningful here
            if getattr(exc, "reason", None) == "notFound":
                raise MLError(getattr(exc, "message", None) or str(exc), "notFound") from None
            # a SQL engine without INFORMATION_SCHEMA (plain DuckDB in unit tests) cannot tell

    # --- models REST resources -------------------------------------------------------
    def get_model(self, project: str, dataset: str, model_id: str) -> dict:
        return self.store.resource(ModelRef(project, dataset, model_id))

    def list_models(self, project: str, dataset: str) -> list[dict]:
        out = []
        for name in self.store.list(project, dataset):
            try:
                out.append(self.get_model(project, dataset, name))
            except KeyError:
                continue
        return out

    def patch_model(self, project: str, dataset: str, model_id: str, body: dict) -> dict:
        ref = ModelRef(project, dataset, model_id)
        with self.store.lock:
            updated = resources.patch(self.store.resource(ref), body, time.time())
            self.store.write_resource(ref, updated)
        return updated

    def delete_model(self, project: str, dataset: str, model_id: str) -> None:
        ref = ModelRef(project, dataset, model_id)
        if not self.store.exists(ref):
            raise KeyError(str(ref))
        try:
            self._drop(ref)
        except MLError as exc:      # the REST routes answer BigQuery's errors
            raise BigQueryError(exc.message, exc.reason) from None

    def drop_dataset(self, project: str, dataset: str) -> None:
        if self.vertex is not None:     # its registered models leave the registry too
            refs = [ModelRef(project, dataset, name)
                    for name in self.store.list(project, dataset)]
            try:
                for ref in refs:            # all checked before any is removed
                    self.vertex.check_removable(ref, self.store.resource(ref))
                for ref in refs:
                    self.vertex.unregister(ref, self.store.resource(ref))
            except MLError as exc:
                raise BigQueryError(exc.message, exc.reason) from None
        self.store.drop_dataset(project, dataset)
