"""Routines (user-defined SQL functions): REST resources kept in the catalog, each one a
DuckDB macro in its dataset's schema, so SQL calls it by `project.dataset.name`.

The resource follows the REST reference (https://cloud.google.com/bigquery/docs/reference/
rest/v2/routines and the v2 discovery document google-api-python-client ships):
routineReference, routineType (SCALAR_FUNCTION, TABLE_VALUED_FUNCTION; PROCEDURE and
AGGREGATE_FUNCTION are BigQuery's too), language (default SQL), arguments (name,
argumentKind FIXED_TYPE by default or ANY_TYPE, dataType a StandardSqlDataType), returnType
(not for table functions; when set the result is cast to it), returnTableType (table
functions only; when set the columns are cast to it), definitionBody (required: the
expression inside AS ( ), or a table function's query), dataGovernanceType
(DATA_GOVERNANCE_TYPE_UNSPECIFIED or DATA_MASKING), etag, creationTime, lastModifiedTime.
routines.update (PUT) replaces the whole resource; there is no routines.patch in the API.
routines.list returns etag, routineReference, routineType, creationTime, lastModifiedTime
and language of each, filtered by `routineType:<type>`.

A scalar function is `CREATE MACRO "p.d"."name"(args) AS expr`, a table function
`CREATE MACRO ... AS TABLE query`, both with the body translated by the BigQuery -> DuckDB
translator and each FIXED_TYPE argument cast to its type where the body reads it.
JavaScript, Python, Java/Scala (Spark) and remote functions do not run locally.
"""

from __future__ import annotations

import hashlib
import json
import re

import duckdb
from sqlglot import exp

from labkit.bigquery import ids
from labkit.bigquery import schema as bqschema
from labkit.bigquery.errors import (
    BigQueryError,
    access_denied,
    duplicate,
    invalid,
    not_found,
    unsupported,
)
from labkit.bigquery.sql.calls import TEMP_PREFIX  # noqa: F401 - engine names temp macros
from labkit.bigquery.sql.translate import PUBLIC_PROJECT, Scope, parse, to_duckdb
from labkit.bigquery.warehouse import Warehouse, now_ms

TYPES = ("SCALAR_FUNCTION", "TABLE_VALUED_FUNCTION")
_ALL_TYPES = (*TYPES, "PROCEDURE", "AGGREGATE_FUNCTION")
_LANGUAGES = ("SQL", "JAVASCRIPT", "PYTHON", "JAVA", "SCALA")
_GOVERNANCE = ("DATA_GOVERNANCE_TYPE_UNSPECIFIED", "DATA_MASKING")
_KINDS = ("ARGUMENT_KIND_UNSPECIFIED", "FIXED_TYPE", "ANY_TYPE", "FIXED_TABLE", "ANY_TABLE")
# what a routine keeps of a request (the rest is output only, or refused below)
_FIELDS = ("routineType", "language", "arguments", "returnType", "returnTableType",
           "definitionBody", "description", "determinismLevel", "dataGovernanceType",
           "importedLibraries", "remoteFunctionOptions", "securityMode", "strictMode")
_LISTED = ("etag", "routineReference", "routineType", "creationTime", "lastModifiedTime",
           "language")


def _etag(resource: dict) -> str:
    return hashlib.md5(json.dumps(resource, sort_keys=True).encode()).hexdigest()[:16]


def duck_type(data_type: object, where: str) -> str:
    """The DuckDB type of a StandardSqlDataType (a 400 naming `where` if it is not one)."""
    if not isinstance(data_type, dict) or not data_type.get("typeKind") or \
            data_type["typeKind"] == "TYPE_KIND_UNSPECIFIED":
        raise invalid(f"{where}: the data type needs a typeKind")
    kind = str(data_type["typeKind"]).upper()
    if kind == "ARRAY":
        element = data_type.get("arrayElementType")
        if isinstance(element, dict) and str(element.get("typeKind")).upper() == "ARRAY":
            raise invalid(f"{where}: arrays of arrays are not a BigQuery type")
        return duck_type(element, where) + "[]"
    if kind == "STRUCT":
        fields = (data_type.get("structType") or {}).get("fields") or []
        if not fields:
            raise invalid(f"{where}: a STRUCT type needs structType.fields")
        return "STRUCT(" + ", ".join(
            f"{bqschema.quote(f.get('name') or f'_field_{i}')} "
            f"{duck_type(f.get('type'), where)}" for i, f in enumerate(fields, 1)) + ")"
    field = {"name": where, "type": kind}
    if kind == "RANGE":
        element = data_type.get("rangeElementType") or {}
        field["rangeElementType"] = {"type": str(element.get("typeKind") or "").upper()}
    try:
        return bqschema.duck_type(field)
    except BigQueryError:
        raise invalid(f"{where}: {kind} is not a BigQuery data type") from None


