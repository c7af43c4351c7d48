"""Load jobs: Parquet, CSV and newline-delimited JSON files into tables, with BigQuery's
write and create dispositions; plus insertAll (streaming inserts). One transaction each,
serialised with every other writer (Warehouse.write): a failing load leaves the table as it
was. Bad records: with maxBadRecords N (default 0) a load that meets more than N bad rows
fails and loads nothing; up to N are skipped and counted in statistics.load.badRecords.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path

import duckdb
import pyarrow as pa

from labkit.bigquery import bignumeric, geography, rounding, timestamp_picos
from labkit.bigquery import schema as bqschema
from labkit.bigquery.copies import refuse_snapshot_writes
from labkit.bigquery.errors import (
    BigQueryError,
    access_denied,
    duplicate,
    invalid,
    not_found,
    unsupported,
)
from labkit.bigquery.sql.ddl import length_check
from labkit.bigquery.sql.translate import PUBLIC_PROJECT, schema_name
from labkit.bigquery.warehouse import Warehouse


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


ROW_ERRORS_KEPT = 10  # bad rows listed in a failed load's errors[]


def _source_sql(path: Path, load: dict, fields: list[dict] | None,
                rejects: str | None = None) -> str:
    """The DuckDB reader for the load's file. `rejects`: a name for DuckDB's rejects tables
    (CSV loads that may skip bad rows record them there)."""
    fmt = (load.get("sourceFormat") or "CSV").upper()
    p = _sql_str(str(Path(path).resolve()))  # DuckDB may read only the scratch folders
    if fmt == "PARQUET":
        return f"read_parquet({p})"
    columns = ""
    if fields:
        columns = ", columns = {" + ", ".join(
            f"{_sql_str(f['name'])}: {_sql_str(_read_as(f))}" for f in fields) + "}"
    if fmt == "CSV":
        skip = int(load.get("skipLeadingRows") or 0)
        options = [f"delim = {_sql_str(load.get('fieldDelimiter') or ',')}",
                   f"quote = {_sql_str(load['quote'])}" if load.get("quote") else None,
                   f"nullstr = {_sql_str(load['nullMarker'])}" if load.get("nullMarker")
                   else None,
                   "null_padding = true" if load.get("allowJaggedRows") else None]
        if rejects:
            options += ["store_rejects = true", f"rejects_table = {_sql_str(rejects)}",
                        f"rejects_scan = {_sql_str(rejects + '_scan')}"]
        if skip:
            options += ["header = true", f"skip = {skip - 1}"]
        elif fields:
            options.append("header = false")
        return f"read_csv({p}, {', '.join(o for o in options if o)}{columns})"
    if fmt == "NEWLINE_DELIMITED_JSON":
        skip = ", ignore_errors = true" if rejects else ""
        return f"read_json({p}, format = 'newline_delimited'{skip}{columns})"
    raise BigQueryError(f"The source format {fmt} is not supported by the local BigQuery "
                        "(use PARQUET, AVRO, CSV or NEWLINE_DELIMITED_JSON). It runs with "
                        "LAB_BACKEND=gcp.", "invalid")


# Types whose text BigQuery reads in its own way, DuckDB's readers not: they are read as
# text and decoded (_decoded). BYTES are base64 (line breaks allowed, as in MIME);
# FLOAT64 takes "inf", "+inf", "-inf" and "nan"; INTERVAL is ISO 8601 or canonical;
# GEOGRAPHY is WKT, GeoJSON or WKB in hex (a JSON object is GeoJSON), stored normalised.
# https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-json#details_of_loading_json_data
_DECODED = {
    "GEOGRAPHY": lambda c, f: geography.from_text_sql(c),
    "BYTES": lambda c, f: f"from_base64({_base64_padded(c)})",
    "FLOAT": lambda c, f: f"CAST({c} AS DOUBLE)", "FLOAT64": lambda c, f: f"CAST({c} AS DOUBLE)",
    "INTERVAL": lambda c, f: bqschema.interval_from_text(c),
    "RANGE": lambda c, f: bqschema.range_from_text(c, bqschema.range_element(f)),
    "BIGNUMERIC": lambda c, f: bignumeric.from_text(c),  # at full precision only (_decodes)
    "BIGDECIMAL": lambda c, f: bignumeric.from_text(c),
    "TIMESTAMP": lambda c, f: timestamp_picos.from_text(c),  # timestampPrecision 12 only
}


def _base64_padded(c: str) -> str:
    """Base64 text without its line breaks, its missing "=" padding added: BigQuery loads
    unpadded base64 ("abc", as a DataFrame's text in a BYTES column is written to CSV; its
    own system test test_load_table_from_dataframe_w_explicit_schema_source_format_csv)."""
    text = f"replace(replace({c}, chr(10), ''), chr(13), '')"
    return f"({text} || repeat('=', (4 - length({text}) % 4) % 4))"


def _decodes(f: dict) -> bool:
    """A field read as text and decoded: one of _DECODED's types, or a RECORD holding one."""
    kind = (f.get("type") or "").upper()
    if kind in ("RECORD", "STRUCT"):
        return any(_decodes(s) for s in f.get("fields") or [])
    if kind in ("BIGNUMERIC", "BIGDECIMAL"):
        return bignumeric.is_full(f)
    if kind == "TIMESTAMP":
        return str(f.get("timestampPrecision")) == "12"
    return kind in _DECODED


