"""The BigQuery Storage Read API through the real clients: google-cloud-bigquery's
to_dataframe()/to_arrow() fast path over query results and tables, BigQueryReadClient's
sessions (selected fields, row restrictions, several streams, Arrow and Avro, split
streams), pandas-gbq and %%bigquery on it, and BigQuery's gRPC errors for bad input."""

from __future__ import annotations

import datetime
import decimal
from unittest import mock

import pyarrow as pa
import pytest
from google.api_core import exceptions
from google.cloud import bigquery, bigquery_storage
from google.cloud.bigquery_storage import types

ROWS = 3000


@pytest.fixture(scope="module")
def table(client, dataset):
    client.query(f"""
        CREATE TABLE {dataset}.facts AS
        SELECT i AS id, i * 0.5 AS x, CONCAT('s', CAST(i AS STRING)) AS label,
               MOD(i, 7) AS bucket, CAST(i / 4 AS NUMERIC) AS amount,
               DATE_ADD(DATE '2024-01-01', INTERVAL MOD(i, 30) DAY) AS day,
               TIMESTAMP_ADD(TIMESTAMP '2024-01-01 00:00:00+00', INTERVAL i SECOND) AS at,
               IF(MOD(i, 5) = 0, NULL, CAST(CAST(i AS STRING) AS BYTES)) AS raw,
               [i, i + 1] AS pair, STRUCT(i AS n, 'k' AS tag) AS rec
        FROM UNNEST(GENERATE_ARRAY(1, {ROWS})) AS i""").result()
    return f"{client.project}.{dataset}.facts"


@pytest.fixture(scope="module")
def reader(local_env):
    return bigquery_storage.BigQueryReadClient()


def session(reader, client, table, *, streams=1, data_format=types.DataFormat.ARROW,
            **options):
    project, dataset, table_id = table.split(".")
    return reader.create_read_session(
        parent=f"projects/{client.project}",
        read_session=types.ReadSession(
            table=f"projects/{project}/datasets/{dataset}/tables/{table_id}",
            data_format=data_format, read_options=types.ReadSession.TableReadOptions(**options)),
        max_stream_count=streams)


def spied(reader):
    """The real client, its CreateReadSession calls counted (they still reach the server)."""
    return mock.patch.object(reader, "create_read_session", wraps=reader.create_read_session)


def test_query_results_name_an_anonymous_destination_and_read_through_the_api(
        client, table, reader):
    job = client.query(f"SELECT id, label, amount FROM `{table}` WHERE bucket = 3")
    job.result()
    assert job.destination.dataset_id.startswith("_")
    assert job.destination.table_id.startswith("anon")
    with spied(reader) as create:
        fast = job.to_dataframe(bqstorage_client=reader)
    assert create.call_count == 1
    slow = job.to_dataframe(create_bqstorage_client=False)
    assert len(fast) == len(slow) == sum(1 for i in range(1, ROWS + 1) if i % 7 == 3)
    assert sorted(fast["id"].tolist()) == sorted(slow["id"].tolist())
    merged = fast.merge(slow, on="id", suffixes=("_fast", "_slow"))
    assert (merged["label_fast"] == merged["label_slow"]).all()
    assert (merged["amount_fast"] == merged["amount_slow"]).all()
    # the anonymous table answers tables.get with the result's schema, as BigQuery's does
    got = client.get_table(job.destination)
    assert [f.name for f in got.schema] == ["id", "label", "amount"]
    assert got.num_rows == len(fast)


def test_ddl_and_dml_name_no_destination(client, dataset):
    job = client.query(f"CREATE TABLE {dataset}.empty_one (a INT64)")
    job.result()
    assert job.destination is None


