"""Batch prediction's BigQuery side, through the real BigQuery client.

The services process talks to the local BigQuery over HTTP like any client would, with the
workspace token, so batch prediction reads and writes tables exactly as a learner's code
sees them.
"""

from __future__ import annotations

import json
import re
import threading

from labkit.vertex import errors


class LocalBigQuery:
    """The real google-cloud-bigquery client, pointed at this services process (built
    once by labkit.services.wiring and handed to the engines that read or write tables).
    Read results over REST (to_dataframe(create_bqstorage_client=False)): this process has
    no proxy environment, so the Storage Read API's gRPC client would call Google."""

    def __init__(self, endpoint: str, token: str, project: str):
        self.endpoint, self.token, self.project = endpoint, token, project
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                from google.api_core.client_options import ClientOptions
                from google.cloud import bigquery
                from google.oauth2.credentials import Credentials

                self._client = bigquery.Client(
                    project=self.project, credentials=Credentials(self.token),
                    client_options=ClientOptions(api_endpoint=self.endpoint))
            return self._client


# ---- locations
# Vertex AI reads and writes BigQuery in its own region, or in the multi-region that contains
# that region: "the BigQuery dataset must be in the same region as the Vertex AI resource, or
# in the US or EU multi-region that contains it" (Vertex AI tabular data preparation,
# https://cloud.google.com/vertex-ai/docs/tabular-data/classification-regression/prepare-data;
# a US dataset works from us-central1, an EU one from europe-west4, never across).
# London and Zurich are in Europe but not in BigQuery's EU multi-region.
_NOT_IN_EU = ("europe-west2", "europe-west6")


def multi_region_of(region: str) -> str | None:
    if region.startswith("us-"):
        return "US"
    if region.startswith("europe-") and region not in _NOT_IN_EU:
        return "EU"
    return None


def readable_from(region: str, location: str) -> bool:
    """Whether a Vertex AI job in `region` may use a BigQuery dataset in `location`."""
    return location.lower() == region.lower() or location.upper() == multi_region_of(region)


def dataset_location(bigquery: LocalBigQuery, project: str, dataset: str) -> str | None:
    from google.api_core import exceptions

    try:
        return bigquery.client().get_dataset(f"{project}.{dataset}").location
    except exceptions.NotFound:
        return None


def check_location(bigquery: LocalBigQuery, project: str, dataset: str, region: str,
                   what: str) -> None:
    """Refuses a BigQuery dataset that a Vertex AI resource in `region` cannot use."""
    location = dataset_location(bigquery, project, dataset)
    if location is not None and not readable_from(region, location):
        multi = multi_region_of(region)
        raise errors.invalid(
            f"{what}: BigQuery dataset {project}.{dataset} is in {location}, and Vertex AI in "
            f"{region} uses BigQuery data in {region}" + (f" or the {multi} multi-region"
                                                         if multi else "") +
            ". Create the dataset there (bigquery.Dataset.location) or run Vertex AI in the "
            "dataset's region.")


def read_rows(bigquery: LocalBigQuery, project: str, dataset: str, table: str,
              region: str | None = None) -> list[dict]:
    """The rows of a table for a Vertex AI job in `region` (checked against its dataset's
    location)."""
    from google.api_core import exceptions

    if region:
        check_location(bigquery, project, dataset, region, "Batch prediction input")
    try:
        return [dict(r) for r in bigquery.client().list_rows(f"{project}.{dataset}.{table}")]
    except exceptions.NotFound:
        raise errors.invalid(f"BigQuery table {project}.{dataset}.{table} for batch prediction "
                             f"input is not found.") from None
    except exceptions.GoogleAPICallError as exc:
        raise errors.invalid(f"Reading {project}.{dataset}.{table}: {exc.message}") from None


def _column(values: list):
    """FLOAT64/INT64 for scalar numbers, STRING (JSON) for anything else, as Vertex writes."""
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL", values
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64", values
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FLOAT64", [float(v) for v in values]
    if values and all(isinstance(v, str) for v in values):
        return "STRING", values
    return "STRING", [json.dumps(v) for v in values]


def write_predictions(bigquery_client: LocalBigQuery, output_uri: str, version: dict, label: str,
                      instances: list, rows, results: list, failures: list, *,
                      region: str, source_location: str | None = None) -> dict:
    """Writes `predictions` (and `errors`) tables; returns the job's outputInfo. A dataset
    Vertex creates (output_uri bq://project) is made where the BigQuery input is, else in
    the job's region; a named one must be usable from the job's region."""
    import pandas as pd
    from google.api_core import exceptions
    from google.cloud import bigquery

    bq = bigquery_client.client()
    m = re.fullmatch(r"bq://([^.]+)(?:\.([^.]+)\.([^.]+))?", output_uri)
    if not m:
        raise errors.invalid(f"bigquery_destination.output_uri {output_uri!r} must be "
                             f"bq://project or bq://project.dataset.table.")
    project = m[1]
    safe = re.sub(r"[^A-Za-z0-9_]", "_", version["displayName"])
    dataset, table = (m[2], m[3]) if m[2] else (f"prediction_{safe}_{label}", "predictions")
    if not m[2]:
        created = bigquery.Dataset(f"{project}.{dataset}")
        created.location = source_location or region
        bq.create_dataset(created, exists_ok=True)
    else:
        check_location(bigquery_client, project, dataset, region, "Batch prediction output")

    def frame(indices: list[int]) -> pd.DataFrame:
        if rows is not None:
            return pd.DataFrame([rows[i] for i in indices])
        return pd.DataFrame({"instance": [json.dumps(instances[i]) for i in indices]})

    predictions = frame([i for i, _ in results])
    _, values = _column([p for _, p in results])
    predictions["prediction"] = values
    try:
        bq.load_table_from_dataframe(predictions, f"{project}.{dataset}.{table}").result()
        if failures and not m[2]:
            failed = frame([i for i, _, _ in failures])
            failed["errors"] = [json.dumps({"status": s, "message": msg})
                                for _, s, msg in failures]
            bq.load_table_from_dataframe(failed, f"{project}.{dataset}.errors").result()
    except exceptions.GoogleAPICallError as exc:
        raise errors.invalid(f"Writing predictions to BigQuery {project}.{dataset}.{table}: "
                             f"{exc.message}") from None
    return {"bigqueryOutputDataset": f"bq://{project}.{dataset}",
            "bigqueryOutputTable": table}
