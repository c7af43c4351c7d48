"""Rounding modes of NUMERIC and BIGNUMERIC columns, applied where values are written.

Per the REST reference (Dataset.defaultRoundingMode, Table.defaultRoundingMode,
TableFieldSchema.roundingMode; https://cloud.google.com/bigquery/docs/reference/rest/v2/
datasets and .../tables#TableFieldSchema): ROUNDING_MODE_UNSPECIFIED (= half away from
zero), ROUND_HALF_AWAY_FROM_ZERO, ROUND_HALF_EVEN (banker's rounding: 2.5 -> 2, 3.5 -> 4),
applied "upon writing of NUMERIC and BIGNUMERIC values". A new table inherits its dataset's
default, and a decimal field added without a mode inherits the table's.

DuckDB's DECIMAL cast rounds half away from zero, which is the default; ROUND_HALF_EVEN is
round_even(value, scale) before that cast, on every write path that can do it: DML INSERT
and UPDATE, tabledata.insertAll (exact, with Python's decimal module), Parquet loads and a
query's destination table. The writes that cannot (MERGE, CSV/JSON/Avro loads, a nested
RECORD field, CREATE TABLE (columns) AS query) are refused, not rounded the other way.
"""

from __future__ import annotations

import decimal

from sqlglot import exp

from labkit.bigquery.errors import invalid, unsupported

MODES = ("ROUNDING_MODE_UNSPECIFIED", "ROUND_HALF_AWAY_FROM_ZERO", "ROUND_HALF_EVEN")
HALF_EVEN = "ROUND_HALF_EVEN"
_DECIMALS = ("NUMERIC", "BIGNUMERIC", "DECIMAL", "BIGDECIMAL")


def check(value: object, where: str) -> None:
    if value is not None and value not in MODES:
        raise invalid(f"Invalid value for {where}: {value!r}; it is one of {', '.join(MODES)}")


def check_fields(fields: list[dict], nested: bool = False) -> None:
    """A field's roundingMode is one of MODES, and only on NUMERIC or BIGNUMERIC fields."""
    for f in fields or []:
        mode = f.get("roundingMode")
        check(mode, f"roundingMode of field {f.get('name')}")
        kind = (f.get("type") or "").upper()
        if mode not in (None, "ROUNDING_MODE_UNSPECIFIED") and kind not in _DECIMALS:
            raise invalid(f"Field {f.get('name')} is type {kind}: roundingMode applies to "
                          "NUMERIC and BIGNUMERIC fields only")
        if mode == HALF_EVEN and nested:
            raise unsupported(f"ROUND_HALF_EVEN on field {f.get('name')} inside a RECORD")
        check_fields(f.get("fields") or [], nested=True)


def inherit(fields: list[dict], default: str | None) -> list[dict]:
    """The fields, each decimal one without a roundingMode given `default` (if any)."""
    if default in (None, "ROUNDING_MODE_UNSPECIFIED"):
        return fields
    return [{**f, "roundingMode": default} if (f.get("type") or "").upper() in _DECIMALS
            and not f.get("roundingMode") else f for f in fields]


def column_options(tree: exp.Expression) -> dict[str, str]:
    """{lower-case column: mode} from CREATE TABLE's `c NUMERIC OPTIONS(rounding_mode=...)`,
    each option taken off the column (DuckDB has none)."""
    schema = tree.this if isinstance(tree.this, exp.Schema) else None
    out = {}
    for column in schema.expressions if schema else []:
        for constraint in list(column.args.get("constraints") or []):
            if not isinstance(constraint.args.get("kind"), exp.Properties):
                continue
            for prop in list(constraint.args["kind"].expressions):
                if isinstance(prop, exp.Property) and prop.name.lower() == "rounding_mode":
                    value = prop.args.get("value")
                    mode = value.this if isinstance(value, exp.Literal) else None
                    check("?" if mode is None else mode, f"rounding_mode of column {column.name}")
                    out[column.name.lower()] = mode
                    prop.pop()
            if not constraint.args["kind"].expressions:
                constraint.pop()
    return out


