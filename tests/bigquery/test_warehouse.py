"""Storage: what the service stored survives a restart of the process (a fresh DuckDB
connection on the same file), and the public tables are built once."""

from __future__ import annotations

from labkit.bigquery import public_data
from labkit.bigquery.engine import Engine
from labkit.bigquery.resources import Resources
from labkit.bigquery.warehouse import Warehouse


def test_datasets_tables_and_metadata_survive_reopening(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    engine = Engine(Warehouse(path), tmp_path / "models")
    resources = Resources(engine)
    resources.create_dataset("proj", {"datasetReference": {"datasetId": "kept"},
                                      "description": "survives"})
    engine.run("CREATE TABLE kept.t OPTIONS(description='rows') AS "
               "SELECT x FROM UNNEST([1, 2, 3]) AS x", project="proj")
    engine.run("CREATE VIEW kept.v AS SELECT x * 10 AS y FROM kept.t", project="proj")
    created = resources.table("proj", "kept", "t")["creationTime"]
    engine.wh.db.close()

    reopened = Engine(Warehouse(path), tmp_path / "models")
    again = Resources(reopened)
    assert again.dataset("proj", "kept")["description"] == "survives"
    table = again.table("proj", "kept", "t")
    assert table["numRows"] == "3" and table["description"] == "rows"
    assert table["creationTime"] == created
    assert again.table("proj", "kept", "v")["type"] == "VIEW"
    result = reopened.run("SELECT SUM(y) AS s FROM kept.v", project="proj")
    assert result.table.column("s").to_pylist() == [60]


def test_public_tables_are_built_once(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    public_data.ensure(warehouse)
    first = warehouse.table_meta("bigquery-public-data", "ml_datasets", "iris")
    public_data.ensure(warehouse)
    assert warehouse.table_meta("bigquery-public-data", "ml_datasets", "iris") == first
    assert warehouse.num_rows("bigquery-public-data", "ml_datasets", "penguins") == 344
