"""Parameterized types in CREATE TABLE: STRING(L), BYTES(L), NUMERIC(P[, S]) and
BIGNUMERIC(P[, S]) are kept in the table's schema (maxLength, precision, scale) and enforced
on write: lengths by CHECK constraints, precision and scale by the DECIMAL column itself.
https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#parameterized_data_types
"""

from __future__ import annotations

from sqlglot import exp

_NAMES = {exp.DataType.Type.TEXT: "STRING", exp.DataType.Type.VARCHAR: "STRING",
          exp.DataType.Type.BINARY: "BYTES", exp.DataType.Type.VARBINARY: "BYTES",
          exp.DataType.Type.DECIMAL: "NUMERIC", exp.DataType.Type.BIGDECIMAL: "BIGNUMERIC"}
_LENGTH = {"STRING": "length", "BYTES": "octet_length"}  # characters; bytes


def _params(kind: exp.DataType) -> list[int]:
    return [int(p.this.this) for p in kind.expressions
            if isinstance(p, exp.DataTypeParam) and isinstance(p.this, exp.Literal)]


def declared_fields(tree: exp.Create) -> list[dict]:
    """The schema fields of a CREATE TABLE's parameterized columns (top level), with a CHECK
    constraint added to the statement for each length limit."""
    schema = tree.this if isinstance(tree.this, exp.Schema) else None
    fields = []
    for column in schema.expressions if schema else []:
        kind = column.args.get("kind") if isinstance(column, exp.ColumnDef) else None
        name = _NAMES.get(kind.this) if isinstance(kind, exp.DataType) else None
        params = _params(kind) if name else []
        if not params:
            continue
        field = {"name": column.name, "type": name}
        if name in _LENGTH:
            field["maxLength"] = str(params[0])
            check = exp.LTE(this=exp.Anonymous(this=_LENGTH[name],
                                               expressions=[exp.column(column.name)]),
                            expression=exp.Literal.number(params[0]))
            column.append("constraints", exp.ColumnConstraint(
                kind=exp.CheckColumnConstraint(this=check)))
        else:
            field["precision"] = str(params[0])
            if len(params) > 1:
                field["scale"] = str(params[1])
        fields.append(field)
    return fields


def length_check(f: dict) -> str:
    """The DuckDB CHECK clause of a REST schema field's maxLength (STRING, BYTES)."""
    kind = (f.get("type") or "").upper()
    if not f.get("maxLength") or kind not in _LENGTH or \
            (f.get("mode") or "").upper() == "REPEATED":
        return ""
    name = '"' + f["name"].replace('"', '""') + '"'
    return f" CHECK ({_LENGTH[kind]}({name}) <= {int(f['maxLength'])})"
