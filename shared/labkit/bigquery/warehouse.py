"""Storage and catalog: one DuckDB file holds every dataset, table and view.

A BigQuery dataset `project.dataset` is the DuckDB schema "project.dataset"; its tables
and views are DuckDB tables and views. What DuckDB does not keep (descriptions, labels,
friendly names, expirations, field descriptions and modes, a view's BigQuery SQL) lives in
the schema "__labkit" of the same file, so metadata and data change in one transaction.
Only the services process opens the file (DuckDB allows one writer process).

Writes are serialised: every write transaction holds the warehouse's write lock from
BEGIN to COMMIT (`Warehouse.write`), as BigQuery serialises DML on a table and queues
concurrent inserts; DuckDB's optimistic concurrency would otherwise fail one of two
concurrent writers ("Conflict on tuple deletion!"). Reads take no lock (snapshots).

The database cannot reach the host: external access is off (no file, extension or network
access from SQL) except for the service's own scratch folders, where the service itself
stages loads and extracts; then the configuration is locked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import farmhash
import pyarrow as pa

from labkit.bigquery import bignumeric, geography, timestamp_picos
from labkit.bigquery import schema as bqschema
from labkit.bigquery.sql.translate import PUBLIC_PROJECT, schema_name

# BigQuery tables may have no schema (tables.insert without one, given one later by a patch
# or a load); a DuckDB table needs a column: such a table holds only this one, never shown.
NO_SCHEMA = "__labkit_no_schema"
META = "__labkit"
LOCATION = "US"


def now_ms() -> int:
    return int(time.time() * 1000)


def _farm_fingerprint(value: str) -> int:
    # BigQuery returns the signed INT64 reading of FarmHash Fingerprint64.
    result = farmhash.fingerprint64(value)
    return result - (1 << 64) if result >= 1 << 63 else result


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Warehouse:
    """The DuckDB database plus the catalog questions the SQL layer and the REST API ask."""

    def __init__(self, path: Path, scratch_dirs: list[Path] | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        #: folders where the service stages files for DuckDB (uploads, load and extract
        #: staging): the only paths the database may read or write besides its own file
        self.scratch_dirs = [Path(d).resolve() for d in (
            scratch_dirs or [path.parent / "uploads", path.parent / "tmp"])]
        for folder in self.scratch_dirs:
            folder.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(str(path))
        self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {META}")
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {META}.datasets "
                        "(project VARCHAR, dataset VARCHAR, resource VARCHAR)")
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {META}.tables "
                        "(project VARCHAR, dataset VARCHAR, table_id VARCHAR, resource VARCHAR)")
        # routines (user-defined functions): their REST resources; each is also a DuckDB
        # macro in its dataset's schema (labkit.bigquery.routines)
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {META}.routines "
                        "(project VARCHAR, dataset VARCHAR, routine_id VARCHAR, "
                        "resource VARCHAR)")
        self.db.create_function("farm_fingerprint", _farm_fingerprint, ["VARCHAR"], "BIGINT")
        bignumeric.register(self.db)
        timestamp_picos.register(self.db)
        geography.register(self.db)  # the UDFs behind the ST_* functions
        self._confine()
        self._local = threading.local()
        self._write_lock = threading.RLock()
        #: (project, dataset, table) -> the Arrow rows of a query's anonymous destination
        #: table, or None: set by the BigQuery service, which keeps query results
        self.query_results = lambda project, dataset, table: None

    def _confine(self) -> None:
        """BigQuery's semantics and no way out: UTC, errors instead of IEEE infinities
        (BigQuery's `/` raises "division by zero"), no file system, extensions or network
        from SQL, and a configuration no statement can change."""
        locked = self.db.execute("SELECT current_setting('lock_configuration')").fetchone()[0]
        if locked:  # the same file opened again in this process: one DuckDB instance
            return
        allowed = ", ".join(_sql_str(str(d) + "/") for d in self.scratch_dirs)
        for statement in ("SET GLOBAL TimeZone = 'UTC'",
                          "SET GLOBAL ieee_floating_point_ops = false",
                          "SET GLOBAL error_on_division_by_zero = true",
                          "SET GLOBAL autoinstall_known_extensions = false",
                          "SET GLOBAL autoload_known_extensions = false",
                          f"SET GLOBAL allowed_directories = [{allowed}]",
                          "SET GLOBAL enable_external_access = false",
                          "SET GLOBAL lock_configuration = true"):
            self.db.execute(statement)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of this thread's own (DuckDB connections are not thread-safe)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.db.cursor()
        return cur

    # --- writes ---------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction, serialised with every other writer: yields this thread's
        cursor inside BEGIN; commits on success, rolls back on any error. Nested inside an
        open write (a multi-statement transaction), it joins the outer transaction."""
        cur = self.cursor()
        with self._write_lock:
            if getattr(self._local, "writing", False):
                yield cur
                return
            cur.begin()
            self._local.writing = True
            try:
                yield cur
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise
            finally:
                self._local.writing = False

    def begin_transaction(self) -> duckdb.DuckDBPyConnection:
        """BEGIN TRANSACTION of a script: takes the write lock until end_transaction."""
        self._write_lock.acquire()
        cur = self.cursor()
        try:
            cur.begin()
        except BaseException:
            self._write_lock.release()
            raise
        self._local.writing = True
        return cur

    def end_transaction(self, commit: bool) -> None:
        """COMMIT (or ROLLBACK) the script's transaction and release the write lock."""
        cur = self.cursor()
        try:
            if commit:
                try:
                    cur.commit()
                except BaseException:
                    _rollback(cur)
                    raise
            else:
                _rollback(cur)
        finally:
            self._local.writing = False
            self._write_lock.release()

    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "writing", False))

    # --- catalog questions (the SQL layer's Catalog protocol) ---------------------------

    def datasets(self, project: str) -> list[str]:
        prefix = f"{project}."
        rows = self.cursor().execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() "
            "AND starts_with(schema_name, ?) ORDER BY schema_name", [prefix]).fetchall()
        return [r[0][len(prefix):] for r in rows]

    def dataset_exists(self, project: str, dataset: str) -> bool:
        return bool(self.cursor().execute(
            "SELECT 1 FROM duckdb_schemas() WHERE database_name = current_database() "
            "AND lower(schema_name) = lower(?)", [schema_name(project, dataset)]).fetchall())

    def tables(self, project: str, dataset: str) -> list[tuple[str, str]]:
        """[(table_id, 'TABLE' | 'VIEW')] in name order."""
        rows = self.cursor().execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND lower(table_schema) = lower(?) "
            "ORDER BY table_name", [schema_name(project, dataset)]).fetchall()
        return [(name, "VIEW" if kind == "VIEW" else "TABLE") for name, kind in rows]

    def table_kind(self, project: str, dataset: str, table: str) -> str | None:
        rows = self.cursor().execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND lower(table_schema) = lower(?) "
            "AND lower(table_name) = lower(?)", [schema_name(project, dataset), table]).fetchall()
        if not rows:
            return None
        return "VIEW" if rows[0][0] == "VIEW" else "TABLE"

    def tables_with_prefix(self, project: str, dataset: str, prefix: str) -> list[str]:
        return [name for name, kind in self.tables(project, dataset)
                if name.startswith(prefix) and kind == "TABLE"]

    def columns(self, project: str, dataset: str, table: str) -> tuple[list[str], list]:
        rel = self.cursor().sql(f"SELECT * FROM {self.ref(project, dataset, table)} LIMIT 0")
        if rel.columns == [NO_SCHEMA]:
            return [], []
        return rel.columns, rel.types

    @staticmethod
    def ref(project: str, dataset: str, table: str) -> str:
        return f"{bqschema.quote(schema_name(project, dataset))}.{bqschema.quote(table)}"

    # --- metadata -------------------------------------------------------------------------

    def dataset_meta(self, project: str, dataset: str) -> dict:
        rows = self.cursor().execute(
            f"SELECT resource FROM {META}.datasets WHERE project = ? AND dataset = ?",
            [project, dataset]).fetchall()
        return json.loads(rows[0][0]) if rows else {}

    def dataset_location(self, project: str, dataset: str) -> str:
        """Where the dataset lives (labkit.bigquery.locations); the public datasets and
        datasets made before locations were kept are in US."""
        return self.dataset_meta(project, dataset).get("location") or LOCATION

    def set_dataset_meta(self, cur, project: str, dataset: str, meta: dict | None) -> None:
        cur.execute(f"DELETE FROM {META}.datasets WHERE project = ? AND dataset = ?",
                    [project, dataset])
        if meta is not None:
            cur.execute(f"INSERT INTO {META}.datasets VALUES (?, ?, ?)",
                        [project, dataset, json.dumps(meta)])

    def table_meta(self, project: str, dataset: str, table: str) -> dict:
        rows = self.cursor().execute(
            f"SELECT resource FROM {META}.tables WHERE project = ? AND dataset = ? "
            "AND lower(table_id) = lower(?)", [project, dataset, table]).fetchall()
        return json.loads(rows[0][0]) if rows else {}

    def set_table_meta(self, cur, project: str, dataset: str, table: str,
                       meta: dict | None) -> None:
        cur.execute(f"DELETE FROM {META}.tables WHERE project = ? AND dataset = ? "
                    "AND lower(table_id) = lower(?)", [project, dataset, table])
        if meta is not None:
            cur.execute(f"INSERT INTO {META}.tables VALUES (?, ?, ?, ?)",
                        [project, dataset, table, json.dumps(meta)])

    def touch_table(self, cur, project: str, dataset: str, table: str, *,
                    created: bool = False, extra: dict | None = None) -> None:
        """Records creation/modification times (and any extra metadata) for a table."""
        meta = {} if created else self.table_meta(project, dataset, table)
        stamp = now_ms()
        meta.setdefault("creationTime", stamp)
        meta["lastModifiedTime"] = stamp
        meta.update(extra or {})
        self.set_table_meta(cur, project, dataset, table, meta)

    def routine(self, project: str, dataset: str, routine: str,
                exact: bool = False) -> dict | None:
        """A routine's REST resource, or None. SQL names a function in any case (as DuckDB's
        macro names are); the REST API by its exact id (exact=True)."""
        match = "routine_id = ?" if exact else "lower(routine_id) = lower(?)"
        rows = self.cursor().execute(
            f"SELECT resource FROM {META}.routines WHERE project = ? AND dataset = ? "
            f"AND {match}", [project, dataset, routine]).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def routines(self, project: str, dataset: str) -> list[dict]:
        rows = self.cursor().execute(
            f"SELECT resource FROM {META}.routines WHERE project = ? AND dataset = ? "
            "ORDER BY routine_id", [project, dataset]).fetchall()
        return [json.loads(r[0]) for r in rows]

    def set_routine(self, cur, project: str, dataset: str, routine: str,
                    resource: dict | None) -> None:
        cur.execute(f"DELETE FROM {META}.routines WHERE project = ? AND dataset = ? "
                    "AND lower(routine_id) = lower(?)", [project, dataset, routine])
        if resource is not None:
            cur.execute(f"INSERT INTO {META}.routines VALUES (?, ?, ?, ?)",
                        [project, dataset, routine, json.dumps(resource)])

    def drop_dataset_meta(self, cur, project: str, dataset: str) -> None:
        cur.execute(f"DELETE FROM {META}.tables WHERE project = ? AND dataset = ?",
                    [project, dataset])
        cur.execute(f"DELETE FROM {META}.routines WHERE project = ? AND dataset = ?",
                    [project, dataset])
        self.set_dataset_meta(cur, project, dataset, None)

    # --- sizes (numBytes, dry-run totalBytesProcessed) ------------------------------------

    def column_bytes(self, project: str, dataset: str, table: str) -> dict[str, int]:
        """Bytes per column as BigQuery counts them (8 per number, 2 + length per string)."""
        if self.table_kind(project, dataset, table) != "TABLE":
            return {}
        columns, types = self.columns(project, dataset, table)
        parts = []
        for name, t in zip(columns, types, strict=True):
            q = bqschema.quote(name)
            if t.id == "varchar":
                parts.append(f"coalesce(sum(octet_length(encode({q}::VARCHAR)) + 2), 0)")
            elif t.id == "blob":
                parts.append(f"coalesce(sum(octet_length({q}) + 2), 0)")
            elif t.id == "boolean":
                parts.append("count(*)")
            elif t.id in ("decimal",):
                parts.append("count(*) * 16")
            elif t.id in ("list", "struct", "map", "array"):
                parts.append(f"coalesce(sum(octet_length(encode(to_json({q})::VARCHAR))), 0)")
            else:
                parts.append("count(*) * 8")
        if not parts:
            return {}
        row = self.cursor().execute(
            f"SELECT {', '.join(parts)} FROM {self.ref(project, dataset, table)}").fetchall()[0]
        return {name: int(v) for name, v in zip(columns, row, strict=True)}

    def num_rows(self, project: str, dataset: str, table: str) -> int:
        return self.cursor().execute(
            f"SELECT count(*) FROM {self.ref(project, dataset, table)}").fetchall()[0][0]

    # --- INFORMATION_SCHEMA ---------------------------------------------------------------

    def information_schema(self, project: str, dataset: str | None, view: str) -> pa.Table:
        datasets = [dataset] if dataset else self.datasets(project)
        if view == "SCHEMATA":
            rows = [{"catalog_name": project, "schema_name": d, "schema_owner": None,
                     "creation_time": _ts(self.dataset_meta(project, d).get("creationTime")),
                     "last_modified_time": _ts(
                         self.dataset_meta(project, d).get("lastModifiedTime")),
                     "location": self.dataset_location(project, d), "ddl": None,
                     "default_collation_name": None}
                    for d in datasets]
            return _arrow(rows, _SCHEMATA)
        if view == "TABLES":
            rows = []
            for d in datasets:
                for name, kind in self.tables(project, d):
                    meta = self.table_meta(project, d, name)
                    rows.append({"table_catalog": project, "table_schema": d, "table_name": name,
                                 "table_type": "BASE TABLE" if kind == "TABLE" else "VIEW",
                                 "is_insertable_into": "YES" if kind == "TABLE" else "NO",
                                 "is_typed": "NO",
                                 "creation_time": _ts(meta.get("creationTime")),
                                 "ddl": None})
            return _arrow(rows, _TABLES)
        if view == "COLUMNS":
            rows = []
            for d in datasets:
                for name, _ in self.tables(project, d):
                    columns, types = self.columns(project, d, name)
                    for i, (column, t) in enumerate(zip(columns, types, strict=True), 1):
                        rows.append({
                            "table_catalog": project, "table_schema": d, "table_name": name,
                            "column_name": column, "ordinal_position": i,
                            "is_nullable": "YES", "data_type": standard_type(t),
                            "is_generated": "NEVER", "generation_expression": None,
                            "is_stored": None, "is_hidden": "NO", "is_updatable": None,
                            "is_system_defined": "NO", "is_partitioning_column": "NO",
                            "clustering_ordinal_position": None, "collation_name": "NULL",
                            "column_default": "NULL", "rounding_mode": None})
            return _arrow(rows, _COLUMNS)
        from labkit.bigquery.errors import unsupported
        raise unsupported(f"INFORMATION_SCHEMA.{view}")


