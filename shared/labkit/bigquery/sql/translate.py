"""BigQuery SQL -> DuckDB SQL: sqlglot for the dialect, plus the rewrites it lacks.

Rewrites (each measured against BigQuery's documented behaviour, see the translation table
in tests/bigquery/test_translation.py):
- table names: `project.dataset.table`, dataset.table and table (default dataset) become
  the DuckDB schema "project.dataset"; missing tables fail as BigQuery's notFound;
  wildcard tables (`prefix*`) become a UNION ALL BY NAME with a _TABLE_SUFFIX column;
  dataset.INFORMATION_SCHEMA.TABLES/COLUMNS/SCHEMATA become relations from the catalog.
- decimal literals are FLOAT64 in BigQuery (DuckDB types them DECIMAL);
- EXTRACT(DAYOFWEEK) is 1=Sunday; EXTRACT(WEEK) counts Sunday weeks (%U), ISOWEEK is ISO;
- DATE_ADD/DATE_SUB/DATE_TRUNC return DATE (DuckDB gives TIMESTAMP);
- FORMAT is printf-style; TIMESTAMP_DIFF counts whole units elapsed;
- UNNEST ... WITH OFFSET starts at 0;
- ARRAY_AGG(... LIMIT n) -> list_slice; TABLESAMPLE SYSTEM samples rows (DuckDB's
  SYSTEM samples whole vectors, i.e. nothing on small tables);
- PARSE_TIMESTAMP honours its time zone argument; PARSE_DATE/DATETIME keep their types;
- NUMERIC is DECIMAL(38,9); BIGNUMERIC is DECIMAL(38,18) in expressions and, as a column or a
  literal too wide for that, the full-precision value of labkit.bigquery.bignumeric;
- anonymous result columns are named f0_, f1_, ... as BigQuery names them;
- query parameters (@name, ?) and script variables are bound in place.
- calls of user-defined functions (routines, temporary functions) become calls of their
  DuckDB macros (sql/calls.py).
FARM_FINGERPRINT is a UDF registered by the storage layer (pyfarmhash gives real values);
so are the UDFs behind the ST_* functions of labkit.bigquery.geography (GEOGRAPHY is a
marked STRUCT holding canonical WKT).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError

from labkit.bigquery import geography
from labkit.bigquery.errors import access_denied, invalid_query, not_found, unsupported
from labkit.bigquery.sql import calls, distance

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "Unsupported property" chatter

PUBLIC_PROJECT = "bigquery-public-data"
_names = itertools.count()


class Catalog(Protocol):
    def dataset_exists(self, project: str, dataset: str) -> bool: ...
    def table_kind(self, project: str, dataset: str, table: str) -> str | None: ...
    def tables_with_prefix(self, project: str, dataset: str, prefix: str) -> list[str]: ...
    def information_schema(self, project: str, dataset: str | None, view: str) -> Any: ...
    def table_meta(self, project: str, dataset: str, table: str) -> dict: ...
    def query_results(self, project: str, dataset: str, table: str) -> Any: ...
    def routine(self, project: str, dataset: str, routine: str) -> dict | None: ...


@dataclass
class Scope:
    """What one statement may refer to."""
    project: str
    dataset: str | None
    catalog: Catalog
    params: dict[str, exp.Expression] = field(default_factory=dict)
    positional: list[exp.Expression] = field(default_factory=list)
    variables: set[str] = field(default_factory=set)
    relations: dict[str, Any] = field(default_factory=dict)  # temp names -> arrow tables
    temp_tables: set[str] = field(default_factory=set)  # a script's CREATE TEMP TABLEs
    temp_functions: dict[str, str] = field(default_factory=dict)  # its TEMP FUNCTIONs: type
    read_tables: list[tuple[str, str, str]] = field(default_factory=list)
    location: Any = None  # labkit.bigquery.locations.JobLocation: every dataset touched


def parse(sql: str) -> exp.Expression:
    try:
        try:
            tree = sqlglot.parse_one(sql, read="bigquery")
        except ParseError:
            unwrapped = _unwrap_leading_joins(sql)
            if unwrapped == sql:
                raise
            tree = sqlglot.parse_one(unwrapped, read="bigquery")
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        where = f" at [{err.get('line')}:{err.get('col')}]" if err.get("line") else ""
        message = err.get("description") or str(exc)
        raise invalid_query(f"Syntax error: {message}{where}") from exc
    except TokenError as exc:
        raise invalid_query(f"Syntax error: {exc}") from exc
    if tree is None:
        raise invalid_query("Syntax error: Unexpected end of statement")
    return tree


def _unwrap_leading_joins(sql: str) -> str:
    """`FROM (UNNEST(a) x JOIN ... ON ...)`: sqlglot cannot read a parenthesised join that
    starts with UNNEST. As the first item of FROM the parentheses change nothing (joins
    associate to the left), so they are dropped; the original error stands if it still
    does not parse."""
    from sqlglot.dialects.bigquery import BigQuery
    from sqlglot.tokens import TokenType

    try:
        tokens = BigQuery().tokenize(sql)
    except TokenError:
        return sql
    cuts = []
    for i in range(len(tokens) - 2):
        if not (tokens[i].token_type == TokenType.FROM
                and tokens[i + 1].token_type == TokenType.L_PAREN
                and tokens[i + 2].token_type == TokenType.UNNEST):
            continue
        depth, joined = 0, False
        for token in tokens[i + 1:]:
            depth += token.token_type == TokenType.L_PAREN
            depth -= token.token_type == TokenType.R_PAREN
            joined = joined or (depth == 1 and token.token_type == TokenType.JOIN)
            if depth == 0:
                if joined:
                    cuts += [tokens[i + 1].start, token.start]
                break
    for at in sorted(cuts, reverse=True):
        sql = sql[:at] + " " + sql[at + 1:]
    return sql


def to_duckdb(tree: exp.Expression, scope: Scope) -> str:
    """Rewrites `tree` (in place) and returns the DuckDB SQL."""
    calls.resolve(tree, scope)  # user-defined functions first: they are not DuckDB's
    _reject_unsupported(tree)
    _bind(tree, scope)
    for select in list(tree.find_all(exp.Select)):
        _hoist_window_rand(select)
    _resolve_tables(tree, scope)
    tree = _rewrite_functions(tree)
    for select in tree.find_all(exp.Select):
        _name_anonymous_columns(select)
    return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.IGNORE)


def expression_to_duckdb(sql: str, scope: Scope) -> str:
    """A single BigQuery expression (a DEFAULT, a SET value) as DuckDB SQL."""
    select = parse(f"SELECT ({sql}) AS __value")
    return to_duckdb(select, scope).removeprefix("SELECT ").removesuffix(" AS __value")


# --- unsupported features --------------------------------------------------------------

def _function_name(node: exp.Func) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.sql_name()


# BigQuery's own table-valued functions the local service does not run (not "not found").
_BIGQUERY_TVFS = {"APPENDS", "CHANGES", "EXTERNAL_QUERY", "VECTOR_SEARCH", "GAP_FILL",
                  "EXTERNAL_OBJECT_TRANSFORM", "RANGE_SESSIONIZE"}
# DuckDB scalar functions with no BigQuery namesake that reveal the engine's state.
_DUCKDB_SCALARS = {"current_setting", "getenv", "getvariable", "current_query",
                   "current_database", "current_schema", "current_schemas", "current_catalog",
                   "version", "txid_current", "set_bit"}
_duckdb_tables: set[str] | None = None


def _duckdb_table_functions() -> set[str]:
    """DuckDB's table functions, table macros and pragmas (read_text, read_csv, glob,
    query, duckdb_settings, ...): none is BigQuery SQL, several read the file system."""
    global _duckdb_tables
    if _duckdb_tables is None:
        import duckdb

        with duckdb.connect() as con:
            rows = con.execute(
                "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE "
                "function_type IN ('table', 'table_macro', 'pragma')").fetchall()
        _duckdb_tables = {r[0] for r in rows}
    return _duckdb_tables


def _function_not_found(name: str, table_valued: bool = False):
    # ZetaSQL's wording: "Function not found: x" and "Table-valued function not found: x".
    return invalid_query(f"{'Table-valued function' if table_valued else 'Function'} "
                         f"not found: {name}")


def _reject_unsupported(tree: exp.Expression) -> None:
    """Refuses what BigQuery SQL does not have and DuckDB would run: DuckDB's table
    functions (file readers, catalog and settings views, query()) and the scalar
    functions that read the engine's settings. DuckDB's external access is off as well
    (labkit.bigquery.warehouse), so this is for BigQuery's error, not the only guard."""
    duck_tables = _duckdb_table_functions()
    for table in tree.find_all(exp.Table):
        func = table.this
        if isinstance(func, exp.Func) and not isinstance(func, exp.Unnest) \
                and not func.meta.get(calls.ROUTINE):
            name = _function_name(func)
            if name.upper() in _BIGQUERY_TVFS:
                raise unsupported(f"The table-valued function {name.upper()}")
            raise _function_not_found(name if isinstance(func, exp.Anonymous)
                                      else name.lower(), table_valued=True)
    geography.check_comparisons(tree)
    for node in tree.find_all(exp.Func):
        if node.meta.get(calls.ROUTINE):
            continue
        name = _function_name(node)
        if name.upper().startswith("ST_") and not geography.handles(name):
            raise unsupported(f"The geography function {name.upper()}")
        lower = name.lower()
        if isinstance(node, exp.Anonymous) and (
                lower in _DUCKDB_SCALARS or lower.startswith(("duckdb_", "pragma_"))
                or (lower in duck_tables and lower not in _DUCKDB_SCALAR_TOO)):
            raise _function_not_found(name)
        if not isinstance(node, exp.Anonymous) and lower in duck_tables \
                and lower not in _DUCKDB_SCALAR_TOO:
            raise _function_not_found(lower)


