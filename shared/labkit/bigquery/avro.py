"""Avro files as BigQuery's loads read them and its extracts write them, with fastavro.

Loads: the file's own schema is the table's (https://cloud.google.com/bigquery/docs/
loading-data-cloud-storage-avro, "Avro conversions"): a union with null is NULLABLE, any
other field REQUIRED; records are RECORDs, arrays REPEATED, maps REPEATED RECORDs of key
and value, enums STRING, fixed BYTES. Logical types (date, time-*, timestamp-*, decimal)
become DATE, TIME, TIMESTAMP and NUMERIC only with useAvroLogicalTypes; without it a
logical type loads as its raw type ("for example, INTEGER"). The file is converted to
Parquet, which the loader reads as any Parquet load.

Extracts: the table's schema as the Read API's Avro schema (labkit.bigquery.storage_read),
with logical types under useAvroLogicalTypes, which Beam's BigQuery export sets.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow as pa

from labkit.bigquery.errors import BigQueryError, invalid

# Avro's logical types and the BigQuery types they load as (with useAvroLogicalTypes)
_LOGICAL = {"date": "DATE", "time-millis": "TIME", "time-micros": "TIME",
            "timestamp-millis": "TIMESTAMP", "timestamp-micros": "TIMESTAMP"}
_PRIMITIVES = {"boolean": "BOOLEAN", "int": "INTEGER", "long": "INTEGER", "float": "FLOAT",
               "double": "FLOAT", "bytes": "BYTES", "fixed": "BYTES", "string": "STRING",
               "enum": "STRING"}
CODECS = {"NONE": "null", "DEFLATE": "deflate"}  # SNAPPY needs python-snappy: not installed


def _not_local(feature: str) -> BigQueryError:
    return BigQueryError(f"{feature} is not supported by the local BigQuery. It runs with "
                         "LAB_BACKEND=gcp.", "invalid")


def _strip_logical(schema):
    """The schema with every logicalType removed: its raw types."""
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    if isinstance(schema, dict):
        return {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    return schema


def _non_null(schema):
    """A union's one non-null branch (BigQuery takes [null, T] only), or the schema."""
    if not isinstance(schema, list):
        return schema
    others = [s for s in schema if s != "null"]
    if len(others) != 1:
        raise _not_local(f"An Avro union of {len(others)} non-null types")
    return others[0]


def _epoch_units(value, logical: str) -> int:
    """A date, time or timestamp value as the raw int its logical type stands for."""
    import datetime

    if logical == "date":
        return (value - datetime.date(1970, 1, 1)).days
    per_second = 1000 if logical.endswith("millis") else 1_000_000
    if logical.startswith("time-"):
        seconds = value.hour * 3600 + value.minute * 60 + value.second
        return seconds * per_second + value.microsecond * per_second // 1_000_000
    delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * per_second + \
        delta.microseconds * per_second // 1_000_000


def _rows_value(value, schema, logical_types: bool):
    """A value fastavro read (with the writer's schema) as the loader wants it: maps as
    key/value rows, logical values as their raw ints or bytes without useAvroLogicalTypes."""
    if value is None:
        return None
    schema = _non_null(schema)
    if not isinstance(schema, dict):
        return value
    kind, logical = schema.get("type"), schema.get("logicalType")
    if kind == "map":
        return [{"key": k, "value": _rows_value(v, schema["values"], logical_types)}
                for k, v in value.items()]
    if kind == "array":
        return [_rows_value(v, schema["items"], logical_types) for v in value]
    if kind == "record":
        return {f["name"]: _rows_value(value.get(f["name"]), f["type"], logical_types)
                for f in schema["fields"]}
    if logical and not logical_types:
        if logical == "decimal":
            unscaled = int(value.scaleb(int(schema.get("scale", 0))))
            size = schema.get("size") or max(1, (unscaled.bit_length() + 8) // 8)
            return unscaled.to_bytes(size, "big", signed=True)
        if logical in _LOGICAL:  # date, time-*, timestamp-*: their raw ints
            return _epoch_units(value, logical)
        return str(value)  # uuid: its string
    return value


def _bigquery_field(name: str, schema) -> dict:
    """The TableFieldSchema BigQuery makes of one Avro field."""
    mode = "NULLABLE" if isinstance(schema, list) and "null" in schema else "REQUIRED"
    schema = _non_null(schema)
    kind = schema if isinstance(schema, str) else schema.get("type")
    logical = None if isinstance(schema, str) else schema.get("logicalType")
    if kind == "array":
        return {**_bigquery_field(name, schema["items"]), "mode": "REPEATED"}
    if kind == "map":
        return {"name": name, "type": "RECORD", "mode": "REPEATED", "fields": [
            {"name": "key", "type": "STRING", "mode": "REQUIRED"},
            _bigquery_field("value", schema["values"])]}
    if kind == "record":
        return {"name": name, "type": "RECORD", "mode": mode,
                "fields": [_bigquery_field(f["name"], f["type"]) for f in schema["fields"]]}
    if logical == "decimal" and kind in ("bytes", "fixed"):
        precision, scale = int(schema.get("precision", 0)), int(schema.get("scale", 0))
        if precision > 38:
            raise _not_local(f"An Avro decimal of precision {precision} (BIGNUMERIC beyond "
                             "38 digits)")
        numeric = precision - scale <= 29 and scale <= 9
        return {"name": name, "type": "NUMERIC" if numeric else "BIGNUMERIC", "mode": mode}
    if logical in _LOGICAL and kind in ("int", "long"):
        return {"name": name, "type": _LOGICAL[logical], "mode": mode}
    if kind not in _PRIMITIVES:
        raise _not_local(f"The Avro type {kind!r}")
    return {"name": name, "type": _PRIMITIVES[kind], "mode": mode}


def to_parquet(source: Path, target: Path, logical_types: bool) -> list[dict]:
    """Converts an Avro object container file to Parquet with BigQuery's Avro conversions;
    returns the table schema's fields BigQuery makes of the file's schema."""
    import fastavro
    import pyarrow.parquet as pq

    from labkit.bigquery.storage_read import arrow_field  # BigQuery types as Arrow's

    try:
        with open(source, "rb") as f:
            reader = fastavro.reader(f)
            written = reader.writer_schema
            if not isinstance(written, dict) or written.get("type") != "record":
                raise invalid("Error while reading data, error message: the Avro file's "
                              "schema is not a record")
            rows = [_rows_value(r, written, logical_types) for r in reader]
        schema = written if logical_types else _strip_logical(copy.deepcopy(written))
        fields = [_bigquery_field(f["name"], f["type"]) for f in schema["fields"]]
        table = pa.Table.from_pylist(rows, schema=pa.schema([arrow_field(f) for f in fields]))
    except (ValueError, EOFError, TypeError, KeyError, pa.ArrowException) as exc:
        raise invalid(f"Error while reading data, error message: The Apache Avro library "
                      f"failed to parse the file: {str(exc)[:300]}") from None
    pq.write_table(table, target)
    return fields


def write(table: pa.Table, fields: list[dict], target: Path, compression: str) -> None:
    """Writes an extract's rows as an Avro container file with BigQuery's Avro schema."""
    import fastavro

    from labkit.bigquery.storage_read import _avro_values, avro_schema

    codec = CODECS.get(compression)
    if codec is None:
        raise _not_local(f"Avro extracts with {compression} compression")
    schema = fastavro.parse_schema(avro_schema(fields, "Root"))
    with open(target, "wb") as f:
        fastavro.writer(f, schema, _avro_values(table.to_pylist(), fields), codec=codec)
