"""Runs BigQuery statements and scripts on DuckDB (no HTTP here).

Each statement that writes runs in its own DuckDB transaction, serialised with every other
writer (Warehouse.write): a failing statement leaves every stored table as it was, and in a
script without a transaction the statements before it keep their effects, as in BigQuery.
BEGIN TRANSACTION ... COMMIT TRANSACTION makes a script's statements one transaction:
ROLLBACK TRANSACTION, an error, or the end of the script before COMMIT rolls it back
(docs: "Multi-statement transactions"). BigQuery ML statements go to labkit.bigquery.ml's
engine.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from labkit.bigquery import (
    arrow_rows,
    bignumeric,
    geography,
    ids,
    locations,
    rounding,
    routines,
    sessions,
    timestamp_picos,
)
from labkit.bigquery import schema as bqschema
from labkit.bigquery.errors import (
    BigQueryError,
    duplicate,
    invalid_query,
    not_found,
    unsupported,
)
from labkit.bigquery.sql import ddl, functions, marked_dml
from labkit.bigquery.sql import params as sqlparams
from labkit.bigquery.sql.script import split_statements
from labkit.bigquery.sql.translate import (
    PUBLIC_PROJECT,
    Scope,
    drop_target,
    expression_to_duckdb,
    parse,
    schema_name,
    table_parts,
    to_duckdb,
)
from labkit.bigquery.warehouse import Warehouse, now_ms

_POINT_IN_TIME = re.compile(r"\bML\s*\.\s*(?:ENTITY_)?FEATURES_AT_TIME\s*\(", re.I)
_MAYBE_ML = re.compile(r"\bMODEL\b|\b(?:ML|AI)\s*\.|\bVECTOR_SEARCH\b|\bVECTOR\s+INDEX\b",
                       re.IGNORECASE)


@dataclass
class Result:
    """What one statement (or a whole script) produced."""
    statement_type: str
    table: pa.Table | None = None
    fields: list[dict] | None = None
    duck_types: list | None = None  # DuckDB types of `table`'s columns (for encoding)
    affected_rows: int | None = None
    dml_stats: dict | None = None
    ddl_operation: str | None = None
    ddl_target_table: dict | None = None
    ddl_target_dataset: dict | None = None
    ddl_target_routine: dict | None = None
    bytes_processed: int = 0
    children: list[Result] = field(default_factory=list)
    statistics: dict | None = None  # more statistics.query fields (vectorSearchStatistics)
    transaction_id: str | None = None  # a script statement's transaction (transactionInfo)


@dataclass
class _Context:
    project: str
    dataset: str | None
    cursor: duckdb.DuckDBPyConnection
    named: dict
    positional: list
    variables: set[str]
    temp_tables: set[str] = field(default_factory=set)
    temp_functions: dict[str, str] = field(default_factory=dict)  # name -> routineType
    in_transaction: bool = False
    transaction_id: str | None = None  # the open transaction's id, from BEGIN to its end
    location: locations.JobLocation | None = None  # where the job runs (checked per table)
    functions: list[str] = field(default_factory=list)  # made for this statement (AI.GENERATE)
    session: sessions.Session | None = None  # the BigQuery session the job runs in


class Engine:
    def __init__(self, warehouse: Warehouse, models_root: Path, ml_services: dict | None = None):
        self.wh = warehouse
        self.models_root = models_root
        self.ml_services = ml_services or {}  # MLEngine's storage_path and registry
        self._ml = None
        self._ml_error: str | None = None
        self._ml_lock = threading.Lock()
        self._local = threading.local()
        self.sessions = sessions.Sessions()
        self.routines = routines.Routines(warehouse)

    # --- entry point ------------------------------------------------------------------------

    def run(self, sql: str, *, project: str, dataset: str | None = None,
            parameters: list[dict] | None = None, dry_run: bool = False,
            location: locations.JobLocation | None = None,
            session: sessions.Session | None = None) -> Result:
        if not sql or not sql.strip():
            raise invalid_query("Syntax error: Unexpected end of script at [1:1]")
        named, positional = sqlparams.bind(parameters)
        cursor = self.wh.cursor()
        ctx = _Context(project, dataset, cursor, named, positional, set(), location=location,
                       session=session)
        statements = split_statements(sql)
        results = []
        try:
            for text in statements:
                opened = ctx.transaction_id  # COMMIT and ROLLBACK belong to it too
                result = self._statement(text, ctx, dry_run)
                result.transaction_id = ctx.transaction_id or opened
                results.append(result)
        finally:
            # an error inside a transaction, or a script that ends before COMMIT
            # TRANSACTION: BigQuery rolls the transaction back
            if ctx.in_transaction:
                ctx.in_transaction = False
                self.wh.end_transaction(commit=False)
            # a script's variables and temp tables end with it
            for name in ctx.variables:
                cursor.execute(f"RESET VARIABLE {bqschema.quote(name)}")
            for name in ctx.temp_tables:
                cursor.execute(f"DROP TABLE IF EXISTS temp.main.{bqschema.quote(name)}")
            for name, kind in ctx.temp_functions.items():  # and its temporary functions
                cursor.execute(routines.drop_sql({"routineType": kind}, _temp_macro(name)))
        if len(statements) == 1:
            return results[0]
        last = next((r for r in reversed(results) if r.table is not None), None)
        return Result("SCRIPT", table=last.table if last else None,
                      fields=last.fields if last else None,
                      duck_types=last.duck_types if last else None,
                      bytes_processed=sum(r.bytes_processed for r in results), children=results)

    def _statement(self, text: str, ctx: _Context, dry_run: bool) -> Result:
        try:
            return self._statement_unlocated(text, ctx, dry_run)
        except BigQueryError as exc:
            _locate(exc, text)
            raise

    def _statement_unlocated(self, text: str, ctx: _Context, dry_run: bool) -> Result:
        if _POINT_IN_TIME.search(text):  # ML.[ENTITY_]FEATURES_AT_TIME: plain SQL from here
            from labkit.bigquery.ml import point_in_time

            text = point_in_time.rewrite(text, lambda relation: {
                f["name"]: f["type"] for f in self._select(parse(
                    f"SELECT * FROM {relation} LIMIT 0"), ctx, self._scope(ctx)).fields})
        if _MAYBE_ML.search(text):
            ml = self.ml_engine(required=False)
            if ml is not None and ml.handles(text):
                is_select = text.lstrip().upper().startswith(("SELECT", "WITH"))
                if dry_run:
                    return Result("SELECT" if is_select else "CREATE_MODEL")
                if ctx.in_transaction and not is_select:
                    raise _not_in_transaction("CREATE MODEL / DROP MODEL")
                return self._run_ml(ml, text, ctx)
            if ml is None and _looks_like_ml(text):
                raise BigQueryError(f"BigQuery ML is not available in this build"
                                    f"{': ' + self._ml_error if self._ml_error else ''}",
                                    "invalidQuery", "query")
        function = functions.read(text)  # CREATE / DROP [TABLE] FUNCTION
        if function is not None:
            return self._function_ddl(function, ctx, dry_run)
        tree = parse(text)
        if ctx.session is not None and sessions.place(tree, ctx.session):
            self._session_dataset(ctx.session)
        if dry_run:
            return self._dry_run(tree, ctx)
        if _is_begin(tree) or isinstance(tree, (exp.Commit, exp.Rollback)):
            return self._transaction_control(tree, ctx)
        if isinstance(tree, exp.Query):  # reads need no transaction of their own
            return self._execute(tree, ctx)
        if ctx.in_transaction:
            _check_transactional(tree)
        with self.wh.write():  # joins the script's transaction when one is open
            return self._execute(tree, ctx)

    def _transaction_control(self, tree: exp.Expression, ctx: _Context) -> Result:
        if _is_begin(tree):
            if ctx.in_transaction:
                raise invalid_query("Nested transactions are not supported: BEGIN "
                                    "TRANSACTION inside a transaction")
            self.wh.begin_transaction()
            ctx.in_transaction = True
            ctx.transaction_id = secrets.token_hex(16)
            return Result("BEGIN_TRANSACTION")
        kind = "COMMIT" if isinstance(tree, exp.Commit) else "ROLLBACK"
        if not ctx.in_transaction:
            raise invalid_query(f"{kind} TRANSACTION without an active transaction: "
                                "BEGIN TRANSACTION first")
        ctx.in_transaction = False
        ctx.transaction_id = None
        self.wh.end_transaction(commit=kind == "COMMIT")
        return Result(f"{kind}_TRANSACTION")
    def _scope(self, ctx: _Context) -> Scope:
        return Scope(ctx.project, ctx.dataset, self.wh, dict(ctx.named), list(ctx.positional),
                     set(ctx.variables), temp_tables=set(ctx.temp_tables),
                     temp_functions=dict(ctx.temp_functions), location=ctx.location)

    # --- functions (routines) ---------------------------------------------------------------

    def _function_ddl(self, fn: functions.FunctionDDL, ctx: _Context, dry_run: bool) -> Result:
        """CREATE [TABLE] FUNCTION and DROP [TABLE] FUNCTION: a permanent function is a
        routine (labkit.bigquery.routines); a TEMP one lives until the script ends."""
        if fn.temporary or (fn.action == "DROP" and len(fn.parts) == 1
                            and fn.parts[0].lower() in ctx.temp_functions):
            return self._temp_function(fn, ctx, dry_run)
        if len(fn.parts) == 1 and not ctx.dataset:
            raise invalid_query(f"Function \"{fn.parts[0]}\" must be qualified with a dataset "
                                "(dataset.function), or be a TEMP FUNCTION")
        if len(fn.parts) > 3:
            raise invalid_query(f"Invalid function name: {'.'.join(fn.parts)}")
        project, dataset, name = ([ctx.project, ctx.dataset] + fn.parts)[-3:] \
            if len(fn.parts) == 1 else ([ctx.project] + fn.parts)[-3:]
        ids.routine(name)
        ref = {"projectId": project, "datasetId": dataset, "routineId": name}
        if ctx.in_transaction:
            raise _not_in_transaction(f"The statement {fn.statement_type.replace('_', ' ')}")
        resource = {"routineReference": ref, **(fn.resource or {})}
        if fn.action == "CREATE":
            routines.check(resource)
        if dry_run:
            return Result(fn.statement_type)
        done = Result(fn.statement_type, ddl_operation="SKIP", ddl_target_routine=ref)
        with self.wh.write() as cur:
            if not self.wh.dataset_exists(project, dataset):
                if fn.action == "DROP" and fn.if_exists:
                    return done
                raise not_found("Dataset", f"{project}:{dataset}")
            existing = self.wh.routine(project, dataset, name)
            if fn.action == "DROP":
                if existing is None:
                    if fn.if_exists:
                        return done
                    raise not_found("Function", f"{project}:{dataset}.{name}")
                if (existing["routineType"] == "TABLE_VALUED_FUNCTION") != fn.table:
                    raise invalid_query(f"{project}:{dataset}.{name} is a "
                                        f"{existing['routineType']}: use DROP "
                                        f"{'TABLE ' if not fn.table else ''}FUNCTION")
                self.routines.drop(cur, existing)
                done.ddl_operation = "DROP"
                return done
            if existing is not None and fn.if_exists:
                return done
            if existing is not None and not fn.replace:
                raise duplicate("Function", f"{project}:{dataset}.{name}")
            self.routines.create(cur, resource, replace=existing)
            done.ddl_operation = "REPLACE" if existing else "CREATE"
            return done

    def _temp_function(self, fn: functions.FunctionDDL, ctx: _Context, dry_run: bool) -> Result:
        if len(fn.parts) != 1:
            raise invalid_query("Temporary functions may not be qualified")
        name = fn.parts[0]
        key = name.lower()
        done = Result(fn.statement_type, ddl_operation="SKIP")
        existing = ctx.temp_functions.get(key)
        if fn.action == "DROP":
            if dry_run:
                return Result(fn.statement_type)
            ctx.cursor.execute(routines.drop_sql({"routineType": existing}, _temp_macro(key)))
            del ctx.temp_functions[key]
            done.ddl_operation = "DROP"
            return done
        resource = {"routineReference": {"projectId": ctx.project,
                                         "datasetId": ctx.dataset or "", "routineId": name},
                    **fn.resource}
        routines.check(resource)
        if dry_run:
            return Result(fn.statement_type)
        if existing is not None and fn.if_exists:
            return done
        if existing is not None and not fn.replace:
            raise invalid_query(f"Temporary function {name} already exists")
        if existing is not None:
            ctx.cursor.execute(routines.drop_sql({"routineType": existing}, _temp_macro(key)))
            del ctx.temp_functions[key]
        macro = bqschema.quote(routines.TEMP_PREFIX + key)
        routines.run_duckdb(ctx.cursor, routines.macro_sql(
            resource, self.wh, macro, temporary=True, scope=self._scope(ctx)))
        ctx.temp_functions[key] = resource["routineType"]
        try:
            routines.probe(ctx.cursor, resource, macro)
        except BigQueryError:
            ctx.cursor.execute(routines.drop_sql(resource, _temp_macro(key)))
            del ctx.temp_functions[key]
            raise
        done.ddl_operation = "REPLACE" if existing else "CREATE"
        return done

    # --- statements -------------------------------------------------------------------------

    def _execute(self, tree: exp.Expression, ctx: _Context) -> Result:
        if isinstance(tree, (exp.Query,)):
            return self._select(tree, ctx)
        if isinstance(tree, exp.Create) and tree.kind == "SCHEMA":
            return self._create_schema(tree, ctx)
        if isinstance(tree, exp.Drop) and tree.kind == "SCHEMA":
            return self._drop_schema(tree, ctx)
        if isinstance(tree, exp.Create) and tree.kind in ("TABLE", "VIEW"):
            return self._create_table(tree, ctx)
        if isinstance(tree, exp.Drop) and tree.kind in ("TABLE", "VIEW"):
            return self._drop_table(tree, ctx)
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.TruncateTable)):
            return self._dml(tree, ctx)
        if isinstance(tree, exp.Alter) and tree.kind == "TABLE":
            return self._alter(tree, ctx)
        if isinstance(tree, exp.Declare):
            return self._declare(tree, ctx)
        if isinstance(tree, exp.Set):
            return self._set(tree, ctx)
        if isinstance(tree, exp.Command):  # parsed but not modelled: EXPORT DATA, GRANT, ...
            raise unsupported(f"The statement {tree.name.upper()}")
        first = (tree.sql("bigquery").split() or ["?"])[0]
        raise invalid_query(f'Syntax error: Unexpected identifier "{first}" at [1:1]')

    def _run(self, tree: exp.Expression, ctx: _Context, scope: Scope | None = None):
        scope = scope or self._scope(ctx)
        sql = to_duckdb(tree, scope)
        for name, table in scope.relations.items():
            ctx.cursor.register(name, table)
        try:
            return scope, sql, self._duck(ctx.cursor, sql)
        finally:
            for name in scope.relations:
                ctx.cursor.unregister(name)

    @staticmethod
    def _duck(cursor: duckdb.DuckDBPyConnection, sql: str):
        try:
            rel = cursor.sql(sql)
            if rel is None:
                return None
            return arrow_rows.to_arrow(rel)
        except duckdb.Error as exc:
            raise duck_error(exc) from exc

    def _select(self, tree: exp.Expression, ctx: _Context, scope: Scope | None = None) -> Result:
        columns_used = _columns_used(tree)
        scope, _, (columns, types, table) = self._run(tree, ctx, scope)
        return Result("SELECT", table=table, fields=bqschema.fields(columns, types),
                      duck_types=types, bytes_processed=self._bytes(scope, columns_used))

    def _dry_run(self, tree: exp.Expression, ctx: _Context) -> Result:
        columns_used = _columns_used(tree)
        scope = self._scope(ctx)
        kind = _statement_type(tree)
        if isinstance(tree, exp.Query):
            sql = to_duckdb(tree, scope)
            for name, table in scope.relations.items():
                ctx.cursor.register(name, table)
            try:
                rel = ctx.cursor.sql(f"SELECT * FROM ({sql}) LIMIT 0")
                fields = bqschema.fields(rel.columns, rel.types)
            except duckdb.Error as exc:
                raise duck_error(exc) from exc
            finally:
                for name in scope.relations:
                    ctx.cursor.unregister(name)
            return Result(kind, fields=fields, bytes_processed=self._bytes(scope, columns_used))
        if not (isinstance(tree, (exp.Create, exp.Drop)) and tree.kind == "SCHEMA"):
            to_duckdb(tree, scope)
        return Result(kind, bytes_processed=self._bytes(scope, columns_used))

    def _bytes(self, scope: Scope, columns_used: set[str] | None) -> int:
        total = 0
        for project, dataset, table in dict.fromkeys(scope.read_tables):
            for column, size in self.wh.column_bytes(project, dataset, table).items():
                if columns_used is None or column.lower() in columns_used:
                    total += size
        return total

    def _dataset_ref(self, tree: exp.Create | exp.Drop, ctx: _Context) -> tuple[str, str]:
        target = tree.this if isinstance(tree, exp.Create) else drop_target(tree)
        # `project.dataset` in one pair of backticks is one identifier holding both names
        parts = [name for p in target.parts for name in p.name.split(".")] \
            if isinstance(target, exp.Table) else []
        if not parts:
            raise invalid_query("Syntax error: Expected a dataset name")
        project = parts[-2] if len(parts) >= 2 else ctx.project
        dataset = parts[-1]
        if project == PUBLIC_PROJECT:
            from labkit.bigquery.errors import access_denied
            raise access_denied(f"Dataset {project}:{dataset}: the public datasets are "
                                "read-only.")
        return project, dataset

    def _session_dataset(self, session: sessions.Session) -> None:
        """The hidden dataset that holds a session's temporary tables, made on first use."""
        if self.wh.dataset_exists(session.project, session.dataset):
            return
        with self.wh.write() as cur:
            cur.execute("CREATE SCHEMA IF NOT EXISTS "
                        f"{bqschema.quote(schema_name(session.project, session.dataset))}")
            self.wh.set_dataset_meta(cur, session.project, session.dataset, {
                "creationTime": now_ms(), "lastModifiedTime": now_ms(),
                "location": session.location})

    def _create_schema(self, tree: exp.Create, ctx: _Context) -> Result:
        project, dataset = self._dataset_ref(tree, ctx)
        target = {"projectId": project, "datasetId": dataset}
        if self.wh.dataset_exists(project, dataset):
            if tree.args.get("exists"):
                return Result("CREATE_SCHEMA", ddl_operation="SKIP", ddl_target_dataset=target)
            raise duplicate("Dataset", f"{project}:{dataset}")
        validate_dataset_id(dataset)
        ctx.cursor.execute(f"CREATE SCHEMA {bqschema.quote(schema_name(project, dataset))}")
        meta = {"creationTime": now_ms(), "lastModifiedTime": now_ms(), **_options(tree)}
        meta["location"] = locations.dataset_location(meta.get("location"))
        self.wh.set_dataset_meta(ctx.cursor, project, dataset, meta)
        return Result("CREATE_SCHEMA", ddl_operation="CREATE", ddl_target_dataset=target)

    def _drop_schema(self, tree: exp.Drop, ctx: _Context) -> Result:
        project, dataset = self._dataset_ref(tree, ctx)
        target = {"projectId": project, "datasetId": dataset}
        if not self.wh.dataset_exists(project, dataset):
            if tree.args.get("exists"):
                return Result("DROP_SCHEMA", ddl_operation="SKIP", ddl_target_dataset=target)
            raise not_found("Dataset", f"{project}:{dataset}")
        self.drop_dataset(ctx.cursor, project, dataset, bool(tree.args.get("cascade")))
        return Result("DROP_SCHEMA", ddl_operation="DROP", ddl_target_dataset=target)

    def drop_dataset(self, cursor, project: str, dataset: str, contents: bool) -> None:
        """Drops a dataset (with its tables and models when `contents`)."""
        models = self._models(project, dataset)
        if (self.wh.tables(project, dataset) or models or self.wh.routines(project, dataset)) \
                and not contents:
            raise BigQueryError(f"Dataset {project}:{dataset} is still in use", "resourceInUse")
        cursor.execute(f"DROP SCHEMA {bqschema.quote(schema_name(project, dataset))} CASCADE")
        self.wh.drop_dataset_meta(cursor, project, dataset)
        if models:
            self.ml_engine(required=True).drop_dataset(project, dataset)

    def _models(self, project: str, dataset: str) -> list:
        ml = self.ml_engine(required=False) if (self.models_root.exists()) else None
        if ml is None:
            return []
        try:
            return ml.list_models(project, dataset)
        except Exception:  # noqa: BLE001 - a broken model store must not block dataset drops
            return []

    def _create_table(self, tree: exp.Create, ctx: _Context) -> Result:
        props = tree.args.get("properties")
        if props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions):
            return self._create_temp_table(tree, ctx)
        scope = self._scope(ctx)
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        project, dataset, name = table_parts(target, scope)
        existing = self.wh.table_kind(project, dataset, name) \
            if self.wh.dataset_exists(project, dataset) else None
        ref = {"projectId": project, "datasetId": dataset, "tableId": name}
        is_view = tree.kind == "VIEW"
        kind = "CREATE_VIEW" if is_view else (
            "CREATE_TABLE_AS_SELECT" if tree.expression else "CREATE_TABLE")
        if existing and tree.args.get("exists"):
            return Result(kind, ddl_operation="SKIP", ddl_target_table=ref)
        if existing and not tree.args.get("replace"):
            raise duplicate("Table", f"{project}:{dataset}.{name}")
        if existing and existing != tree.kind:  # OR REPLACE across kinds: drop the other
            ctx.cursor.execute(f"DROP {existing} {self.wh.ref(project, dataset, name)}")
        extra = _options(tree)
        if is_view:
            extra["view"] = {"query": tree.expression.sql("bigquery"), "useLegacySql": False}
        if not is_view and (declared := ddl.declared_fields(tree)):
            extra["schema"] = {"fields": declared}  # STRING(10), NUMERIC(9, 2)...
        default_mode = None if is_view else extra.get("defaultRoundingMode") or \
            self.wh.dataset_meta(project, dataset).get("defaultRoundingMode")
        column_modes = rounding.column_options(tree)  # v NUMERIC OPTIONS(rounding_mode=...)
        if rounding.HALF_EVEN in (default_mode, *column_modes.values()) and \
                tree.expression is not None and isinstance(tree.this, exp.Schema):
            raise unsupported("CREATE TABLE (columns) AS query in a dataset whose "
                              "defaultRoundingMode is ROUND_HALF_EVEN")
        columns_used = _columns_used(tree.expression) if tree.expression else set()
        self._run_create(tree, ctx, scope)
        if default_mode or column_modes:  # the new table inherits its dataset's mode
            if default_mode:
                extra["defaultRoundingMode"] = default_mode
            fields = [{**f, "roundingMode": column_modes[f["name"].lower()]}
                      if f["name"].lower() in column_modes else f
                      for f in (extra.get("schema") or {}).get("fields") or []]
            named = {f["name"].lower() for f in fields}
            columns, types = self.wh.columns(project, dataset, name)
            fields = fields + [f for f in bqschema.fields(columns, types)
                               if f["name"].lower() not in named]
            fields = [{**f, "roundingMode": column_modes[f["name"].lower()]}
                      if f["name"].lower() in column_modes else f for f in fields]
            rounding.check_fields(fields)
            extra["schema"] = {"fields": [
                {k: v for k, v in f.items() if k != "mode"}
                for f in rounding.inherit(fields, default_mode)]}
        self.wh.touch_table(ctx.cursor, project, dataset, name, created=True, extra=extra)
        return Result(kind, ddl_operation="REPLACE" if existing else "CREATE",
                      ddl_target_table=ref, bytes_processed=self._bytes(scope, columns_used))

    def _create_temp_table(self, tree: exp.Create, ctx: _Context) -> Result:
        """CREATE TEMP TABLE in a script: a DuckDB temporary table, unqualified, dropped when
        the script ends."""
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if len(target.parts) != 1:
            raise invalid_query("Temporary tables may not be qualified")
        name = target.name
        ctx.temp_tables.add(name.lower())
        kind = "CREATE_TABLE_AS_SELECT" if tree.expression else "CREATE_TABLE"
        self._run_create(tree, ctx)
        return Result(kind, ddl_operation="CREATE")

    def _run_create(self, tree: exp.Create, ctx: _Context, scope: Scope | None = None) -> None:
        """CREATE TABLE, with CREATE TABLE t (column list) AS query as BigQuery runs it (DuckDB
        takes no column list there): the table from its list, then the query's rows by
        position."""
        query = tree.expression
        if not (query is not None and isinstance(tree.this, exp.Schema)
                and any(isinstance(c, exp.ColumnDef) for c in tree.this.expressions)):
            self._run(tree, ctx, scope)
            return
        tree.set("expression", None)
        target = tree.this.this.copy()
        self._run(tree, ctx, scope)
        self._run(exp.Insert(this=target, expression=query), ctx, scope)

    def _drop_table(self, tree: exp.Drop, ctx: _Context) -> Result:
        scope = self._scope(ctx)
        project, dataset, name = table_parts(drop_target(tree), scope)
        ref = {"projectId": project, "datasetId": dataset, "tableId": name}
        kind = "DROP_VIEW" if tree.kind == "VIEW" else "DROP_TABLE"
        existing = self.wh.table_kind(project, dataset, name) \
            if self.wh.dataset_exists(project, dataset) else None
        if existing is None:
            if tree.args.get("exists"):
                return Result(kind, ddl_operation="SKIP", ddl_target_table=ref)
            raise not_found("Table", f"{project}:{dataset}.{name}")
        if existing != tree.kind:
            raise invalid_query(f"{project}:{dataset}.{name} is a {existing}, not a {tree.kind}; "
                                f"use DROP {existing}")
        self._run(tree, ctx, scope)
        self.wh.set_table_meta(ctx.cursor, project, dataset, name, None)
        return Result(kind, ddl_operation="DROP", ddl_target_table=ref)

    def _dml(self, tree: exp.Expression, ctx: _Context) -> Result:
        scope = self._scope(ctx)
        columns_used = _columns_used(tree)
        kind = _statement_type(tree)
        target = tree.expressions[0] if isinstance(tree, exp.TruncateTable) else tree.this
        target = target.this if isinstance(target, exp.Schema) else target
        temporary = len(target.parts) == 1 and target.name.lower() in ctx.temp_tables
        if temporary:  # the script's own table, by its bare name
            project, dataset, name = None, None, target.name
        else:
            project, dataset, name = table_parts(target, scope)
            if self.wh.dataset_exists(project, dataset) and \
                    self.wh.table_kind(project, dataset, name) is None:
                raise not_found("Table", f"{project}:{dataset}.{name}")
            if self.wh.dataset_exists(project, dataset):  # ROUND_HALF_EVEN columns
                half_even = rounding.half_even_columns(self.wh, project, dataset, name)
                if half_even:
                    rounding.rewrite_dml(tree, half_even,
                                         self.wh.columns(project, dataset, name)[0])
        if isinstance(tree, exp.TruncateTable):
            to_duckdb(tree, scope)
            count = self._count(ctx.cursor, "DELETE FROM " + (
                exp.to_identifier(name).sql("duckdb") if temporary
                else self.wh.ref(project, dataset, name)))
        else:
            sql = to_duckdb(tree, scope)
            if not temporary and isinstance(tree, (exp.Insert, exp.Update)):
                sql = marked_dml.dml_sql(sql, *self.wh.columns(project, dataset, name))
            for rel_name, table in scope.relations.items():
                ctx.cursor.register(rel_name, table)
            try:
                count = self._count(ctx.cursor, sql)
            finally:
                for rel_name in scope.relations:
                    ctx.cursor.unregister(rel_name)
        if not temporary:
            self.wh.touch_table(ctx.cursor, project, dataset, name)
        stats = {"INSERT": "insertedRowCount", "UPDATE": "updatedRowCount",
                 "DELETE": "deletedRowCount", "TRUNCATE_TABLE": "deletedRowCount"}.get(kind)
        return Result(kind, affected_rows=count,
                      dml_stats={stats: str(count)} if stats else None,
                      bytes_processed=self._bytes(scope, columns_used))

    @staticmethod
    def _count(cursor, sql: str) -> int:
        try:
            rows = cursor.execute(sql).fetchall()
            row = rows[0] if rows else None
        except duckdb.Error as exc:
            raise duck_error(exc) from exc
        return int(row[0]) if row else 0

    def _alter(self, tree: exp.Alter, ctx: _Context) -> Result:
        scope = self._scope(ctx)
        project, dataset, name = table_parts(tree.this, scope)
        if self.wh.table_kind(project, dataset, name) is None:
            raise not_found("Table", f"{project}:{dataset}.{name}")
        sql = to_duckdb(tree, scope)
        self._count(ctx.cursor, sql)
        self.wh.touch_table(ctx.cursor, project, dataset, name)
        return Result("ALTER_TABLE", ddl_operation="ALTER",
                      ddl_target_table={"projectId": project, "datasetId": dataset,
                                        "tableId": name})

    def _declare(self, tree: exp.Declare, ctx: _Context) -> Result:
        for item in tree.expressions:
            names = item.this if isinstance(item.this, list) else [item.this]
            kind = item.args.get("kind")
            default = item.args.get("default") or None
            type_sql = kind.sql("duckdb") if kind is not None else None
            if kind is not None and geography.is_geography_type(kind):
                type_sql = geography.DUCK_TYPE
            value = expression_to_duckdb(default.sql("bigquery"), self._scope(ctx)) \
                if default is not None else "NULL"
            if type_sql:
                value = f"CAST({value} AS {type_sql})"
            for ident in names:
                name = ident.name.lower()
                if name in ctx.variables:
                    raise invalid_query(f"Variable '{name}' is already declared")
                self._count(ctx.cursor, f"SET VARIABLE {bqschema.quote(name)} = {value}")
                ctx.variables.add(name)
        return Result("DECLARE")

    def _set(self, tree: exp.Set, ctx: _Context) -> Result:
        for item in tree.expressions:
            assignment = item.this
            if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
                raise unsupported("This form of SET")
            name = assignment.this.name.lower()
            if name not in ctx.variables:
                raise invalid_query(f"Undeclared variable: {name}")
            value = expression_to_duckdb(assignment.expression.sql("bigquery"), self._scope(ctx))
            self._count(ctx.cursor, f"SET VARIABLE {bqschema.quote(name)} = {value}")
        return Result("ASSIGNMENT")

    # --- BigQuery ML ------------------------------------------------------------------------

    def ml_engine(self, required: bool):
        with self._ml_lock:
            if self._ml is None and self._ml_error is None:
                try:
                    from labkit.bigquery.ml import MLEngine
                    self._ml = MLEngine(self.models_root, self._ml_run_query,
                                        scalar_function=self._ml_scalar_function,
                                        **self.ml_services)
                except Exception as exc:  # noqa: BLE001 - any import failure means "absent"
                    self._ml_error = f"{type(exc).__name__}: {exc}"
        if self._ml is None and required:
            raise BigQueryError("BigQuery ML is not available in this build"
                                f" ({self._ml_error})", "invalidQuery")
        return self._ml

    def _ml_run_query(self, sql: str, relations: dict | None = None) -> pa.Table:
        """The ML engine's way to read data: a BigQuery SELECT in the current statement's
        project, dataset and transaction (`relations`: ML results the SELECT names)."""
        ctx: _Context = self._local.ctx
        tree = parse(sql)
        if not isinstance(tree, exp.Query):
            raise invalid_query("Only SELECT queries can feed a model")
        scope = self._scope(ctx)
        scope.relations.update(relations or {})
        return self._select(tree, ctx, scope).table

    def _ml_scalar_function(self, name: str, function, return_type: str) -> None:
        """A Python function over a STRING column, callable by name until the statement
        ends (batches of rows as Arrow arrays)."""
        ctx: _Context = self._local.ctx
        ctx.cursor.create_function(name, function, ["VARCHAR"], duckdb.sqltype(return_type),
                                   type="arrow", null_handling="special", side_effects=True)
        ctx.functions.append(name)

    def _run_ml(self, ml, text: str, ctx: _Context) -> Result:
        from labkit.bigquery.ml import MLError

        self._local.ctx = ctx
        own = not ctx.in_transaction  # a read-only snapshot of its own (no write lock)
        if own:
            ctx.cursor.begin()
        try:
            outcome = ml.execute(text, ctx.project, ctx.dataset)
            result = self._ml_result(outcome, ctx)
            if own:
                ctx.cursor.commit()
            return result
        except MLError as exc:
            if own:
                ctx.cursor.rollback()
            raise BigQueryError(str(getattr(exc, "message", None) or exc),
                                getattr(exc, "reason", "invalidQuery") or "invalidQuery",
                                "query") from exc
        except BaseException:
            if own:
                ctx.cursor.rollback()
            raise
        finally:
            while ctx.functions:
                ctx.cursor.remove_function(ctx.functions.pop())
            self._local.ctx = None

    def _ml_result(self, outcome, ctx: _Context) -> Result:
        if outcome.statement_type == "EXPORT_MODEL":
            return Result("EXPORT_MODEL")
        if outcome.statement_type.endswith("_VECTOR_INDEX"):
            return Result(outcome.statement_type, ddl_operation=outcome.operation)
        if outcome.statement_type != "SELECT":
            ref = outcome.model_ref or {}
            target = {"projectId": ref.get("projectId"), "datasetId": ref.get("datasetId"),
                      "tableId": ref.get("modelId")} if ref else None
            operation = "DROP" if outcome.statement_type == "DROP_MODEL" else "CREATE"
            return Result(outcome.statement_type, ddl_operation=operation,
                          ddl_target_table=target)
        if outcome.rewritten_sql:
            scope = self._scope(ctx)
            scope.relations.update(outcome.relations or {})
            result = self._select(parse(outcome.rewritten_sql), ctx, scope)
        else:
            result = self.arrow_result(outcome.table, ctx.cursor)
        result.statistics = outcome.statistics
        return result

    @staticmethod
    def arrow_result(table: pa.Table, cursor) -> Result:
        """Wraps an arrow table as a SELECT result with BigQuery field types."""
        name = f"__arrow_{threading.get_ident()}_{time.monotonic_ns()}"
        cursor.register(name, table)
        try:
            rel = cursor.sql(f"SELECT * FROM {name} LIMIT 0")
            columns, types = rel.columns, rel.types
        finally:
            cursor.unregister(name)
        return Result("SELECT", table=table, fields=bqschema.fields(columns, types),
                      duck_types=types)


