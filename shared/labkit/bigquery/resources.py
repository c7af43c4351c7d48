"""Datasets and tables as REST resources: create, get, list, patch, delete (no HTTP here)."""

from __future__ import annotations

import hashlib
import json
import re

from labkit.bigquery import locations, rounding
from labkit.bigquery import schema as bqschema
from labkit.bigquery.engine import Engine, validate_dataset_id
from labkit.bigquery.errors import (
    LOCAL_ONLY_HINT,
    BigQueryError,
    access_denied,
    duplicate,
    invalid,
    not_found,
)
from labkit.bigquery.sql import ddl
from labkit.bigquery.sql.translate import PUBLIC_PROJECT, Scope, expression_to_duckdb, schema_name
from labkit.bigquery.warehouse import LOCATION, NO_SCHEMA, Warehouse, now_ms

_DATASET_FIELDS = ("description", "friendlyName", "labels", "defaultTableExpirationMs",
                   "defaultPartitionExpirationMs", "access", "defaultCollation",
                   "maxTimeTravelHours", "storageBillingModel", "isCaseInsensitive",
                   "defaultRoundingMode")
# tableConstraints: primary and foreign keys, which BigQuery keeps as metadata and does not
# enforce (NOT ENFORCED) https://cloud.google.com/bigquery/docs/primary-foreign-keys
_TABLE_FIELDS = ("description", "friendlyName", "labels", "expirationTime",
                 "timePartitioning", "rangePartitioning", "clustering",
                 "requirePartitionFilter", "tableConstraints", "defaultRoundingMode")


def _etag(resource: dict) -> str:
    return hashlib.md5(json.dumps(resource, sort_keys=True).encode()).hexdigest()[:16]


def _writable(project: str, what: str) -> None:
    if project == PUBLIC_PROJECT:
        raise access_denied(f"{what}: the public datasets are read-only.")