def _read_as(f: dict) -> str:
    """The DuckDB type a reader reads the field as: decoded values (inside records too) as
    text."""
    if not _decodes(f):
        return bqschema.duck_type(f)
    if (f.get("type") or "").upper() in ("RECORD", "STRUCT"):
        inner = "STRUCT(" + ", ".join(f"{bqschema.quote(s['name'])} {_read_as(s)}"
                                      for s in f["fields"]) + ")"
    else:
        inner = "VARCHAR"
    return inner + "[]" if (f.get("mode") or "").upper() == "REPEATED" else inner


def _decode(value: str, f: dict, depth: int = 0) -> str:
    """SQL that turns `value` (read as _read_as(f)) into the field's BigQuery type."""
    if not _decodes(f):
        return value
    kind = (f.get("type") or "").upper()

    def one(item: str) -> str:
        if kind not in ("RECORD", "STRUCT"):
            return _DECODED[kind](item, f)
        names = [bqschema.quote(sub["name"]) for sub in f["fields"]]
        members = ", ".join(f"{name} := {_decode(f'{item}.{name}', sub, depth + 1)}"
                            for name, sub in zip(names, f["fields"], strict=True))
        return f"CASE WHEN {item} IS NULL THEN NULL ELSE struct_pack({members}) END"

    if (f.get("mode") or "").upper() == "REPEATED":
        item = f"x{depth}"
        return f"list_transform({value}, lambda {item}: {one(item)})"
    return one(value)


def _decoded(source: str, fields: list[dict] | None) -> str:
    """The source with its text-read columns decoded to their BigQuery types."""
    decoded = [f for f in fields or [] if _decodes(f)]
    if not decoded:
        return source
    casts = ", ".join(f"{_decode(bqschema.quote(f['name']), f)} AS {bqschema.quote(f['name'])}"
                      for f in decoded)
    return f"(SELECT * REPLACE ({casts}) FROM {source})"


# Parquet DECIMAL(P, S) columns become the first of NUMERIC, BIGNUMERIC, STRING (in that
# precedence) listed in decimalTargetTypes (default NUMERIC) that holds P and S; if none
# does, the widest listed, and a value it cannot hold fails the load.
# https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.FIELDS.decimal_target_types
_DECIMAL_TARGETS = ("NUMERIC", "BIGNUMERIC", "STRING")


