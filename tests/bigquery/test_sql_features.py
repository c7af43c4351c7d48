"""Statements beyond a single SELECT: DDL, DML, scripts, parameters, views, wildcard
tables, INFORMATION_SCHEMA, dry runs, default datasets and atomicity."""

from __future__ import annotations

import datetime as dt

import pytest
from google.api_core import exceptions
from google.cloud import bigquery


def test_ddl_and_dml_roundtrip(client, dataset):
    q = client.query_and_wait
    job = client.query(f"CREATE TABLE {dataset}.inventory (product STRING, quantity INT64, "
                       "price NUMERIC, added DATE) OPTIONS(description='stock')")
    job.result()
    assert job.statement_type == "CREATE_TABLE" and job.ddl_operation_performed == "CREATE"
    assert client.get_table(f"{dataset}.inventory").description == "stock"
    with pytest.raises(exceptions.Conflict):
        q(f"CREATE TABLE {dataset}.inventory (x INT64)")
    job = client.query(f"INSERT INTO `{client.project}.{dataset}.inventory` VALUES "
                       "('dryer', 30, 499.99, DATE '2024-01-02'), "
                       "('washer', 20, 599.5, DATE '2024-01-03'), ('oven', 5, 1200, NULL)")
    job.result()
    assert job.num_dml_affected_rows == 3 and job.statement_type == "INSERT"
    job = client.query(f"UPDATE {dataset}.inventory SET quantity = quantity - 10 "
                       "WHERE product = 'dryer'")
    job.result()
    assert job.num_dml_affected_rows == 1
    q(f"DELETE FROM {dataset}.inventory WHERE quantity < 10")
    q(f"CREATE TABLE {dataset}.incoming AS SELECT 'washer' AS product, 5 AS quantity "
      "UNION ALL SELECT 'fridge', 7")
    job = client.query(f"""
        MERGE {dataset}.inventory T USING {dataset}.incoming S ON T.product = S.product
        WHEN MATCHED THEN UPDATE SET quantity = T.quantity + S.quantity
        WHEN NOT MATCHED THEN INSERT (product, quantity) VALUES (S.product, S.quantity)""")
    job.result()
    assert job.num_dml_affected_rows == 2
    rows = {r.product: r.quantity for r in q(f"SELECT * FROM {dataset}.inventory")}
    assert rows == {"dryer": 20, "washer": 25, "fridge": 7}
    schema = {f.name: f.field_type for f in client.get_table(f"{dataset}.inventory").schema}
    assert schema == {"product": "STRING", "quantity": "INTEGER", "price": "NUMERIC",
                      "added": "DATE"}
    q(f"ALTER TABLE {dataset}.inventory ADD COLUMN note STRING")
    q(f"TRUNCATE TABLE {dataset}.inventory")
    assert client.get_table(f"{dataset}.inventory").num_rows == 0
    job = client.query(f"DROP TABLE {dataset}.inventory")
    job.result()
    assert job.ddl_operation_performed == "DROP"
    q(f"DROP TABLE IF EXISTS {dataset}.inventory")
    with pytest.raises(exceptions.NotFound):
        q(f"DROP TABLE {dataset}.inventory")


def test_create_or_replace_views_and_schema_statements(client, dataset):
    q = client.query_and_wait
    q(f"CREATE OR REPLACE TABLE {dataset}.base AS SELECT x FROM UNNEST([1, 2, 3]) AS x")
    job = client.query(f"CREATE OR REPLACE TABLE {dataset}.base AS SELECT 10 AS x")
    job.result()
    assert job.ddl_operation_performed == "REPLACE"
    q(f"CREATE VIEW {dataset}.doubled AS SELECT x * 2 AS y FROM {dataset}.base")
    view = client.get_table(f"{dataset}.doubled")
    assert view.table_type == "VIEW" and "x * 2" in view.view_query
    assert [r.y for r in q(f"SELECT y FROM {dataset}.doubled")] == [20]
    q("CREATE SCHEMA IF NOT EXISTS sqlfeat_schema OPTIONS(description='made by SQL')")
    assert client.get_dataset("sqlfeat_schema").description == "made by SQL"
    q("CREATE TABLE sqlfeat_schema.t AS SELECT 1 AS a")
    with pytest.raises(exceptions.BadRequest):
        q("DROP SCHEMA sqlfeat_schema")  # not empty without CASCADE
    q("DROP SCHEMA sqlfeat_schema CASCADE")
    with pytest.raises(exceptions.NotFound):
        client.get_dataset("sqlfeat_schema")


