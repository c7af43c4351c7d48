"""BIGNUMERIC at full precision (76 digits, 38 after the point) through the real client:
loads, streaming inserts, DDL and DML, literals and parameters, the REST rows and the
Storage Read API; what DuckDB cannot compute on is a loud 400."""

from __future__ import annotations

import decimal
import io
import json
import uuid

import pandas as pd
import pytest
from google.api_core import exceptions
from google.cloud import bigquery, bigquery_storage

D = decimal.Decimal
LARGEST = D("9" * 38 + "." + "9" * 38)  # 76 digits: no DECIMAL(38) holds it
NEGATIVE = D("-" + "9" * 38 + "." + "9" * 38)
BELOW = D("9" * 38 + "." + "9" * 37 + "8")  # LARGEST less one in the 76th digit
TINY = D("-0." + "0" * 37 + "1")
SCHEMA = [bigquery.SchemaField("i", "INTEGER"), bigquery.SchemaField("b", "BIGNUMERIC")]


@pytest.fixture
def table_id(client, dataset):
    return f"{client.project}.{dataset}.bn_{uuid.uuid4().hex[:8]}"


def _values(client, table_id: str) -> list:
    return [r["b"] for r in client.query(f"SELECT b FROM `{table_id}` ORDER BY i").result()]


def test_json_and_csv_loads_keep_every_digit_on_both_read_paths(client, table_id):
    rows = [{"i": 0, "b": "9.999999999999999999999999999999999999999999999999999999999999999999"
                          "999999999E+37"},
            {"i": 1, "b": str(TINY)}, {"i": 2, "b": 1.25}, {"i": 3, "b": None}]
    data = io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())
    client.load_table_from_file(data, table_id, job_config=bigquery.LoadJobConfig(
        schema=SCHEMA, source_format="NEWLINE_DELIMITED_JSON")).result()
    csv = io.BytesIO(f"4,-{LARGEST}\n".encode())
    client.load_table_from_file(csv, table_id, job_config=bigquery.LoadJobConfig(
        schema=SCHEMA, source_format="CSV")).result()
    expected = [LARGEST, TINY, D("1.25"), None, NEGATIVE]
    assert _values(client, table_id) == expected
    assert [r["b"] for r in sorted(client.list_rows(table_id), key=lambda r: r["i"])] == \
        expected
    reader = bigquery_storage.BigQueryReadClient()
    arrow = client.list_rows(table_id).to_arrow(bqstorage_client=reader).sort_by("i")
    assert str(arrow.schema.field("b").type) == "decimal256(76, 38)"
    assert arrow.column("b").to_pylist() == expected
    assert client.get_table(table_id).schema[1].field_type == "BIGNUMERIC"


def test_sorting_comparing_min_and_max_are_exact(client, table_id):
    client.create_table(bigquery.Table(table_id, schema=SCHEMA))
    assert client.insert_rows_json(table_id, [{"i": 0, "b": str(LARGEST)},
                                              {"i": 1, "b": str(BELOW)},
                                              {"i": 2, "b": -1}]) == []
    ordered = [r["i"] for r in client.query(f"SELECT i FROM `{table_id}` ORDER BY b").result()]
    assert ordered == [2, 1, 0]  # one unit in the 76th digit apart: DOUBLE would tie them
    row = list(client.query(f"SELECT MAX(b) AS hi, MIN(b) AS lo, COUNT(DISTINCT b) AS n "
                            f"FROM `{table_id}`").result())[0]
    assert (row["hi"], row["lo"], row["n"]) == (LARGEST, D(-1), 3)
    above = [r["i"] for r in client.query(
        f"SELECT i FROM `{table_id}` WHERE b > BIGNUMERIC '{BELOW}'").result()]
    assert above == [0]


def test_ddl_dml_literals_and_parameters(client, dataset):
    name = f"{dataset}.bn_{uuid.uuid4().hex[:8]}"
    client.query(f"CREATE TABLE {name} (i INT64, b BIGNUMERIC)").result()
    client.query(f"INSERT INTO {name} VALUES (0, 1.5), (1, BIGNUMERIC '{LARGEST}'), "
                 "(2, NULL)").result()
    client.query(f"INSERT INTO {name} (b, i) SELECT b, i + 10 FROM {name} WHERE i = 1").result()
    client.query(f"UPDATE {name} SET b = BIGNUMERIC '{NEGATIVE}' WHERE i = 0").result()
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("p", "BIGNUMERIC", TINY)])
    client.query(f"INSERT INTO {name} VALUES (3, @p)", job_config=config).result()
    assert [r["b"] for r in client.query(f"SELECT b FROM {name} ORDER BY i").result()] == \
        [NEGATIVE, LARGEST, None, TINY, LARGEST]
    assert client.get_table(name).schema[1].field_type == "BIGNUMERIC"
    # an expression's BIGNUMERIC computes (in DuckDB's DECIMAL(38, 18))
    row = list(client.query("SELECT BIGNUMERIC '1.5' * 2 AS x").result())[0]
    assert row["x"] == D(3)


