"""bigquery-public-data.ml_datasets: penguins, census_adult_income and iris, with the real
BigQuery schemas and real rows (see shared/data/README.md for sources and licences).

Built once into the warehouse on first start; the SQL layer refuses writes to this project.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from labkit.bigquery.sql.translate import PUBLIC_PROJECT, schema_name
from labkit.bigquery.warehouse import Warehouse, now_ms

DATASET = "ml_datasets"
DATA = Path(__file__).resolve().parents[2] / "data"

DESCRIPTIONS = {
    "penguins": "Palmer Archipelago (Antarctica) penguin data: Gorman, Williams and Fraser "
                "(2014), via the palmerpenguins package (CC0).",
    "census_adult_income": "UCI Adult (Census Income) data set, adult.data: Kohavi and "
                           "Becker (1996), CC BY 4.0.",
    "iris": "Fisher's Iris data set, via scikit-learn.",
}


def _penguins() -> pa.Table:
    from palmerpenguins import load_penguins_raw

    raw = load_penguins_raw()  # from_pandas=True: its NaN are BigQuery's NULLs
    sex = raw["Sex"].astype(object).where(raw["Sex"].notna(), None)
    return pa.table({
        "species": pa.array(raw["Species"].astype(str).tolist(), pa.string()),
        "island": pa.array(raw["Island"].astype(str).tolist(), pa.string()),
        "culmen_length_mm": pa.array(raw["Culmen Length (mm)"], pa.float64(), from_pandas=True),
        "culmen_depth_mm": pa.array(raw["Culmen Depth (mm)"], pa.float64(), from_pandas=True),
        "flipper_length_mm": pa.array(raw["Flipper Length (mm)"], pa.float64(), from_pandas=True),
        "body_mass_g": pa.array(raw["Body Mass (g)"], pa.float64(), from_pandas=True),
        "sex": pa.array(sex.tolist(), pa.string()),
    }).combine_chunks()


_CENSUS_TYPES = {
    "age": pa.int64(), "workclass": pa.string(), "functional_weight": pa.int64(),
    "education": pa.string(), "education_num": pa.int64(), "marital_status": pa.string(),
    "occupation": pa.string(), "relationship": pa.string(), "race": pa.string(),
    "sex": pa.string(), "capital_gain": pa.int64(), "capital_loss": pa.int64(),
    "hours_per_week": pa.int64(), "native_country": pa.string(),
    "income_bracket": pa.string(),
}


def _census() -> pa.Table:
    with gzip.open(DATA / "census_adult_income.csv.gz", "rb") as f:
        return pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
            column_types=_CENSUS_TYPES, strings_can_be_null=False))


def _iris() -> pa.Table:
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = [str(iris.target_names[i]) for i in iris.target]
    x = iris.data
    return pa.table({
        "sepal_length": pa.array(x[:, 0], pa.float64()),
        "sepal_width": pa.array(x[:, 1], pa.float64()),
        "petal_length": pa.array(x[:, 2], pa.float64()),
        "petal_width": pa.array(x[:, 3], pa.float64()),
        "species": pa.array(names, pa.string()),
    })


BUILDERS = {"penguins": _penguins, "census_adult_income": _census, "iris": _iris}


def ensure(warehouse: Warehouse) -> None:
    """Creates whichever public tables are missing (one transaction each)."""
    present = {name for name, _ in warehouse.tables(PUBLIC_PROJECT, DATASET)} \
        if warehouse.dataset_exists(PUBLIC_PROJECT, DATASET) else set()
    missing = [name for name in BUILDERS if name not in present]
    if not missing:
        return
    with warehouse.write() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema_name(PUBLIC_PROJECT, DATASET)}"')
        if not warehouse.dataset_meta(PUBLIC_PROJECT, DATASET):
            warehouse.set_dataset_meta(cur, PUBLIC_PROJECT, DATASET, {
                "creationTime": now_ms(), "lastModifiedTime": now_ms(),
                "description": "Public data sets used by the BigQuery ML tutorials."})
        for name in missing:
            data = BUILDERS[name]()
            cur.register("__public_rows", data)
            cur.execute(f"CREATE TABLE {warehouse.ref(PUBLIC_PROJECT, DATASET, name)} AS "
                        "SELECT * FROM __public_rows")
            cur.unregister("__public_rows")
            warehouse.touch_table(cur, PUBLIC_PROJECT, DATASET, name, created=True,
                                  extra={"description": DESCRIPTIONS[name]})
