"""Beam's BigQuery I/O against the local BigQuery: BigQuery -> transform -> BigQuery, the
same pipeline on the local Dataflow and on the DirectRunner.

Beam's BigQuery I/O calls https://bigquery.googleapis.com/bigquery/v2/ through apitools
and httplib2 (no endpoint switch); the proxy routes that host to the local BigQuery.
httplib2 tunnels through a proxy only with PySocks installed (`socks`)."""

from __future__ import annotations

import random
import uuid

import pytest
from google.cloud import bigquery

pytest.importorskip("socks", reason="httplib2 needs PySocks to reach bigquery.googleapis.com "
                                    "through the proxy (Beam's BigQuery I/O)")


@pytest.fixture(scope="module")
def dataset(local_env):
    client = bigquery.Client()
    name = f"dataflow_io_{uuid.uuid4().hex[:8]}"
    client.create_dataset(name)
    rng = random.Random(3)
    rows = [{"rider": f"r{i:03d}", "city": rng.choice(["oslo", "lima", "pune"]),
             "km": round(rng.uniform(0.5, 30), 2), "paid": rng.random() > 0.2}
            for i in range(200)]
    table = client.create_table(bigquery.Table(f"{local_env.project}.{name}.trips", schema=[
        bigquery.SchemaField("rider", "STRING"), bigquery.SchemaField("city", "STRING"),
        bigquery.SchemaField("km", "FLOAT"), bigquery.SchemaField("paid", "BOOLEAN")]))
    client.insert_rows_json(table, rows)
    yield name, rows
    client.delete_dataset(name, delete_contents=True)


def city_totals(options, source, target: str, method: str):
    """The learner's pipeline: paid trips' kilometres per city, written to BigQuery."""
    import apache_beam as beam

    with beam.Pipeline(options=options) as pipeline:
        (pipeline
         | "Read" >> source
         | "Paid" >> beam.Filter(lambda row: row["paid"])
         | "ByCity" >> beam.Map(lambda row: (row["city"], row["km"]))
         | "Sum" >> beam.CombinePerKey(sum)
         | "Row" >> beam.MapTuple(lambda city, km: {"city": city, "km": round(km, 2)})
         | "Write" >> beam.io.WriteToBigQuery(
             target, schema="city:STRING,km:FLOAT", method=method,
             create_disposition="CREATE_IF_NEEDED",
             write_disposition="WRITE_APPEND" if method == "STREAMING_INSERTS"
             else "WRITE_TRUNCATE"))


def _expected(rows) -> dict:
    totals: dict = {}
    for row in rows:
        if row["paid"]:
            totals[row["city"]] = totals.get(row["city"], 0) + row["km"]
    return {city: round(km, 2) for city, km in totals.items()}


@pytest.mark.parametrize("method", ["FILE_LOADS", "STREAMING_INSERTS"])
def test_table_to_table_same_on_both_runners(pipeline_options, local_env, dataset, method):
    import apache_beam as beam

    name, rows = dataset
    client = bigquery.Client()
    got = {}
    for runner in ("DirectRunner", "DataflowRunner"):
        target = f"{local_env.project}:{name}.totals_{runner.lower()}_{method.lower()}"
        source = beam.io.ReadFromBigQuery(table=f"{local_env.project}:{name}.trips",
                                          use_json_exports=True)
        city_totals(pipeline_options(runner), source, target, method)
        got[runner] = {r["city"]: r["km"] for r in client.query(
            f"SELECT city, km FROM `{target.replace(':', '.')}`").result()}
    assert got["DataflowRunner"] == got["DirectRunner"] == pytest.approx(_expected(rows))


def test_query_source(pipeline_options, local_env, dataset):
    import apache_beam as beam

    name, rows = dataset
    target = f"{local_env.project}:{name}.totals_query"
    source = beam.io.ReadFromBigQuery(
        query=f"SELECT city, km, paid FROM `{local_env.project}.{name}.trips` "
              f"WHERE city != 'pune'", use_standard_sql=True, use_json_exports=True)
    city_totals(pipeline_options("DataflowRunner"), source, target, "FILE_LOADS")
    got = {r["city"]: r["km"] for r in bigquery.Client().query(
        f"SELECT city, km FROM `{local_env.project}.{name}.totals_query`").result()}
    expected = _expected([r for r in rows if r["city"] != "pune"])
    assert got == pytest.approx(expected)


def test_direct_read_through_the_storage_read_api_leaves_other_datasets(
        pipeline_options, local_env, dataset):
    """DIRECT_READ reads through the Read API; afterwards Beam deletes the temporary datasets
    it lists by its label, so a dataset without that label must survive (datasets.list's
    filter had been ignored, and Beam deleted every dataset of the project)."""
    import apache_beam as beam

    name, rows = dataset
    client = bigquery.Client()
    bystander = client.create_dataset(f"bystander_{uuid.uuid4().hex[:8]}")
    target = f"{local_env.project}:{name}.totals_direct"
    source = beam.io.ReadFromBigQuery(table=f"{local_env.project}:{name}.trips",
                                      method="DIRECT_READ",
                                      selected_fields=["city", "km", "paid"])
    city_totals(pipeline_options("DataflowRunner"), source, target, "FILE_LOADS")
    got = {r["city"]: r["km"] for r in client.query(
        f"SELECT city, km FROM `{local_env.project}.{name}.totals_direct`").result()}
    assert got == pytest.approx(_expected(rows))
    assert client.get_dataset(bystander.reference).dataset_id == bystander.dataset_id
    client.delete_dataset(bystander.reference)


def test_the_default_avro_export_reads_a_table(pipeline_options, local_env, dataset):
    """ReadFromBigQuery's default method exports the table as Avro (useAvroLogicalTypes)
    and reads the files with fastavro."""
    import apache_beam as beam

    name, rows = dataset
    target = f"{local_env.project}:{name}.totals_avro_export"
    source = beam.io.ReadFromBigQuery(table=f"{local_env.project}:{name}.trips")
    city_totals(pipeline_options("DirectRunner"), source, target, "FILE_LOADS")
    got = {r["city"]: r["km"] for r in bigquery.Client().query(
        f"SELECT city, km FROM `{local_env.project}.{name}.totals_avro_export`").result()}
    assert got == pytest.approx(_expected(rows))