def _wide_decimals_as_text(path: Path) -> tuple[Path, dict[str, tuple[int, int]]]:
    """DuckDB reads a Parquet DECIMAL wider than 38 digits (a DataFrame's BIGNUMERIC, an
    Arrow decimal256) as a DOUBLE, losing digits: such columns are rewritten as their exact
    text first. Returns (the file to read, {column: (precision, scale)} rewritten)."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError):
        return path, {}  # not Parquet: DuckDB's reader names the problem
    wide = {f.name: (f.type.precision, f.type.scale) for f in schema
            if pa.types.is_decimal(f.type) and f.type.precision > 38}
    if not wide:
        return path, {}
    table = pq.read_table(path)
    for name in wide:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.string()))
    converted = Path(path).with_name(Path(path).name + ".text.parquet")
    pq.write_table(table, converted)
    return converted, wide


def _decimal_targets(cur, source: str, targets,
                     wide: dict[str, tuple[int, int]]) -> tuple[str, list[dict] | None]:
    """(the source with its decimal columns converted, the fields to declare). `wide`: the
    DECIMAL columns of more than 38 digits, read as text (_wide_decimals_as_text)."""
    targets = targets or ["NUMERIC"]
    if not isinstance(targets, list) or len(set(targets)) != len(targets) or \
            any(t not in _DECIMAL_TARGETS for t in targets):
        raise invalid(f"Invalid decimalTargetTypes: {targets!r}; list distinct values of "
                      f"{', '.join(_DECIMAL_TARGETS)}")
    allowed = [t for t in _DECIMAL_TARGETS if t in targets]
    casts, declared = [], []
    for row in cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall():
        name, kind = row[0], str(row[1]).upper()
        if name in wide:
            precision, scale = wide[name]
        elif kind.startswith("DECIMAL("):
            precision, scale = (int(x) for x in kind[8:-1].split(","))
        else:
            continue
        fits = {"NUMERIC": precision - scale <= 29 and scale <= 9,
                "BIGNUMERIC": precision - scale <= 38 and scale <= 38, "STRING": True}
        target = next((t for t in allowed if fits[t]), allowed[-1])
        column = bqschema.quote(name)
        if name in wide and target != "STRING":  # text: exact into BIGNUMERIC, else a 400
            casts.append(f"{bignumeric.from_text(column)} AS {column}" if target == "BIGNUMERIC"
                         else f"error('Invalid NUMERIC value: the column {name} is a DECIMAL("
                              f"{precision}, {scale}); list BIGNUMERIC in decimalTargetTypes') "
                              f"AS {column}")
            target = "BIGNUMERIC"
        elif target == "NUMERIC":
            extra = max(0, scale - 9)  # fractional digits NUMERIC cannot hold must be 0
            exact = f"right({column}::VARCHAR, {extra}) = '{'0' * extra}'" if extra else "true"
            casts.append(
                f"CASE WHEN {column} IS NULL OR ({exact} AND abs({column}) < 1e29) THEN "
                f"CAST({column} AS DECIMAL(38,9)) ELSE error('Invalid NUMERIC value: ' || "
                f"{column}::VARCHAR || ' is out of valid NUMERIC range (field {name})') END "
                f"AS {column}")
        elif target == "STRING":
            casts.append(f"CAST({column} AS VARCHAR) AS {column}")
        declared.append({"name": name, "type": target})
    if not casts:
        return source, declared or None
    return f"(SELECT * REPLACE ({', '.join(casts)}) FROM {source})", declared


def _bignumerics_stored(cur, source: str) -> str:
    """A query result written to its destination table arrives as Parquet with its
    BIGNUMERICs as text (bignumeric.TEXT): stored as BIGNUMERICs again."""
    described = cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    texts = [row[0] for row in described
             if str(row[1]).replace(" ", "") == bignumeric.TEXT.replace(" ", "")]
    if not texts:
        return source
    casts = ", ".join(f"{bignumeric.from_text(bqschema.quote(c))} AS {bqschema.quote(c)}"
                      for c in texts)
    return f"(SELECT * REPLACE ({casts}) FROM {source})"


def _as_bigquery_detects(cur, source: str) -> str:
    """Schema autodetect as BigQuery does it: a date-and-time value is a TIMESTAMP, with or
    without a zone ("2018-08-19 12:11", "2018/08/19 12:11", "... -05:00", "... UTC"); a
    zoneless one is read as UTC. DuckDB's sniffer types zoneless values (and some zoned ones
    such as "UTC") as its naive TIMESTAMP, which would be a BigQuery DATETIME. DATE
    (YYYY-MM-DD), TIME (HH:MM:SS[.SSSSSS]), BOOL, INT64 and FLOAT64 agree already.
    (docs: "Using schema auto-detection", Date and time values,
    https://cloud.google.com/bigquery/docs/schema-detect)"""
    described = cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    naive = [row[0] for row in described if str(row[1]).upper() == "TIMESTAMP"]
    if not naive:
        return source
    casts = ", ".join(f"CAST({bqschema.quote(c)} AS TIMESTAMPTZ) AS {bqschema.quote(c)}"
                      for c in naive)
    return f"(SELECT * REPLACE ({casts}) FROM {source})"


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
    if fmt == "PARQUET":
        readable, wide = _wide_decimals_as_text(Path(path))
        if wide:
            try:
                return _run_load(wh, load, fields, fmt, readable, wide, path)
            finally:
                readable.unlink(missing_ok=True)
    return _run_load(wh, load, fields, fmt, path, {}, path)


def _run_load(wh: Warehouse, load: dict, fields: list[dict] | None, fmt: str, path: Path,
              wide: dict[str, tuple[int, int]], original: Path) -> dict:
    """run_load's work, reading `path` (`original` converted where it had `wide` decimals)."""
    dest = load["destinationTable"]
    project, dataset, table = dest["projectId"], dest["datasetId"], dest["tableId"]
    if fmt == "AVRO":  # converted to Parquet with BigQuery's Avro conversions, then loaded
        from labkit.bigquery import avro

        converted = Path(path).with_name(Path(path).name + ".parquet")
        try:
            fields = avro.to_parquet(Path(path), converted,
                                     load.get("useAvroLogicalTypes") is True)
            schema = load.get("schema") or {"fields": fields}  # the file's own schema
            return run_load(wh, {**load, "sourceFormat": "PARQUET", "schema": schema},
                            converted)
        finally:
            converted.unlink(missing_ok=True)
    write = (load.get("writeDisposition") or "WRITE_APPEND").upper()
    create = (load.get("createDisposition") or "CREATE_IF_NEEDED").upper()
    try:
        max_bad = int(load.get("maxBadRecords") or 0)
    except (TypeError, ValueError):
        raise invalid(f"Invalid maxBadRecords: {load.get('maxBadRecords')!r}") from None
    if max_bad < 0:
        raise invalid(f"Invalid maxBadRecords: {max_bad}")
    target = wh.ref(project, dataset, table)
    name = f"{project}:{dataset}.{table}"
    rejects = f"__labkit_rejects_{secrets.token_hex(6)}" if max_bad and fmt == "CSV" else None
    bad = 0
    try:
        with wh.write() as cur:
            exists = wh.table_kind(project, dataset, table)
            created = not exists
            if exists == "VIEW":
                raise invalid(f"Cannot load into {name}: it is a view")
            if exists:
                refuse_snapshot_writes(wh, project, dataset, table)
            if exists and write == "WRITE_EMPTY" and wh.num_rows(project, dataset, table):
                raise duplicate("Table", name)
            if not exists and create == "CREATE_NEVER":
                raise not_found("Table", name)
            if exists and not wh.columns(project, dataset, table)[0]:
                cur.execute(f"DROP TABLE {target}")  # created without a schema: it gets one
                exists = None
            positional = fmt == "CSV"
            if exists and not fields:
                if positional and not load.get("autodetect"):  # the table's schema reads it
                    columns, types = wh.columns(project, dataset, table)
                    fields = bqschema.fields(columns, types)
            if not exists and not fields and fmt != "PARQUET" and not load.get("autodetect"):
                raise invalid("No schema specified on job or table.")
            default_mode = wh.dataset_meta(project, dataset).get("defaultRoundingMode")
            if fields and not exists:  # a new table inherits its dataset's rounding mode
                rounding.check_fields(fields)
                fields = rounding.inherit(fields, default_mode)
            half_even = _half_even(wh, project, dataset, table, fields, exists, fmt)
            source = _source_sql(path, load, fields, rejects if max_bad else None)
            if fmt != "PARQUET":
                source = _decoded(source, fields)
            if load.get("autodetect") and not fields and fmt != "PARQUET":
                source = _as_bigquery_detects(cur, source)
            if fmt == "PARQUET":  # WKB (bytes) or text into GEOGRAPHY columns
                source = _parquet_geography(cur, source, fields or (
                    bqschema.fields(*wh.columns(project, dataset, table)) if exists else []))
            if fields and fmt == "PARQUET":
                casts = ", ".join(  # ROUND_HALF_EVEN columns are cast once rounded
                    f"{bqschema.quote(f['name'])}" if f["name"].lower() in half_even else
                    f"{_parquet_cast(f, f['name'] in wide)} AS {bqschema.quote(f['name'])}"
                    for f in fields)
                source = f"(SELECT {casts} FROM {source})"
            declared = None
            if fmt == "PARQUET" and not fields:
                source, declared = _decimal_targets(cur, source, load.get("decimalTargetTypes"),
                                                    wide)
                source = _bignumerics_stored(cur, source)
                if default_mode and not exists:
                    declared = rounding.inherit(declared or [], default_mode) or None
            if half_even:
                source = _rounded(cur, source, half_even)
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
            if max_bad:
                bad, row_errors = _bad_records(cur, rejects, path, fmt, after - before)
                if bad > max_bad:
                    raise _too_many_errors(fmt, bad, row_errors)
            extra = {"schema": {"fields": fields or declared}} \
                if (fields or declared) and (replace or not exists) else None
            wh.touch_table(cur, project, dataset, table, created=created, extra=extra)
    except BigQueryError:
        raise
    except Exception as exc:
        import duckdb

        from labkit.bigquery.engine import duck_error

        if isinstance(exc, duckdb.Error):
            err = duck_error(exc)
            raise BigQueryError(f"Error while reading data, error message: {err.message}",
                                "invalid") from exc
        raise
    size = original.stat().st_size
    return {"inputFiles": "1", "inputFileBytes": str(size), "outputRows": str(after - before),
            "outputBytes": str(size), "badRecords": str(bad)}


def _parquet_cast(f: dict, text: bool) -> str:
    """SQL reading one Parquet column as the field's type; `text`: a wide decimal's text."""
    column = bqschema.quote(f["name"])
    if bignumeric.is_full(f) and (f.get("mode") or "").upper() != "REPEATED":
        return bignumeric.from_text(column)
    if str(f.get("timestampPrecision")) == "12" and (f.get("mode") or "").upper() != "REPEATED":
        return timestamp_picos.from_text(column)
    if text:
        raise invalid(f"Error while reading data, error message: the Parquet column "
                      f"{f['name']} is a DECIMAL of more than 38 digits; it loads into a "
                      "BIGNUMERIC (without a precision) or a STRING field")
    return f"CAST({column} AS {bqschema.duck_type(f)})"


def _parquet_geography(cur, source: str, fields: list[dict]) -> str:
    """The Parquet source with its GEOGRAPHY columns read from WKB (binary columns, as
    load_table_from_dataframe writes shapely and GeoSeries values) or text (WKT, GeoJSON,
    hex WKB); top-level columns."""
    names = {f["name"].lower() for f in fields if (f.get("type") or "").upper() == "GEOGRAPHY"
             and (f.get("mode") or "").upper() != "REPEATED"}
    if not names:
        return source
    casts = []
    for row in cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall():
        name, kind = row[0], str(row[1]).upper()
        if name.lower() not in names:
            continue
        column = bqschema.quote(name)
        if kind == "BLOB":
            casts.append(f"{geography.from_wkb_sql(column)} AS {column}")
        elif kind == "VARCHAR":
            casts.append(f"{geography.from_text_sql(column)} AS {column}")
        elif kind == '"NULL"':  # a column of nulls only (pyarrow's null type)
            casts.append(f"CAST(NULL AS {geography.DUCK_TYPE}) AS {column}")
        elif kind != geography.DUCK_TYPE.upper():
            raise invalid(f"Field {name} is type GEOGRAPHY: a Parquet column of type {kind} "
                          "cannot be loaded into it (WKB bytes or WKT text can)")
    if not casts:
        return source
    return f"(SELECT * REPLACE ({', '.join(casts)}) FROM {source})"


def _half_even(wh: Warehouse, project: str, dataset: str, table: str,
               fields: list[dict] | None, exists, fmt: str) -> dict[str, tuple[int, int]]:
    """The destination's ROUND_HALF_EVEN columns {name: (precision, scale)}: those of the
    table, or of the load's schema for a new table. Text formats are read straight into
    the column's DECIMAL (which rounds half away from zero), so they are refused."""
    if exists:
        out = rounding.half_even_columns(wh, project, dataset, table)
    else:
        out = {}
        for f in fields or []:
            if f.get("roundingMode") == rounding.HALF_EVEN:
                t = bqschema.duck_type(f)
                if not t.startswith("DECIMAL("):
                    raise unsupported(f"ROUND_HALF_EVEN on field {f['name']} (a BIGNUMERIC "
                                      "wider than 38 digits)")
                precision, scale = (int(x) for x in t[len("DECIMAL("):-1].split(","))
                out[f["name"].lower()] = (precision, scale)
    if out and fmt != "PARQUET":
        raise unsupported(f"{fmt} loads into ROUND_HALF_EVEN columns (Parquet loads and "
                          "query results round them)")
    return out


def _rounded(cur, source: str, half_even: dict[str, tuple[int, int]]) -> str:
    """The source with its values for ROUND_HALF_EVEN columns rounded to their scale."""
    present = {row[0].lower(): row[0] for row in
               cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    casts = ", ".join(
        f"{rounding.rounded_sql(bqschema.quote(present[n]), *half_even[n])} AS "
        f"{bqschema.quote(present[n])}" for n in half_even if n in present)
    return f"(SELECT * REPLACE ({casts}) FROM {source})" if casts else source


def _bad_records(cur, rejects: str | None, path: Path, fmt: str,
                 loaded: int) -> tuple[int, list[dict]]:
    """(bad rows skipped, errors[] entries for the first few) of a load that skips rows."""
    if rejects:  # CSV: DuckDB's rejects table names each bad line
        rows = cur.execute(
            f"SELECT line, column_name, error_message FROM {rejects} ORDER BY line").fetchall()
        count = cur.execute(f"SELECT count(DISTINCT line) FROM {rejects}").fetchone()[0]
        cur.execute(f"DROP TABLE IF EXISTS {rejects}")
        cur.execute(f"DROP TABLE IF EXISTS {rejects}_scan")
        errors, seen = [], set()
        for line, column, message in rows:
            if line in seen:
                continue
            seen.add(line)
            if len(errors) < ROW_ERRORS_KEPT:
                errors.append({"reason": "invalid", "location": f"line {line}",
                               "message": f"Error while reading data, error message: "
                                          f"{message} (line {line}, field {column})"})
        return int(count), errors
    with open(path, "rb") as f:  # newline-delimited JSON: one record a line
        records = sum(1 for line in f if line.strip())
    return max(0, records - loaded), []


def _too_many_errors(fmt: str, bad: int, row_errors: list[dict]) -> BigQueryError:
    kind = "CSV" if fmt == "CSV" else "JSON"
    error = BigQueryError(f"Error while reading data, error message: {kind} table encountered "
                          f"too many errors, giving up. Rows: {bad}; errors: {bad}. Please "
                          "look into the errors[] collection for more details.", "invalid")
    error.errors = [error.error_proto(), *row_errors]
    return error


def _create_from_fields(cur, target: str, fields: list[dict]) -> None:
    columns = ", ".join(
        f"{bqschema.quote(f['name'])} {bqschema.duck_type(f)}" + length_check(f)
        + (" NOT NULL" if (f.get("mode") or "").upper() == "REQUIRED" else "") for f in fields)
    cur.execute(f"CREATE TABLE {target} ({columns})")


def insert_all(wh: Warehouse, project: str, dataset: str, table: str,
               body: dict) -> list[dict]:
    """tabledata.insertAll: returns insertErrors (empty when every row went in)."""
    if project == PUBLIC_PROJECT:
        raise access_denied(f"Table {project}:{dataset}.{table}: the public datasets are "
                            "read-only.")
    if not wh.dataset_exists(project, dataset) or \
            wh.table_kind(project, dataset, table) != "TABLE":
        raise not_found("Table", f"{project}:{dataset}.{table}")
    refuse_snapshot_writes(wh, project, dataset, table)
    rows = body.get("rows") or []
    columns, types = wh.columns(project, dataset, table)
    known = {c.lower(): c for c in columns}
    half_even = rounding.half_even_columns(wh, project, dataset, table)
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
        good.append((index, {known[k.lower()]: (
            rounding.round_json_value(v, half_even[k.lower()][1]) if k.lower() in half_even
            else v) for k, v in values.items() if k.lower() in known}))
    if errors and not body.get("skipInvalidRows"):
        bad = {e["index"] for e in errors}
        return errors + [{"index": i, "errors": [{"reason": "stopped", "location": "",
                                                  "message": ""}]}
                         for i, _ in good if i not in bad]
    if not good:
        return errors
    rows_json = pa.table({"r": pa.array([json.dumps(values) for _, values in good],
                                        pa.string())})
    defaults = dict(wh.cursor().execute(
        "SELECT column_name, column_default FROM duckdb_columns() WHERE schema_name = ? AND "
        "table_name = ? AND column_default IS NOT NULL",
        [schema_name(project, dataset), table]).fetchall())
    selects = []
    for column, t in zip(columns, types, strict=True):
        path = _sql_str("$." + json.dumps(column))
        if bqschema.marked(t) == "GEOGRAPHY":  # WKT or GeoJSON text, read and normalised
            value = geography.from_text_sql(f"json_extract_string(r, {path})")
        elif str(t) == "JSON":  # a string holds JSON text (what the client sends), parsed
            value = (f"CASE WHEN json_type(json_extract(r, {path})) = 'VARCHAR' THEN "
                     f"json(json_extract_string(r, {path})) ELSE json_extract(r, {path}) END")
        elif bqschema.marked(t) == "BIGNUMERIC":  # its text (or a JSON number)
            value = bignumeric.from_text(f"json_extract_string(r, {path})")
        elif bqschema.marked(t) == "TIMESTAMP_PICOS":
            value = timestamp_picos.from_text(f"json_extract_string(r, {path})")
        elif t.id in ("struct", "list", "map", "array"):
            nested = bqschema.field(column, t)  # BYTES inside come as base64, decoded
            value = _decode(f"CAST(json_extract(r, {path}) AS {_read_as(nested)})", nested)
        elif t.id == "blob":
            value = f"from_base64(json_extract_string(r, {path}))"
        elif t.id == "interval":
            value = bqschema.interval_from_text(f"json_extract_string(r, {path})")
        else:
            value = f"CAST(json_extract_string(r, {path}) AS {t})"
        if column in defaults:  # a row without the column gets its default value
            value = f"CASE WHEN json_exists(r, {path}) THEN {value} ELSE {defaults[column]} END"
        selects.append(f"{value} AS {bqschema.quote(column)}")
    relation = f"__insert_all_{secrets.token_hex(6)}"
    try:
        with wh.write() as cur:
            cur.register(relation, rows_json)
            try:
                cur.execute(f"INSERT INTO {wh.ref(project, dataset, table)} "
                            f"SELECT {', '.join(selects)} FROM "
                            f"(SELECT r::JSON AS r FROM {relation})")
            finally:
                # after a failed INSERT the transaction is aborted and unregistering fails
                # too; the INSERT's error is the one to report
                with contextlib.suppress(duckdb.Error):
                    cur.unregister(relation)
            wh.touch_table(cur, project, dataset, table)
    except Exception as exc:  # noqa: BLE001 - reported per row, as BigQuery does
        message = str(exc).split("\n")[0]
        return errors + [{"index": i, "errors": [{"reason": "invalid", "location": "",
                                                  "message": message}]} for i, _ in good]
    return errors