def test_to_arrow_over_a_table_matches_the_rest_path_for_every_type(client, table, reader):
    fast = client.list_rows(table).to_arrow(bqstorage_client=reader).sort_by("id")
    slow = client.list_rows(table).to_arrow(create_bqstorage_client=False).sort_by("id")
    assert fast.num_rows == slow.num_rows == ROWS
    assert fast.column_names == slow.column_names
    for name in fast.column_names:
        assert fast[name].to_pylist() == slow[name].to_pylist(), name
    row = fast.slice(4, 1).to_pylist()[0]  # id 5
    assert row["amount"] == decimal.Decimal("1.25")
    assert row["at"] == datetime.datetime(2024, 1, 1, 0, 0, 5, tzinfo=datetime.UTC)
    assert row["raw"] is None and row["pair"] == [5, 6] and row["rec"] == {"n": 5, "tag": "k"}
    assert fast.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert fast.schema.field("amount").type == pa.decimal128(38, 9)


def test_selected_fields_through_list_rows(client, table, reader):
    fields = [bigquery.SchemaField("label", "STRING"), bigquery.SchemaField("id", "INTEGER")]
    df = client.list_rows(table, selected_fields=fields).to_dataframe(bqstorage_client=reader)
    # "The order of the fields in the read session schema is derived from the table schema"
    assert list(df.columns) == ["id", "label"]
    assert len(df) == ROWS


def test_row_restriction_and_several_streams(client, table, reader):
    made = session(reader, client, table, streams=3, selected_fields=["ID", "label"],
                   row_restriction="bucket = 2 AND id > 100")
    assert len(made.streams) == 3
    assert made.estimated_row_count == sum(1 for i in range(101, ROWS + 1) if i % 7 == 2)
    parts = [reader.read_rows(s.name).to_arrow() for s in made.streams]
    assert all(p.column_names == ["id", "label"] for p in parts)  # the table's order
    ids = [i for p in parts for i in p["id"].to_pylist()]
    assert len(ids) == len(set(ids)) == made.estimated_row_count
    assert set(ids) == {i for i in range(101, ROWS + 1) if i % 7 == 2}


def test_no_rows_means_no_streams(client, table, reader):
    made = session(reader, client, table, streams=4, row_restriction="id < 0")
    assert list(made.streams) == []


def test_avro_rows(client, table, reader):
    made = session(reader, client, table, data_format=types.DataFormat.AVRO,
                   selected_fields=["id", "label", "amount", "at"], row_restriction="id <= 3")
    rows = list(reader.read_rows(made.streams[0].name).rows())
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[1]["label"] == "s2" and rows[1]["amount"] == decimal.Decimal("0.5")
    assert rows[0]["at"] == datetime.datetime(2024, 1, 1, 0, 0, 1, tzinfo=datetime.UTC)
    # every type, arrays and records included, reads the same in AVRO as in ARROW
    every = session(reader, client, table, data_format=types.DataFormat.AVRO,
                    row_restriction="id <= 5")
    arrow = session(reader, client, table, row_restriction="id <= 5")
    assert list(reader.read_rows(every.streams[0].name).rows()) == \
        reader.read_rows(arrow.streams[0].name).to_arrow().to_pylist()


def test_zstd_buffers_and_progress(client, table, reader):
    codec = types.ArrowSerializationOptions.CompressionCodec.ZSTD
    made = session(reader, client, table, arrow_serialization_options=
                   types.ArrowSerializationOptions(buffer_compression=codec))
    responses = list(reader.read_rows(made.streams[0].name))
    assert sum(r.row_count for r in responses) == ROWS
    assert responses[-1].stats.progress.at_response_end == 1.0
    assert responses[0].uncompressed_byte_size > 0
    assert reader.read_rows(made.streams[0].name).to_arrow().num_rows == ROWS


def test_split_read_stream_and_offsets(client, table, reader):
    made = session(reader, client, table, selected_fields=["id"])
    whole = made.streams[0].name
    split = reader.split_read_stream(request={"name": whole, "fraction": 0.25})
    first = reader.read_rows(split.primary_stream.name).to_arrow()["id"].to_pylist()
    rest = reader.read_rows(split.remainder_stream.name).to_arrow()["id"].to_pylist()
    assert len(first) == ROWS // 4
    assert sorted(first + rest) == list(range(1, ROWS + 1))
    tail = reader.read_rows(whole, offset=ROWS - 10).to_arrow()["id"].to_pylist()
    assert len(tail) == 10
    with pytest.raises(exceptions.InvalidArgument, match="fraction"):
        reader.split_read_stream(request={"name": whole, "fraction": 1.5})


