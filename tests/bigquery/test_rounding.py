"""Rounding modes of NUMERIC and BIGNUMERIC through the real client: datasets and tables
keep defaultRoundingMode, fields roundingMode, new tables inherit them, and writes round
half to even where ROUND_HALF_EVEN is set (half away from zero otherwise); the write paths
that cannot round so are refused."""

from __future__ import annotations

import decimal
import io
import uuid

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

D = decimal.Decimal


@pytest.fixture(scope="module")
def even(client):
    """A dataset whose defaultRoundingMode is ROUND_HALF_EVEN."""
    dataset = bigquery.Dataset(f"{client.project}.even_{uuid.uuid4().hex[:8]}")
    dataset.default_rounding_mode = "ROUND_HALF_EVEN"
    created = client.create_dataset(dataset)
    yield created
    client.delete_dataset(created, delete_contents=True, not_found_ok=True)


def _values(client, table: str) -> list:
    return [r[0] for r in client.query(f"SELECT v FROM `{table}` ORDER BY i").result()]


def test_dataset_keeps_its_default_rounding_mode(client, even):
    assert client.get_dataset(even.reference).default_rounding_mode == "ROUND_HALF_EVEN"
    even.default_rounding_mode = "ROUND_HALF_AWAY_FROM_ZERO"
    patched = client.update_dataset(even, ["default_rounding_mode"])
    assert patched.default_rounding_mode == "ROUND_HALF_AWAY_FROM_ZERO"
    even.default_rounding_mode = "ROUND_HALF_EVEN"
    assert client.update_dataset(even, ["default_rounding_mode"]).default_rounding_mode == \
        "ROUND_HALF_EVEN"


def test_a_mode_that_is_none_is_refused(client):
    path = f"/projects/{client.project}/datasets"
    with pytest.raises(exceptions.BadRequest, match="[Rr]ounding"):
        client._connection.api_request("POST", path, data={
            "datasetReference": {"datasetId": f"bad_{uuid.uuid4().hex[:6]}"},
            "defaultRoundingMode": "ROUND_UP"})


def test_new_tables_inherit_and_inserts_round_half_to_even(client, even):
    table = f"{even.project}.{even.dataset_id}.t_{uuid.uuid4().hex[:6]}"
    created = client.create_table(bigquery.Table(table, schema=[
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("v", "NUMERIC", precision=5, scale=0)]))
    assert created.schema[1].rounding_mode == "ROUND_HALF_EVEN"
    fetched = client.get_table(table)
    assert fetched.schema[1].rounding_mode == "ROUND_HALF_EVEN"
    assert fetched._properties.get("defaultRoundingMode") == "ROUND_HALF_EVEN"
    client.query(f"INSERT INTO `{table}` (i, v) VALUES (1, 2.5), (2, 3.5), (3, -2.5), "
                 "(4, CAST('0.5' AS NUMERIC)), (5, 1.4)").result()
    client.query(f"INSERT `{table}` SELECT 6, CAST('4.5' AS NUMERIC)").result()
    assert _values(client, table) == [D(2), D(4), D(-2), D(0), D(1), D(4)]
    client.query(f"UPDATE `{table}` SET v = 6.5 WHERE i = 1").result()
    assert _values(client, table)[0] == D(6)
    assert client.insert_rows_json(table, [{"i": 7, "v": "7.5"}, {"i": 8, "v": 8.5}]) == []
    assert _values(client, table)[-2:] == [D(8), D(8)]


def test_half_away_from_zero_is_the_default(client, dataset):
    table = f"{client.project}.{dataset}.t_{uuid.uuid4().hex[:6]}"
    client.create_table(bigquery.Table(table, schema=[
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("v", "NUMERIC", precision=5, scale=0)]))
    client.query(f"INSERT INTO `{table}` (i, v) VALUES (1, 2.5), (2, -2.5)").result()
    assert _values(client, table) == [D(3), D(-3)]


