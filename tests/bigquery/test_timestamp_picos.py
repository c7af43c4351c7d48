"""Picosecond TIMESTAMPs (timestampPrecision 12, TIMESTAMP(12)) through the real client:
kept to the picosecond in loads, streaming inserts, DDL and DML; sent whole as ISO 8601 text
when asked (timestamp_precision=PICOSECOND), else truncated to microseconds as BigQuery
does; what DuckDB cannot compute on is a loud 400."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from google.api_core import exceptions
from google.cloud import bigquery, bigquery_storage
from google.cloud.bigquery import enums

PICOS = enums.TimestampPrecision.PICOSECOND
SCHEMA = [bigquery.SchemaField("i", "INTEGER"),
          bigquery.SchemaField("p", "TIMESTAMP", timestamp_precision=PICOS)]


@pytest.fixture
def table_id(client, dataset):
    return f"{client.project}.{dataset}.ps_{uuid.uuid4().hex[:8]}"


def _texts(rows) -> list:
    return [r["p"] for r in sorted(rows, key=lambda r: r["i"])]


def test_loads_and_inserts_keep_picoseconds_and_read_back_both_ways(client, table_id):
    table = client.create_table(bigquery.Table(table_id, schema=SCHEMA))
    assert table.schema[1].timestamp_precision == PICOS  # echoed, as created
    csv = io.BytesIO(b"0,2025-01-01T00:00:00.123456789012Z\n"
                     b"1,1969-12-31 23:59:59.999999999999+01:00\n")
    client.load_table_from_file(csv, table_id, job_config=bigquery.LoadJobConfig(
        source_format="CSV")).result()
    data = io.BytesIO(json.dumps({"i": 2, "p": "2030-05-05 05:05:05.5"}).encode())
    client.load_table_from_file(data, table_id, job_config=bigquery.LoadJobConfig(
        schema=SCHEMA, source_format="NEWLINE_DELIMITED_JSON")).result()
    assert client.insert_rows_json(table_id, [{"i": 3, "p": None}]) == []
    full = ["2025-01-01T00:00:00.123456789012Z", "1969-12-31T22:59:59.999999999999Z",
            "2030-05-05T05:05:05.500000000000Z", None]
    assert _texts(client.list_rows(table_id, timestamp_precision=PICOS)) == full
    # without it: microseconds, truncated (toward the past), as integers
    assert _texts(client.list_rows(table_id)) == [
        "1735689600123456", "-3600000001", "1904187905500000", None]
    ordered = [r["i"] for r in client.query(
        f"SELECT i FROM `{table_id}` WHERE p IS NOT NULL ORDER BY p").result()]
    assert ordered == [1, 0, 2]
    reader = bigquery_storage.BigQueryReadClient()
    arrow = client.list_rows(table_id).to_arrow(bqstorage_client=reader).sort_by("i")
    assert arrow.column("p").to_pylist()[0] == dt.datetime(2025, 1, 1, 0, 0, 0, 123456,
                                                            tzinfo=dt.UTC)


def test_sql_casts_ddl_and_dml(client, dataset):
    job = client.query("SELECT CAST('2025-10-20' AS TIMESTAMP(12)) AS t", api_method="QUERY",
                       timestamp_precision=PICOS)
    assert [r["t"] for r in job.result()] == ["2025-10-20T00:00:00.000000000000Z"]
    assert job.result().schema[0].timestamp_precision == PICOS
    name = f"{dataset}.ps_{uuid.uuid4().hex[:8]}"
    client.query(f"CREATE TABLE {name} (i INT64, p TIMESTAMP(12), "
                 "r STRUCT<q TIMESTAMP(12)>)").result()
    client.query(f"INSERT INTO {name} (i, p) VALUES (0, TIMESTAMP '2001-01-01 00:00:00'), "
                 "(1, CAST('2002-02-02 02:02:02.000000000001' AS TIMESTAMP(12)))").result()
    client.query(f"INSERT INTO {name} (i, p) SELECT i + 10, p FROM {name} WHERE i = 1").result()
    client.query(f"UPDATE {name} SET p = CAST('2003-03-03' AS TIMESTAMP(12)) "
                 "WHERE i = 0").result()
    table = client.get_table(name)
    assert [f.timestamp_precision for f in [table.schema[1], *table.schema[2].fields]] == \
        [PICOS, PICOS]
    assert _texts(client.list_rows(name, timestamp_precision=PICOS)) == [
        "2003-03-03T00:00:00.000000000000Z", "2002-02-02T02:02:02.000000000001Z",
        "2002-02-02T02:02:02.000000000001Z"]


def test_bad_values_precisions_and_functions_are_clear_400s(client, table_id):
    with pytest.raises(exceptions.BadRequest, match="timestampPrecision 7"):
        client.create_table(bigquery.Table(table_id, schema=[
            {"name": "p", "type": "TIMESTAMP", "timestampPrecision": "7"}]))
    client.create_table(bigquery.Table(table_id, schema=SCHEMA))
    data = io.BytesIO(json.dumps({"i": 0, "p": "yesterday"}).encode())
    with pytest.raises(exceptions.BadRequest, match="Invalid timestamp"):
        client.load_table_from_file(data, table_id, job_config=bigquery.LoadJobConfig(
            schema=SCHEMA, source_format="NEWLINE_DELIMITED_JSON")).result()
    with pytest.raises(exceptions.BadRequest, match=r"TIMESTAMP\(7\)"):
        client.query("SELECT CAST('2025-10-20' AS TIMESTAMP(7))").result()
    assert client.insert_rows_json(table_id, [{"i": 0, "p": "2025-01-01T00:00:00Z"}]) == []
    with pytest.raises(exceptions.BadRequest, match="picosecond TIMESTAMP"):
        client.query(f"SELECT TIMESTAMP_ADD(p, INTERVAL 1 HOUR) FROM `{table_id}`").result()
    assert client.get_table(table_id).num_rows == 1
    from google.cloud.bigquery_storage_v1 import types

    project, dataset, table = table_id.split(".")
    session = types.ReadSession(
        table=f"projects/{project}/datasets/{dataset}/tables/{table}",
        data_format=types.DataFormat.ARROW, read_options=types.ReadSession.TableReadOptions(
            arrow_serialization_options=types.ArrowSerializationOptions(
                picos_timestamp_precision="TIMESTAMP_PRECISION_PICOS")))
    with pytest.raises(exceptions.MethodNotImplemented, match="picos_timestamp_precision"):
        bigquery_storage.BigQueryReadClient().create_read_session(
            parent=f"projects/{project}", read_session=session, max_stream_count=1)
