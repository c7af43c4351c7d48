"""Every BigQuery type through the wire both ways, the public data sets' real schemas, and
the other front doors: the %%bigquery magic (through IPython) and pandas_gbq.read_gbq."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
from google.cloud import bigquery

ALL_TYPES_SQL = """
SELECT 1 AS i, 1.5 AS f, NUMERIC '12.345' AS n, BIGNUMERIC '1.5' AS bn, TRUE AS b,
  'héllo "q"' AS s, b'\\x00\\xff' AS by, DATE '2024-02-29' AS d,
  DATETIME '2024-02-29 12:34:56.789' AS dt, TIMESTAMP '2024-02-29 12:34:56.789+00' AS ts,
  TIME '12:34:56' AS t, JSON '{"k": [1, 2]}' AS j, [1, 2, 3] AS arr,
  STRUCT(1 AS x, [STRUCT('a' AS label, 0.5 AS prob)] AS probs) AS rec,
  CAST(NULL AS STRING) AS nul, CAST('inf' AS FLOAT64) AS inf
"""


def test_every_type_round_trips(client):
    rows = client.query_and_wait(ALL_TYPES_SQL)
    kinds = {f.name: (f.field_type, f.mode) for f in rows.schema}
    assert kinds == {
        "i": ("INTEGER", "NULLABLE"), "f": ("FLOAT", "NULLABLE"), "n": ("NUMERIC", "NULLABLE"),
        "bn": ("BIGNUMERIC", "NULLABLE"), "b": ("BOOLEAN", "NULLABLE"),
        "s": ("STRING", "NULLABLE"), "by": ("BYTES", "NULLABLE"), "d": ("DATE", "NULLABLE"),
        "dt": ("DATETIME", "NULLABLE"), "ts": ("TIMESTAMP", "NULLABLE"),
        "t": ("TIME", "NULLABLE"), "j": ("JSON", "NULLABLE"), "arr": ("INTEGER", "REPEATED"),
        "rec": ("RECORD", "NULLABLE"), "nul": ("STRING", "NULLABLE"),
        "inf": ("FLOAT", "NULLABLE")}
    rec = [f for f in rows.schema if f.name == "rec"][0]
    probs = rec.fields[1]
    assert (probs.name, probs.field_type, probs.mode) == ("probs", "RECORD", "REPEATED")
    assert [(f.name, f.field_type) for f in probs.fields] == [("label", "STRING"),
                                                               ("prob", "FLOAT")]
    row = list(rows)[0]
    assert row.i == 1 and row.f == 1.5 and row.n == Decimal("12.345")
    assert row.bn == Decimal("1.5") and row.b is True and row.s == 'héllo "q"'
    assert row.by == b"\x00\xff" and row.d == dt.date(2024, 2, 29)
    assert row.dt == dt.datetime(2024, 2, 29, 12, 34, 56, 789000)
    assert row.ts == dt.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=dt.UTC)
    assert row.t == dt.time(12, 34, 56) and row.j == {"k": [1, 2]}
    assert row.arr == [1, 2, 3] and row.nul is None and row.inf == float("inf")
    assert row.rec == {"x": 1, "probs": [{"label": "a", "prob": 0.5}]}


def test_types_survive_a_table(client, dataset):
    table_id = f"{client.project}.{dataset}.all_types"
    client.query_and_wait(f"CREATE TABLE `{table_id}` AS {ALL_TYPES_SQL}")
    stored = {f.name: f.field_type for f in client.get_table(table_id).schema}
    assert stored["ts"] == "TIMESTAMP" and stored["dt"] == "DATETIME"
    assert stored["n"] == "NUMERIC" and stored["rec"] == "RECORD"
    row = list(client.list_rows(table_id))[0]
    assert row.ts == dt.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=dt.UTC)
    assert row.rec["probs"][0]["label"] == "a"
    df = client.query(f"SELECT i, f, s, d, ts FROM `{table_id}`").to_dataframe()
    assert str(df["ts"].dtype).startswith("datetime64") and df["i"].iloc[0] == 1


def test_public_datasets_have_bigquery_schemas(client):
    public = "bigquery-public-data.ml_datasets"
    census = client.get_table(f"{public}.census_adult_income")
    assert [(f.name, f.field_type) for f in census.schema] == [
        ("age", "INTEGER"), ("workclass", "STRING"), ("functional_weight", "INTEGER"),
        ("education", "STRING"), ("education_num", "INTEGER"), ("marital_status", "STRING"),
        ("occupation", "STRING"), ("relationship", "STRING"), ("race", "STRING"),
        ("sex", "STRING"), ("capital_gain", "INTEGER"), ("capital_loss", "INTEGER"),
        ("hours_per_week", "INTEGER"), ("native_country", "STRING"),
        ("income_bracket", "STRING")]
    assert census.num_rows == 32561
    penguins = client.get_table(f"{public}.penguins")
    assert [f.name for f in penguins.schema] == [
        "species", "island", "culmen_length_mm", "culmen_depth_mm", "flipper_length_mm",
        "body_mass_g", "sex"]
    assert penguins.num_rows == 344
    missing = list(client.query_and_wait(
        f"SELECT COUNTIF(body_mass_g IS NULL) AS mass, COUNTIF(sex IS NULL) AS sex "
        f"FROM `{public}.penguins`"))[0]
    assert (missing["mass"], missing["sex"]) == (2, 11)  # the raw data's NA, as NULL
    assert client.get_table(f"{public}.iris").num_rows == 150
    share = list(client.query_and_wait(
        f"SELECT COUNTIF(income_bracket = ' >50K') / COUNT(*) AS p FROM `{public}."
        "census_adult_income`"))[0].p
    assert 0.23 < share < 0.25  # UCI: 24.08% of adult.data earn >50K


def test_bigquery_magic_through_ipython(local_env, ipython_shell):
    shell = ipython_shell
    shell.run_line_magic("load_ext", "bigquery_magics")
    shell.run_cell_magic("bigquery", "species_counts", (
        "SELECT species, COUNT(*) AS n FROM `bigquery-public-data.ml_datasets.penguins` "
        "GROUP BY species ORDER BY n DESC"))
    df = shell.user_ns["species_counts"]
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["species", "n"]
    assert df["n"].sum() == 344 and df["species"].iloc[0].startswith("Adelie")
    shell.user_ns["min_mass"] = 5000
    shell.run_cell_magic("bigquery", "heavy --params {\"min_mass\": 5000}", (
        "SELECT COUNT(*) AS n FROM `bigquery-public-data.ml_datasets.penguins` "
        "WHERE body_mass_g > @min_mass"))
    assert 0 < shell.user_ns["heavy"]["n"].iloc[0] < 344


def test_pandas_gbq_read_gbq(local_env):
    import pandas_gbq

    df = pandas_gbq.read_gbq(
        "SELECT species, AVG(petal_length) AS petal FROM "
        "`bigquery-public-data.ml_datasets.iris` GROUP BY species ORDER BY species",
        project_id=local_env.project, progress_bar_type=None)
    assert df["species"].tolist() == ["setosa", "versicolor", "virginica"]
    assert abs(df["petal"].iloc[0] - 1.462) < 1e-3  # Fisher's setosa mean petal length


def test_dataframe_of_many_rows(client):
    df = client.query("SELECT n, n * 0.5 AS half, CAST(n AS STRING) AS s FROM "
                      "UNNEST(GENERATE_ARRAY(1, 30000)) AS n").to_dataframe()
    assert len(df) == 30000 and df["half"].sum() == 0.5 * 30000 * 30001 / 2
    assert isinstance(bigquery.__version__, str)