# DuckDB table functions that are also (BigQuery or DuckDB) scalar functions.
_DUCKDB_SCALAR_TOO = {"unnest", "range", "repeat", "generate_series", "histogram"}


# --- parameters and variables ----------------------------------------------------------

def _bind(tree: exp.Expression, scope: Scope) -> None:
    placeholders = list(tree.find_all(exp.Placeholder))
    if placeholders and len(placeholders) != len(scope.positional):
        raise invalid_query(f"Query has {len(placeholders)} positional parameters but "
                            f"{len(scope.positional)} values were given")
    for node, value in zip(placeholders, scope.positional, strict=False):
        node.replace(value.copy())
    for node in list(tree.find_all(exp.Parameter)):
        if isinstance(node.this, exp.Parameter):  # @@system_variable
            name = node.this.name.lower()
            if name == "project_id":
                node.replace(exp.Literal.string(scope.project))
                continue
            raise unsupported(f"The system variable @@{name}")
        if isinstance(node.parent, exp.Parameter):
            continue
        name = node.name
        value = scope.params.get(name) or scope.params.get(name.lower())
        if value is None:
            raise invalid_query(f"Query parameter '{name}' not found")
        node.replace(value.copy())
    if scope.variables:
        for column in list(tree.find_all(exp.Column)):
            if not column.table and column.name.lower() in scope.variables:
                column.replace(exp.Anonymous(this="getvariable", expressions=[
                    exp.Literal.string(column.name.lower())]))


