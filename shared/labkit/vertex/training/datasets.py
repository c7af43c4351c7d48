"""Managed datasets for custom training: the exported splits and AIP_*_DATA_URI variables.

When a custom TrainingPipeline names a tabular dataset (inputDataConfig.datasetId), Vertex
splits its rows and exports them before training (InputDataConfig in
google/cloud/aiplatform/v1/training_pipeline.proto, and the SDK's CustomTrainingJob.run):
- gcsDestination: CSV files under <outputUriPrefix>/dataset-<id>-tables-<timestamp>/
  (training-*, validation-*, test-*; timestamp YYYY-MM-DDThh:mm:ss.sssZ), AIP_DATA_FORMAT=csv
  and AIP_TRAINING_DATA_URI, AIP_VALIDATION_DATA_URI, AIP_TEST_DATA_URI the wildcard URIs
  ".../training-*.csv".
- bigqueryDestination (bq://project; only for a dataset with a BigQuery source): a new
  BigQuery dataset dataset_<id>_tables_<YYYY_MM_DDThh_mm_ss_sssZ> in that project (in the
  source table's location) with the
  tables training, validation and test, AIP_DATA_FORMAT=bigquery and the variables
  bq://project.dataset_....training (Google's trainers strip the bq:// prefix).
Splits: fractionSplit (default 0.8 / 0.1 / 0.1, random) and predefinedSplit (a column of
TRAIN / VALIDATE / TEST), with the AutoML engine's own split functions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from labkit.storage import local_path
from labkit.vertex import errors
from labkit.vertex.store import ResourceStore

SPLITS = (("TRAIN", "training", "AIP_TRAINING_DATA_URI"),
          ("VALIDATE", "validation", "AIP_VALIDATION_DATA_URI"),
          ("TEST", "test", "AIP_TEST_DATA_URI"))


def export(store: ResourceStore, parent: str, config: dict, bigquery) -> dict[str, str]:
    """Writes the dataset's split CSV files; returns the environment the trainer gets."""
    try:
        from labkit.automl.splits import predefined_roles, random_roles
        from labkit.vertex.automl.datasets import read_frame
    except ImportError:
        raise errors.gcp_only("Custom training on a managed dataset") from None
    dataset_id = str(config.get("datasetId") or "")
    dataset = store.get("datasets", dataset_id) if dataset_id.isdigit() else None
    if dataset is None:
        raise errors.not_found("Dataset", f"{parent}/datasets/{dataset_id}")
    bq_destination = (config.get("bigqueryDestination") or {}).get("outputUri")
    if config.get("bigqueryDestination") is not None:
        project = _bigquery_project(bq_destination, dataset)
    else:
        prefix = ((config.get("gcsDestination") or {}).get("outputUriPrefix") or "").rstrip("/")
        if not prefix.startswith("gs://"):
            raise errors.invalid("input_data_config.gcs_destination.output_uri_prefix must be "
                                 "a gs:// URI.")
    unsupported = [k for k in ("filterSplit", "timestampSplit", "stratifiedSplit")
                   if config.get(k)]
    if unsupported:
        raise errors.gcp_only(f"Custom training dataset split {unsupported[0]}")
    frame = read_frame(dataset, store.workspace, bigquery)
    if config.get("predefinedSplit"):
        column = config["predefinedSplit"].get("key")
        if column not in frame:
            raise errors.invalid(f"predefined_split column {column!r} is not in the dataset.")
        roles = predefined_roles(frame[column])
    else:
        split = config.get("fractionSplit") or {}
        fractions = tuple(float(split.get(k) or 0) for k in
                          ("trainingFraction", "validationFraction", "testFraction"))
        if not any(fractions):
            fractions = (0.8, 0.1, 0.1)
        if abs(sum(fractions) - 1) > 1e-6:
            raise errors.invalid("The split fractions must add up to 1.")
        roles = random_roles(len(frame), fractions, seed=0)
    moment = datetime.now(UTC)
    millis = f"{moment.microsecond // 1000:03d}"
    if config.get("bigqueryDestination") is not None:
        name = f"dataset_{dataset_id}_tables_{moment:%Y_%m_%dT%H_%M_%S}_{millis}Z"
        return _to_bigquery(bigquery, project, name, frame, roles,
                            _source_location(bigquery, dataset))
    folder = f"{prefix}/dataset-{dataset_id}-tables-{moment:%Y-%m-%dT%H:%M:%S}.{millis}Z"
    env = {"AIP_DATA_FORMAT": "csv"}
    for role, name, variable in SPLITS:
        path = local_path(f"{folder}/{name}-00000-of-00001.csv", store.workspace)
        frame[roles == role].to_csv(path, index=False)
        env[variable] = f"{folder}/{name}-*.csv"
    return env


def _source_location(bigquery, dataset: dict) -> str | None:
    """The location of the managed dataset's BigQuery table (its dataset's)."""
    from google.api_core import exceptions

    uri = dataset["metadata"]["inputConfig"]["bigquerySource"]["uri"]
    try:
        return bigquery.client().get_table(uri.removeprefix("bq://")).location
    except exceptions.GoogleAPICallError:
        return None


def _bigquery_project(uri: str | None, dataset: dict) -> str:
    """The project of bigquery_destination, checked as Vertex checks it."""
    source = ((dataset.get("metadata") or {}).get("inputConfig") or {}).get("bigquerySource")
    if not source:
        raise errors.invalid("input_data_config.bigquery_destination is only applicable to a "
                             "tabular dataset with a BigQuery source; this dataset reads Cloud "
                             "Storage files: use gcs_destination (base_output_dir).")
    m = re.fullmatch(r"bq://([a-z][a-z0-9.:-]{4,61}[a-z0-9])", uri or "")
    if not m:
        raise errors.invalid(f"input_data_config.bigquery_destination.output_uri {uri!r} must "
                             f"be a BigQuery project, bq://<project>: Vertex AI creates the "
                             f"dataset and its training, validation and test tables.")
    return m[1]


def _to_bigquery(bigquery, project: str, name: str, frame, roles,
                 location: str | None) -> dict[str, str]:
    from google.api_core import exceptions
    from google.cloud import bigquery as bq

    client = bigquery.client()
    try:
        target = bq.Dataset(f"{project}.{name}")
        target.location = location  # where the dataset's source table is
        client.create_dataset(target)
        for role, table, _ in SPLITS:
            part = frame[roles == role].reset_index(drop=True)
            client.load_table_from_dataframe(part, f"{project}.{name}.{table}").result()
    except exceptions.GoogleAPICallError as exc:
        # nothing half-written: a failed export leaves no partial dataset behind
        client.delete_dataset(f"{project}.{name}", delete_contents=True, not_found_ok=True)
        raise errors.invalid(f"Exporting the dataset to BigQuery {project}.{name}: "
                             f"{exc.message}") from None
    env = {"AIP_DATA_FORMAT": "bigquery"}
    for _, table, variable in SPLITS:
        env[variable] = f"bq://{project}.{name}.{table}"
    return env
