"""Load jobs through the upload endpoints: DataFrames (Parquet, multipart and resumable),
CSV and newline-delimited JSON files, write/create dispositions, schema autodetect, and
loads that fail leaving the table as it was."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from google.api_core import exceptions
from google.cloud import bigquery


def test_dataframe_load_roundtrip(client, dataset):
    df = pd.DataFrame({
        "id": [1, 2, 3], "score": [0.5, 1.5, np.nan], "name": ["a", "b", None],
        "ok": [True, False, True],
        "when": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 00:00", "2024-01-03 00:00"],
                               utc=True),
        "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).date,
    })
    table_id = f"{client.project}.{dataset}.frame"
    job = client.load_table_from_dataframe(df, table_id)
    job.result()
    assert job.output_rows == 3
    table = client.get_table(table_id)
    types = {f.name: f.field_type for f in table.schema}
    assert types == {"id": "INTEGER", "score": "FLOAT", "name": "STRING", "ok": "BOOLEAN",
                     "when": "TIMESTAMP", "day": "DATE"}
    back = client.query(f"SELECT * FROM `{table_id}` ORDER BY id").to_dataframe()
    assert back["id"].tolist() == [1, 2, 3] and back["name"].tolist()[:2] == ["a", "b"]
    assert back["when"].iloc[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    job = client.load_table_from_dataframe(df.head(1), table_id)  # default: WRITE_APPEND
    job.result()
    assert client.get_table(table_id).num_rows == 4
    config = bigquery.LoadJobConfig(write_disposition="WRITE_TRUNCATE")
    client.load_table_from_dataframe(df.head(2), table_id, job_config=config).result()
    assert client.get_table(table_id).num_rows == 2
    config = bigquery.LoadJobConfig(write_disposition="WRITE_EMPTY")
    with pytest.raises(exceptions.Conflict):
        client.load_table_from_dataframe(df, table_id, job_config=config).result()
    config = bigquery.LoadJobConfig(create_disposition="CREATE_NEVER")
    with pytest.raises(exceptions.NotFound):
        client.load_table_from_dataframe(df, f"{table_id}_missing", job_config=config).result()
    assert client.get_table(table_id).num_rows == 2


def test_csv_and_ndjson_files(client, dataset):
    csv = b"city,population,founded\nParis,2100000,1900-01-01\nLyon,520000,1800-05-02\n"
    config = bigquery.LoadJobConfig(source_format="CSV", skip_leading_rows=1, autodetect=True)
    table_id = f"{client.project}.{dataset}.cities"
    client.load_table_from_file(io.BytesIO(csv), table_id, job_config=config).result()
    rows = {r.city: r.population for r in client.list_rows(table_id)}
    assert rows == {"Paris": 2100000, "Lyon": 520000}
    schema = [bigquery.SchemaField("city", "STRING"), bigquery.SchemaField("pop", "INTEGER")]
    config = bigquery.LoadJobConfig(source_format="CSV", schema=schema)
    client.load_table_from_file(io.BytesIO(b"Nice,340000\nLille,230000\n"),
                                f"{table_id}_explicit", job_config=config).result()
    assert client.get_table(f"{table_id}_explicit").num_rows == 2
    lines = [{"id": 1, "tags": ["x", "y"], "point": {"lat": 1.5, "lon": 2.5}},
             {"id": 2, "tags": [], "point": None}]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", autodetect=True)
    client.load_table_from_file(io.BytesIO(data), f"{table_id}_json", job_config=config).result()
    fields = {f.name: (f.field_type, f.mode) for f in
              client.get_table(f"{table_id}_json").schema}
    assert fields["tags"] == ("STRING", "REPEATED") and fields["point"][0] == "RECORD"
    got = sorted(client.list_rows(f"{table_id}_json"), key=lambda r: r.id)
    assert got[0].tags == ["x", "y"] and got[0].point == {"lat": 1.5, "lon": 2.5}


def test_bad_load_leaves_table_unchanged(client, dataset):
    table_id = f"{client.project}.{dataset}.strict"
    schema = [bigquery.SchemaField("n", "INTEGER")]
    config = bigquery.LoadJobConfig(source_format="CSV", schema=schema)
    client.load_table_from_file(io.BytesIO(b"1\n2\n"), table_id, job_config=config).result()
    with pytest.raises(exceptions.BadRequest) as info:
        client.load_table_from_file(io.BytesIO(b"3\nnot-a-number\n"), table_id,
                                    job_config=config).result()
    assert "Error while reading data" in str(info.value)
    assert sorted(r.n for r in client.list_rows(table_id)) == [1, 2]
    config = bigquery.LoadJobConfig(source_format="AVRO")
    with pytest.raises(exceptions.BadRequest, match="failed to parse"):
        client.load_table_from_file(io.BytesIO(b"x"), table_id, job_config=config).result()
    config = bigquery.LoadJobConfig(source_format="ORC")
    with pytest.raises(exceptions.BadRequest) as info:
        client.load_table_from_file(io.BytesIO(b"x"), table_id, job_config=config).result()
    assert "LAB_BACKEND=gcp" in str(info.value)
    assert sorted(r.n for r in client.list_rows(table_id)) == [1, 2]


def test_resumable_upload_of_a_large_dataframe(client, dataset):
    rng = np.random.default_rng(0)
    n = 400_000  # ~6 MiB of Parquet: the client switches to a resumable upload at 5 MiB
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 1 << 40, n),
                       "c": rng.normal(size=n)})
    table_id = f"{client.project}.{dataset}.big"
    job = client.load_table_from_dataframe(df, table_id)
    job.result()
    assert job.output_rows == n
    total = list(client.query_and_wait(f"SELECT SUM(b) AS s FROM `{table_id}`"))[0].s
    assert total == int(df["b"].sum())


def test_load_from_cloud_storage_uri(client, dataset, local_env):
    from google.cloud import storage

    blob = storage.Client().bucket(local_env.bucket).blob("bq-tests/cities.csv")
    blob.upload_from_string("city,population\nOslo,700000\nBergen,285000\n")
    config = bigquery.LoadJobConfig(source_format="CSV", skip_leading_rows=1, autodetect=True)
    table_id = f"{client.project}.{dataset}.from_gcs"
    client.load_table_from_uri(f"gs://{local_env.bucket}/bq-tests/cities.csv", table_id,
                               job_config=config).result()
    assert {r.city: r.population for r in client.list_rows(table_id)} == {
        "Oslo": 700000, "Bergen": 285000}
    with pytest.raises(exceptions.NotFound):
        client.load_table_from_uri(f"gs://{local_env.bucket}/bq-tests/missing.csv", table_id,
                                   job_config=config).result()


@pytest.mark.parametrize("fmt", ["CSV", "NEWLINE_DELIMITED_JSON", "PARQUET"])
def test_extract_table_to_cloud_storage(client, dataset, local_env, fmt):
    from google.cloud import storage

    table_id = f"{client.project}.{dataset}.to_export"
    client.query_and_wait(f"CREATE OR REPLACE TABLE `{table_id}` AS "
                          "SELECT x, CONCAT('n', CAST(x AS STRING)) AS name "
                          "FROM UNNEST([1, 2, 3]) AS x")
    uri = f"gs://{local_env.bucket}/bq-tests/export-{fmt.lower()}-*"
    config = bigquery.ExtractJobConfig(destination_format=fmt)
    client.extract_table(table_id, uri, job_config=config).result()
    blob = storage.Client().bucket(local_env.bucket).blob(
        f"bq-tests/export-{fmt.lower()}-000000000000")
    data = blob.download_as_bytes()
    if fmt == "PARQUET":
        frame = pd.read_parquet(io.BytesIO(data))
    elif fmt == "CSV":
        frame = pd.read_csv(io.BytesIO(data))
    else:
        frame = pd.read_json(io.BytesIO(data), lines=True)
    assert sorted(frame["x"].tolist()) == [1, 2, 3] and "n2" in frame["name"].tolist()


def test_csv_autodetect_types_as_bigquery(client, dataset):
    """BigQuery's autodetect rules (docs: "Using schema auto-detection", Date and time
    values): YYYY-MM-DD is DATE, HH:MM:SS[.SSSSSS] TIME, and date-and-time values are
    TIMESTAMP with or without a zone; zoneless ones are read as UTC."""
    csv = (b"zoned,offset,plain,slashed,day,clock,flag,n,x,label\n"
           b"2024-01-01 10:00:00 UTC,2024-01-01T10:00:00-05:00,2024-01-01 10:00:00,"
           b"2024/01/01 10:00,2024-01-01,10:00:00,true,1,1.5,a\n"
           b"2024-01-02 11:30:00 UTC,2024-01-02T10:00:00+00:00,2024-01-02 10:00:00.250000,"
           b"2024/01/02 10:00,2024-01-02,10:00:00.5,false,2,2,b\n")
    config = bigquery.LoadJobConfig(source_format="CSV", autodetect=True)
    table_id = f"{client.project}.{dataset}.detected"
    client.load_table_from_file(io.BytesIO(csv), table_id, job_config=config).result()
    types = {f.name: f.field_type for f in client.get_table(table_id).schema}
    assert types == {"zoned": "TIMESTAMP", "offset": "TIMESTAMP", "plain": "TIMESTAMP",
                     "slashed": "TIMESTAMP", "day": "DATE", "clock": "TIME",
                     "flag": "BOOLEAN", "n": "INTEGER", "x": "FLOAT", "label": "STRING"}
    rows = sorted(client.list_rows(table_id), key=lambda r: r.n)
    assert rows[0].zoned == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert rows[0].offset == pd.Timestamp("2024-01-01 15:00", tz="UTC")
    assert rows[1].plain == pd.Timestamp("2024-01-02 10:00:00.25", tz="UTC")
    assert rows[1].slashed == pd.Timestamp("2024-01-02 10:00", tz="UTC")