# --- tables ----------------------------------------------------------------------------

def _hoist_window_rand(select: exp.Select) -> None:
    """RAND() in a window's ORDER BY (BigQuery DataFrames' default row order breaks ties
    with it; `ROW_NUMBER() OVER (ORDER BY RAND())` shuffles): DuckDB refuses volatile window
    ordering, so each such RAND() becomes a column drawn once per row in a subquery over the
    select's single source. Joins and qualified stars are left to DuckDB's error."""
    rands = [r for window in select.find_all(exp.Window)
             if window.find_ancestor(exp.Select) is select and window.args.get("order")
             for r in window.args["order"].find_all(exp.Rand)]
    source = (select.args.get("from_") or exp.From()).this
    if (not rands or select.args.get("joins") or not isinstance(source, (exp.Table,
                                                                          exp.Subquery))
            or any(isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
                   for e in select.expressions)):
        return
    alias = source.alias_or_name
    names = [f"__rand_{next(_names)}" for _ in rands]
    inner = source.copy()
    if isinstance(inner, exp.Table) and not inner.alias:
        inner.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    drawn = exp.select(exp.Star(), *(exp.alias_(exp.Rand(), n) for n in names)).from_(inner)
    select.set("from_", exp.From(this=drawn.subquery(alias)))
    for rand, name in zip(rands, names, strict=True):
        rand.replace(exp.column(name, table=alias))
    for item in select.expressions:  # SELECT * must not show the drawn columns
        if isinstance(item, exp.Star):
            item.set("except_", [exp.column(n) for n in names])


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def table_parts(table: exp.Table, scope: Scope) -> tuple[str, str, str]:
    parts = [p.name for p in table.parts]
    if len(parts) >= 3:
        return parts[-3], parts[-2], parts[-1]
    if len(parts) == 2:
        return scope.project, parts[0], parts[1]
    if not scope.dataset:
        raise invalid_query(f'Table "{parts[0]}" must be qualified with a dataset '
                            "(e.g. dataset.table).")
    return scope.project, scope.dataset, parts[0]


def schema_name(project: str, dataset: str) -> str:
    return f"{project}.{dataset}"


def _point(table: exp.Table, project: str, dataset: str, name: str) -> None:
    table.set("catalog", None)
    table.set("db", exp.to_identifier(schema_name(project, dataset), quoted=True))
    table.set("this", exp.to_identifier(name, quoted=True))


def drop_target(tree: exp.Drop) -> exp.Expression | None:
    tables = tree.args.get("tables")
    return tables[0] if tables else tree.this


def _write_targets(tree: exp.Expression) -> list[exp.Table]:
    target = None
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Alter)):
        target = tree.this
    elif isinstance(tree, exp.Create) and tree.kind in ("TABLE", "VIEW"):
        target = tree.this
    elif isinstance(tree, exp.Drop) and tree.kind in ("TABLE", "VIEW"):
        target = drop_target(tree)
    elif isinstance(tree, exp.TruncateTable):
        return list(tree.expressions)
    if isinstance(target, exp.Schema):
        target = target.this
    return [target] if isinstance(target, exp.Table) else []