def standard_type(kind: exp.DataType) -> dict:
    """A sqlglot data type (from DDL) as a StandardSqlDataType."""
    t = exp.DataType.Type
    if kind.this == t.ARRAY:
        return {"typeKind": "ARRAY", "arrayElementType": standard_type(kind.expressions[0])}
    if kind.this == t.STRUCT:
        return {"typeKind": "STRUCT", "structType": {"fields": [
            {"name": c.name, "type": standard_type(c.args["kind"])} if isinstance(
                c, exp.ColumnDef) else {"type": standard_type(c)} for c in kind.expressions]}}
    if kind.this == t.RANGE:
        return {"typeKind": "RANGE", "rangeElementType": standard_type(kind.expressions[0])}
    name = exp.DataType(this=kind.this).sql("bigquery").upper()
    return {"typeKind": {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL",
                         "DECIMAL": "NUMERIC"}.get(name, name)}


def _cast_arguments(tree: exp.Expression, types: dict[str, str]) -> None:
    """Each read of a typed argument becomes CAST(argument AS its type)."""
    for column in list(tree.find_all(exp.Column)):
        if not column.table and column.name.lower() in types:
            column.replace(exp.Cast(this=column.copy(), to=exp.DataType.build(
                types[column.name.lower()], dialect="duckdb")))


def check(resource: dict) -> None:
    """Refuses what BigQuery refuses in a routine (400) and what does not run locally."""
    ref = resource.get("routineReference") or {}
    routine_type = resource.get("routineType")
    if routine_type not in _ALL_TYPES:
        raise invalid(f"Invalid value for routineType: {routine_type!r}; it is one of "
                      f"{', '.join(_ALL_TYPES)}" if routine_type else
                      "routineType is required (SCALAR_FUNCTION or TABLE_VALUED_FUNCTION)")
    language = resource.get("language") or "SQL"
    if language not in _LANGUAGES:
        raise invalid(f"Invalid value for language: {language!r}")
    if resource.get("remoteFunctionOptions"):
        raise unsupported("Remote functions (remoteFunctionOptions)")
    if language != "SQL":
        raise unsupported(f"{language.capitalize()} user-defined functions (language "
                          f"{language})")
    if routine_type not in TYPES:
        raise unsupported(f"Routines of type {routine_type}")
    body = resource.get("definitionBody")
    if not isinstance(body, str) or not body.strip():
        raise invalid(f"Routine {ref.get('routineId')}: definitionBody is required")
    if routine_type == "TABLE_VALUED_FUNCTION" and resource.get("returnType"):
        raise invalid("returnType cannot be set for a TABLE_VALUED_FUNCTION; use "
                      "returnTableType")
    if routine_type == "SCALAR_FUNCTION" and resource.get("returnTableType"):
        raise invalid("returnTableType can be set only for a TABLE_VALUED_FUNCTION")
    if resource.get("dataGovernanceType", "DATA_GOVERNANCE_TYPE_UNSPECIFIED") not in _GOVERNANCE:
        raise invalid(f"Invalid value for dataGovernanceType: "
                      f"{resource.get('dataGovernanceType')!r}")
    arguments = resource.get("arguments") or []
    if not isinstance(arguments, list):
        raise invalid("arguments must be a list")
    names = set()
    for i, argument in enumerate(arguments):
        if not isinstance(argument, dict) or not argument.get("name"):
            raise invalid(f"Argument {i + 1} of routine {ref.get('routineId')} needs a name")
        name = argument["name"]
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name.lower() in names:
            raise invalid(f"Invalid or repeated argument name: {name}")
        names.add(name.lower())
        kind = argument.get("argumentKind") or "FIXED_TYPE"
        if kind not in _KINDS:
            raise invalid(f"Invalid value for argumentKind: {kind!r}")
        if kind in ("FIXED_TABLE", "ANY_TABLE"):
            raise unsupported(f"Table arguments (argumentKind {kind})")
        if argument.get("mode"):
            raise invalid(f"Argument {name}: mode can be set for procedures only")
        if kind in ("FIXED_TYPE", "ARGUMENT_KIND_UNSPECIFIED"):
            duck_type(argument.get("dataType"), f"Argument {name}")
    if resource.get("returnType"):
        duck_type(resource["returnType"], "returnType")
    for column in (resource.get("returnTableType") or {}).get("columns") or []:
        duck_type(column.get("type"), f"Column {column.get('name')} of returnTableType")