def test_ordered_query_results_keep_their_order(client, table, reader):
    job = client.query(f"SELECT id FROM `{table}` ORDER BY id DESC")
    with spied(reader) as create:
        ids = job.to_dataframe(bqstorage_client=reader)["id"].tolist()
    assert create.call_args.kwargs["max_stream_count"] == 1  # preserve_order
    assert ids == list(range(ROWS, 0, -1))


def test_pandas_gbq_and_the_magic_read_through_it(client, table, ipython_shell):
    import pandas_gbq

    def counted():
        return mock.patch.object(
            bigquery_storage.BigQueryReadClient, "create_read_session", autospec=True,
            side_effect=bigquery_storage.BigQueryReadClient.create_read_session)

    with counted() as create:  # a table id: list_rows, read through the API
        whole = pandas_gbq.read_gbq(table, use_bqstorage_api=True, progress_bar_type=None)
    assert create.call_count == 1 and len(whole) == ROWS
    # a query: jobs.query's first page holds these rows, so the client keeps them (REST)
    picked = pandas_gbq.read_gbq(f"SELECT id, label FROM `{table}` WHERE id <= 1200",
                                 use_bqstorage_api=True, progress_bar_type=None)
    assert sorted(picked["id"].tolist()) == list(range(1, 1201))
    with counted() as create:  # %%bigquery runs a job and reads its destination
        shell = ipython_shell
        shell.extension_manager.load_extension("bigquery_magics")
        shell.run_cell_magic("bigquery", "magic_df", f"SELECT id FROM `{table}`")
    assert create.call_count == 1
    assert sorted(shell.user_ns["magic_df"]["id"].tolist()) == list(range(1, ROWS + 1))


@pytest.mark.parametrize("read_options, error, words", [
    ({"row_restriction": "nosuchcolumn > 1"}, exceptions.InvalidArgument,
     "Unrecognized name: nosuchcolumn"),
    ({"row_restriction": "id > 1; DROP TABLE facts"}, exceptions.InvalidArgument,
     "not a statement"),
    ({"row_restriction": "id > (SELECT 1)"}, exceptions.InvalidArgument, "Subqueries"),
    ({"row_restriction": "SUM(id) > 1"}, exceptions.InvalidArgument, "Aggregate"),
    ({"row_restriction": "id >"}, exceptions.InvalidArgument, "Syntax error"),
    ({"selected_fields": ["id", "nope"]}, exceptions.InvalidArgument, "nope"),
    ({"sample_percentage": 10.0}, exceptions.MethodNotImplemented, "LAB_BACKEND=gcp"),
])
def test_bad_read_options(client, table, reader, read_options, error, words):
    with pytest.raises(error, match=words):
        session(reader, client, table, **read_options)


def test_unknown_tables_and_datasets_are_not_found(client, dataset, reader):
    with pytest.raises(exceptions.NotFound, match="Table"):
        session(reader, client, f"{client.project}.{dataset}.missing")
    with pytest.raises(exceptions.NotFound, match="Dataset"):
        session(reader, client, f"{client.project}.no_such_dataset.t")