def _resolve_tables(tree: exp.Expression, scope: Scope) -> None:
    if isinstance(tree, (exp.Create, exp.Drop)) and tree.kind == "SCHEMA":
        return  # the engine handles datasets itself
    ctes = _cte_names(tree)
    targets = {id(t) for t in _write_targets(tree)}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue  # table functions (UNNEST, ML.PREDICT, ...)
        name = table.name
        if len(table.parts) == 1 and (name.lower() in ctes or name in scope.relations
                                      or name.lower() in scope.temp_tables):
            continue
        project, dataset, name = table_parts(table, scope)
        if name.upper().startswith("INFORMATION_SCHEMA."):
            _information_schema(table, scope, project, dataset, name)
            continue
        if dataset.upper() == "INFORMATION_SCHEMA":
            _information_schema(table, scope, project, None, f"INFORMATION_SCHEMA.{name}")
            continue
        if id(table) in targets:
            if project == PUBLIC_PROJECT:
                raise access_denied(f"Table {project}:{dataset}.{name}: User does not have "
                                    "permission to modify tables in the public datasets.")
            if not scope.catalog.dataset_exists(project, dataset):
                raise not_found("Dataset", f"{project}:{dataset}")
            _located(scope, project, dataset)
            _point(table, project, dataset, name)
            continue
        if name.endswith("*"):
            _located(scope, project, dataset)
            _wildcard(table, scope, project, dataset, name[:-1])
            continue
        if scope.catalog.table_kind(project, dataset, name) is None:
            results = scope.catalog.query_results(project, dataset, name)
            if results is not None:  # a query's anonymous destination table
                from labkit.bigquery import bignumeric

                if bignumeric.TEXT_FIELD in str(results.schema):  # text would sort as text
                    raise unsupported("Querying a query's anonymous results table that holds "
                                      "full-precision BIGNUMERIC values (name a destination "
                                      "table for the first query)")
                relation = f"__query_results_{next(_names)}"
                scope.relations[relation] = results
                replacement = _results_relation(relation, results)
                replacement.set("alias", table.args.get("alias")
                                or exp.TableAlias(this=exp.to_identifier(name)))
                table.replace(replacement)
                continue
            if not scope.catalog.dataset_exists(project, dataset):
                raise not_found("Dataset", f"{project}:{dataset}")
            raise not_found("Table", f"{project}:{dataset}.{name}")
        _located(scope, project, dataset)
        scope.read_tables.append((project, dataset, name))
        _as_of(table, scope, project, dataset, name)
        _point(table, project, dataset, name)


def _as_of(table: exp.Table, scope: Scope, project: str, dataset: str, name: str) -> None:
    """FOR SYSTEM_TIME AS OF a time at or after the table's last change reads the table as
    it is (BigQuery DataFrames reads every table so); an earlier time needs the history the
    local BigQuery does not keep: refused, not answered with today's rows."""
    version = table.args.get("version")
    if version is None:
        return
    when = version.expression
    if isinstance(when, exp.Cast):
        when = when.this
    if not (isinstance(when, exp.Literal) and when.is_string):
        raise unsupported("FOR SYSTEM_TIME AS OF a computed timestamp (time travel)")
    import datetime

    text = when.this.strip().replace(" UTC", "+00:00").replace(" ", "T", 1)
    try:
        at = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise invalid_query(f"Invalid timestamp: '{when.this}'") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.UTC)
    changed = int(scope.catalog.table_meta(project, dataset, name).get("lastModifiedTime")
                  or 0)
    if at.timestamp() * 1000 < changed:
        raise unsupported(f"Reading {project}:{dataset}.{name} as of {when.this}, before its "
                          "last change (time travel: the local BigQuery keeps no table "
                          "history)")
    table.set("version", None)


def _located(scope: Scope, project: str, dataset: str) -> None:
    """A job reads and writes one location only (labkit.bigquery.locations)."""
    if scope.location is not None and scope.catalog.dataset_exists(project, dataset):
        scope.location.touch(project, dataset)


def _wildcard(table: exp.Table, scope: Scope, project: str, dataset: str, prefix: str) -> None:
    names = scope.catalog.tables_with_prefix(project, dataset, prefix)
    if not names:
        raise not_found("Table", f"{project}:{dataset}.{prefix}*")
    selects = []
    for name in names:
        scope.read_tables.append((project, dataset, name))
        ref = exp.table_(exp.to_identifier(name, quoted=True),
                         db=exp.to_identifier(schema_name(project, dataset), quoted=True))
        selects.append(exp.select("*", exp.alias_(exp.Literal.string(name[len(prefix):]),
                                                  "_TABLE_SUFFIX")).from_(ref))
    union = selects[0]
    for select in selects[1:]:
        union = exp.Union(this=union, expression=select, distinct=False, by_name=True)
    alias = table.args.get("alias") or exp.TableAlias(
        this=exp.to_identifier(prefix.rstrip("_") or "wildcard", quoted=True))
    table.replace(exp.Subquery(this=union, alias=alias))