def macro_sql(resource: dict, wh: Warehouse, name: str, temporary: bool = False,
              scope: Scope | None = None) -> str:
    """The DuckDB statement that makes the routine's macro, called `name` (SQL text); the
    body's names resolve in `scope` (default: the routine's own dataset)."""
    ref = resource["routineReference"]
    project, dataset = ref["projectId"], ref["datasetId"]
    arguments = resource.get("arguments") or []
    types = {a["name"].lower(): duck_type(a["dataType"], a["name"]) for a in arguments
             if (a.get("argumentKind") or "FIXED_TYPE") != "ANY_TYPE"}
    scope = scope or Scope(project, dataset, wh)
    body = resource["definitionBody"]
    params = ", ".join(bqschema.quote(a["name"]) for a in arguments)
    head = (f"CREATE {'TEMP ' if temporary else ''}MACRO "
            f"{name}({params}) AS ")
    if resource["routineType"] == "SCALAR_FUNCTION":
        tree = parse(f"SELECT ({body}) AS __value")
        _cast_arguments(tree, types)
        sql = to_duckdb(tree, scope).removeprefix("SELECT ").removesuffix(" AS __value")
        if resource.get("returnType"):
            sql = f"CAST({sql} AS {duck_type(resource['returnType'], 'returnType')})"
        return head + sql
    tree = parse(body)
    if not isinstance(tree, exp.Query):
        raise invalid(f"The body of table function {ref['routineId']} must be a query")
    _cast_arguments(tree, types)
    sql = to_duckdb(tree, scope)
    columns = (resource.get("returnTableType") or {}).get("columns")
    if columns:
        casts = ", ".join(f"CAST({bqschema.quote(c['name'])} AS "
                          f"{duck_type(c.get('type'), c['name'])}) AS {bqschema.quote(c['name'])}"
                          for c in columns)
        sql = f"SELECT {casts} FROM ({sql}) AS __routine"
    return head + "TABLE " + sql


def probe(cur, resource: dict, name: str) -> None:
    """Binds a call of the new macro, as BigQuery checks a body when it is created: an
    unknown column, function or table is the creator's error (not the first caller's)."""
    arguments = resource.get("arguments") or []
    if any((a.get("argumentKind") or "FIXED_TYPE") == "ANY_TYPE" for a in arguments):
        return  # their types are known only at a call
    nulls = ", ".join("NULL" for _ in arguments)
    call = f"SELECT * FROM {name}({nulls})" \
        if resource["routineType"] == "TABLE_VALUED_FUNCTION" else f"SELECT {name}({nulls})"
    run_duckdb(cur, f"SELECT * FROM ({call}) LIMIT 0")


def run_duckdb(cur, sql: str) -> None:
    from labkit.bigquery.engine import duck_error

    try:
        cur.execute(sql)
    except duckdb.Error as exc:
        raise duck_error(exc) from exc


def drop_sql(resource: dict, name: str) -> str:
    table = " TABLE" if resource["routineType"] == "TABLE_VALUED_FUNCTION" else ""
    return f"DROP MACRO{table} IF EXISTS {name}"