def test_a_field_mode_overrides_the_table_default(client, dataset):
    table = f"{client.project}.{dataset}.t_{uuid.uuid4().hex[:6]}"
    client.create_table(bigquery.Table(table, schema=[
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("v", "NUMERIC", precision=6, scale=2,
                             rounding_mode="ROUND_HALF_EVEN")]))
    client.query(f"INSERT INTO `{table}` (i, v) VALUES (1, 1.125), (2, 1.135)").result()
    assert _values(client, table) == [D("1.12"), D("1.14")]
    with pytest.raises(exceptions.BadRequest, match="NUMERIC and BIGNUMERIC"):
        client.create_table(bigquery.Table(f"{table}_s", schema=[
            bigquery.SchemaField("s", "STRING", rounding_mode="ROUND_HALF_EVEN")]))


def test_ddl_tables_inherit_the_dataset_mode(client, even):
    name = f"{even.dataset_id}.d_{uuid.uuid4().hex[:6]}"
    client.query(f"CREATE TABLE {name} (i INT64, v NUMERIC(4, 1))").result()
    table = client.get_table(f"{even.project}.{name}")
    assert table.schema[1].rounding_mode == "ROUND_HALF_EVEN"
    client.query(f"INSERT {name} (i, v) VALUES (1, 0.25), (2, 0.35)").result()
    assert _values(client, f"{even.project}.{name}") == [D("0.2"), D("0.4")]


def test_writes_that_cannot_round_half_to_even_are_refused(client, even):
    table = f"{even.project}.{even.dataset_id}.r_{uuid.uuid4().hex[:6]}"
    client.create_table(bigquery.Table(table, schema=[
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("v", "NUMERIC", precision=5, scale=0)]))
    with pytest.raises(exceptions.BadRequest, match="MERGE.*LAB_BACKEND=gcp"):
        client.query(f"MERGE `{table}` t USING (SELECT 1 AS i, 2.5 AS v) s ON t.i = s.i "
                     "WHEN NOT MATCHED THEN INSERT (i, v) VALUES (s.i, s.v)").result()
    config = bigquery.LoadJobConfig(source_format="CSV")
    with pytest.raises(exceptions.BadRequest, match="CSV loads.*LAB_BACKEND=gcp"):
        client.load_table_from_file(io.BytesIO(b"1,2.5\n"), table, job_config=config).result()
    assert client.get_table(table).num_rows == 0


def test_query_results_written_to_a_table_round_half_to_even(client, even):
    table = f"{even.project}.{even.dataset_id}.q_{uuid.uuid4().hex[:6]}"
    client.create_table(bigquery.Table(table, schema=[
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("v", "NUMERIC", precision=5, scale=0)]))
    config = bigquery.QueryJobConfig(destination=table, write_disposition="WRITE_APPEND")
    client.query("SELECT 1 AS i, CAST('2.5' AS NUMERIC) AS v UNION ALL "
                 "SELECT 2, CAST('5.5' AS NUMERIC)", job_config=config).result()
    assert _values(client, table) == [D(2), D(6)]


def test_ddl_options_set_the_modes(client):
    name = f"opt_{uuid.uuid4().hex[:8]}"
    client.query(f"CREATE SCHEMA {name} OPTIONS(default_rounding_mode = 'ROUND_HALF_EVEN')"
                 ).result()
    try:
        assert client.get_dataset(name).default_rounding_mode == "ROUND_HALF_EVEN"
        client.query(f"CREATE TABLE {name}.t (i INT64, v NUMERIC(4, 0), "
                     "w NUMERIC(4, 0) OPTIONS(rounding_mode = 'ROUND_HALF_AWAY_FROM_ZERO'))"
                     ).result()
        fields = client.get_table(f"{name}.t").schema
        assert [f.rounding_mode for f in fields[1:]] == ["ROUND_HALF_EVEN",
                                                         "ROUND_HALF_AWAY_FROM_ZERO"]
        client.query(f"INSERT {name}.t (i, v, w) VALUES (1, 2.5, 2.5)").result()
        row = list(client.query(f"SELECT v, w FROM {name}.t").result())[0]
        assert (row.v, row.w) == (D(2), D(3))
        with pytest.raises(exceptions.BadRequest, match="rounding_mode"):
            client.query(f"CREATE TABLE {name}.u (v NUMERIC OPTIONS(rounding_mode = 'UP'))"
                         ).result()
    finally:
        client.delete_dataset(name, delete_contents=True)