def _information_schema(table: exp.Table, scope: Scope, project: str, dataset: str | None,
                        name: str) -> None:
    view = name.split(".", 1)[1].upper()
    if dataset and dataset.lower().startswith("region-"):
        dataset = None
    if dataset and not scope.catalog.dataset_exists(project, dataset):
        raise not_found("Dataset", f"{project}:{dataset}")
    relation = f"__information_schema_{view.lower()}_{next(_names)}"
    scope.relations[relation] = scope.catalog.information_schema(project, dataset, view)
    alias = table.args.get("alias")
    replacement = exp.table_(exp.to_identifier(relation))
    replacement.set("alias", alias or exp.TableAlias(this=exp.to_identifier(view)))
    table.replace(replacement)


# --- dialect differences ---------------------------------------------------------------

_FORMATS = {"%E*S": "%S.%f", "%E6S": "%S.%f", "%E3S": "%S.%g", "%Ez": "%z", "%F": "%Y-%m-%d",
            "%T": "%H:%M:%S", "%D": "%m/%d/%y", "%R": "%H:%M", "%k": "%-H", "%e": "%-d"}


def _strptime_format(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and node.is_string:
        text = node.this
        for bq, duck in _FORMATS.items():
            text = text.replace(bq, duck)
        return exp.Literal.string(text)
    return node


def _cast(node: exp.Expression, to: str) -> exp.Cast:
    return exp.Cast(this=node, to=exp.DataType.build(to, dialect="duckdb"))


def _anon(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _ieee_divide(x: exp.Expression, y: exp.Expression) -> exp.Expression:
    """IEEE_DIVIDE(x, y): x / y that never fails: +/-inf for x / 0, NaN for 0 / 0 or NaN
    (BigQuery docs: Mathematical functions). The engine's `/` raises division by zero."""
    num = _cast(x, "DOUBLE")
    den = _cast(y, "DOUBLE")
    special = (exp.Case()
               .when(_anon("isnan", num.copy()), _cast(exp.Literal.string("NaN"), "DOUBLE"))
               .when(exp.GT(this=num.copy(), expression=exp.Literal.number(0)),
                     _cast(exp.Literal.string("Infinity"), "DOUBLE"))
               .when(exp.LT(this=num.copy(), expression=exp.Literal.number(0)),
                     _cast(exp.Literal.string("-Infinity"), "DOUBLE"))
               .when(exp.EQ(this=num.copy(), expression=exp.Literal.number(0)),
                     _cast(exp.Literal.string("NaN"), "DOUBLE")))
    return exp.Paren(this=exp.Case()
                     .when(exp.EQ(this=den.copy(), expression=exp.Literal.number(0)), special)
                     .else_(exp.Div(this=num, expression=den)))


def _results_relation(relation: str, results) -> exp.Expression:
    """The FROM item reading a query's anonymous results (Arrow, as arrow_rows leaves
    them): its INTERVALs, which leave as their parts, read as INTERVALs again."""
    from labkit.bigquery.arrow_rows import INTERVAL_FIELD, interval_from_parts_sql

    parts = [f.name for f in results.schema
             if f.type.num_fields == 1 and f.type.field(0).name == INTERVAL_FIELD]
    if not parts:
        return exp.table_(exp.to_identifier(relation))
    replaced = ", ".join(f"{interval_from_parts_sql(_quoted(n))} AS {_quoted(n)}"
                         for n in parts)
    return exp.Subquery(this=sqlglot.parse_one(
        f"SELECT * REPLACE ({replaced}) FROM {relation}", read="duckdb"))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _full_bignumeric_literal(node) -> bool:
    """Whether a node is BIGNUMERIC 'text' (CAST of a string) whose value DECIMAL(38, 18)
    cannot hold: it becomes the full-precision BIGNUMERIC (labkit.bigquery.bignumeric)."""
    if not (isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.BIGDECIMAL
            and not node.to.expressions and node.this.is_string):
        return False
    from labkit.bigquery import bignumeric

    try:
        return not bignumeric.fits_decimal(node.this.name)
    except ArithmeticError:
        return False  # not a number: DuckDB's cast names it


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.CurrentTimestamp) and not node.args.get("this"):
        # DuckDB reads a bare CURRENT_TIMESTAMP as a column when a select item has that
        # alias (`SELECT CURRENT_TIMESTAMP() AS current_timestamp`, BigQuery DataFrames)
        return _anon("get_current_timestamp")
    if distance.is_ml_distance(node):
        return distance.ml_distance(node)
    if isinstance(node, exp.Func) and geography.handles(_function_name(node)):
        return geography.rewrite(node)
    if isinstance(node, exp.Cast) and geography.is_geography_type(node.to):
        return geography.cast(node)
    if isinstance(node, exp.Anonymous) and node.name.upper() == "IEEE_DIVIDE":
        if len(node.expressions) != 2:
            raise invalid_query("No matching signature for function IEEE_DIVIDE: it takes "
                                "2 arguments")
        return _ieee_divide(node.expressions[0].copy(), node.expressions[1].copy())
    if isinstance(node, exp.Literal) and not node.is_string:
        text = str(node.this)
        if any(c in text for c in ".eE") and not isinstance(
                node.parent, (exp.DataType, exp.DataTypeParam, exp.TableSample, exp.Interval)):
            return _cast(node.copy(), "DOUBLE")
        return node
    if isinstance(node, exp.DataType):
        if node.this == exp.DataType.Type.GEOGRAPHY:  # its WKT in a marked STRUCT
            return exp.DataType.build(geography.DUCK_TYPE, dialect="duckdb")
        if node.this == exp.DataType.Type.DECIMAL and not node.expressions:
            return exp.DataType.build("DECIMAL(38,9)")
        params = [int(p.this.this) for p in node.expressions
                  if isinstance(p, exp.DataTypeParam) and isinstance(p.this, exp.Literal)]
        if node.this == exp.DataType.Type.BIGDECIMAL:
            if not params and node.find_ancestor(exp.ColumnDef):  # a column: 76 digits
                from labkit.bigquery import bignumeric

                return exp.DataType.build(bignumeric.DUCK, dialect="duckdb")
            if not params and _full_bignumeric_literal(node.parent):
                return node  # the Cast below makes the value
            if not params:  # an expression: arithmetic needs DuckDB's DECIMAL
                return exp.DataType.build("DECIMAL(38,18)")
            if params[0] > 38:  # DuckDB's DECIMAL holds 38 digits
                raise unsupported(f"BIGNUMERIC({', '.join(map(str, params))}) (more than 38 "
                                  "digits of precision)")
            return exp.DataType.build(f"DECIMAL({params[0]},{params[1] if len(params) > 1 else 0})")
        if node.this == exp.DataType.Type.TIMESTAMPTZ and params:
            if params == [12] and node.find_ancestor(exp.ColumnDef):
                from labkit.bigquery import timestamp_picos  # picoseconds, as text

                return exp.DataType.build(timestamp_picos.DUCK, dialect="duckdb")
            if params == [12] and isinstance(node.parent, exp.Cast):
                return node  # the Cast makes the value (below)
            if params != [6]:
                raise invalid_query(f"TIMESTAMP({', '.join(map(str, params))}) is not a type: "
                                    "a TIMESTAMP's precision is 6 or 12")
            return exp.DataType.build("TIMESTAMPTZ")
        if node.this == exp.DataType.Type.BINARY and params and node.find_ancestor(exp.ColumnDef):
            return exp.DataType.build("BLOB")  # the length is a CHECK (sql/ddl.py)
        return node
    if isinstance(node, exp.Struct) and not all(
            isinstance(e, exp.PropertyEQ) for e in node.expressions):
        return _anonymous_fields_named(node.expressions, _sibling_names(node))
    if isinstance(node, exp.Tuple) and _is_value(node):
        if isinstance(node.parent, exp.Array) and isinstance(node.parent.parent, exp.Unnest):
            # UNNEST of an array of STRUCTs gives their fields as columns; sqlglot marks that
            # when it parses STRUCT(...), not the tuple form
            node.parent.parent.set("explode_array", True)
        return _anonymous_fields_named(node.expressions, _sibling_names(node))
    if isinstance(node, exp.TsOrDsToTime) and not (
            isinstance(node.this, exp.Literal) and node.this.is_string):
        # TIME(timestamp) is its time of day in UTC, TIME(datetime) its own; DuckDB casts
        # neither a TIMESTAMPTZ nor a DATE-or-TIMESTAMP union to TIME, but both to
        # TIMESTAMP (the session's zone is UTC), which casts to TIME
        return _cast(_cast(node.this.copy(), "TIMESTAMP"), "TIME")
    if isinstance(node, exp.Extract):
        return _extract(node)
    if isinstance(node, exp.Unnest) and node.args.get("offset") and node.expressions:
        return _unnest_with_offset(node)
    if isinstance(node, exp.Format):  # BigQuery's FORMAT is printf-style, DuckDB's is fmt
        return _anon("printf", node.this.copy(), *(e.copy() for e in node.expressions))
    if isinstance(node, exp.TimestampDiff):  # whole units elapsed, not boundaries crossed
        unit = (node.args.get("unit") or exp.Var(this="DAY")).name.upper()
        if unit in ("MICROSECOND", "MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY"):
            return _anon("date_sub", exp.Literal.string(unit.lower()), node.expression.copy(),
                         node.this.copy())
        return node
    if isinstance(node, (exp.DateAdd, exp.DateSub, exp.DateTrunc)):
        return _cast(node.copy(), "DATE")
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Limit):
        limit = node.this
        return _anon("list_slice", exp.ArrayAgg(this=limit.this.copy()), exp.Literal.number(1),
                     limit.expression.copy())
    if isinstance(node, exp.Anonymous) and node.name.upper() in ("RANGE_START", "RANGE_END") \
            and not node.meta.get(calls.ROUTINE):
        # a RANGE is a struct of its bounds here (NULL: unbounded, as BigQuery returns it)
        if len(node.expressions) != 1:
            raise invalid_query(f"No matching signature for function {node.name.upper()}: it "
                                "takes 1 argument")
        return _anon("struct_extract", node.expressions[0].copy(), exp.Literal.string(
            "start" if node.name.upper() == "RANGE_START" else "end"))
    if isinstance(node, exp.Anonymous) and node.name.upper() == "RANGE" \
            and len(node.expressions) == 2:
        # RANGE(start, end): a struct of its bounds (NULL: unbounded), typed as one list
        start, end = (e.sql(dialect="duckdb") for e in node.expressions)
        bounds = f"[{start}, {end}]"
        return sqlglot.parse_one(
            f"CASE WHEN ({start}) >= ({end}) THEN error('Range start element must be smaller "
            f"than range end element') ELSE struct_pack(\"start\" := list_extract({bounds}, 1), "
            f"\"end\" := list_extract({bounds}, 2)) END", read="duckdb")
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.TIMESTAMPTZ and \
            [p.this.this for p in node.to.expressions if isinstance(p, exp.DataTypeParam)] \
            == ["12"]:  # CAST(x AS TIMESTAMP(12)): picoseconds (labkit.bigquery.timestamp_picos)
        from labkit.bigquery import timestamp_picos

        return sqlglot.parse_one(timestamp_picos.from_text(node.this.sql("duckdb")),
                                 read="duckdb")
    if _full_bignumeric_literal(node):  # BIGNUMERIC '...' beyond DECIMAL(38, 18)
        from labkit.bigquery import bignumeric

        try:
            return sqlglot.parse_one(bignumeric.literal(node.this.name), read="duckdb")
        except ValueError as exc:
            raise invalid_query(str(exc)) from None
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.RANGE \
            and node.this.is_string and len(node.to.expressions) == 1:
        # RANGE<DATE> '[2024-01-01, 2024-02-01)': the text read as loads read it
        from labkit.bigquery.schema import range_from_text

        element = node.to.expressions[0].sql(dialect="bigquery").upper()
        if element not in ("DATE", "DATETIME", "TIMESTAMP"):
            raise invalid_query(f"RANGE<{element}> is not a valid type: the element type is "
                                "DATE, DATETIME or TIMESTAMP")
        return sqlglot.parse_one(range_from_text(node.this.sql(dialect="duckdb"), element),
                                 read="duckdb")
    if isinstance(node, exp.Initcap):
        # sqlglot's DuckDB INITCAP re-parses its argument's SQL in its default dialect,
        # which reads arr[1] as 0-based and adds the offset again
        # (INITCAP(['seattle', 'wa'][OFFSET(0)]) read element 2): index with a function
        from sqlglot.expressions.builders import apply_index_offset

        for bracket in list(node.this.find_all(exp.Bracket)):
            if bracket.args.get("json_access") or len(bracket.expressions) != 1:
                continue
            index = apply_index_offset(bracket.this, bracket.expressions,
                                       1 - bracket.args.get("offset", 0), dialect="duckdb")
            bracket.replace(_anon("list_extract", bracket.this.copy(), index[0].copy()))
        return node
    if isinstance(node, exp.JSONType):  # BigQuery's names: object, array, string, number...
        kind = _anon("json_type", node.this.copy())
        return exp.Case(ifs=[
            exp.If(this=exp.EQ(this=kind.copy(), expression=exp.Literal.string("VARCHAR")),
                   true=exp.Literal.string("string")),
            exp.If(this=exp.In(this=kind.copy(), expressions=[
                exp.Literal.string(t) for t in ("BIGINT", "UBIGINT", "HUGEINT", "DOUBLE")]),
                true=exp.Literal.string("number"))],
            default=_anon("lower", kind))
    if isinstance(node, exp.TableSample):
        method = (node.args.get("method") or exp.Var(this="")).name.upper()
        if method in ("SYSTEM", "") and node.args.get("percent") is not None:
            node.set("method", exp.Var(this="BERNOULLI"))
        return node
    if isinstance(node, exp.ParseDatetime):
        return _anon("strptime", node.this.copy(), _strptime_format(node.args["format"]))
    if isinstance(node, exp.StrToDate):
        return _cast(_anon("strptime", node.this.copy(),
                           _strptime_format(node.args["format"])), "DATE")
    if isinstance(node, exp.StrToTime):
        fmt = _strptime_format(node.args["format"])
        parsed = _anon("strptime", node.this.copy(), fmt)
        zone = node.args.get("zone")
        has_zone = isinstance(fmt, exp.Literal) and any(z in fmt.this for z in ("%z", "%Z"))
        if zone is not None and not has_zone:
            return _anon("timezone", zone.copy(), parsed)
        return _cast(parsed, "TIMESTAMPTZ")
    return node