class Resources:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.wh: Warehouse = engine.wh

    # --- datasets -----------------------------------------------------------------------

    def dataset(self, project: str, dataset: str) -> dict:
        if not self.wh.dataset_exists(project, dataset):
            raise not_found("Dataset", f"{project}:{dataset}")
        meta = self.wh.dataset_meta(project, dataset)
        body = {
            "kind": "bigquery#dataset", "id": f"{project}:{dataset}",
            "datasetReference": {"projectId": project, "datasetId": dataset},
            "location": meta.get("location") or LOCATION, "type": "DEFAULT",
            "creationTime": str(meta.get("creationTime", 0)),
            "lastModifiedTime": str(meta.get("lastModifiedTime", 0)),
            **{k: meta[k] for k in _DATASET_FIELDS if k in meta},
        }
        body.setdefault("access", [])
        body["etag"] = _etag(body)
        body["selfLink"] = f"/bigquery/v2/projects/{project}/datasets/{dataset}"
        return body

    def list_datasets(self, project: str) -> list[dict]:
        out = []
        for dataset in self.wh.datasets(project):
            meta = self.wh.dataset_meta(project, dataset)
            item = {"kind": "bigquery#dataset", "id": f"{project}:{dataset}",
                    "datasetReference": {"projectId": project, "datasetId": dataset},
                    "location": meta.get("location") or LOCATION, "type": "DEFAULT"}
            for key in ("friendlyName", "labels"):
                if key in meta:
                    item[key] = meta[key]
            out.append(item)
        return out

    def create_dataset(self, project: str, body: dict) -> dict:
        ref = body.get("datasetReference") or {}
        dataset = ref.get("datasetId") or ""
        project = ref.get("projectId") or project
        _writable(project, f"Dataset {project}:{dataset}")
        validate_dataset_id(dataset)
        rounding.check(body.get("defaultRoundingMode"), "defaultRoundingMode")
        location = locations.dataset_location(body.get("location"))
        with self.wh.write() as cur:
            if self.wh.dataset_exists(project, dataset):
                raise duplicate("Dataset", f"{project}:{dataset}")
            cur.execute(f"CREATE SCHEMA {bqschema.quote(schema_name(project, dataset))}")
            meta = {k: body[k] for k in _DATASET_FIELDS if k in body}
            meta["location"] = location  # fixed for the dataset's life
            meta["creationTime"] = meta["lastModifiedTime"] = now_ms()
            self.wh.set_dataset_meta(cur, project, dataset, meta)
        return self.dataset(project, dataset)

    def patch_dataset(self, project: str, dataset: str, body: dict, replace: bool) -> dict:
        _writable(project, f"Dataset {project}:{dataset}")
        self.dataset(project, dataset)
        rounding.check((body or {}).get("defaultRoundingMode"), "defaultRoundingMode")
        with self.wh.write() as cur:
            self._patch_dataset_meta(cur, project, dataset, body, replace)
        return self.dataset(project, dataset)

    def _patch_dataset_meta(self, cur, project: str, dataset: str, body: dict,
                            replace: bool) -> None:
        meta = self.wh.dataset_meta(project, dataset)
        if replace:
            meta = {k: v for k, v in meta.items() if k not in _DATASET_FIELDS}
        for key in _DATASET_FIELDS:
            if key in body:
                if body[key] is None:
                    meta.pop(key, None)
                elif key == "labels" and not replace:
                    labels = {**meta.get("labels", {}), **body[key]}
                    meta["labels"] = {k: v for k, v in labels.items() if v is not None}
                else:
                    meta[key] = body[key]
        meta["lastModifiedTime"] = now_ms()
        self.wh.set_dataset_meta(cur, project, dataset, meta)

    def delete_dataset(self, project: str, dataset: str, contents: bool) -> None:
        _writable(project, f"Dataset {project}:{dataset}")
        if not self.wh.dataset_exists(project, dataset):
            raise not_found("Dataset", f"{project}:{dataset}")
        with self.wh.write() as cur:
            self.engine.drop_dataset(cur, project, dataset, contents)

    # --- tables -------------------------------------------------------------------------

    def _require_table(self, project: str, dataset: str, table: str) -> str:
        kind = self.wh.table_kind(project, dataset, table) \
            if self.wh.dataset_exists(project, dataset) else None
        if kind is None:
            if not self.wh.dataset_exists(project, dataset):
                raise not_found("Dataset", f"{project}:{dataset}")
            raise not_found("Table", f"{project}:{dataset}.{table}")
        stored = self._stored_name(project, dataset, table)
        if stored != table and not self._case_insensitive(project, dataset):
            raise not_found("Table", f"{project}:{dataset}.{table}")
        return kind

    def _case_insensitive(self, project: str, dataset: str) -> bool:
        """Table names are case-sensitive unless the dataset says isCaseInsensitive.
        https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets#Dataset"""
        return self.wh.dataset_meta(project, dataset).get("isCaseInsensitive") is True

    def _stored_name(self, project: str, dataset: str, table: str) -> str | None:
        return next((name for name, _ in self.wh.tables(project, dataset)
                     if name.lower() == table.lower()), None)

    def table(self, project: str, dataset: str, table: str) -> dict:
        kind = self._require_table(project, dataset, table)
        table = self._stored_name(project, dataset, table) or table  # as it was created
        meta = self.wh.table_meta(project, dataset, table)
        columns, types = self.wh.columns(project, dataset, table)
        body = {
            "kind": "bigquery#table", "id": f"{project}:{dataset}.{table}",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": _overlay(bqschema.fields(columns, types),
                                          (meta.get("schema") or {}).get("fields") or [])},
            "type": kind, "location": self.wh.dataset_location(project, dataset),
            "creationTime": str(meta.get("creationTime", 0)),
            "lastModifiedTime": str(meta.get("lastModifiedTime", 0)),
            **{k: meta[k] for k in _TABLE_FIELDS if k in meta},
        }
        for key in ("snapshotDefinition", "cloneDefinition"):  # made by copy jobs
            if key in meta:
                body[key] = meta[key]
        if "snapshotDefinition" in meta:
            body["type"] = "SNAPSHOT"
        if kind == "TABLE":
            sizes = self.wh.column_bytes(project, dataset, table)
            body["numRows"] = str(self.wh.num_rows(project, dataset, table))
            body["numBytes"] = str(sum(sizes.values()))
            body["numLongTermBytes"] = "0"
        else:
            body["view"] = meta.get("view") or {"query": "", "useLegacySql": False}
        body["etag"] = _etag(body)
        body["selfLink"] = f"/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}"
        return body

    def list_tables(self, project: str, dataset: str) -> list[dict]:
        if not self.wh.dataset_exists(project, dataset):
            raise not_found("Dataset", f"{project}:{dataset}")
        out = []
        for name, kind in self.wh.tables(project, dataset):
            meta = self.wh.table_meta(project, dataset, name)
            item = {"kind": "bigquery#table", "id": f"{project}:{dataset}.{name}",
                    "tableReference": {"projectId": project, "datasetId": dataset,
                                       "tableId": name},
                    "type": kind, "creationTime": str(meta.get("creationTime", 0))}
            for key in ("friendlyName", "labels", "expirationTime"):
                if key in meta:
                    item[key] = meta[key]
            if kind == "VIEW":
                item["view"] = {"useLegacySql": False}
            out.append(item)
        return out

    def create_table(self, project: str, dataset: str, body: dict) -> dict:
        ref = body.get("tableReference") or {}
        project = ref.get("projectId") or project
        dataset = ref.get("datasetId") or dataset
        table = ref.get("tableId") or ""
        _writable(project, f"Table {project}:{dataset}.{table}")
        if not table or any(c in table for c in '."`'):
            raise invalid(f"Invalid table ID \"{table}\".")
        if not self.wh.dataset_exists(project, dataset):
            raise not_found("Dataset", f"{project}:{dataset}")
        if body.get("externalDataConfiguration"):  # its data live outside BigQuery
            raise BigQueryError("External tables (externalDataConfiguration) are not supported "
                                f"by the local BigQuery. {LOCAL_ONLY_HINT}", "notImplemented")
        fields = (body.get("schema") or {}).get("fields") or []
        view = body.get("view")
        extra = {k: body[k] for k in _TABLE_FIELDS if k in body}
        # a new table takes its dataset's default rounding mode, its decimal fields the
        # table's (REST reference: Dataset.defaultRoundingMode, Table.defaultRoundingMode)
        rounding.check(extra.get("defaultRoundingMode"), "defaultRoundingMode")
        default_mode = extra.get("defaultRoundingMode") or \
            self.wh.dataset_meta(project, dataset).get("defaultRoundingMode")
        if default_mode and not view:
            extra["defaultRoundingMode"] = default_mode
        rounding.check_fields(fields)
        fields = rounding.inherit(fields, default_mode)
        if self.wh.table_kind(project, dataset, table):
            stored = self._stored_name(project, dataset, table)
            if stored != table and not self._case_insensitive(project, dataset):
                # BigQuery keeps both in a case-sensitive dataset; DuckDB's names ignore case
                raise BigQueryError(
                    f"Tables whose names differ only in case ({stored}, {table}) cannot both "
                    f"exist in the local BigQuery. {LOCAL_ONLY_HINT}", "notImplemented")
            raise duplicate("Table", f"{project}:{dataset}.{table}")
        if view:
            if view.get("useLegacySql"):
                raise invalid("Legacy SQL views are not supported by the local BigQuery. "
                              "It runs with LAB_BACKEND=gcp.")
            self.engine.run(f"CREATE VIEW `{project}.{dataset}.{table}` AS {view['query']}",
                            project=project, dataset=dataset)
            if extra:
                with self.wh.write() as cur:
                    self.wh.touch_table(cur, project, dataset, table, extra=extra)
            return self.table(project, dataset, table)
        bqschema.check_schema(fields)
        self._check_constraints(project, dataset, [f["name"] for f in fields],
                                body.get("tableConstraints"))
        with self.wh.write() as cur:
            if self.wh.table_kind(project, dataset, table):
                raise duplicate("Table", f"{project}:{dataset}.{table}")
            target = self.wh.ref(project, dataset, table)
            columns = ", ".join(
                f"{bqschema.quote(f['name'])} {bqschema.duck_type(f)}"
                + self._default(project, dataset, f) + ddl.length_check(f)
                + (" NOT NULL" if (f.get("mode") or "").upper() == "REQUIRED" else "")
                for f in fields)
            cur.execute(f"CREATE TABLE {target} ({columns or NO_SCHEMA + ' BOOLEAN'})")
            if fields:
                extra["schema"] = {"fields": fields}
            self.wh.touch_table(cur, project, dataset, table, created=True, extra=extra)
        return self.table(project, dataset, table)

    def _check_constraints(self, project: str, dataset: str, columns: list[str],
                           constraints: dict | None) -> None:
        """Keys must name columns that exist (here and in a foreign key's table)."""
        have = {c.lower() for c in columns}
        for name in ((constraints or {}).get("primaryKey") or {}).get("columns") or []:
            if name.lower() not in have:
                raise invalid(f"Primary key column {name} is not in the table's schema")
        for key in (constraints or {}).get("foreignKeys") or []:
            ref = key.get("referencedTable") or {}
            where = (ref.get("projectId") or project, ref.get("datasetId") or dataset,
                     ref.get("tableId") or "")
            if not self.wh.dataset_exists(*where[:2]) or not self.wh.table_kind(*where):
                raise not_found("Table", f"{where[0]}:{where[1]}.{where[2]}")
            theirs = {c.lower() for c in self.wh.columns(*where)[0]}
            for pair in key.get("columnReferences") or []:
                if (pair.get("referencingColumn") or "").lower() not in have or \
                        (pair.get("referencedColumn") or "").lower() not in theirs:
                    raise invalid(f"Foreign key {key.get('name') or ''} names a column that "
                                  f"does not exist: {pair}")

    def _default(self, project: str, dataset: str, f: dict) -> str:
        """A column's DEFAULT clause from its defaultValueExpression (BigQuery SQL): a row
        written without the column gets it (insertAll, INSERT, loads).
        https://cloud.google.com/bigquery/docs/default-values"""
        expression = f.get("defaultValueExpression")
        if not expression:
            return ""
        return f" DEFAULT ({expression_to_duckdb(expression, Scope(project, dataset, self.wh))})"

    def patch_table(self, project: str, dataset: str, table: str, body: dict,
                    replace: bool) -> dict:
        _writable(project, f"Table {project}:{dataset}.{table}")
        kind = self._require_table(project, dataset, table)
        if body.get("view") and kind == "VIEW":
            self.engine.run(f"CREATE OR REPLACE VIEW `{project}.{dataset}.{table}` AS "
                            f"{body['view']['query']}", project=project, dataset=dataset)
        if body.get("tableConstraints"):
            fields = (body.get("schema") or {}).get("fields")
            self._check_constraints(project, dataset, [f["name"] for f in fields] if fields
                                    else self.wh.columns(project, dataset, table)[0],
                                    body["tableConstraints"])
        with self.wh.write() as cur:
            meta = self.wh.table_meta(project, dataset, table)
            for key in _TABLE_FIELDS:
                if key in body:
                    if body[key] is None:
                        meta.pop(key, None)
                    else:
                        meta[key] = body[key]
            new_fields = (body.get("schema") or {}).get("fields")
            rounding.check(meta.get("defaultRoundingMode"), "defaultRoundingMode")
            if new_fields and kind == "TABLE":
                rounding.check_fields(new_fields)
                new_fields = self._inherit_on_patch(project, dataset, table, meta, new_fields)
                self._evolve_schema(cur, project, dataset, table, new_fields)
                meta["schema"] = {"fields": new_fields}
            meta["lastModifiedTime"] = now_ms()
            self.wh.set_table_meta(cur, project, dataset, table, meta)
        return self.table(project, dataset, table)

    def _inherit_on_patch(self, project: str, dataset: str, table: str, meta: dict,
                          new_fields: list[dict]) -> list[dict]:
        """A decimal field the patch adds takes the table's default rounding mode; one
        that exists keeps its own (changing the default does not change existing fields)."""
        have = {c.lower() for c in self.wh.columns(project, dataset, table)[0]}
        added = rounding.inherit([f for f in new_fields if f["name"].lower() not in have],
                                 meta.get("defaultRoundingMode"))
        by_name = {f["name"].lower(): f for f in added}
        return [by_name.get(f["name"].lower(), f) for f in new_fields]

    def _evolve_schema(self, cur, project, dataset, table, new_fields: list[dict]) -> None:
        """BigQuery lets a patch add NULLABLE columns; dropping or retyping needs DDL."""
        bqschema.check_schema(new_fields)
        columns, types = self.wh.columns(project, dataset, table)
        current = {c.lower(): f for c, f in zip(columns, bqschema.fields(columns, types),
                                                strict=True)}
        wanted = {f["name"].lower() for f in new_fields}
        for name in current:
            if name not in wanted:
                raise invalid(f"Provided Schema does not match Table {project}:{dataset}."
                              f"{table}. Field {name} is missing in new schema")
        for f in new_fields:
            if f["name"].lower() not in current:
                if (f.get("mode") or "NULLABLE").upper() == "REQUIRED" and current:
                    raise invalid(f"Provided Schema does not match Table {project}:{dataset}."
                                  f"{table}. Cannot add required fields to an existing schema."
                                  f" (field: {f['name']})")
                cur.execute(f"ALTER TABLE {self.wh.ref(project, dataset, table)} ADD COLUMN "
                            f"{bqschema.quote(f['name'])} {bqschema.duck_type(f)}")
        if not current:  # a table created without a schema has one now
            cur.execute(f"ALTER TABLE {self.wh.ref(project, dataset, table)} DROP COLUMN "
                        f"IF EXISTS {NO_SCHEMA}")

    def delete_table(self, project: str, dataset: str, table: str) -> None:
        _writable(project, f"Table {project}:{dataset}.{table}")
        kind = self._require_table(project, dataset, table)
        with self.wh.write() as cur:
            cur.execute(f"DROP {kind} {self.wh.ref(project, dataset, table)}")
            self.wh.set_table_meta(cur, project, dataset, table, None)


