"""SQL forms Google's official BigQuery ML samples write (GoogleCloudPlatform/vertex-ai-samples),
run through the real client."""

from __future__ import annotations

import uuid


def test_create_schema_with_project_and_dataset_in_one_identifier(client):
    # notebooks/community/bigquery_ml/bqml-online-prediction.ipynb:
    # CREATE SCHEMA IF NOT EXISTS `{PROJECT_ID}.{BQ_DATASET_NAME}`
    name = f"t_{uuid.uuid4().hex[:10]}"
    client.query(f"CREATE SCHEMA IF NOT EXISTS `{client.project}.{name}`").result()
    try:
        assert client.get_dataset(name).project == client.project
        client.query(f"CREATE SCHEMA IF NOT EXISTS `{client.project}.{name}`").result()
    finally:
        client.query(f"DROP SCHEMA `{client.project}.{name}`").result()