def _anonymous_fields_named(members: list[exp.Expression],
                            names: list[str] | None = None) -> exp.Struct:
    """A STRUCT whose unnamed fields are named as BigQuery names them: _field_N by position
    (STRUCT(1, 2), and the tuple form (1, 2)), or, inside an array, as the array's first
    named STRUCT names them ([STRUCT(1 AS id), STRUCT(2)] is ARRAY<STRUCT<id INT64>>)."""
    named = [m.copy() if isinstance(m, exp.PropertyEQ) else
             exp.PropertyEQ(this=exp.to_identifier(names[i - 1] if names else f"_field_{i}"),
                            expression=m.copy())
             for i, m in enumerate(members, 1)]
    return exp.Struct(expressions=named)


def _sibling_names(node: exp.Struct | exp.Tuple) -> list[str] | None:
    """The field names of the first fully named STRUCT of the same width in node's array."""
    if not isinstance(node.parent, exp.Array):
        return None
    for sibling in node.parent.expressions:
        if (isinstance(sibling, exp.Struct) and len(sibling.expressions) == len(node.expressions)
                and all(isinstance(e, exp.PropertyEQ) for e in sibling.expressions)):
            return [e.this.name for e in sibling.expressions]
    return None


def _is_value(node: exp.Tuple) -> bool:
    """A parenthesised list that is a STRUCT value, not part of IN, VALUES, GROUP BY..."""
    parent = node.parent
    while parent is not None and not isinstance(parent, (exp.Select, exp.Subquery)):
        if isinstance(parent, (exp.In, exp.Values, exp.Group, exp.Order, exp.Window,
                               exp.Schema, exp.Insert)):
            return False
        parent = parent.parent
    return True


