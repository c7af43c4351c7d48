"""Extract jobs: a table written to Cloud Storage (the local Cloud Storage's files) as CSV,
newline-delimited JSON or Parquet, with DuckDB's COPY; a model (sourceModel) exported as
EXPORT MODEL does (labkit.bigquery.ml.export)."""

from __future__ import annotations

import secrets

from labkit.bigquery.errors import BigQueryError, invalid, not_found
from labkit.bigquery.warehouse import Warehouse
from labkit.services.files import move_atomic

_FORMATS = {"CSV": "csv", "NEWLINE_DELIMITED_JSON": "json", "PARQUET": "parquet",
            "AVRO": "avro"}


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def run_extract(wh: Warehouse, extract: dict, workspace) -> dict:
    """Runs configuration.extract; returns statistics.extract."""
    source = extract.get("sourceTable") or {}
    project, dataset, table = source.get("projectId"), source.get("datasetId"), \
        source.get("tableId")
    if not (project and dataset and table):
        raise invalid("Extract configuration must specify sourceTable")
    if not wh.dataset_exists(project, dataset) or wh.table_kind(project, dataset, table) is None:
        raise not_found("Table", f"{project}:{dataset}.{table}")
    fmt = (extract.get("destinationFormat") or "CSV").upper()
    if fmt not in _FORMATS:
        raise BigQueryError(f"The destination format {fmt} is not supported by the local "
                            "BigQuery (use CSV, NEWLINE_DELIMITED_JSON, PARQUET or AVRO). It "
                            "runs with LAB_BACKEND=gcp.", "invalid")
    if fmt == "AVRO" and extract.get("useAvroLogicalTypes") is not True:
        # Avro's raw types for DATE, TIME and TIMESTAMP are not documented well enough to
        # write them as BigQuery does; Beam's export sets useAvroLogicalTypes
        raise BigQueryError("AVRO extracts without useAvroLogicalTypes=true are not "
                            "supported by the local BigQuery. It runs with LAB_BACKEND=gcp.",
                            "invalid")
    uris = extract.get("destinationUris") or []
    if len(uris) != 1 or not uris[0].startswith("gs://"):
        raise invalid("The local BigQuery extracts to exactly one gs:// destination URI")
    from labkit.storage import local_path

    uri = uris[0].replace("*", "000000000000")  # BigQuery numbers the shards from zero
    path = local_path(uri, workspace)
    options = [f"FORMAT {_FORMATS[fmt]}"]
    if fmt == "CSV":
        options.append(f"HEADER {'false' if extract.get('printHeader') is False else 'true'}")
        options.append(f"DELIMITER {_sql_str(extract.get('fieldDelimiter') or ',')}")
    if (extract.get("compression") or "NONE").upper() == "GZIP" and fmt != "PARQUET":
        options.append("COMPRESSION gzip")
    # DuckDB writes only into the service's scratch folder; the file then moves into the
    # bucket in one step, so readers never see a half-written object
    tmp = wh.scratch_dirs[-1] / f"extract_{secrets.token_hex(8)}.{_FORMATS[fmt]}"
    from labkit.bigquery.geography import as_text_select

    columns, types = wh.columns(project, dataset, table)
    select = as_text_select(columns, types) if columns else "*"  # GEOGRAPHY as its WKT
    try:
        if fmt == "AVRO":
            from labkit.bigquery import arrow_rows, avro
            from labkit.bigquery import schema as bqschema

            rows = wh.cursor().sql(f"SELECT {select} FROM {wh.ref(project, dataset, table)}")
            avro.write(arrow_rows.to_arrow(rows)[2], bqschema.fields(columns, types), tmp,
                       (extract.get("compression") or "NONE").upper())
        else:
            wh.cursor().execute(f"COPY (SELECT {select} FROM {wh.ref(project, dataset, table)}) "
                                f"TO "
                                f"{_sql_str(str(tmp))} ({', '.join(options)})").fetchall()
        move_atomic(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"destinationUriFileCounts": ["1"], "inputBytes": str(path.stat().st_size)}


def run_model_extract(ml, extract: dict) -> dict:
    """configuration.extract with sourceModel: destinationFormat ML_TF_SAVED_MODEL or
    ML_XGBOOST_BOOSTER (default: the model type's own), one gs:// folder, and
    modelExtractOptions.trialId (REST reference, JobConfigurationExtract)."""
    from labkit.bigquery.ml import MLError
    from labkit.bigquery.ml.statements import ModelRef

    source = extract.get("sourceModel") or {}
    parts = [source.get(k) for k in ("projectId", "datasetId", "modelId")]
    if not all(isinstance(p, str) and p for p in parts):
        raise invalid("sourceModel must name projectId, datasetId and modelId")
    uris = extract.get("destinationUris") or []
    if len(uris) != 1 or not isinstance(uris[0], str):
        raise invalid("A model extract takes exactly one destination URI")
    trial = (extract.get("modelExtractOptions") or {}).get("trialId")
    try:
        trial = int(trial) if trial is not None else None
    except (TypeError, ValueError):
        raise invalid(f"Invalid modelExtractOptions.trialId: {trial!r}") from None
    try:
        ml.export(ModelRef(*parts), uris[0], extract.get("destinationFormat"), trial)
    except MLError as exc:
        raise BigQueryError(exc.message, exc.reason if exc.reason != "invalidQuery"
                            else "invalid") from None
    return {"destinationUriFileCounts": ["1"]}
