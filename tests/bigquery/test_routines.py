"""Routines (user-defined SQL functions) through the real client: routines.insert / get /
list / update / delete, calls from SQL by every name form, CREATE / DROP [TABLE] FUNCTION,
temporary functions, the refusals, and routines surviving a restart of the service."""

from __future__ import annotations

import datetime
import uuid

import pytest
from google.api_core import exceptions
from google.cloud import bigquery
from google.cloud.bigquery import RoutineArgument, StandardSqlDataType

NAMES = bigquery.StandardSqlTypeNames
INT64 = StandardSqlDataType(type_kind=NAMES.INT64)
FLOAT64 = StandardSqlDataType(type_kind=NAMES.FLOAT64)


def _name(prefix: str = "fn") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _scalar(client, dataset, name=None, body="x * 3", **kwargs) -> bigquery.Routine:
    routine = bigquery.Routine(f"{client.project}.{dataset}.{name or _name()}",
                               type_="SCALAR_FUNCTION", language="SQL", body=body,
                               arguments=[RoutineArgument(name="x", data_type=INT64)],
                               **kwargs)
    return client.create_routine(routine)


def _value(client, sql: str):
    return list(client.query(sql).result())[0][0]


def test_scalar_routine_has_the_rest_shape_and_is_called_by_every_name(client, dataset):
    routine = _scalar(client, dataset, description="triples", return_type=INT64)
    got = client.get_routine(routine.reference)
    assert got.type_ == "SCALAR_FUNCTION" and got.language == "SQL"
    assert got.body == "x * 3" and got.description == "triples"
    assert got.arguments == [RoutineArgument(name="x", data_type=INT64)]
    assert got.return_type == INT64
    assert got.etag and got.created and got.modified
    assert got.created <= got.modified
    ref = routine.reference
    full = f"{ref.project}.{ref.dataset_id}.{ref.routine_id}"
    assert _value(client, f"SELECT `{full}`(2)") == 6
    assert _value(client, f"SELECT {ref.dataset_id}.{ref.routine_id}(3)") == 9
    assert _value(client, f"SELECT `{ref.dataset_id}.{ref.routine_id}`(4)") == 12
    # the argument is read as its type (INT64): a string of digits is cast, as declared
    assert _value(client, f"SELECT `{full}`(CAST('5' AS STRING))") == 15


def test_return_type_casts_the_result(client, dataset):
    routine = _scalar(client, dataset, body="x / 2", return_type=INT64)
    ref = routine.reference
    assert _value(client, f"SELECT {ref.dataset_id}.{ref.routine_id}(7)") == 4  # CAST(3.5 AS INT64)
    untyped = _scalar(client, dataset, body="x / 2")
    assert _value(client, f"SELECT {dataset}.{untyped.routine_id}(7)") == 3.5


def test_range_argument_and_range_start(client, dataset):
    routine = bigquery.Routine(
        f"{client.project}.{dataset}.{_name()}", type_="SCALAR_FUNCTION", language="SQL",
        body="RANGE_START(x)", return_type=StandardSqlDataType(type_kind=NAMES.DATE),
        arguments=[RoutineArgument(name="x", data_type=StandardSqlDataType(
            type_kind=NAMES.RANGE, range_element_type=StandardSqlDataType(type_kind=NAMES.DATE)))])
    client.create_routine(routine)
    assert _value(client, f"SELECT `{routine.reference}`(RANGE<DATE> "
                          "'[2016-08-12, UNBOUNDED)')") == datetime.date(2016, 8, 12)