# --- helpers ------------------------------------------------------------------------------

_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def validate_dataset_id(dataset: str) -> None:
    if not _DATASET_ID.match(dataset):
        raise BigQueryError(f"Invalid dataset ID \"{dataset}\". Dataset IDs must be "
                            "alphanumeric (plus underscores) and must be at most 1024 "
                            "characters long.", "invalid")


def _temp_macro(name: str) -> str:
    return f"temp.main.{bqschema.quote(routines.TEMP_PREFIX + name.lower())}"


def _locate(exc: BigQueryError, text: str) -> None:
    """Adds BigQuery's " at [line:column]" to an unrecognized name, found in the user's SQL
    (DuckDB's positions refer to the translated SQL)."""
    match = re.match(r"(Unrecognized name|Function not found|Table-valued function not "
                     r"found): ([\w.]+)$", exc.message)
    if not match:
        return
    found = re.search(rf"(?<![\w.`]){re.escape(match.group(2))}(?!\w)", text, re.IGNORECASE)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
        exc.message = f"{exc.message} at [{line}:{column}]"
        exc.args = (exc.message,)


def _is_begin(tree: exp.Expression) -> bool:
    """BEGIN TRANSACTION, or BEGIN alone (sqlglot reads that as a command)."""
    return isinstance(tree, exp.Transaction) or (
        isinstance(tree, exp.Command) and tree.name.upper() == "BEGIN"
        and not str(tree.expression or "").strip())