# --- the project's service account and the caller's permissions -------------------------
# The local user owns the local project: every valid permission on its tables is held; on
# the read-only public datasets only reading ones. Wildcards are refused, as IAM does.
# https://cloud.google.com/bigquery/docs/reference/rest/v2/tables/testIamPermissions
_PERMISSION = re.compile(r"^[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+$")
_READING = (".get", ".getData", ".list", ".getIamPolicy")


def service_account(project: str) -> dict:
    """projects.getServiceAccount: BigQuery's encryption service account of the project
    (bq-<project number>@...; the local project's number is 0, as Resource Manager says)."""
    from labkit.services.resource_manager import PROJECT_NUMBER

    return {"kind": "bigquery#getServiceAccountResponse",
            "email": f"bq-{PROJECT_NUMBER}@bigquery-encryption.iam.gserviceaccount.com"}


def held_permissions(project: str, asked) -> dict:
    """The subset of `asked` the caller holds (a nested list is read flat, as Google's JSON
    reading of a repeated field does)."""
    flat = [p for item in (asked or []) for p in (item if isinstance(item, list) else [item])]
    for permission in flat:
        if not isinstance(permission, str) or not _PERMISSION.match(permission):
            raise invalid(f"Permission {permission} is not valid: permissions with wildcards "
                          "(such as * or bigquery.*) and other forms are not allowed")
    held = [p for p in flat if project != PUBLIC_PROJECT or p.endswith(_READING)]
    return {"permissions": held} if held else {}


