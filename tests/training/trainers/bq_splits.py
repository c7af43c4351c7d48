"""Reads the splits Vertex exported to BigQuery the way Google's sample trainers do (strip
bq://, list the table's rows) and writes their row counts and columns to the model dir."""

import json
import os

from google.cloud import bigquery

found = {"format": os.environ["AIP_DATA_FORMAT"]}
for split in ("TRAINING", "VALIDATION", "TEST"):
    uri = os.environ[f"AIP_{split}_DATA_URI"]
    table = uri.removeprefix("bq://")
    client = bigquery.Client(project=os.environ["CLOUD_ML_PROJECT_ID"])  # as Google's sample
    frame = client.list_rows(table).to_dataframe()
    found[split.lower()] = {"uri": uri, "rows": len(frame), "columns": list(frame.columns)}
model_dir = os.environ["AIP_MODEL_DIR"].replace("gs://", "/gcs/", 1)
os.makedirs(model_dir, exist_ok=True)
with open(os.path.join(model_dir, "splits.json"), "w") as f:
    json.dump(found, f)