def _not_in_transaction(what: str) -> BigQueryError:
    return invalid_query(f"{what} is not supported inside a transaction: transactions "
                         "support SELECT, DML (INSERT, UPDATE, DELETE, MERGE, TRUNCATE TABLE) "
                         "and DDL on temporary tables")


def _check_transactional(tree: exp.Expression) -> None:
    """Statements a multi-statement transaction accepts (docs: "Multi-statement
    transactions": SELECT, DML, DDL on temporary entities; no DDL on permanent ones)."""
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.TruncateTable,
                         exp.Declare, exp.Set)):
        return
    if isinstance(tree, exp.Create) and tree.kind == "TABLE":
        props = tree.args.get("properties")
        if props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions):
            return
    raise _not_in_transaction(f"The statement {_statement_type(tree).replace('_', ' ')}")


def _looks_like_ml(text: str) -> bool:
    return bool(re.search(r"\b(CREATE|DROP)\b[\w\s]*\bMODEL\b|\bML\s*\.\s*\w+\s*\(", text,
                          re.IGNORECASE))


def _options(tree: exp.Expression) -> dict:
    """OPTIONS(description=..., friendly_name=..., labels=...) -> resource fields."""
    out = {}
    props = tree.args.get("properties")
    for prop in props.expressions if props else []:
        if isinstance(prop, exp.Property) and isinstance(prop.args.get("value"), exp.Literal):
            key, value = prop.name.lower(), prop.args["value"].this
            if key == "description":
                out["description"] = value
            elif key == "friendly_name":
                out["friendlyName"] = value
            elif key == "default_rounding_mode":
                rounding.check(value, "default_rounding_mode")
                out["defaultRoundingMode"] = value
        elif isinstance(prop, exp.LocationProperty) and isinstance(prop.this, exp.Literal):
            out["location"] = prop.this.this
    return out