def _extract(node: exp.Extract) -> exp.Expression:
    part, value = node.this, node.expression.copy()
    if isinstance(part, exp.WeekStart):
        day = part.name.upper()
        if day not in ("SUNDAY", "MONDAY"):
            raise unsupported(f"EXTRACT(WEEK({day}))")
        return _cast(_anon("strftime", value, exp.Literal.string(
            "%U" if day == "SUNDAY" else "%W")), "BIGINT")
    name = part.name.upper()
    if name == "DAYOFWEEK":
        return exp.Paren(this=exp.Add(this=exp.Extract(this=exp.Var(this="DOW"),
                                                       expression=value),
                                      expression=exp.Literal.number(1)))
    if name == "WEEK":
        return _cast(_anon("strftime", value, exp.Literal.string("%U")), "BIGINT")
    if name == "ISOWEEK":
        return exp.Extract(this=exp.Var(this="WEEK"), expression=value)
    if name == "DAYOFYEAR":
        return exp.Extract(this=exp.Var(this="DOY"), expression=value)
    if name == "DATE":
        return _cast(value, "DATE")
    return node


def _rewrite_functions(tree: exp.Expression) -> exp.Expression:
    """Applies _rewrite bottom-up, so a rewritten node carries rewritten children."""
    for node in reversed(list(tree.dfs())):
        new = _rewrite(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


def _unnest_with_offset(node: exp.Unnest) -> exp.Expression:
    """UNNEST(a) AS v WITH OFFSET AS o: BigQuery's offsets start at 0 (ORDINALITY at 1)."""
    array = node.expressions[0]
    alias = node.args.get("alias")
    value = alias.columns[0].name if alias is not None and alias.columns else (
        alias.name if alias is not None and alias.name else "f0_")
    offset = node.args["offset"]
    offset_name = offset.name if isinstance(offset, exp.Expression) and offset.name \
        else "offset"
    select = exp.select(
        exp.alias_(exp.Unnest(expressions=[array.copy()]), value, quoted=True),
        exp.alias_(exp.Sub(this=_anon("generate_subscripts", array.copy(),
                                      exp.Literal.number(1)), expression=exp.Literal.number(1)),
                   offset_name, quoted=True))
    return exp.Subquery(this=select, alias=exp.TableAlias(
        this=exp.to_identifier(f"__unnest_{value}", quoted=True)))


def _name_anonymous_columns(select: exp.Select) -> None:
    """BigQuery names each unnamed result column f0_, f1_, ... in order."""
    counter = 0
    for projection in select.expressions:
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star, exp.Dot)):
            continue
        projection.replace(exp.alias_(projection.copy(), f"f{counter}_"))
        counter += 1
