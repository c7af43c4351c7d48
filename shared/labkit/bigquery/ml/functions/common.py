"""Helpers shared by the ML.* functions."""

from __future__ import annotations

import pyarrow as pa

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import MLCall

FLOAT = pa.float64()
INT = pa.int64()


def base_sql(call: MLCall) -> str | None:
    if call.table:
        return f"SELECT * FROM {call.table}"
    return call.query


def require(model: TrainedModel, call: MLCall, allowed: set[str], what: str) -> None:
    if model.model_type not in allowed:
        raise MLError(f"ML.{call.fn} is not supported for {model.model_type.upper()} models; "
                      f"it applies to {what}")


def require_input(call: MLCall) -> str:
    sql = base_sql(call)
    if sql is None:
        raise MLError(f"ML.{call.fn} needs input data: TABLE name or (query)")
    return sql


def with_inputs(columns: dict[str, pa.Array], passthrough: pa.Table) -> pa.Table:
    names = list(columns)
    arrays = list(columns.values())
    for name in passthrough.column_names:
        if name not in columns:
            names.append(name)
            arrays.append(passthrough.column(name))
    return pa.Table.from_arrays(arrays, names=names)


def table(rows: list[dict], schema: list[tuple[str, pa.DataType]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema(schema))


def label_type(model: TrainedModel) -> pa.DataType:
    t = model.label_type
    return pa.string() if t is None or pa.types.is_large_string(t) else t