def _columns_used(tree: exp.Expression | None) -> set[str] | None:
    """Lower-case column names a statement reads; None means all (SELECT *)."""
    if tree is None:
        return set()
    if any(True for _ in tree.find_all(exp.Star)):
        return None
    return {c.name.lower() for c in tree.find_all(exp.Column)}


def _statement_type(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Query):
        return "SELECT"
    if isinstance(tree, exp.Create):
        if tree.kind == "SCHEMA":
            return "CREATE_SCHEMA"
        if tree.kind == "VIEW":
            return "CREATE_VIEW"
        return "CREATE_TABLE_AS_SELECT" if tree.expression else "CREATE_TABLE"
    if isinstance(tree, exp.Drop):
        return f"DROP_{tree.kind}" if tree.kind in ("SCHEMA", "TABLE", "VIEW") else "DROP"
    if isinstance(tree, exp.TruncateTable):
        return "TRUNCATE_TABLE"
    if isinstance(tree, exp.Alter):
        return "ALTER_TABLE"
    return type(tree).__name__.upper()


_UNRECOGNIZED = re.compile(r'Referenced column "?([^"\s]+)"? (?:was )?not found')
_DIVISION_BY_ZERO = re.compile(r"Division by zero in expression (.*?)\. Use TRY", re.DOTALL)
_NO_FUNCTION = re.compile(r"(?:Scalar|Aggregate|Table) Function with name \"?(\w+)\"? does not "
                          r"exist", re.IGNORECASE)