def test_dataframe_loads_through_parquet_keep_every_digit(client, table_id):
    frame = pd.DataFrame({"i": [0, 1, 2], "b": [LARGEST, TINY, None]})
    client.load_table_from_dataframe(frame, table_id, job_config=bigquery.LoadJobConfig(
        schema=SCHEMA)).result()
    assert _values(client, table_id) == [LARGEST, TINY, None]


def test_out_of_range_values_and_arithmetic_are_clear_400s(client, table_id):
    data = io.BytesIO(json.dumps({"i": 0, "b": "1e39"}).encode())
    with pytest.raises(exceptions.BadRequest, match="BIGNUMERIC"):
        client.load_table_from_file(data, table_id, job_config=bigquery.LoadJobConfig(
            schema=SCHEMA, source_format="NEWLINE_DELIMITED_JSON")).result()
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("p", "BIGNUMERIC", "not a number")])
    with pytest.raises(exceptions.BadRequest, match="BIGNUMERIC"):
        client.query("SELECT @p", job_config=config).result()
    client.create_table(bigquery.Table(table_id, schema=SCHEMA))
    assert client.insert_rows_json(table_id, [{"i": 0, "b": "2"}]) == []
    for sql in (f"SELECT SUM(b) FROM `{table_id}`", f"SELECT b * 2 FROM `{table_id}`"):
        with pytest.raises(exceptions.BadRequest, match="full-precision BIGNUMERIC"):
            client.query(sql).result()
    assert _values(client, table_id) == [D(2)]  # the table is as it was


def test_a_query_written_to_a_destination_table_stays_exact_and_sortable(client, dataset):
    destination = f"{client.project}.{dataset}.bn_{uuid.uuid4().hex[:8]}"
    config = bigquery.QueryJobConfig(destination=destination)
    nine, twelve = D("9." + "0" * 37 + "1"), D("12." + "0" * 37 + "1")  # 38 decimals each
    client.query(f"SELECT 1 AS i, BIGNUMERIC '{LARGEST}' AS b UNION ALL "
                 f"SELECT 2, BIGNUMERIC '{BELOW}' UNION ALL SELECT 3, BIGNUMERIC '{nine}' "
                 f"UNION ALL SELECT 4, BIGNUMERIC '{twelve}'", job_config=config).result()
    assert client.get_table(destination).schema[1].field_type == "BIGNUMERIC"
    ordered = [r["i"] for r in client.query(
        f"SELECT i FROM `{destination}` ORDER BY b").result()]
    assert ordered == [3, 4, 2, 1]  # as numbers; as text "12..." would sort first
    assert _values(client, destination) == [LARGEST, BELOW, nine, twelve]


def test_querying_anonymous_results_with_wide_values_is_refused_not_sorted_as_text(client):
    job = client.query(f"SELECT BIGNUMERIC '{LARGEST}' AS b")
    assert [r["b"] for r in job.result()] == [LARGEST]
    anonymous = job.destination
    with pytest.raises(exceptions.BadRequest, match="destination table"):
        client.query(f"SELECT b FROM `{anonymous.project}.{anonymous.dataset_id}."
                     f"{anonymous.table_id}` ORDER BY b").result()


def test_wide_parameterized_columns_read_as_bignumeric_and_structs_insert_by_position(
        client, dataset):
    name = f"{dataset}.bn_{uuid.uuid4().hex[:8]}"
    client.query(f"CREATE TABLE {name} (b BIGNUMERIC(37), s STRUCT<v INT64, w STRING>)").result()
    client.query(f"INSERT INTO {name} (b, s) VALUES (BIGNUMERIC '42e30', STRUCT(7, 'x'))").result()
    result = client.query(f"SELECT * FROM {name}").result()
    assert result.schema[0].field_type == "BIGNUMERIC"  # 37 whole digits: no NUMERIC
    reader = bigquery_storage.BigQueryReadClient()
    row = result.to_arrow(bqstorage_client=reader).to_pylist()[0]
    assert row == {"b": D("42e30"), "s": {"v": 7, "w": "x"}}