def test_table_function_is_called_in_from_and_its_columns_take_the_declared_types(
        client, dataset):
    table_type = bigquery.StandardSqlTableType(columns=[
        bigquery.StandardSqlField(name="n", type=FLOAT64)])
    routine = client.create_routine(bigquery.Routine(
        f"{client.project}.{dataset}.{_name('tvf')}", type_="TABLE_VALUED_FUNCTION",
        body="SELECT n FROM UNNEST(GENERATE_ARRAY(1, 5)) AS n WHERE n > threshold",
        arguments=[RoutineArgument(name="threshold", data_type=INT64)],
        return_table_type=table_type))
    assert client.get_routine(routine.reference).return_table_type == table_type
    job = client.query(f"SELECT n FROM `{routine.reference}`(3) ORDER BY n")
    rows = list(job.result())
    assert [r.n for r in rows] == [4.0, 5.0]
    assert job.result().schema[0].field_type == "FLOAT"
    rows = client.query(f"SELECT t.n FROM {dataset}.{routine.routine_id}(4) AS t").result()
    assert [r.n for r in rows] == [5.0]
    with pytest.raises(exceptions.BadRequest, match="scalar"):
        client.query(f"SELECT {dataset}.{routine.routine_id}(1)").result()


def test_list_filters_by_type_and_pages(client):
    dataset = client.create_dataset(_name("ds")).dataset_id
    try:
        names = sorted(_scalar(client, dataset).routine_id for _ in range(3))
        client.query(f"CREATE TABLE FUNCTION {dataset}.tvf(n INT64) AS "
                     "SELECT n AS m").result()
        listed = list(client.list_routines(dataset, page_size=2))
        assert [r.routine_id for r in listed] == names + ["tvf"]
        assert all(r.etag and r.type_ for r in listed)
        scalars = list(client.list_routines(dataset))
        assert len(scalars) == 4
        resource = client._connection.api_request(
            "GET", f"/projects/{client.project}/datasets/{dataset}/routines",
            query_params={"filter": "routineType:TABLE_VALUED_FUNCTION"})
        assert [r["routineReference"]["routineId"] for r in resource["routines"]] == ["tvf"]
        masked = client._connection.api_request(
            "GET", f"/projects/{client.project}/datasets/{dataset}/routines",
            query_params={"readMask": "definitionBody,routine_type"})
        assert masked["routines"][0] == {
            "routineReference": listed[0].reference.to_api_repr(),
            "definitionBody": "x * 3", "routineType": "SCALAR_FUNCTION"}
        with pytest.raises(exceptions.BadRequest, match="readMask"):
            client._connection.api_request(
                "GET", f"/projects/{client.project}/datasets/{dataset}/routines/tvf",
                query_params={"readMask": "nonsense"})
        with pytest.raises(exceptions.BadRequest, match="filter"):
            client._connection.api_request(
                "GET", f"/projects/{client.project}/datasets/{dataset}/routines",
                query_params={"filter": "kind:SCALAR_FUNCTION"})
        with pytest.raises(exceptions.BadRequest, match="in use"):
            client.delete_dataset(dataset)  # routines are contents too
    finally:
        client.delete_dataset(dataset, delete_contents=True)
    with pytest.raises(exceptions.NotFound):
        list(client.list_routines(dataset))


def test_update_replaces_the_routine_and_honours_the_etag(client, dataset):
    routine = _scalar(client, dataset)
    routine.body = "x * 4"
    routine.description = "quadruples"
    updated = client.update_routine(routine, ["body", "description", "arguments", "type_",
                                              "language"])
    assert updated.body == "x * 4" and updated.description == "quadruples"
    assert updated.created == routine.created
    assert _value(client, f"SELECT {dataset}.{routine.routine_id}(2)") == 8
    stale = routine  # its etag is the first version's
    stale.body = "x * 5"
    with pytest.raises(exceptions.PreconditionFailed):
        client.update_routine(stale, ["body", "arguments", "type_", "language"])
    # PUT replaces the whole resource: without a body it is a 400, and nothing changes
    fresh = client.get_routine(routine.reference)
    fresh.body = None
    with pytest.raises(exceptions.BadRequest, match="definitionBody"):
        client.update_routine(fresh, ["body", "type_"])
    assert _value(client, f"SELECT {dataset}.{routine.routine_id}(2)") == 8
    missing = bigquery.Routine(f"{client.project}.{dataset}.nope", type_="SCALAR_FUNCTION",
                               body="1")
    with pytest.raises(exceptions.NotFound):
        client.update_routine(missing, ["body", "type_"])