def _rollback(cur) -> None:
    try:
        cur.rollback()
    except duckdb.Error:  # nothing left to roll back
        pass


def standard_type(t) -> str:
    """GoogleSQL type names as INFORMATION_SCHEMA.COLUMNS spells them."""
    if t.id in ("list", "array"):
        return f"ARRAY<{standard_type(t.children[0][1])}>"
    if t.id == "struct" and not bqschema.marked(t):  # a marked one is GEOGRAPHY, ...
        return "STRUCT<" + ", ".join(f"{n} {standard_type(c)}" for n, c in t.children) + ">"
    legacy = bqschema.bq_type(t)
    return {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}.get(legacy, legacy)


def _ts(ms: int | None):
    return None if ms is None else ms * 1000


_TS = pa.timestamp("us", tz="UTC")
_SCHEMATA = {"catalog_name": pa.string(), "schema_name": pa.string(),
             "schema_owner": pa.string(), "creation_time": _TS, "last_modified_time": _TS,
             "location": pa.string(), "ddl": pa.string(), "default_collation_name": pa.string()}
_TABLES = {"table_catalog": pa.string(), "table_schema": pa.string(), "table_name": pa.string(),
           "table_type": pa.string(), "is_insertable_into": pa.string(),
           "is_typed": pa.string(), "creation_time": _TS, "ddl": pa.string()}
_COLUMNS = {"table_catalog": pa.string(), "table_schema": pa.string(),
            "table_name": pa.string(), "column_name": pa.string(),
            "ordinal_position": pa.int64(), "is_nullable": pa.string(),
            "data_type": pa.string(), "is_generated": pa.string(),
            "generation_expression": pa.string(), "is_stored": pa.string(),
            "is_hidden": pa.string(), "is_updatable": pa.string(),
            "is_system_defined": pa.string(), "is_partitioning_column": pa.string(),
            "clustering_ordinal_position": pa.int64(), "collation_name": pa.string(),
            "column_default": pa.string(), "rounding_mode": pa.string()}


def _arrow(rows: list[dict], types: dict) -> pa.Table:
    return pa.table({name: pa.array([r[name] for r in rows], type=t)
                     for name, t in types.items()})


def is_public(project: str) -> bool:
    return project == PUBLIC_PROJECT
