"""The `output_schema` of AI.GENERATE and AI.GENERATE_TABLE: a SQL schema definition such as
'name STRING, age INT64, phones ARRAY<STRING>, address STRUCT<city STRING, zip STRING>'.

Docs: https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-generate-table
("OUTPUT_SCHEMA ... a SQL schema definition, similar to that used in the CREATE TABLE
statement. The following data types are supported: INT64, FLOAT64, BOOL, STRING, ARRAY,
STRUCT"). The schema becomes Gemini's response_schema (responseMimeType application/json),
and the model's JSON answer is read back into typed values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pyarrow as pa

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.sqlscan import split_top

_SCALARS = {"STRING": ("STRING", pa.string(), "VARCHAR"),
            "INT64": ("INTEGER", pa.int64(), "BIGINT"),
            "FLOAT64": ("NUMBER", pa.float64(), "DOUBLE"),
            "BOOL": ("BOOLEAN", pa.bool_(), "BOOLEAN")}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Type:
    kind: str                                  # STRING, INT64, FLOAT64, BOOL, ARRAY, STRUCT
    item: Type | None = None                   # ARRAY's element
    fields: list[tuple[str, Type]] | None = None  # STRUCT's fields

    def response_schema(self) -> dict:
        if self.kind == "ARRAY":
            return {"type": "ARRAY", "items": self.item.response_schema()}
        if self.kind == "STRUCT":
            return object_schema(self.fields)
        return {"type": _SCALARS[self.kind][0]}

    def arrow(self) -> pa.DataType:
        if self.kind == "ARRAY":
            return pa.list_(self.item.arrow())
        if self.kind == "STRUCT":
            return pa.struct([(n, t.arrow()) for n, t in self.fields])
        return _SCALARS[self.kind][1]

    def duckdb(self) -> str:
        if self.kind == "ARRAY":
            return f"{self.item.duckdb()}[]"
        if self.kind == "STRUCT":
            return "STRUCT(" + ", ".join(f'"{n}" {t.duckdb()}' for n, t in self.fields) + ")"
        return _SCALARS[self.kind][2]

    def read(self, value):
        """A JSON value as this type; ValueError when it does not fit."""
        if value is None:
            return None
        if self.kind == "ARRAY":
            if not isinstance(value, list):
                raise ValueError("expected an array")
            return [self.item.read(v) for v in value]
        if self.kind == "STRUCT":
            if not isinstance(value, dict):
                raise ValueError("expected an object")
            return {n: t.read(value.get(n)) for n, t in self.fields}
        if self.kind == "STRING":
            return value if isinstance(value, str) else json.dumps(value)
        if self.kind == "BOOL":
            if not isinstance(value, bool):
                raise ValueError("expected a boolean")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("expected a number")
        if self.kind == "INT64":
            if float(value) != int(value):
                raise ValueError("expected an integer")
            return int(value)
        return float(value)


def object_schema(fields: list[tuple[str, Type]]) -> dict:
    return {"type": "OBJECT",
            "properties": {n: t.response_schema() for n, t in fields},
            "required": [n for n, _ in fields], "propertyOrdering": [n for n, _ in fields]}


def parse(text) -> list[tuple[str, Type]]:
    """'a STRING, b ARRAY<INT64>' -> [(name, Type)]; a BigQuery-worded 400 otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise MLError("output_schema must be a non-empty STRING, for example "
                      "'answer STRING, confidence FLOAT64'")
    fields = _fields(text, text)
    names = [n.lower() for n, _ in fields]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise MLError(f"Invalid output_schema: duplicate column name {dup}")
    return fields


def _fields(text: str, whole: str) -> list[tuple[str, Type]]:
    out = []
    for part in split_top(text.replace("<", "(").replace(">", ")")):
        bits = part.split(None, 1)
        if len(bits) != 2 or not _NAME.match(bits[0]):
            raise MLError(f"Invalid output_schema '{whole}': expected 'column_name TYPE' "
                          f"but got '{part.strip()}'")
        out.append((bits[0], _type(bits[1].strip(), whole)))
    if not out:
        raise MLError(f"Invalid output_schema '{whole}': it names no column")
    return out


def _type(text: str, whole: str) -> Type:
    upper = text.upper()
    if upper in _SCALARS:
        return Type(upper)
    match = re.match(r"^(ARRAY|STRUCT)\s*\((.*)\)$", text, re.I | re.S)
    if match and match[1].upper() == "ARRAY":
        item = _type(match[2].strip(), whole)
        if item.kind == "ARRAY":
            raise MLError(f"Invalid output_schema '{whole}': an ARRAY cannot hold an ARRAY")
        return Type("ARRAY", item=item)
    if match:
        return Type("STRUCT", fields=_fields(match[2], whole))
    raise MLError(f"Invalid output_schema '{whole}': type {text} is not supported; use INT64, "
                  "FLOAT64, BOOL, STRING, ARRAY or STRUCT")
