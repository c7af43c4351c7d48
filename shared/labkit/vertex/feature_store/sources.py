"""What the Feature Store reads from BigQuery: table schemas (checked when a feature group,
feature or feature view names columns) and the latest feature values per entity (a sync).

Through the real BigQuery client the wiring provides (services.bigquery), so a view, a table
in another dataset or one another notebook just loaded reads as a learner's code sees it.

Google's rules followed here:
- FeatureGroup.BigQuery (google/cloud/aiplatform/v1/feature_group.proto): the table or view
  "must have at least one entity ID column and a column named feature_timestamp" (or the
  time_series.timestamp_column) of type TIMESTAMP; `dense` unset collapses all rows of an
  entity into one with the latest non-null value of each feature, `dense` set takes the
  latest row as it is, nulls included.
- Entity ID columns hold STRING or INT64 values
  (https://cloud.google.com/vertex-ai/docs/featurestore/latest/prepare-data-source).
- A feature view straight over a BigQuery source serves each row as it is: "every row in
  the data source must contain a unique ID"
  (https://cloud.google.com/vertex-ai/docs/featurestore/latest/serve-feature-values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labkit.vertex import errors
from labkit.vertex.bq import check_location

URI = re.compile(r"bq://(?P<project>[A-Za-z0-9_.:-]+?)\.(?P<dataset>\w+)\.(?P<table>[\w$-]+)")
ENTITY_TYPES = ("STRING", "INT64", "INTEGER")
TIMESTAMP_TYPES = ("TIMESTAMP",)


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def parse_uri(uri: str | None, field: str) -> TableRef:
    m = URI.fullmatch(uri or "")
    if not m:
        raise errors.invalid(f"{field} {uri!r} is not a BigQuery URI: use "
                             f"bq://project.dataset.table.")
    return TableRef(m["project"], m["dataset"], m["table"])


def schema(bigquery, ref: TableRef, region: str, what: str) -> dict[str, str]:
    """{column: BigQuery type} of a table or view that Vertex AI in `region` may read (its
    dataset in the region or the multi-region containing it, as for all Vertex AI BigQuery
    sources: labkit.vertex.bq.check_location); a 400 if it does not exist."""
    from google.api_core import exceptions

    check_location(bigquery, ref.project, ref.dataset, region, what)
    try:
        table = bigquery.client().get_table(str(ref))
    except exceptions.NotFound:
        raise errors.invalid(f"BigQuery table or view {ref} is not found.") from None
    except exceptions.GoogleAPICallError as exc:
        raise errors.invalid(f"Reading BigQuery table {ref}: {exc.message}") from None
    return {f.name: ("ARRAY<" + f.field_type + ">" if f.mode == "REPEATED" else f.field_type)
            for f in table.schema}


def check_columns(columns: dict[str, str], ref: TableRef, entity_columns: list[str],
                  timestamp_column: str | None, features: list[str] = ()) -> None:
    """Refuses columns the source lacks, or of a type the Feature Store cannot use."""
    for column in entity_columns:
        if column not in columns:
            raise errors.invalid(f"Entity ID column {column} is not in BigQuery source {ref} "
                                 f"(columns: {', '.join(columns)}).")
        if columns[column] not in ENTITY_TYPES:
            raise errors.invalid(f"Entity ID column {column} of {ref} is {columns[column]}: "
                                 f"entity IDs must be STRING or INT64.")
    if timestamp_column is not None:
        if timestamp_column not in columns:
            raise errors.invalid(f"BigQuery source {ref} has no {timestamp_column} column: a "
                                 f"time-series feature source needs a TIMESTAMP column named "
                                 f"{timestamp_column}.")
        if columns[timestamp_column] not in TIMESTAMP_TYPES:
            raise errors.invalid(f"Column {timestamp_column} of {ref} is "
                                 f"{columns[timestamp_column]}, not TIMESTAMP.")
    for column in features:
        if column not in columns:
            raise errors.invalid(f"Column {column} is not in BigQuery source {ref}.")


def read_rows(bigquery, ref: TableRef) -> list[dict]:
    from google.api_core import exceptions

    try:
        return [dict(row) for row in bigquery.client().query(
            f"SELECT * FROM `{ref.project}.{ref.dataset}.{ref.table}`").result()]
    except exceptions.NotFound:
        raise errors.invalid(f"BigQuery table or view {ref} is not found.") from None
    except exceptions.GoogleAPICallError as exc:
        raise errors.invalid(f"Reading BigQuery source {ref}: {exc.message}") from None


def key_of(row: dict, entity_columns: list[str]) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in entity_columns)


def unique_rows(rows: list[dict], entity_columns: list[str], ref: TableRef) -> dict:
    """{entity key: row} of a feature view's own BigQuery source: one row per entity."""
    out: dict[tuple, dict] = {}
    for row in rows:
        if any(row[c] is None for c in entity_columns):
            continue  # a row without an ID cannot be served
        key = key_of(row, entity_columns)
        if key in out:
            raise errors.invalid(f"BigQuery source {ref} has more than one row for entity ID "
                                 f"{'/'.join(key)}: a feature view over a BigQuery source "
                                 f"needs one row per entity (register the table as a feature "
                                 f"group to serve the latest row of a time series).")
        out[key] = {k: v for k, v in row.items() if k not in entity_columns}
    return out


def latest_values(rows: list[dict], entity_columns: list[str], timestamp_column: str | None,
                  features: dict[str, str], dense: bool) -> dict:
    """{entity key: {feature: value, timestamp_column: latest time}} of a feature group's
    rows; `features` maps the served name to its column (Feature.version_column_name)."""
    def when(row):
        return row[timestamp_column] if timestamp_column else 0

    ordered = sorted((r for r in rows if all(r[c] is not None for c in entity_columns)
                      and (timestamp_column is None or r[timestamp_column] is not None)),
                     key=when)
    out: dict[tuple, dict] = {}
    for row in ordered:  # oldest first: later rows overwrite
        key = key_of(row, entity_columns)
        values = out.setdefault(key, {})
        for name, column in features.items():
            if dense or row[column] is not None or name not in values:
                values[name] = row[column]
        if timestamp_column:
            values[timestamp_column] = row[timestamp_column]
    return out
