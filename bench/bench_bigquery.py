"""Local BigQuery speed: a trivial query's round trip through the real client, and
to_dataframe() of 100,000 rows x 5 columns, each against DuckDB doing the same directly
(smoke mode: 1,000 rows, one round, no warm-up).

to_dataframe() reads a query's results through the BigQuery Storage Read API (gRPC, Arrow
record batches) as on BigQuery, since a query's job names its anonymous destination table.
Over REST (create_bqstorage_client=False) it is dominated by the client library turning each
of the 500,000 f/v cells into a Python value (dates through strptime); the last row
measures the service's own share of that: the same query answered over HTTP, rows not
parsed."""

from __future__ import annotations

import statistics
import time
import warnings

import duckdb

ROUNDS = 30
BIG_ROWS = 100_000
BIG_SQL = ("SELECT n, n * 0.5 AS half, CONCAT('row-', CAST(n AS STRING)) AS label, "
           "MOD(n, 7) = 0 AS lucky, DATE_ADD(DATE '2024-01-01', INTERVAL MOD(n, 365) DAY) "
           "AS day FROM UNNEST(GENERATE_ARRAY(1, {rows})) AS n")
BIG_DUCKDB = ("SELECT n, n * 0.5 AS half, 'row-' || n::VARCHAR AS label, n % 7 = 0 AS lucky, "
              "(DATE '2024-01-01' + (n % 365)::INTEGER) AS day FROM range(1, {rows} + 1) t(n)")


def _median_ms(fn, rounds: int, warm_up: bool = True) -> float:
    if warm_up:
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run(smoke: bool = False) -> list[dict]:
    import labkit

    big_rows, rounds, few = (1000, 1, 1) if smoke else (BIG_ROWS, ROUNDS, 3)
    warm = not smoke
    big_sql, big_duckdb = BIG_SQL.format(rows=big_rows), BIG_DUCKDB.format(rows=big_rows)

    labkit.start("local")
    from google.cloud import bigquery

    warnings.simplefilter("ignore")
    client = bigquery.Client()
    con = duckdb.connect()
    direct_ms = _median_ms(lambda: con.sql("SELECT 1").fetchall(), rounds, warm)
    rows = [
        {"name": "SELECT 1 round trip, query_and_wait (median ms)",
         "value": _median_ms(lambda: list(client.query_and_wait("SELECT 1")), rounds, warm),
         "unit": "ms", "baseline": direct_ms, "target": "< 5 ms"},
        {"name": "SELECT 1 round trip, query().result() (median ms)",
         "value": _median_ms(lambda: list(client.query("SELECT 1").result()), rounds, warm),
         "unit": "ms", "baseline": direct_ms, "target": "< 5 ms"},
    ]
    def read_api():
        job = client.query(big_sql)
        assert job.destination is not None  # the fast path's precondition
        return job.to_dataframe(create_bqstorage_client=True)

    frame = read_api()
    assert frame.shape == (big_rows, 5), frame.shape
    direct_s = _median_ms(lambda: con.sql(big_duckdb).df(), few, warm) / 1000
    rows.append({"name": f"to_dataframe() of {big_rows:,} rows x 5 columns, Storage Read API "
                         "(median s)",
                 "value": _median_ms(read_api, few, warm) / 1000, "unit": "s",
                 "baseline": direct_s, "target": "< 5x DuckDB -> pandas"})
    rows.append({"name": f"the Read API alone: CreateReadSession + ReadRows of those "
                         f"{big_rows:,} rows as Arrow (median s; to_dataframe adds the "
                         "client's download loop, which polls its queue every 0.2 s)",
                 "value": _median_ms(lambda: _read_api_alone(client, big_sql), few, warm) / 1000,
                 "unit": "s", "baseline": direct_s, "target": "< 5x DuckDB -> pandas"})
    rows.append({"name": f"to_dataframe() of {big_rows:,} rows x 5 columns, REST "
                         "(median s)",
                 "value": _median_ms(lambda: client.query(big_sql).to_dataframe(
                     create_bqstorage_client=False), few, False) / 1000,
                 "unit": "s", "baseline": direct_s, "target": "< 1 s"})
    rows.append({"name": f"same {big_rows:,} rows, service share: jobs.query over HTTP "
                         "(median s)",
                 "value": _median_ms(lambda: _raw_query(big_sql), few, warm) / 1000,
                 "unit": "s", "baseline": direct_s, "target": "< 1 s"})
    return rows


def _read_api_alone(client, sql: str) -> int:
    """One query's results read with BigQueryReadClient directly (one stream), bytes read."""
    from google.cloud import bigquery_storage
    from google.cloud.bigquery_storage_v1 import types

    job = client.query(sql)
    job.result()
    d = job.destination
    reader = bigquery_storage.BigQueryReadClient()
    session = reader.create_read_session(
        parent=f"projects/{client.project}", max_stream_count=1,
        read_session=types.ReadSession(
            table=f"projects/{d.project}/datasets/{d.dataset_id}/tables/{d.table_id}",
            data_format=types.DataFormat.ARROW))
    return sum(len(r.arrow_record_batch.serialized_record_batch)
               for r in reader.read_rows(session.streams[0].name))


def _raw_query(sql: str) -> int:
    """POST jobs.query as the client does, without decoding the rows."""
    import os

    import requests

    from labkit.workspace import Workspace

    endpoint = os.environ["BIGQUERY_EMULATOR_HOST"]
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    response = requests.post(
        f"{endpoint}/bigquery/v2/projects/{project}/queries",
        json={"query": sql, "useLegacySql": False,
              "formatOptions": {"useInt64Timestamp": True}},
        headers={"Authorization": f"Bearer {Workspace.from_env().token}"}, timeout=120)
    response.raise_for_status()
    return len(response.content)
