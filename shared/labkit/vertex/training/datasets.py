"""Managed datasets for custom training: the split files and AIP_*_DATA_URI variables.

When a custom TrainingPipeline names a tabular dataset (inputDataConfig.datasetId), Vertex
splits its rows and exports them before training: with gcsDestination, CSV files under
<outputUriPrefix>/dataset-<id>-tables-<timestamp>/ (training-*, validation-*, test-*), and
sets AIP_DATA_FORMAT=csv and AIP_TRAINING_DATA_URI, AIP_VALIDATION_DATA_URI,
AIP_TEST_DATA_URI to their wildcard URIs. Splits: fractionSplit (default 0.8 / 0.1 / 0.1,
random) and predefinedSplit (a column of training / validation / test), with the AutoML engine's
own split functions. Exporting to BigQuery (bigqueryDestination) runs with LAB_BACKEND=gcp.
"""

from __future__ import annotations

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
    if config.get("bigqueryDestination"):
        raise errors.gcp_only("Exporting a managed dataset to BigQuery (bigquery_destination)")
    prefix = ((config.get("gcsDestination") or {}).get("outputUriPrefix") or "").rstrip("/")
    if not prefix.startswith("gs://"):
        raise errors.invalid("input_data_config.gcs_destination.output_uri_prefix must be a "
                             "gs:// URI.")
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
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    folder = f"{prefix}/dataset-{dataset_id}-tables-{stamp}"
    env = {"AIP_DATA_FORMAT": "csv"}
    for role, name, variable in SPLITS:
        path = local_path(f"{folder}/{name}-00000-of-00001.csv", store.workspace)
        frame[roles == role].to_csv(path, index=False)
        env[variable] = f"{folder}/{name}-*"
    return env
