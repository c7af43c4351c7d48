"""Managed datasets: the Dataset resources AutoML trains from.

A tabular (or time series) dataset is metadata pointing at its source, as on Vertex AI:
metadata.inputConfig.gcsSource.uri (CSV files on Cloud Storage) or
metadata.inputConfig.bigquerySource.uri (a BigQuery table). The source is checked at
creation and read when a training job runs, so training sees the table as it is then.
Image, text and video datasets hold data items imported from files; they are not built
locally and fail with an error that says they run with LAB_BACKEND=gcp.
"""

from __future__ import annotations

import re

import pandas as pd

from labkit.storage import matching_files
from labkit.vertex import bq as bq_locations
from labkit.vertex import errors, operations
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.workspace import Workspace

SCHEMA = "gs://google-cloud-aiplatform/schema/dataset/metadata/"
LOCAL_SCHEMAS = {SCHEMA + "tabular_1.0.0.yaml", SCHEMA + "time_series_1.0.0.yaml"}
PATCHABLE = {"displayName", "description", "labels"}
BQ_URI = re.compile(r"bq://([^.]+)\.([^.]+)\.([^.]+)")


def _kind(schema: str) -> str:
    return schema.rsplit("/", 1)[-1].split("_1.0.0")[0].replace("_", " ")


class Datasets:
    def __init__(self, store: ResourceStore, bigquery):
        self.store = store
        self.bigquery = bigquery  # labkit.vertex.bq.LocalBigQuery

    def create(self, parent: str, body: dict) -> dict:
        if not body.get("displayName"):
            raise errors.invalid("Dataset.display_name is required.")
        schema = body.get("metadataSchemaUri") or ""
        if not schema:
            raise errors.invalid("Dataset.metadata_schema_uri is required.")
        if schema not in LOCAL_SCHEMAS:
            raise errors.gcp_only(f"Vertex AI {_kind(schema)} datasets ({schema})")
        metadata = body.get("metadata") or {}
        region = parent.split("/locations/", 1)[1]
        source_uri(metadata, self.store.workspace, self.bigquery, region)  # validates it
        dataset_id = new_id()
        stamp = now()
        dataset = {
            "name": f"{parent}/datasets/{dataset_id}",
            "displayName": body["displayName"], "metadataSchemaUri": schema,
            "metadata": metadata, "createTime": stamp, "updateTime": stamp, "etag": new_id(),
            **{k: body[k] for k in ("description", "labels", "encryptionSpec") if k in body},
        }
        self.store.put("datasets", dataset_id, dataset)
        return operations.done(self.store, dataset["name"], "CreateDatasetOperationMetadata",
                               "Dataset", dataset)

    def find(self, parent: str, dataset_id: str) -> dict:
        dataset = self.store.get("datasets", dataset_id) if dataset_id.isdigit() else None
        if dataset is None or not dataset["name"].startswith(parent + "/"):
            raise errors.not_found("Dataset", f"{parent}/datasets/{dataset_id}")
        return dataset

    def list(self, parent: str, query: dict) -> dict:
        found = [d for d in self.store.all("datasets")
                 if d["name"].startswith(parent + "/") and matches_filter(d, query.get("filter"))]
        return page(found, "datasets", query.get("pageSize"), query.get("pageToken"))

    def patch(self, parent: str, dataset_id: str, body: dict, mask: str | None) -> dict:
        with self.store.lock:
            dataset = self.find(parent, dataset_id)
            apply_mask(dataset, body, mask, PATCHABLE)
            dataset.update(updateTime=now(), etag=new_id())
            return self.store.put("datasets", dataset_id, dataset)

    def delete(self, parent: str, dataset_id: str) -> dict:
        dataset = self.find(parent, dataset_id)
        self.store.delete("datasets", dataset_id)
        return operations.done(self.store, dataset["name"], "DeleteOperationMetadata", None)


def source_uri(metadata: dict, workspace: Workspace, bigquery, region: str) -> str:
    """The dataset's one source URI (bq://... or the first gs://...), checked to exist; a
    BigQuery table must be usable from the dataset's region (labkit.vertex.bq)."""
    config = metadata.get("inputConfig") or {}
    gcs = (config.get("gcsSource") or {}).get("uri")
    bq = (config.get("bigquerySource") or {}).get("uri")
    if bool(gcs) == bool(bq):
        raise errors.invalid("A tabular dataset needs exactly one source in "
                             "metadata.inputConfig: gcsSource.uri (CSV files) or "
                             "bigquerySource.uri (a BigQuery table).")
    if bq:
        table = _bq_table(bq)
        from google.api_core import exceptions

        try:
            bigquery.client().get_table(table)
        except exceptions.NotFound:
            raise errors.invalid(f"BigQuery table {bq} does not exist.") from None
        project, dataset, _ = table.split(".")
        bq_locations.check_location(bigquery, project, dataset, region,
                                    f"Vertex AI dataset source {bq}")
        return bq
    uris = [gcs] if isinstance(gcs, str) else list(gcs)
    for uri in uris:
        _csv_files(uri, workspace)
    return uris[0]


def _bq_table(uri: str) -> str:
    m = BQ_URI.fullmatch(uri.strip())
    if not m:
        raise errors.invalid(f"BigQuery source {uri!r} must look like bq://project.dataset.table.")
    return f"{m[1]}.{m[2]}.{m[3]}"


def _csv_files(uri: str, workspace: Workspace) -> list:
    if not uri.startswith("gs://"):
        raise errors.invalid(f"Cloud Storage source {uri!r} must be a gs:// URI.")
    found = matching_files(uri, workspace)
    if not found:
        raise errors.invalid(f"No files match the Cloud Storage source {uri}." if "*" in uri
                             else f"Cloud Storage source {uri} does not exist.")
    return found


def read_frame(dataset: dict, workspace: Workspace, bigquery) -> pd.DataFrame:
    """The dataset's rows now: the BigQuery table, or the CSV files one after another."""
    config = (dataset.get("metadata") or {}).get("inputConfig") or {}
    bq = (config.get("bigquerySource") or {}).get("uri")
    if bq:
        return bigquery.client().list_rows(_bq_table(bq)).to_dataframe(
            create_bqstorage_client=False)  # REST: see vertex.bq.LocalBigQuery
    gcs = config["gcsSource"]["uri"]
    frames = []
    for uri in [gcs] if isinstance(gcs, str) else gcs:
        for path in _csv_files(uri, workspace):
            frames.append(pd.read_csv(path, skipinitialspace=True))
    return pd.concat(frames, ignore_index=True)