def test_scripts_with_variables(client, dataset):
    script = f"""
        DECLARE threshold INT64 DEFAULT 2;
        DECLARE label STRING;
        SET label = 'big';
        CREATE TABLE {dataset}.script_out AS
          SELECT x, IF(x > threshold, label, 'small') AS size FROM UNNEST([1, 2, 3, 4]) AS x;
        SELECT size, COUNT(*) AS n FROM {dataset}.script_out GROUP BY size ORDER BY size;
    """
    job = client.query(script)
    rows = [(r.size, r.n) for r in job.result()]
    assert rows == [("big", 2), ("small", 2)]
    assert job.statement_type == "SCRIPT"
    children = list(client.list_jobs(parent_job=job.job_id))
    assert len(children) == 5
    # variables do not leak into the next request
    with pytest.raises(exceptions.BadRequest):
        client.query_and_wait("SELECT threshold")


def test_named_and_positional_parameters(client):
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("n", "INT64", 3),
        bigquery.ScalarQueryParameter("word", "STRING", "it's"),
        bigquery.ScalarQueryParameter("day", "DATE", dt.date(2024, 2, 29)),
        bigquery.ScalarQueryParameter("ts", "TIMESTAMP",
                                      dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)),
        bigquery.ArrayQueryParameter("xs", "INT64", [1, 2, 3]),
        bigquery.StructQueryParameter("s", bigquery.ScalarQueryParameter("a", "INT64", 7),
                                      bigquery.ScalarQueryParameter("b", "STRING", "z")),
    ])
    row = list(client.query_and_wait(
        "SELECT @n * 2 AS n2, CONCAT(@word, '!') AS w, DATE_ADD(@day, INTERVAL 1 DAY) AS d, "
        "EXTRACT(HOUR FROM @ts) AS h, (SELECT SUM(x) FROM UNNEST(@xs) AS x) AS total, "
        "@s.a AS sa", job_config=config))[0]
    assert (row.n2, row.w, row.d, row.h, row.total, row.sa) == (
        6, "it's!", dt.date(2024, 3, 1), 12, 6, 7)
    positional = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter(None, "FLOAT64", 1.5),
        bigquery.ScalarQueryParameter(None, "BOOL", True)])
    row = list(client.query_and_wait("SELECT ? * 2 AS a, NOT ? AS b",
                                     job_config=positional))[0]
    assert (row.a, row.b) == (3.0, False)
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait("SELECT @missing")
    assert "missing" in info.value.message


def test_table_references_and_default_dataset(client, dataset):
    client.query_and_wait(f"CREATE TABLE {dataset}.refs AS SELECT 1 AS a")
    p = client.project
    for ref in (f"{dataset}.refs", f"`{dataset}.refs`", f"`{p}.{dataset}.refs`",
                f"`{p}`.{dataset}.refs", f"{p}.{dataset}.refs"):
        assert list(client.query_and_wait(f"SELECT a FROM {ref}"))[0].a == 1, ref
    config = bigquery.QueryJobConfig(default_dataset=f"{p}.{dataset}")
    assert list(client.query_and_wait("SELECT a FROM refs", job_config=config))[0].a == 1
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait("SELECT a FROM refs")
    assert "must be qualified with a dataset" in info.value.message
    n = list(client.query_and_wait(
        "SELECT COUNT(*) AS n FROM bigquery-public-data.ml_datasets.iris"))[0].n
    assert n == 150