def test_delete_removes_the_routine_and_its_function(client, dataset):
    routine = _scalar(client, dataset)
    client.delete_routine(routine.reference)
    with pytest.raises(exceptions.NotFound, match="Routine"):
        client.get_routine(routine.reference)
    with pytest.raises(exceptions.NotFound):
        client.delete_routine(routine.reference)
    with pytest.raises(exceptions.BadRequest, match="Function not found"):
        client.query(f"SELECT {dataset}.{routine.routine_id}(1)").result()
    client.delete_routine(routine.reference, not_found_ok=True)


def test_bad_input_is_refused_in_bigquerys_shape(client, dataset):
    project = client.project
    ok = {"routineType": "SCALAR_FUNCTION", "definitionBody": "1"}

    def insert(dataset_id, body):
        return client._connection.api_request(
            "POST", f"/projects/{project}/datasets/{dataset_id}/routines", data=body)

    def ref(routine_id):
        return {"projectId": project, "datasetId": dataset, "routineId": routine_id}

    with pytest.raises(exceptions.NotFound, match="Dataset"):
        insert("no_such_dataset", {**ok, "routineReference": {
            "projectId": project, "datasetId": "no_such_dataset", "routineId": "f"}})
    with pytest.raises(exceptions.BadRequest, match="Invalid routine ID"):
        insert(dataset, {**ok, "routineReference": ref("bad-id")})
    with pytest.raises(exceptions.BadRequest, match="definitionBody"):
        insert(dataset, {"routineType": "SCALAR_FUNCTION", "routineReference": ref("f1")})
    with pytest.raises(exceptions.BadRequest, match="routine_type"):  # not an enum value
        insert(dataset, {**ok, "routineType": "MACRO", "routineReference": ref("f2")})
    with pytest.raises(exceptions.BadRequest, match="routineType is required"):
        insert(dataset, {"definitionBody": "1", "routineReference": ref("f2")})
    with pytest.raises(exceptions.BadRequest, match="LAB_BACKEND=gcp"):
        insert(dataset, {**ok, "routineType": "PROCEDURE", "routineReference": ref("f2")})
    with pytest.raises(exceptions.BadRequest, match="returnType"):
        insert(dataset, {**ok, "routineType": "TABLE_VALUED_FUNCTION",
                         "definitionBody": "SELECT 1 AS a", "returnType": {"typeKind": "INT64"},
                         "routineReference": ref("f3")})
    with pytest.raises(exceptions.BadRequest, match="LAB_BACKEND=gcp"):
        insert(dataset, {**ok, "language": "JAVASCRIPT", "definitionBody": "return 1;",
                         "returnType": {"typeKind": "INT64"}, "routineReference": ref("f4")})
    with pytest.raises(exceptions.BadRequest, match="LAB_BACKEND=gcp"):
        insert(dataset, {**ok, "language": "PYTHON", "routineReference": ref("f5")})
    with pytest.raises(exceptions.BadRequest, match="Unrecognized name: y"):
        insert(dataset, {**ok, "definitionBody": "x + y", "routineReference": ref("f6"),
                         "arguments": [{"name": "x", "dataType": {"typeKind": "INT64"}}]})
    with pytest.raises(exceptions.BadRequest, match="typeKind"):
        insert(dataset, {**ok, "routineReference": ref("f7"), "arguments": [{"name": "x"}]})
    insert(dataset, {**ok, "routineReference": ref("dup")})
    with pytest.raises(exceptions.Conflict, match="Already Exists"):
        insert(dataset, {**ok, "routineReference": ref("dup")})
    with pytest.raises(exceptions.NotFound):
        client.get_routine(f"{project}.{dataset}.f6")  # nothing half-made
    with pytest.raises(exceptions.MethodNotAllowed, match="routines.update"):
        client._connection.api_request(
            "PATCH", f"/projects/{project}/datasets/{dataset}/routines/dup",
            data={"description": "x"})


