"""Rows leaving DuckDB as Arrow (query results, table pages, extracts) in forms Arrow can
hold exactly. Two DuckDB values have none:
- a stored full-precision BIGNUMERIC (a BIGNUM, which DuckDB hands out as opaque bytes)
  leaves as its decimal text (bignumeric.TEXT);
- an INTERVAL leaves as its three parts, marked (INTERVAL): Arrow's month_day_nano holds
  at most 106,751 days of nanoseconds, BigQuery's INTERVAL 87,840,000 hours.
Readers of these rows (schema's REST cells, storage_read, avro) take both forms.
"""

from __future__ import annotations

import duckdb

from labkit.bigquery import bignumeric, schema

INTERVAL_FIELD = schema.marked_field("INTERVAL")


def interval_parts_sql(expr: str) -> str:
    """SQL: an INTERVAL as its marked parts (months, days, microseconds)."""
    months = f"(datepart('year', {expr}) * 12 + datepart('month', {expr}))"
    micros = (f"(datepart('hour', {expr})::BIGINT * 3600000000 + "
              f"datepart('minute', {expr}) * 60000000 + datepart('microseconds', {expr}))")
    return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack(\"{INTERVAL_FIELD}\" := "
            f"struct_pack(months := {months}, days := datepart('day', {expr}), "
            f"micros := {micros})) END")


def interval_from_parts_sql(expr: str) -> str:
    """SQL: the INTERVAL its marked parts hold."""
    parts = f"struct_extract({expr}, '{INTERVAL_FIELD}')"
    return (f"(to_months(CAST({parts}.months AS INTEGER)) + "
            f"to_days(CAST({parts}.days AS INTEGER)) + to_microseconds({parts}.micros))")


def _needs(t: duckdb.typing.DuckDBPyType) -> bool:
    if t.id == "interval" or t.id == "bignum":
        return True
    if t.id in ("list", "array"):
        return _needs(t.children[0][1])
    if t.id == "struct" and schema.marked(t) != "INTERVAL":
        return any(_needs(c) for _, c in t.children)
    return False


def presentable(expr: str, t: duckdb.typing.DuckDBPyType, depth: int = 0) -> str | None:
    """SQL turning the values of type t Arrow cannot hold into their forms above, or None
    when t holds none."""
    if not _needs(t):
        return None
    if t.id == "interval":
        return interval_parts_sql(expr)
    if schema.marked(t) == bignumeric.KIND:
        return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE "
                f"struct_pack(\"{bignumeric.TEXT_FIELD}\" := "
                f"{bignumeric.stored_text_sql(expr)}) END")
    if t.id in ("list", "array"):
        var = f"v{depth}"
        inner = presentable(var, t.children[0][1], depth + 1) or var
        return f"list_transform({expr}, lambda {var}: {inner})"
    members = []
    for name, child in t.children:
        sub = f"struct_extract({expr}, {schema.sql_literal(name)})"
        members.append(f"{schema.quote(name)} := {presentable(sub, child, depth + 1) or sub}")
    return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({', '.join(members)}) END"


def to_arrow(rel: duckdb.DuckDBPyRelation):
    """(columns, types, arrow table) of a relation in those forms; the types are the arrow
    table's own."""
    converted = [presentable(schema.quote(c), t) for c, t in zip(rel.columns, rel.types,
                                                                  strict=True)]
    if any(converted):
        rel = rel.project(", ".join(f"{expr or schema.quote(c)} AS {schema.quote(c)}"
                                    for c, expr in zip(rel.columns, converted, strict=True)))
    return rel.columns, rel.types, rel.to_arrow_table()
