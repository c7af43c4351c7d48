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
    once by labkit.services.wiring and handed to the engines that read or write tables)."""

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


def read_rows(bigquery: LocalBigQuery, project: str, dataset: str, table: str) -> list[dict]:
    from google.api_core import exceptions

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
                      instances: list, rows, results: list, failures: list) -> dict:
    """Writes `predictions` (and `errors`) tables; returns the job's outputInfo."""
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
        bq.create_dataset(bigquery.Dataset(f"{project}.{dataset}"), exists_ok=True)

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
