"""Picosecond TIMESTAMPs: TIMESTAMP(12) in SQL, `timestampPrecision: 12` in a schema.

DuckDB's TIMESTAMPTZ keeps microseconds, so such a column is a marked STRUCT
(schema.marked_duck) holding the UTC instant as fixed-width text,
"YYYY-MM-DDTHH:MM:SS.FFFFFFFFFFFFZ": text of one width sorts and compares as the instants
do (years 0001 to 9999), and it is what BigQuery sends for it with
formatOptions.timestampOutputFormat ISO8601_STRING; the other formats (INT64, FLOAT64, and
the Read API's default) truncate it to microseconds, as BigQuery documents.
https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#TableFieldSchema.FIELDS.timestamp_precision
https://cloud.google.com/bigquery/docs/reference/rest/v2/DataFormatOptions
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import duckdb

from labkit.bigquery import schema

KIND = "TIMESTAMP_PICOS"
DUCK = schema.marked_duck(KIND, "VARCHAR")
FIELD = schema.marked_field(KIND)
ISO = schema.ISO  # the formatOptions value that sends the full text
_UDF = "bq_timestamp_picos"

# BigQuery's canonical TIMESTAMP text, to 12 fractional digits, with an optional zone:
# Z, +HH[:MM], UTC or a tz database name.
# https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#timestamp_type
_TEXT = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?)?"
    r"\s*(Z|z|[+-]\d{1,2}(?::?\d{2})?|UTC|[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+)?\s*$")
_STORED_TEXT = re.compile(r"^\{'" + re.escape(FIELD) + r"': '?([^']*)'?\}$")  # a marker as text


def _zone(text: str | None) -> dt.tzinfo:
    if text in (None, "Z", "z", "UTC"):
        return dt.UTC
    if text[0] in "+-":
        digits = text[1:].replace(":", "")
        hours, minutes = int(digits[:-2] if len(digits) > 2 else digits), \
            int(digits[-2:]) if len(digits) > 2 else 0
        offset = dt.timedelta(hours=hours, minutes=minutes)
        return dt.timezone(-offset if text[0] == "-" else offset)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Invalid time zone: {text}") from None


def canonical(value: str) -> str:
    """The stored text of a TIMESTAMP's text at up to picosecond precision; ValueError
    naming a value that is none."""
    stored = _STORED_TEXT.match(value)
    if stored:
        return stored.group(1)
    match = _TEXT.match(value)
    if not match:
        raise ValueError(f"Invalid timestamp: '{value}'")
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
    try:
        local = dt.datetime(year, month, day, hour, minute, second,
                            tzinfo=_zone(match.group(8)))
        utc = local.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"Invalid timestamp: '{value}'") from None
    fraction = (match.group(7) or "").ljust(12, "0")
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{fraction}Z"


def register(db: duckdb.DuckDBPyConnection) -> None:
    db.create_function(_UDF, canonical, ["VARCHAR"], "VARCHAR")


def from_text(expr: str) -> str:
    """SQL turning text (or a TIMESTAMP, or a stored value, cast to text) into the stored
    picosecond TIMESTAMP; text that is none is an error naming it."""
    return (f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE struct_pack(\"{FIELD}\" := "
            f"{_UDF}(CAST({expr} AS VARCHAR))) END")


def _text(expr: str) -> str:
    return f"struct_extract({expr}, '{FIELD}')"


def micros_sql(expr: str) -> str:
    """SQL: the value truncated to a microsecond TIMESTAMPTZ."""
    return f"CAST(left({_text(expr)}, 26) || 'Z' AS TIMESTAMPTZ)"


def cell_sql(expr: str, timestamps) -> str:
    """SQL giving the JSON text of a REST cell ("v"), never NULL: the text for ISO8601_STRING,
    else truncated to microseconds as integer or float seconds (`timestamps` True/False)."""
    if timestamps == ISO:
        text = _text(expr)
    elif timestamps:
        text = f"epoch_us({micros_sql(expr)})::VARCHAR"
    else:
        text = f"(epoch_us({micros_sql(expr)}) / 1e6)::VARCHAR"
    return f"coalesce('\"' || {text} || '\"', 'null')"


def cell_py(text: str, timestamps) -> str:
    """The same cell from the stored text, in Python."""
    if timestamps == ISO:
        return text
    instant = dt.datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=dt.UTC)
    micros = (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return str(micros) if timestamps else str(micros / 1e6)
