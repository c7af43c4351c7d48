"""Managed datasets through the real SDK: tabular datasets from BigQuery and Cloud Storage
CSV, column names read through the real clients, list/get/update/delete, and errors."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform


def test_bigquery_dataset(census, census_dataset):
    assert census_dataset.metadata_schema_uri.endswith("/tabular_1.0.0.yaml")
    assert census_dataset.gca_resource.metadata["inputConfig"]["bigquerySource"]["uri"] == \
        census[0]
    assert sorted(census_dataset.column_names) == sorted(census[2].columns)
    again = aiplatform.TabularDataset(census_dataset.resource_name)
    assert again.display_name == "census-bq"
    listed = aiplatform.TabularDataset.list(filter='display_name="census-bq"')
    assert census_dataset.resource_name in [d.resource_name for d in listed]


def test_csv_dataset_update_and_delete(census):
    dataset = aiplatform.TabularDataset.create(display_name="census-csv", gcs_source=census[1])
    header = census[2].columns.tolist()
    assert sorted(dataset.column_names) == sorted(header)
    dataset.update(labels={"lab": "automl"})
    assert aiplatform.TabularDataset(dataset.resource_name).labels == {"lab": "automl"}
    dataset.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.TabularDataset(dataset.resource_name)


def test_missing_sources_are_refused(automl_env):
    with pytest.raises(exceptions.BadRequest, match="does not exist"):
        aiplatform.TabularDataset.create(
            display_name="nope", bq_source=f"bq://{automl_env.project}.nowhere.none")
    with pytest.raises(exceptions.BadRequest, match="does not exist"):
        aiplatform.TabularDataset.create(
            display_name="nope", gcs_source=f"gs://{automl_env.bucket}/no/such.csv")


def test_image_datasets_run_on_gcp(automl_env):
    with pytest.raises(exceptions.GoogleAPICallError, match="LAB_BACKEND=gcp"):
        aiplatform.ImageDataset.create(display_name="pictures")
