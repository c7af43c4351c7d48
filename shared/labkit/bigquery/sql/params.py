"""Query parameters (REST QueryParameter resources) as typed SQL literals."""

from __future__ import annotations

import json

import sqlglot
from sqlglot import exp

from labkit.bigquery.errors import BigQueryError, invalid_query, unsupported
from labkit.bigquery.schema import duck_type


def _type_sql(ptype: dict) -> str:
    kind = (ptype.get("type") or "STRING").upper()
    if kind == "ARRAY":
        return _type_sql(ptype.get("arrayType") or {}) + "[]"
    if kind == "STRUCT":
        members = ", ".join(f'"{m.get("name") or f"_field_{i}"}" {_type_sql(m.get("type") or {})}'
                            for i, m in enumerate(ptype.get("structTypes") or [], 1))
        return f"STRUCT({members})"
    if kind in ("BIGNUMERIC", "BIGDECIMAL"):  # as an expression's type (_bignumeric_sql)
        return "DECIMAL(38,18)"
    return duck_type({"name": "param", "type": kind,
                      "rangeElementType": ptype.get("rangeElementType")})


def _literal_sql(ptype: dict, pvalue: dict | None, nested: bool = False) -> str:
    kind = (ptype.get("type") or "STRING").upper()
    type_sql = _type_sql(ptype)
    if pvalue is None:
        return f"CAST(NULL AS {type_sql})"
    if kind == "ARRAY":
        values = pvalue.get("arrayValues")
        if values is None:
            return f"CAST(NULL AS {type_sql})"
        items = ", ".join(_literal_sql(ptype.get("arrayType") or {}, v, True) for v in values)
        return f"CAST([{items}] AS {type_sql})"
    if kind == "STRUCT":
        values = pvalue.get("structValues") or {}
        members = ", ".join(
            f"'{m.get('name')}': "
            f"{_literal_sql(m.get('type') or {}, values.get(m.get('name')), True)}"
            for m in ptype.get("structTypes") or [])
        return f"CAST({{{members}}} AS {type_sql})"
    if kind == "RANGE":
        bounds = pvalue.get("rangeValue")
        if bounds is None:
            return f"CAST(NULL AS {type_sql})"
        element = ptype.get("rangeElementType") or {}
        start, end = (_literal_sql(element, bounds.get(b)) for b in ("start", "end"))
        return f"CAST({{'start': {start}, 'end': {end}}} AS {type_sql})"
    if "value" not in pvalue or pvalue["value"] is None:
        return f"CAST(NULL AS {type_sql})"
    text = str(pvalue["value"]).replace("'", "''")
    if kind == "BYTES":
        return f"from_base64('{text}')"
    if kind in ("BIGNUMERIC", "BIGDECIMAL"):
        return _bignumeric_sql(text, type_sql, nested)
    if kind == "GEOGRAPHY":  # WKT, read and normalised as ST_GEOGFROMTEXT reads it
        from labkit.bigquery.geography import from_text_sql

        return from_text_sql(f"'{text}'", "wkt")
    if kind == "TIMESTAMP":  # the client sends "2020-01-01 00:00:00+00:00" or "...Z"
        return f"CAST('{text}' AS TIMESTAMPTZ)"
    return f"CAST('{text}' AS {type_sql})"


def _bignumeric_sql(text: str, type_sql: str, nested: bool) -> str:
    """A BIGNUMERIC value: DECIMAL(38, 18) when it is exact there (so arithmetic on it
    works), else the full-precision BIGNUMERIC (76 digits, labkit.bigquery.bignumeric)."""
    from labkit.bigquery import bignumeric

    try:
        if bignumeric.fits_decimal(text):
            return f"CAST('{text}' AS {type_sql})"
        if nested:
            raise unsupported(f"A BIGNUMERIC value beyond 20 integer or 18 fractional digits "
                              f"({text}) inside an ARRAY or STRUCT query parameter")
        return bignumeric.literal(text)
    except (ValueError, ArithmeticError) as exc:
        raise invalid_query(f"Invalid BIGNUMERIC query parameter value: {text}"
                            + (f" ({exc})" if "range" in str(exc) else "")) from None


def _value_text(value):
    """A parameter value as the REST API writes it: a string (JSON true/false for BOOL)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if value is None or isinstance(value, str) else json.dumps(value)


def _values_as_strings(pvalue):
    if not isinstance(pvalue, dict):
        return pvalue
    out = dict(pvalue)
    if "value" in out:
        out["value"] = _value_text(out["value"])
    if isinstance(out.get("arrayValues"), list):
        out["arrayValues"] = [_values_as_strings(v) for v in out["arrayValues"]]
    if isinstance(out.get("structValues"), dict):
        out["structValues"] = {k: _values_as_strings(v) for k, v in out["structValues"].items()}
    if isinstance(out.get("rangeValue"), dict):
        out["rangeValue"] = {k: _values_as_strings(v) for k, v in out["rangeValue"].items()}
    return out


def as_strings(parameters: list) -> list:
    """Query parameters with every value a string, as BigQuery stores and echoes them (its
    QueryParameterValue.value is a string; a client may send a JSON number)."""
    return [{**p, "parameterValue": _values_as_strings(p["parameterValue"])}
            if isinstance(p, dict) and "parameterValue" in p else p for p in parameters]


def bind(parameters: list[dict] | None) -> tuple[dict[str, exp.Expression], list[exp.Expression]]:
    """Named ones by name, positional ones in order."""
    named, positional = {}, []
    for param in parameters or []:
        try:
            sql = _literal_sql(param.get("parameterType") or {}, param.get("parameterValue"))
            value = sqlglot.parse_one(sql, read="duckdb")
        except BigQueryError:
            raise
        except Exception as exc:  # a malformed parameter is the caller's 400, not ours
            raise invalid_query(f"Invalid query parameter {param.get('name') or ''}: {exc}") \
                from exc
        if param.get("name"):
            named[param["name"]] = value
        else:
            positional.append(value)
    return named, positional
