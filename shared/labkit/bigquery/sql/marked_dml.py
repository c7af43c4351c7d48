"""INSERT and UPDATE values DuckDB cannot cast to their columns:
- into the types DuckDB has none of (schema.marked: full-precision BIGNUMERIC, picosecond
  TIMESTAMP): DuckDB casts no number or TIMESTAMP to the STRUCT that holds them, so their
  values go through the type's from_text() SQL, which takes any value cast to text (a
  stored one too);
- a STRUCT value of a VALUES row into a STRUCT column: BigQuery matches fields by position
  (`struct(42)` into STRUCT<v INT64>), DuckDB by name, so the value's fields are renamed."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from labkit.bigquery import bignumeric, schema, timestamp_picos

_FROM_TEXT = {bignumeric.KIND: bignumeric.from_text,
              timestamp_picos.KIND: timestamp_picos.from_text}


def _from_text(kind: str):
    def convert(value: exp.Expression) -> exp.Expression:
        return sqlglot.parse_one(_FROM_TEXT[kind](value.sql("duckdb")), read="duckdb")
    return convert


def _by_position(names: list[str]):
    def convert(value: exp.Expression) -> exp.Expression:
        members = value.expressions if isinstance(value, exp.Struct) else None
        if not members or len(members) != len(names) or \
                not all(isinstance(m, exp.PropertyEQ) for m in members):
            return value
        return exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.to_identifier(name), expression=m.expression)
            for name, m in zip(names, members, strict=True)])
    return convert


def _wide_literal_as(t) -> object:
    """A wide BIGNUMERIC literal ('42e30', bignumeric.literal) into a DECIMAL(P, S) column
    (a BIGNUMERIC(P, S)): as that DECIMAL, which DuckDB checks."""
    def convert(value: exp.Expression) -> exp.Expression:
        members = value.expressions if isinstance(value, exp.Struct) else []
        if len(members) != 1 or not isinstance(members[0], exp.PropertyEQ) or \
                members[0].this.name != bignumeric.FIELD:
            return value
        scaled = members[0].expression.find(exp.Literal)
        return exp.cast(exp.Literal.string(bignumeric.text(int(scaled.name))), str(t))
    return convert


def _converters(columns: list[str], types: list, values: bool, wide: bool) -> dict:
    """column (lower case) -> value expression -> the value to write; `values`: a VALUES
    row's (STRUCT values are renamed there only); `wide`: the statement has a wide
    BIGNUMERIC literal."""
    out = {}
    for column, t in zip(columns, types, strict=True):
        kind = schema.marked(t)
        if kind in _FROM_TEXT and not (kind == bignumeric.KIND and
                                       t.children[0][1].id != "bignum"):
            out[column.lower()] = _from_text(kind)
        elif values and t.id == "struct" and kind is None:
            out[column.lower()] = _by_position([n for n, _ in t.children])
        elif values and wide and t.id == "decimal":
            out[column.lower()] = _wide_literal_as(t)
    return out


def dml_sql(sql: str, columns: list[str], types: list) -> str:
    """A translated INSERT or UPDATE (DuckDB SQL) with the values of such columns converted;
    other statements, and tables without such columns, are left as they are."""
    wide = bignumeric.FIELD in sql
    if not (_converters(columns, types, False, wide) or _converters(columns, types, True, wide)):
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    rows = isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Values)
    converters = _converters(columns, types, rows, wide)
    if not converters:
        return sql

    def into(column: str, value: exp.Expression) -> exp.Expression:
        return converters[column.lower()](value)

    if isinstance(tree, exp.Update):
        for assignment in tree.expressions:
            if isinstance(assignment, exp.EQ) and assignment.this.name.lower() in converters:
                assignment.set("expression", into(assignment.this.name, assignment.expression))
        return tree.sql("duckdb")
    if not isinstance(tree, exp.Insert) or tree.expression is None:
        return sql
    targets = [c.name for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) \
        else list(columns)
    if not any(t.lower() in converters for t in targets):
        return sql
    if isinstance(tree.expression, exp.Values):  # each row's value (rows could not unify)
        for row in tree.expression.expressions:
            if isinstance(row, exp.Tuple) and len(row.expressions) == len(targets):
                row.set("expressions", [into(t, v) if t.lower() in converters else v
                                        for v, t in zip(row.expressions, targets, strict=True)])
        return tree.sql("duckdb")
    names = [f"__labkit_{i}" for i in range(len(targets))]
    values = [into(t, exp.column(n)) if t.lower() in converters else exp.column(n)
              for n, t in zip(names, targets, strict=True)]
    source = exp.Subquery(this=tree.expression, alias=exp.TableAlias(
        this=exp.to_identifier("__labkit_source"),
        columns=[exp.to_identifier(n) for n in names]))
    tree.set("expression", exp.select(*values).from_(source))
    return tree.sql("duckdb")
