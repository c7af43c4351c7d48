"""The two row encoders (DuckDB SQL for large pages, Python for small ones) must agree
cell for cell on every type."""

from __future__ import annotations

import json
import shutil

import pytest

from labkit.bigquery.engine import Engine
from labkit.bigquery.job_store import rows_json
from labkit.bigquery.schema import rows_json_py
from labkit.bigquery.warehouse import Warehouse

SQL = """
SELECT 1 AS i, 1.5 AS f, 1e20 AS big, NUMERIC '12.345' AS n, TRUE AS b, 'héllo "q"' AS s,
  b'\\x00\\xff' AS by, DATE '2024-02-29' AS d, DATETIME '2024-02-29 12:34:56.789' AS dt,
  TIMESTAMP '2024-02-29 12:34:56.789+00' AS ts, TIME '12:34:56' AS t, JSON '{"k": 1}' AS j,
  [1, 2] AS arr, STRUCT(1 AS x, [STRUCT('a' AS label, 0.5 AS prob)] AS probs) AS rec,
  CAST(NULL AS STRING) AS nul, CAST([] AS ARRAY<INT64>) AS empty,
  CAST('nan' AS FLOAT64) AS nan, SUM(3) AS total
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoding")
    yield Engine(Warehouse(root / "w.duckdb"), root / "models")
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("int64", [True, False])
def test_python_and_duckdb_encoders_agree(engine, int64):
    result = engine.run(SQL, project="p")
    via_duckdb = json.loads(rows_json(engine.wh.cursor(), result.table, 0, 1, int64,
                                      result.duck_types))
    via_python = json.loads(rows_json_py(result.table, result.fields, int64))
    assert via_python == via_duckdb
    cells = dict(zip([f["name"] for f in result.fields], via_python[0]["f"], strict=True))
    assert cells["empty"]["v"] == [] and cells["nul"]["v"] is None
    assert cells["nan"]["v"] == "NaN" and cells["total"]["v"] == "3"