def half_even_columns(wh, project: str, dataset: str, table: str) -> dict[str, tuple[int, int]]:
    """{lower-case column: (precision, scale)} of the table's ROUND_HALF_EVEN columns."""
    declared = ((wh.table_meta(project, dataset, table).get("schema") or {})
                .get("fields") or [])
    wanted = {f["name"].lower() for f in declared if f.get("roundingMode") == HALF_EVEN}
    if not wanted:
        return {}
    out = {}
    columns, types = wh.columns(project, dataset, table)
    for column, t in zip(columns, types, strict=True):
        if column.lower() in wanted:
            if t.id != "decimal":
                raise unsupported(f"ROUND_HALF_EVEN on column {column} of type {t} (a "
                                  "BIGNUMERIC wider than 38 digits)")
            children = dict(t.children)
            out[column.lower()] = (children["precision"], children["scale"])
    return out


def rounded(value: exp.Expression, precision: int, scale: int) -> exp.Expression:
    """value rounded half to even at `scale`, as the column's DECIMAL."""
    return exp.Cast(this=exp.Anonymous(this="round_even", expressions=[
        value, exp.Literal.number(scale)]), to=exp.DataType.build(
            f"DECIMAL({precision}, {scale})", dialect="duckdb"))


def rounded_sql(value: str, precision: int, scale: int) -> str:
    return f"CAST(round_even({value}, {scale}) AS DECIMAL({precision},{scale}))"


def rewrite_dml(tree: exp.Expression, columns: dict[str, tuple[int, int]],
                all_columns: list[str]) -> None:
    """Rounds the values an INSERT or UPDATE writes into ROUND_HALF_EVEN columns."""
    if isinstance(tree, exp.Merge):
        raise unsupported("MERGE into a table with ROUND_HALF_EVEN columns")
    if isinstance(tree, exp.Update):
        for assignment in tree.expressions:
            if isinstance(assignment, exp.EQ) and isinstance(assignment.this, exp.Column) \
                    and assignment.this.name.lower() in columns:
                assignment.set("expression", rounded(
                    assignment.expression.copy(), *columns[assignment.this.name.lower()]))
        return
    if not isinstance(tree, exp.Insert):
        return
    target, source = tree.this, tree.expression
    if not isinstance(source, (exp.Values, exp.Query)):
        raise unsupported("This form of INSERT into a table with ROUND_HALF_EVEN columns")
    names = [c.name for c in target.expressions] if isinstance(target, exp.Schema) \
        else list(all_columns)
    if not any(n.lower() in columns for n in names):
        return
    rows = exp.TableAlias(this=exp.to_identifier("__rows"),
                          columns=[exp.to_identifier(n, quoted=True) for n in names])
    projections = []
    for n in names:
        column = exp.column(n, table="__rows", quoted=True)
        projections.append(exp.alias_(rounded(column, *columns[n.lower()]), n, quoted=True)
                           if n.lower() in columns else column)
    tree.set("expression", exp.select(*projections).from_(
        exp.Subquery(this=source.copy(), alias=rows)))
    if not isinstance(target, exp.Schema):
        tree.set("this", exp.Schema(this=target.copy(), expressions=[
            exp.to_identifier(n, quoted=True) for n in names]))


def round_json_value(value: object, scale: int) -> object:
    """An insertAll cell (number or numeric text) rounded half to even, as exact text."""
    if value is None or isinstance(value, bool):
        return value
    try:
        number = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        return value  # the INSERT's cast reports it
    if not number.is_finite():
        return value
    with decimal.localcontext() as context:
        context.prec = 100  # BIGNUMERIC's 76 digits and more
        return str(number.quantize(decimal.Decimal(1).scaleb(-scale),
                                   rounding=decimal.ROUND_HALF_EVEN))