def test_bad_requests(client, table, reader):
    with pytest.raises(exceptions.InvalidArgument, match="1000"):
        session(reader, client, table, streams=1001)
    with pytest.raises(exceptions.InvalidArgument, match="data_format"):
        session(reader, client, table, data_format=types.DataFormat.DATA_FORMAT_UNSPECIFIED)
    with pytest.raises(exceptions.InvalidArgument, match="table name"):
        reader.create_read_session(parent=f"projects/{client.project}",
                                   read_session=types.ReadSession(
                                       table="datasets/x", data_format=types.DataFormat.ARROW))
    with pytest.raises(exceptions.MethodNotImplemented, match="snapshot_time"):
        reader.create_read_session(parent=f"projects/{client.project}", read_session={
            "table": "projects/{}/datasets/{}/tables/{}".format(*table.split(".")),
            "data_format": types.DataFormat.ARROW,
            "table_modifiers": {"snapshot_time": {"seconds": 1}}})
    now = datetime.datetime.now(datetime.UTC)
    present = reader.create_read_session(parent=f"projects/{client.project}", read_session={
        "table": "projects/{}/datasets/{}/tables/{}".format(*table.split(".")),
        "data_format": types.DataFormat.ARROW, "table_modifiers": {"snapshot_time": now}})
    assert present.estimated_row_count == ROWS  # the table has not changed since
    made = session(reader, client, table)
    with pytest.raises(exceptions.NotFound):
        list(reader.read_rows(made.streams[0].name + "x"))
    with pytest.raises(exceptions.OutOfRange):
        list(reader.read_rows(made.streams[0].name, offset=ROWS + 1))


def test_a_process_the_services_start_reads_through_it(local_env, client, table):
    """Jobs get services.clients.client_environment (training replicas, pipeline tasks):
    the proxy and CA that route bigquerystorage.googleapis.com come with it."""
    import os
    import subprocess
    import sys

    from labkit.services.clients import client_environment
    from labkit.workspace import Workspace

    env = {"PATH": os.environ.get("PATH", ""), **client_environment(
        Workspace.from_env(), os.environ["BIGQUERY_EMULATOR_HOST"], client.project)}
    code = ("from google.cloud import bigquery, bigquery_storage\n"
            "client = bigquery.Client()\n"
            "reader = bigquery_storage.BigQueryReadClient()\n"
            f"rows = client.list_rows('{table}').to_arrow(bqstorage_client=reader)\n"
            "print(rows.num_rows)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == str(ROWS)


def test_the_write_api_is_refused_loudly(local_env, client, table):
    writer = bigquery_storage.BigQueryWriteClient()
    parent = "projects/{}/datasets/{}/tables/{}".format(*table.split("."))
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        writer.create_write_stream(parent=parent, write_stream=types.WriteStream(
            type_=types.WriteStream.Type.COMMITTED))


def test_range_columns_are_structs_of_their_bounds(client, dataset):
    import datetime

    import pyarrow

    client.query_and_wait(f"""CREATE TABLE {dataset}.spans AS
        SELECT RANGE(DATE '2024-01-01', DATE '2024-02-01') AS d,
               RANGE(TIMESTAMP '2024-01-01 00:00:00+00', NULL) AS t""")
    arrow = client.list_rows(f"{client.project}.{dataset}.spans").to_arrow(
        bqstorage_client=bigquery_storage.BigQueryReadClient())
    assert arrow.schema.field("d").type == pyarrow.struct(
        [("start", pyarrow.date32()), ("end", pyarrow.date32())])
    assert arrow.schema.field("t").type.field("start").type == pyarrow.timestamp("us", "UTC")
    row = arrow.to_pylist()[0]
    assert row["d"] == {"start": datetime.date(2024, 1, 1), "end": datetime.date(2024, 2, 1)}
    assert row["t"]["end"] is None  # unbounded


def test_range_constructor_and_literals(client):
    import datetime

    row = next(iter(client.query_and_wait(
        "SELECT RANGE(DATE '2024-01-01', DATE '2024-02-01') AS a, "
        "RANGE<DATE> '[2024-03-01, UNBOUNDED)' AS b, RANGE(DATE '2024-01-01', NULL) AS c")))
    assert row.a == {"start": datetime.date(2024, 1, 1), "end": datetime.date(2024, 2, 1)}
    assert row.b == {"start": datetime.date(2024, 3, 1), "end": None}
    assert row.c["end"] is None
    with pytest.raises(exceptions.BadRequest, match="smaller"):
        client.query_and_wait("SELECT RANGE(DATE '2024-02-01', DATE '2024-01-01')")
