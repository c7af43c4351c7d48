"""Load jobs: Parquet, CSV and newline-delimited JSON files into tables, with BigQuery's
write and create dispositions; plus insertAll (streaming inserts). One transaction each:
a failing load leaves the table as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from labkit.bigquery import schema as bqschema
from labkit.bigquery.errors import BigQueryError, access_denied, duplicate, invalid, not_found
from labkit.bigquery.sql.translate import PUBLIC_PROJECT
from labkit.bigquery.storage import Warehouse


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _source_sql(path: Path, load: dict, fields: list[dict] | None) -> str:
    fmt = (load.get("sourceFormat") or "CSV").upper()
    p = _sql_str(str(path))
    if fmt == "PARQUET":
        return f"read_parquet({p})"
    columns = ""
    if fields:
        columns = ", columns = {" + ", ".join(
            f"{_sql_str(f['name'])}: {_sql_str(bqschema.duck_type(f))}" for f in fields) + "}"
    if fmt == "CSV":
        skip = int(load.get("skipLeadingRows") or 0)
        options = [f"delim = {_sql_str(load.get('fieldDelimiter') or ',')}",
                   f"quote = {_sql_str(load['quote'])}" if load.get("quote") else None,
                   f"nullstr = {_sql_str(load['nullMarker'])}" if load.get("nullMarker")
                   else None,
                   "null_padding = true" if load.get("allowJaggedRows") else None,
                   "ignore_errors = true" if int(load.get("maxBadRecords") or 0) else None]
        if skip:
            options += ["header = true", f"skip = {skip - 1}"]
        elif fields:
            options.append("header = false")
        return f"read_csv({p}, {', '.join(o for o in options if o)}{columns})"
    if fmt == "NEWLINE_DELIMITED_JSON":
        return f"read_json({p}, format = 'newline_delimited'{columns})"
    raise BigQueryError(f"The source format {fmt} is not supported by the local BigQuery "
                        "(use PARQUET, CSV or NEWLINE_DELIMITED_JSON). It runs with "
                        "LAB_BACKEND=gcp.", "invalid")


def run_load(wh: Warehouse, load: dict, path: Path) -> dict:
    """Runs one load into configuration.load.destinationTable; returns statistics.load."""
    dest = load.get("destinationTable") or {}
    project, dataset, table = dest.get("projectId"), dest.get("datasetId"), dest.get("tableId")
    if not (project and dataset and table):
        raise invalid("Load configuration must specify destinationTable")
    if project == PUBLIC_PROJECT:
        raise access_denied(f"Table {project}:{dataset}.{table}: the public datasets are "
                            "read-only.")
    if not wh.dataset_exists(project, dataset):
        raise not_found("Dataset", f"{project}:{dataset}")
    fields = (load.get("schema") or {}).get("fields") or None
    if fields:
        bqschema.check_schema(fields)
    fmt = (load.get("sourceFormat") or "CSV").upper()
    write = (load.get("writeDisposition") or "WRITE_APPEND").upper()
    create = (load.get("createDisposition") or "CREATE_IF_NEEDED").upper()
    target = wh.ref(project, dataset, table)
    name = f"{project}:{dataset}.{table}"
    cur = wh.cursor()
    cur.begin()
    try:
        exists = wh.table_kind(project, dataset, table)
        if exists == "VIEW":
            raise invalid(f"Cannot load into {name}: it is a view")
        if exists and write == "WRITE_EMPTY" and wh.num_rows(project, dataset, table):
            raise duplicate("Table", name)
        if not exists and create == "CREATE_NEVER":
            raise not_found("Table", name)
        positional = fmt == "CSV"
        if exists and not fields:
            if positional and not load.get("autodetect"):  # the table's schema reads the CSV
                columns, types = wh.columns(project, dataset, table)
                fields = bqschema.fields(columns, types)
        if not exists and not fields and fmt != "PARQUET" and not load.get("autodetect"):
            raise invalid("No schema specified on job or table.")
        source = _source_sql(path, load, fields)
        if fields and fmt == "PARQUET":
            casts = ", ".join(f"CAST({bqschema.quote(f['name'])} AS {bqschema.duck_type(f)}) AS "
                              f"{bqschema.quote(f['name'])}" for f in fields)
            source = f"(SELECT {casts} FROM {source})"
        before = wh.num_rows(project, dataset, table) if exists else 0
        replace = not exists or (write == "WRITE_TRUNCATE" and (fields or not positional))
        if replace:
            if fields and not exists:
                _create_from_fields(cur, target, fields)
                cur.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}")
            else:
                cur.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")
            before = 0
        else:
            if write == "WRITE_TRUNCATE":
                cur.execute(f"DELETE FROM {target}")
                before = 0
            by_name = "" if positional else "BY NAME "
            cur.execute(f"INSERT INTO {target} {by_name}SELECT * FROM {source}")
        after = wh.num_rows(project, dataset, table)
        extra = {"schema": {"fields": fields}} if fields and (replace or not exists) else None
        wh.touch_table(cur, project, dataset, table, created=not exists, extra=extra)
        cur.commit()
    except BigQueryError:
        cur.rollback()
        raise
    except Exception as exc:
        cur.rollback()
        import duckdb

        from labkit.bigquery.engine import duck_error

        if isinstance(exc, duckdb.Error):
            err = duck_error(exc)
            raise BigQueryError(f"Error while reading data, error message: {err.message}",
                                "invalid") from exc
        raise
    size = path.stat().st_size
    return {"inputFiles": "1", "inputFileBytes": str(size), "outputRows": str(after - before),
            "outputBytes": str(size), "badRecords": "0"}


def _create_from_fields(cur, target: str, fields: list[dict]) -> None:
    columns = ", ".join(
        f"{bqschema.quote(f['name'])} {bqschema.duck_type(f)}"
        + (" NOT NULL" if (f.get("mode") or "").upper() == "REQUIRED" else "") for f in fields)
    cur.execute(f"CREATE TABLE {target} ({columns})")


def insert_all(wh: Warehouse, project: str, dataset: str, table: str, body: dict,
               scratch: Path) -> list[dict]:
    """tabledata.insertAll: returns insertErrors (empty when every row went in)."""
    if project == PUBLIC_PROJECT:
        raise access_denied(f"Table {project}:{dataset}.{table}: the public datasets are "
                            "read-only.")
    if not wh.dataset_exists(project, dataset) or \
            wh.table_kind(project, dataset, table) != "TABLE":
        raise not_found("Table", f"{project}:{dataset}.{table}")
    rows = body.get("rows") or []
    columns, types = wh.columns(project, dataset, table)
    known = {c.lower(): c for c in columns}
    errors, good = [], []
    for index, row in enumerate(rows):
        values = row.get("json") if isinstance(row, dict) else None
        if not isinstance(values, dict):
            errors.append({"index": index, "errors": [{"reason": "invalid", "location": "",
                                                       "message": "Row is not a JSON object"}]})
            continue
        unknown = [k for k in values if k.lower() not in known]
        if unknown and not body.get("ignoreUnknownValues"):
            errors.append({"index": index, "errors": [{
                "reason": "invalid", "location": unknown[0], "debugInfo": "",
                "message": f"no such field: {unknown[0]}."}]})
            continue
        good.append((index, {known[k.lower()]: v for k, v in values.items()
                             if k.lower() in known}))
    if errors and not body.get("skipInvalidRows"):
        bad = {e["index"] for e in errors}
        return errors + [{"index": i, "errors": [{"reason": "stopped", "location": "",
                                                  "message": ""}]}
                         for i, _ in good if i not in bad]
    if not good:
        return errors
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_text("\n".join(json.dumps(values) for _, values in good))
    selects = []
    for column, t in zip(columns, types, strict=True):
        path = _sql_str("$." + json.dumps(column))
        if t.id in ("struct", "list", "map", "array") or str(t) == "JSON":
            value = f"CAST(json_extract(r, {path}) AS {t})"
        elif t.id == "blob":
            value = f"from_base64(json_extract_string(r, {path}))"
        else:
            value = f"CAST(json_extract_string(r, {path}) AS {t})"
        selects.append(f"{value} AS {bqschema.quote(column)}")
    cur = wh.cursor()
    cur.begin()
    try:
        cur.execute(f"INSERT INTO {wh.ref(project, dataset, table)} SELECT {', '.join(selects)} "
                    f"FROM (SELECT json AS r FROM read_json_objects({_sql_str(str(scratch))}, "
                    "format = 'newline_delimited'))")
        wh.touch_table(cur, project, dataset, table)
        cur.commit()
    except Exception as exc:
        cur.rollback()
        message = str(exc).split("\n")[0]
        return errors + [{"index": i, "errors": [{"reason": "invalid", "location": "",
                                                  "message": message}]} for i, _ in good]
    finally:
        scratch.unlink(missing_ok=True)
    return errors
