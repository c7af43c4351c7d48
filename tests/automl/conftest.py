"""Fixtures for the local AutoML tests: a census table in the local BigQuery (a slice of
the public census_adult_income data) and the same rows as a CSV on Cloud Storage."""

from __future__ import annotations

import uuid

import pytest
from google.cloud import aiplatform, bigquery, storage

ROWS = 1500


@pytest.fixture(scope="session")
def automl_env(local_env):
    aiplatform.init(project=local_env.project, location=local_env.region)
    return local_env


@pytest.fixture(scope="session")
def census(automl_env):
    """(bq:// URI, gs:// CSV URI, the rows as a DataFrame)."""
    project = automl_env.project
    dataset = f"automl_tests_{uuid.uuid4().hex[:8]}"
    client = bigquery.Client()
    client.create_dataset(dataset)
    client.query(f"""
        CREATE TABLE {dataset}.census AS
        SELECT * FROM `bigquery-public-data.ml_datasets.census_adult_income`
        ORDER BY functional_weight LIMIT {ROWS}""").result()
    frame = client.list_rows(f"{project}.{dataset}.census").to_dataframe()
    blob = f"tests/automl/{dataset}/census.csv"
    storage.Client().bucket(automl_env.bucket).blob(blob).upload_from_string(
        frame.to_csv(index=False))
    yield f"bq://{project}.{dataset}.census", f"gs://{automl_env.bucket}/{blob}", frame
    client.delete_dataset(dataset, delete_contents=True)


@pytest.fixture(scope="session")
def census_dataset(census):
    dataset = aiplatform.TabularDataset.create(display_name="census-bq", bq_source=census[0])
    yield dataset
    dataset.delete()
