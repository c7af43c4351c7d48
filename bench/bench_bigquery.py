"""Local BigQuery speed: a trivial query's round trip through the real client, and
to_dataframe() of 100,000 rows x 5 columns, each against DuckDB doing the same directly."""

from __future__ import annotations

import statistics
import time
import warnings

import duckdb

ROUNDS = 30
BIG_SQL = ("SELECT n, n * 0.5 AS half, CONCAT('row-', CAST(n AS STRING)) AS label, "
           "MOD(n, 7) = 0 AS lucky, DATE_ADD(DATE '2024-01-01', INTERVAL MOD(n, 365) DAY) "
           "AS day FROM UNNEST(GENERATE_ARRAY(1, 100000)) AS n")
BIG_DUCKDB = ("SELECT n, n * 0.5 AS half, 'row-' || n::VARCHAR AS label, n % 7 = 0 AS lucky, "
              "(DATE '2024-01-01' + (n % 365)::INTEGER) AS day FROM range(1, 100001) t(n)")


def _median_ms(fn, rounds: int = ROUNDS) -> float:
    fn()  # warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run() -> list[dict]:
    import labkit

    labkit.start("local")
    from google.cloud import bigquery

    warnings.simplefilter("ignore")
    client = bigquery.Client()
    con = duckdb.connect()
    direct_ms = _median_ms(lambda: con.sql("SELECT 1").fetchall())
    rows = [
        {"name": "SELECT 1 round trip, query_and_wait (median ms)",
         "value": _median_ms(lambda: list(client.query_and_wait("SELECT 1"))), "unit": "ms",
         "baseline": direct_ms, "target": "< 10 ms"},
        {"name": "SELECT 1 round trip, query().result() (median ms)",
         "value": _median_ms(lambda: list(client.query("SELECT 1").result())), "unit": "ms",
         "baseline": direct_ms, "target": "< 10 ms"},
    ]
    frame_s = _median_ms(lambda: client.query(BIG_SQL).to_dataframe(), rounds=3) / 1000
    direct_s = _median_ms(lambda: con.sql(BIG_DUCKDB).df(), rounds=3) / 1000
    rows.append({"name": "to_dataframe() of 100,000 rows x 5 columns (median s)",
                 "value": frame_s, "unit": "s", "baseline": direct_s, "target": "< 1 s"})
    return rows
