"""The skew baseline: the training data a monitoring objective names, as feature columns.

Sources, as ModelMonitoringObjectiveConfig.TrainingDataset names them:
- bigquerySource.inputUri bq://project.dataset.table: read with the real BigQuery client
  from the local BigQuery (labkit.vertex.bq);
- gcsSource.uris with dataFormat "csv" (header row; numbers parsed) or "jsonl";
- a managed Vertex dataset or TFRecord files: refused; they run with LAB_BACKEND=gcp.
The target field is dropped: it is not an input feature.
"""

from __future__ import annotations

import csv
import json

from labkit.storage import local_path
from labkit.vertex import errors
from labkit.workspace import Workspace


def _number(text: str):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _columns(rows: list[dict], target: str | None) -> dict[str, list]:
    names = [k for k in (rows[0] if rows else {}) if k != target]
    return {name: [row.get(name) for row in rows] for name in names}


def load(dataset: dict, workspace: Workspace, bigquery) -> dict[str, list]:
    """{feature: values} from a TrainingDataset; raises a Vertex-shaped error if unreadable."""
    target = dataset.get("targetField") or None
    if dataset.get("bigquerySource"):
        return _columns(_bigquery(bigquery, dataset["bigquerySource"].get("inputUri", "")),
                        target)
    if dataset.get("gcsSource"):
        fmt = (dataset.get("dataFormat") or "csv").lower()
        rows: list[dict] = []
        for uri in dataset["gcsSource"].get("uris") or []:
            rows.extend(_gcs(uri, fmt, workspace))
        return _columns(rows, target)
    if dataset.get("dataset"):
        raise errors.gcp_only("Skew detection against a managed Vertex AI dataset")
    raise errors.invalid("Skew detection needs training_dataset with a bigquery_source or a "
                         "gcs_source.")


def _bigquery(bigquery, uri: str) -> list[dict]:
    from labkit.vertex.bq import read_rows

    parts = uri.removeprefix("bq://").split(".")
    if not uri.startswith("bq://") or len(parts) != 3:
        raise errors.invalid(f"Training data {uri!r} must look like bq://project.dataset.table.")
    rows = read_rows(bigquery, *parts)
    return [{k: (float(v) if hasattr(v, "as_tuple") else v) for k, v in r.items()}
            for r in rows]


def _gcs(uri: str, fmt: str, workspace: Workspace) -> list[dict]:
    if fmt in ("tf-record", "tfrecord"):
        raise errors.gcp_only("Skew detection on TFRecord training data")
    try:
        text = local_path(uri, workspace).read_text()
    except (FileNotFoundError, ValueError):
        raise errors.invalid(f"Training data {uri} is not found.") from None
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if fmt != "csv":
        raise errors.invalid(f"Unsupported training data format {fmt!r}: use csv or jsonl.")
    return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(text.splitlines())]