def test_wildcard_tables_and_table_suffix(client, dataset):
    for year in (2021, 2022, 2023):
        client.query_and_wait(f"CREATE TABLE {dataset}.sales_{year} AS "
                              f"SELECT {year} AS year, {year - 2000} AS amount")
    rows = client.query_and_wait(
        f"SELECT _TABLE_SUFFIX AS suffix, SUM(amount) AS total FROM `{dataset}.sales_*` "
        "WHERE _TABLE_SUFFIX >= '2022' GROUP BY suffix ORDER BY suffix")
    assert [(r.suffix, r.total) for r in rows] == [("2022", 22), ("2023", 23)]


def test_information_schema(client, dataset):
    client.query_and_wait(f"CREATE TABLE {dataset}.info (id INT64, tags ARRAY<STRING>, "
                          "rec STRUCT<a FLOAT64, b TIMESTAMP>)")
    tables = {r.table_name: r.table_type for r in client.query_and_wait(
        f"SELECT table_name, table_type FROM {dataset}.INFORMATION_SCHEMA.TABLES")}
    assert tables.get("info") == "BASE TABLE"
    columns = [(r.column_name, r.data_type) for r in client.query_and_wait(
        f"SELECT column_name, data_type FROM `{client.project}.{dataset}`.INFORMATION_SCHEMA."
        "COLUMNS WHERE table_name = 'info' ORDER BY ordinal_position")]
    assert columns == [("id", "INT64"), ("tags", "ARRAY<STRING>"),
                       ("rec", "STRUCT<a FLOAT64, b TIMESTAMP>")]
    datasets = [r.schema_name for r in client.query_and_wait(
        "SELECT schema_name FROM `region-us`.INFORMATION_SCHEMA.SCHEMATA")]
    assert dataset in datasets


def test_dry_run_reports_bytes_and_schema(client):
    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
    sql = ("SELECT age, income_bracket FROM "
           "`bigquery-public-data.ml_datasets.census_adult_income`")
    job = client.query(sql, job_config=config)
    assert job.state == "DONE" and job.dry_run
    narrow = job.total_bytes_processed
    wide = client.query("SELECT * FROM `bigquery-public-data.ml_datasets.census_adult_income`",
                        job_config=config).total_bytes_processed
    assert 32561 * 8 < narrow < wide  # only the referenced columns count
    assert [f.name for f in job.schema] == ["age", "income_bracket"]
    with pytest.raises(exceptions.BadRequest):
        client.query("SELECT nope FROM `bigquery-public-data.ml_datasets.iris`",
                     job_config=config)


def test_failed_statements_leave_tables_unchanged(client, dataset):
    client.query_and_wait(f"CREATE TABLE {dataset}.safe AS SELECT x FROM UNNEST([1, 2]) AS x")
    with pytest.raises(exceptions.BadRequest):
        client.query_and_wait(f"INSERT INTO {dataset}.safe SELECT CAST('x' AS INT64)")
    with pytest.raises(exceptions.BadRequest):
        client.query_and_wait(f"UPDATE {dataset}.safe SET x = x / 0 WHERE TRUE")
    with pytest.raises(exceptions.Forbidden):
        client.query_and_wait("DELETE FROM `bigquery-public-data.ml_datasets.iris` WHERE TRUE")
    assert sorted(r.x for r in client.query_and_wait(f"SELECT x FROM {dataset}.safe")) == [1, 2]


def test_destination_table_and_write_disposition(client, dataset):
    dest = f"{client.project}.{dataset}.dest"
    config = bigquery.QueryJobConfig(destination=dest)
    job = client.query("SELECT 1 AS a", job_config=config)
    job.result()
    assert job.destination.table_id == "dest"
    config = bigquery.QueryJobConfig(destination=dest, write_disposition="WRITE_APPEND")
    client.query("SELECT 2 AS a", job_config=config).result()
    assert client.get_table(dest).num_rows == 2


def test_temp_tables_live_for_one_script(client):
    rows = client.query_and_wait("""
        CREATE TEMP TABLE picked AS SELECT x FROM UNNEST([1, 2, 3]) AS x WHERE x > 1;
        SELECT SUM(x) AS total FROM picked;""")
    assert [r.total for r in rows] == [5]
    with pytest.raises(exceptions.BadRequest):
        client.query_and_wait("SELECT * FROM picked")