def _overlay(actual: list[dict], declared: list[dict]) -> list[dict]:
    """Keeps what the user declared (descriptions, REQUIRED, NUMERIC precision) where the
    stored column still has the declared name."""
    by_name = {f.get("name", "").lower(): f for f in declared}
    out = []
    for f in actual:
        d = by_name.get(f["name"].lower())
        if d:
            f = dict(f)
            for key in ("description", "policyTags", "maxLength", "precision", "scale",
                        "defaultValueExpression", "roundingMode"):
                if key in d and not (key == "policyTags" and not (d[key] or {}).get("names")):
                    f[key] = d[key]  # an emptied policy tag list is no policyTags at all
            if (d.get("mode") or "").upper() == "REQUIRED" and f["mode"] == "NULLABLE":
                f["mode"] = "REQUIRED"
            if d.get("type", "").upper() in ("GEOGRAPHY", "JSON") and f["type"] == "STRING":
                f["type"] = d["type"].upper()
            if d.get("type", "").upper() in ("NUMERIC", "BIGNUMERIC") and \
                    f["type"] in ("NUMERIC", "BIGNUMERIC"):  # BIGNUMERIC(38) has scale 0
                f["type"] = d["type"].upper()
            if f.get("fields") and d.get("fields"):
                f["fields"] = _overlay(f["fields"], d["fields"])
        out.append(f)
    return out
