"""INSERT and UPDATE into columns of the types DuckDB has none of (schema.marked: full-
precision BIGNUMERIC, picosecond TIMESTAMP). DuckDB casts no number or TIMESTAMP to the
STRUCT that holds them, so their values go through the type's from_text() SQL, which takes
any value cast to text (a stored one too)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from labkit.bigquery import bignumeric, schema, timestamp_picos

_FROM_TEXT = {bignumeric.KIND: bignumeric.from_text,
              timestamp_picos.KIND: timestamp_picos.from_text}


def _converters(columns: list[str], types: list) -> dict:
    out = {}
    for column, t in zip(columns, types, strict=True):
        kind = schema.marked(t)
        if kind in _FROM_TEXT and not (kind == bignumeric.KIND and
                                       t.children[0][1].id != "bignum"):
            out[column.lower()] = _FROM_TEXT[kind]
    return out


def dml_sql(sql: str, columns: list[str], types: list) -> str:
    """A translated INSERT or UPDATE (DuckDB SQL) with the values of such columns converted;
    other statements, and tables without such columns, are left as they are."""
    converters = _converters(columns, types)
    if not converters:
        return sql

    def into(column: str, value: exp.Expression) -> exp.Expression:
        return sqlglot.parse_one(converters[column.lower()](value.sql("duckdb")), read="duckdb")

    tree = sqlglot.parse_one(sql, read="duckdb")
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