def test_create_function_ddl_is_a_routine(client, dataset):
    name = _name()
    job = client.query(f"CREATE FUNCTION {dataset}.{name}(x INT64, y STRING) RETURNS STRING "
                       "AS (CONCAT(y, CAST(x AS STRING)))")
    job.result()
    assert job.statement_type == "CREATE_FUNCTION" and job.ddl_operation_performed == "CREATE"
    assert job.ddl_target_routine.routine_id == name
    got = client.get_routine(f"{client.project}.{dataset}.{name}")
    assert got.body == "CONCAT(y, CAST(x AS STRING))"
    assert [a.name for a in got.arguments] == ["x", "y"]
    assert got.arguments[1].data_type.type_kind == "STRING"
    assert got.return_type.type_kind == "STRING"
    assert name in [r.routine_id for r in client.list_routines(dataset)]
    assert _value(client, f"SELECT `{client.project}.{dataset}.{name}`(7, 'n')") == "n7"
    with pytest.raises(exceptions.Conflict, match="Already Exists"):
        client.query(f"CREATE FUNCTION {dataset}.{name}(x INT64) AS (x)").result()
    skipped = client.query(f"CREATE FUNCTION IF NOT EXISTS {dataset}.{name}(x INT64) AS (x)")
    skipped.result()
    assert skipped.ddl_operation_performed == "SKIP"
    client.query(f"CREATE OR REPLACE FUNCTION {dataset}.{name}(x INT64) AS (x + 100)").result()
    assert _value(client, f"SELECT {dataset}.{name}(1)") == 101
    client.query(f"DROP FUNCTION {dataset}.{name}").result()
    with pytest.raises(exceptions.NotFound):
        client.get_routine(f"{client.project}.{dataset}.{name}")
    client.query(f"DROP FUNCTION IF EXISTS {dataset}.{name}").result()
    with pytest.raises(exceptions.NotFound):
        client.query(f"DROP FUNCTION {dataset}.{name}").result()


def test_create_table_function_ddl(client, dataset):
    name = _name("tvf")
    job = client.query(f"CREATE OR REPLACE TABLE FUNCTION {dataset}.{name}(lo INT64) AS "
                       "SELECT v FROM UNNEST([1, 5, 9]) AS v WHERE v >= lo")
    job.result()
    assert job.statement_type == "CREATE_TABLE_FUNCTION"
    routine = client.get_routine(f"{client.project}.{dataset}.{name}")
    assert routine.type_ == "TABLE_VALUED_FUNCTION"
    assert routine.body.startswith("SELECT v FROM UNNEST")
    rows = client.query(f"SELECT v FROM {dataset}.{name}(5) ORDER BY v").result()
    assert [r.v for r in rows] == [5, 9]
    with pytest.raises(exceptions.BadRequest, match="DROP TABLE FUNCTION"):
        client.query(f"DROP FUNCTION {dataset}.{name}").result()
    client.query(f"DROP TABLE FUNCTION {dataset}.{name}").result()
    with pytest.raises(exceptions.NotFound):
        client.get_routine(f"{client.project}.{dataset}.{name}")


def test_temporary_functions_live_for_their_script_only(client, dataset):
    rows = client.query("CREATE TEMP FUNCTION twice(x FLOAT64) AS (x * 2); "
                        "CREATE TEMPORARY FUNCTION plus_one(x FLOAT64) RETURNS FLOAT64 AS "
                        "(twice(x) + 1); SELECT plus_one(2.5) AS y").result()
    assert [r.y for r in rows] == [6.0]
    assert "twice" not in [r.routine_id for r in client.list_routines(dataset)]
    with pytest.raises(exceptions.BadRequest, match="Function not found: twice"):
        client.query("SELECT twice(1.0)").result()
    rows = client.query("CREATE TEMP TABLE FUNCTION evens(n INT64) AS "
                        "SELECT x FROM UNNEST(GENERATE_ARRAY(0, n, 2)) AS x; "
                        "SELECT COUNT(*) AS c FROM evens(6)").result()
    assert [r.c for r in rows] == [4]