class Routines:
    """routines.insert / get / list / update / delete over the warehouse's catalog."""

    def __init__(self, wh: Warehouse):
        self.wh = wh

    def _dataset(self, project: str, dataset: str) -> None:
        if not self.wh.dataset_exists(project, dataset):
            raise not_found("Dataset", f"{project}:{dataset}")

    def _stored(self, project: str, dataset: str, routine: str) -> dict:
        self._dataset(project, dataset)
        found = self.wh.routine(project, dataset, routine, exact=True)
        if found is None:
            raise not_found("Routine", f"{project}:{dataset}.{routine}")
        return found

    @staticmethod
    def _shown(resource: dict) -> dict:
        ref = resource["routineReference"]
        body = {**resource, "creationTime": str(resource["creationTime"]),
                "lastModifiedTime": str(resource["lastModifiedTime"])}
        body["language"] = body.get("language") or "SQL"
        body["etag"] = _etag(body)
        body["selfLink"] = (f"/bigquery/v2/projects/{ref['projectId']}/datasets/"
                            f"{ref['datasetId']}/routines/{ref['routineId']}")
        return body

    def get(self, project: str, dataset: str, routine: str, read_mask: str | None = None) -> dict:
        shown = self._shown(self._stored(project, dataset, routine))
        return _masked(shown, read_mask) if read_mask else shown

    def list(self, project: str, dataset: str, text: str | None,
             read_mask: str | None = None) -> list[dict]:
        self._dataset(project, dataset)
        wanted = None
        if text:
            key, _, value = text.strip().partition(":")
            if key.strip() != "routineType" or value.strip() not in _ALL_TYPES:
                raise invalid(f"Invalid filter: {text}; the filter is routineType:<type>, "
                              f"a type of {', '.join(_ALL_TYPES)}")
            wanted = value.strip()
        return [_masked(self._shown(r), read_mask) if read_mask else
                {k: v for k, v in self._shown(r).items() if k in _LISTED}
                for r in self.wh.routines(project, dataset)
                if wanted is None or r["routineType"] == wanted]

    @staticmethod
    def _resource(project: str, dataset: str, body: dict, routine: str | None) -> dict:
        if not isinstance(body, dict):
            raise invalid("The request body must be a Routine object")
        ref = body.get("routineReference") or {}
        if not isinstance(ref, dict):
            raise invalid("routineReference must be an object")
        if ref.get("projectId") not in (None, project) or \
                ref.get("datasetId") not in (None, dataset) or \
                (routine is not None and ref.get("routineId") not in (None, routine)):
            raise invalid("The routineReference in the body does not match the request path")
        routine_id = ids.routine(ref.get("routineId") if routine is None
                                 else ref.get("routineId") or routine)
        resource = {"routineReference": {"projectId": project, "datasetId": dataset,
                                         "routineId": routine_id},
                    **{k: body[k] for k in _FIELDS if body.get(k) is not None}}
        check(resource)
        return resource

    def insert(self, project: str, dataset: str, body: dict) -> dict:
        resource = self._resource(project, dataset, body, None)
        with self.wh.write() as cur:
            self.create(cur, resource)
        return self.get(project, dataset, resource["routineReference"]["routineId"])

    def update(self, project: str, dataset: str, routine: str, body: dict,
               if_match: str | None) -> dict:
        """routines.update: the body replaces the routine (If-Match: only if unchanged)."""
        current = self._stored(project, dataset, routine)
        if if_match and if_match.strip('"') != self._shown(current)["etag"]:
            raise BigQueryError("Precondition check failed.", "conditionNotMet")
        resource = self._resource(project, dataset, body, routine)
        with self.wh.write() as cur:
            self.create(cur, resource, replace=current)
        return self.get(project, dataset, routine)

    def delete(self, project: str, dataset: str, routine: str) -> None:
        _writable(project, dataset, routine)
        current = self._stored(project, dataset, routine)
        with self.wh.write() as cur:
            self.drop(cur, current)

    # --- shared with DDL (CREATE FUNCTION, DROP FUNCTION) -------------------------------

    def create(self, cur, resource: dict, replace: dict | None = None) -> None:
        """Makes the routine (its macro and its resource) in the caller's transaction;
        `replace`: the stored routine it takes the place of."""
        ref = resource["routineReference"]
        project, dataset, routine = ref["projectId"], ref["datasetId"], ref["routineId"]
        _writable(project, dataset, routine)
        self._dataset(project, dataset)
        existing = self.wh.routine(project, dataset, routine)
        if existing is not None and replace is None:
            raise duplicate("Routine", f"{project}:{dataset}.{routine}")
        if self.wh.table_kind(project, dataset, routine) is not None and \
                resource["routineType"] == "TABLE_VALUED_FUNCTION":
            raise BigQueryError(f"A table function and a table named {routine} cannot both "
                                f"exist in {project}:{dataset} in the local BigQuery. "
                                "It runs with LAB_BACKEND=gcp.", "notImplemented")
        name = self.wh.ref(project, dataset, routine)
        if existing is not None:
            run_duckdb(cur, drop_sql(existing, name))
        stamp = now_ms()
        resource = {**resource, "creationTime": (existing or {}).get("creationTime", stamp)
                    if replace is not None else stamp, "lastModifiedTime": stamp}
        run_duckdb(cur, macro_sql(resource, self.wh, name))
        probe(cur, resource, name)
        self.wh.set_routine(cur, project, dataset, routine, resource)

    def drop(self, cur, resource: dict) -> None:
        ref = resource["routineReference"]
        project, dataset, routine = ref["projectId"], ref["datasetId"], ref["routineId"]
        run_duckdb(cur, drop_sql(resource, self.wh.ref(project, dataset, routine)))
        self.wh.set_routine(cur, project, dataset, routine, None)


def _masked(resource: dict, read_mask: str) -> dict:
    """readMask: only the fields it names (snake_case or camelCase), and the reference."""
    wanted = {"routineReference"}
    for path in read_mask.split(","):
        name = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path.strip().split(".")[0])
        if name not in _MASKABLE:
            raise invalid(f"Invalid readMask: {path.strip()!r} is not a field of Routine")
        wanted.add(name)
    return {k: v for k, v in resource.items() if k in wanted}


_MASKABLE = {*_FIELDS, "etag", "routineReference", "creationTime", "lastModifiedTime"}


def _writable(project: str, dataset: str, routine: str) -> None:
    if project == PUBLIC_PROJECT:
        raise access_denied(f"Routine {project}:{dataset}.{routine}: the public datasets are "
                            "read-only.")

