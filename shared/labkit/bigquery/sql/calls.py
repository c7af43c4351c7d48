"""Calls of user-defined functions in BigQuery SQL -> calls of their DuckDB macros.

`project.dataset.f(x)`, `dataset.f(x)` and the backticked forms (`project.dataset.f`(x))
name a routine of that dataset (labkit.bigquery.routines); `FROM dataset.tf(1)` a table
function; a bare `f(x)` is a built-in unless the script made a temporary function f. A
qualified name no dataset holds is "Function not found", as BigQuery says it; names under
BigQuery's own function namespaces (SAFE., NET., ML., ...) are left to the built-ins.
"""

from __future__ import annotations

from sqlglot import exp

from labkit.bigquery.errors import invalid_query, not_found

ROUTINE = "routine"  # meta key marking a resolved call (skipped by later checks)
TEMP_PREFIX = "__bq_temp_fn_"
_NAMESPACES = {"SAFE", "NET", "KEYS", "AEAD", "HLL_COUNT", "KLL_QUANTILES", "ML", "AI", "OBJ",
               "DETERMINISTIC", "INFORMATION_SCHEMA"}
_TABLE = "TABLE_VALUED_FUNCTION"


def _split(identifier: exp.Expression | str | None) -> list[str] | None:
    if isinstance(identifier, str):
        return identifier.split(".")
    if isinstance(identifier, exp.Identifier):
        return identifier.name.split(".") if identifier.quoted else [identifier.name]
    if isinstance(identifier, exp.Dot):
        left, right = _split(identifier.this), _split(identifier.expression)
        return left + right if left is not None and right is not None else None
    if isinstance(identifier, exp.Column):
        return [p for part in identifier.parts for p in _split(part)]
    return None


def _call(name: str, args: list[exp.Expression]) -> exp.Anonymous:
    call = exp.Anonymous(this=exp.to_identifier(name, quoted=True),
                         expressions=[a.copy() for a in args])
    call.meta[ROUTINE] = True
    return call


def resolve(tree: exp.Expression, scope) -> None:
    """Rewrites (in place) every call of a routine or temporary function in `tree`."""
    for node in list(tree.find_all(exp.Anonymous)):
        if node.meta.get(ROUTINE):
            continue
        name = _split(node.this)
        if name is None:
            continue
        parent = node.parent
        if isinstance(parent, exp.Table) and parent.this is node:
            parts = [p.name for p in (parent.args.get("catalog"), parent.args.get("db")) if p]
            _table_call(parent, node, parts + name, scope)
        elif isinstance(parent, exp.Dot) and parent.expression is node:
            prefix = _split(parent.this)
            if prefix is None:
                continue
            new = _scalar_call(node, prefix + name, scope)
            if new is not None:
                parent.replace(new)
        else:
            new = _scalar_call(node, name, scope)
            if new is not None:
                node.replace(new)


def _routine(parts: list[str], scope) -> tuple[str, str, dict] | None:
    """(schema, routine id, resource) of a qualified name; None if a built-in's."""
    if len(parts) == 2 and parts[0].upper() in _NAMESPACES:
        return None
    if len(parts) not in (2, 3):
        return None
    project, dataset, name = ([scope.project] + parts) if len(parts) == 2 else parts
    lookup = getattr(scope.catalog, "routine", None)
    found = lookup(project, dataset, name) if lookup else None
    dotted = ".".join(parts)
    if found is None:
        if not scope.catalog.dataset_exists(project, dataset):
            if len(parts) == 2:
                return None  # not a dataset: a built-in's error, as before
            raise not_found("Dataset", f"{project}:{dataset}")
        raise invalid_query(f"Function not found: {dotted}")
    if scope.location is not None:
        scope.location.touch(project, dataset)
    return f"{project}.{dataset}", found["routineReference"]["routineId"], found


def _temporary(name: str, scope) -> str | None:
    return (getattr(scope, "temp_functions", None) or {}).get(name.lower())


def _scalar_call(node: exp.Anonymous, parts: list[str], scope) -> exp.Expression | None:
    if len(parts) == 1:
        kind = _temporary(parts[0], scope)
        if kind is None:
            return None
        if kind == _TABLE:
            raise invalid_query(f"Table-valued function {parts[0]} cannot be called as a "
                                "scalar function: use it in a FROM clause")
        return _call(TEMP_PREFIX + parts[0].lower(), node.expressions)
    found = _routine(parts, scope)
    if found is None:
        return None
    schema, routine, resource = found
    if resource["routineType"] == _TABLE:
        raise invalid_query(f"Table-valued function {'.'.join(parts)} cannot be called as a "
                            "scalar function: use it in a FROM clause")
    return exp.Dot(this=exp.to_identifier(schema, quoted=True),
                   expression=_call(routine, node.expressions))


def _table_call(table: exp.Table, node: exp.Anonymous, parts: list[str], scope) -> None:
    if len(parts) == 1:
        kind = _temporary(parts[0], scope)
        if kind is None:
            return  # a built-in's or DuckDB's name: translate's checks answer it
        if kind != _TABLE:
            raise invalid_query(f"Function {parts[0]} is not a table-valued function")
        table.set("this", _call(TEMP_PREFIX + parts[0].lower(), node.expressions))
        return
    found = _routine(parts, scope)
    if found is None:
        return
    schema, routine, resource = found
    if resource["routineType"] != _TABLE:
        raise invalid_query(f"Function {'.'.join(parts)} is not a table-valued function")
    table.set("this", _call(routine, node.expressions))
    table.set("catalog", None)
    table.set("db", exp.to_identifier(schema, quoted=True))