def duck_error(exc: duckdb.Error) -> BigQueryError:
    """DuckDB's failure as BigQuery's invalidQuery, with BigQuery's wording where known."""
    text = str(exc).split("\n")[0]
    text = re.sub(r"^[A-Za-z ]+ Error: ", "", text)
    if bignumeric.FIELD in text:  # a full-precision BIGNUMERIC where DuckDB computes
        return unsupported("Arithmetic, casts and aggregates other than MIN, MAX and COUNT of "
                           "a full-precision BIGNUMERIC column (76 digits; declare it "
                           "BIGNUMERIC(38, S) to compute on it locally)")
    if timestamp_picos.FIELD in text:
        return unsupported("Functions, arithmetic and casts of a picosecond TIMESTAMP "
                           "(TIMESTAMP(12)) value other than comparing, sorting, MIN and MAX")
    from labkit.bigquery.geography import udf_error

    geography_error = udf_error(text)  # raised by a UDF behind an ST_* function
    if geography_error is not None:
        return geography_error
    match = _UNRECOGNIZED.search(text)
    if match:
        return invalid_query(f"Unrecognized name: {match.group(1)}")
    match = _NO_FUNCTION.search(text)
    if match:
        return invalid_query(f"Function not found: {match.group(1)}")
    match = _DIVISION_BY_ZERO.search(text)
    if match:  # BigQuery: "division by zero: 1 / 0"
        operands = re.sub(r"(?<![\w.])(\d+)\.0+(?![\d.])", r"\1", match.group(1))
        operands = re.sub(r"^\((.*)\)$", r"\1", operands.strip())
        return invalid_query(f"division by zero: {operands}")
    if isinstance(exc, duckdb.ParserException):
        return invalid_query(f"Syntax error: {text}")
    if isinstance(exc, duckdb.CatalogException) and "does not exist" in text:
        return invalid_query(text)
    return invalid_query(text)