def test_other_languages_and_remote_functions_are_refused_by_name(client, dataset):
    with pytest.raises(exceptions.BadRequest, match="JavaScript.*LAB_BACKEND=gcp"):
        client.query(f"CREATE FUNCTION {dataset}.js(x STRING) RETURNS STRING LANGUAGE js "
                     "AS r'''return x;'''").result()
    with pytest.raises(exceptions.BadRequest, match="JavaScript"):
        client.query("CREATE TEMP FUNCTION js(x STRING) RETURNS STRING LANGUAGE js "
                     "AS 'return x;'; SELECT js('a')").result()
    with pytest.raises(exceptions.BadRequest, match="Remote functions.*LAB_BACKEND=gcp"):
        client.query(f"CREATE FUNCTION {dataset}.remote(x STRING) RETURNS STRING REMOTE WITH "
                     "CONNECTION `us.conn` OPTIONS (endpoint = 'https://example.com')").result()
    with pytest.raises(exceptions.NotFound):
        client.get_routine(f"{client.project}.{dataset}.js")


def test_routines_survive_a_restart(tmp_path):
    from labkit.bigquery.engine import Engine
    from labkit.bigquery.resources import Resources
    from labkit.bigquery.warehouse import Warehouse

    path = tmp_path / "warehouse.duckdb"
    engine = Engine(Warehouse(path), tmp_path / "models")
    Resources(engine).create_dataset("proj-ab", {"datasetReference": {"datasetId": "kept"}})
    engine.routines.insert("proj-ab", "kept", {
        "routineReference": {"routineId": "sq"}, "routineType": "SCALAR_FUNCTION",
        "definitionBody": "x * x", "arguments": [{"name": "x",
                                                  "dataType": {"typeKind": "INT64"}}]})
    engine.run("CREATE TABLE FUNCTION kept.upto(n INT64) AS "
               "SELECT x FROM UNNEST(GENERATE_ARRAY(1, n)) AS x", project="proj-ab")
    created = engine.routines.get("proj-ab", "kept", "sq")
    engine.wh.db.close()

    reopened = Engine(Warehouse(path), tmp_path / "models")
    assert reopened.routines.get("proj-ab", "kept", "sq") == created
    result = reopened.run("SELECT kept.sq(4) AS a, (SELECT SUM(x) FROM kept.upto(3)) AS b",
                          project="proj-ab")
    assert result.table.to_pylist() == [{"a": 16, "b": 6}]


def test_a_routine_calls_another_and_a_view_calls_a_routine(client, dataset):
    inner, outer = _name("inner"), _name("outer")
    client.query(f"CREATE FUNCTION {dataset}.{inner}(x INT64) AS (x * 10)").result()
    client.query(f"CREATE FUNCTION {dataset}.{outer}(x INT64) AS "
                 f"(`{client.project}.{dataset}.{inner}`(x) + 1)").result()
    client.query(f"CREATE VIEW {dataset}.v_{outer} AS SELECT {dataset}.{outer}(3) AS v").result()
    assert _value(client, f"SELECT v FROM {dataset}.v_{outer}") == 31
    client.query(f"CREATE OR REPLACE FUNCTION {dataset}.{inner}(x INT64) AS (x * 100)").result()
    assert _value(client, f"SELECT {dataset}.{outer}(3)") == 301
    rows = client.query("CREATE TEMP FUNCTION inc(x ANY TYPE) AS (x + 1); "
                        "SELECT inc(1) AS a, inc(2.5) AS b").result()
    assert [(r.a, r.b) for r in rows] == [(2, 3.5)]
