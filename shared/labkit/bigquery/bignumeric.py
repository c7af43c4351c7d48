"""BIGNUMERIC at its full precision: 76.76 digits, 38 of them after the point.

DuckDB's DECIMAL stops at 38 digits, so a BIGNUMERIC column (one without a precision of
38 or less) is a marked STRUCT (schema.marked_duck) holding the value times 10^38 as an
exact BIGNUM: it stores, compares, sorts, groups and joins exactly. Arrow has no BIGNUM
(DuckDB hands it out as opaque bytes), so wherever rows leave DuckDB as Arrow the BIGNUM
becomes its decimal text (`TEXT`, arrow_rows.py), which the REST cells, the Read API
(decimal256) and Avro read. Expressions such as CAST(x AS BIGNUMERIC) stay DECIMAL(38, 18), whose
arithmetic DuckDB does.

Range and rounding, as BigQuery documents them: -5.7896044618658097711785492504343953926634
992332820282019728792003956564819968E+38 to 5.7896044618658097711785492504343953926634992332
820282019728792003956564819967E+38; extra fractional digits round half away from zero.
https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#decimal_types
"""

from __future__ import annotations

import decimal
import re

import duckdb

from labkit.bigquery import schema

KIND = "BIGNUMERIC"
SCALE = 38
DUCK = schema.marked_duck(KIND, "BIGNUM")  # as stored
FIELD = schema.marked_field(KIND)
# As it leaves DuckDB (Arrow): its decimal text, in a field of its own name, so that text
# cast from either form tells which it is ("12" is 12 here, 12 / 10^38 stored).
TEXT = schema.marked_duck(KIND + "_TEXT", "VARCHAR")
TEXT_FIELD = schema.marked_field(KIND + "_TEXT")
_MAX = 2 ** 255 - 1  # the largest value times 10^38
_MIN = -(2 ** 255)
_CONTEXT = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP,
                           traps=[decimal.InvalidOperation])
_UDF = "bq_bignumeric_scaled"


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def is_full(f: dict) -> bool:
    """Whether a TableFieldSchema is a BIGNUMERIC at full precision (no precision of 38 or
    less to make it a DECIMAL)."""
    kind = (f.get("type") or "").upper()
    return kind in ("BIGNUMERIC", "BIGDECIMAL") and not f.get("precision")


def scaled(value) -> int:
    """The value times 10^38, rounded half away from zero; ValueError naming it when it is
    not a number or out of BIGNUMERIC's range."""
    text = str(value).strip()
    try:
        number = _CONTEXT.create_decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"Invalid BIGNUMERIC value: {text}") from None
    if not number.is_finite():
        raise ValueError(f"Invalid BIGNUMERIC value: {text}")
    result = int(number.scaleb(SCALE, _CONTEXT).to_integral_value(decimal.ROUND_HALF_UP))
    if not _MIN <= result <= _MAX:
        raise ValueError(f"Invalid BIGNUMERIC value: {text} is out of the BIGNUMERIC range")
    return result


def text(scaled_value: int) -> str:
    """Decimal text of a value held times 10^38, as BigQuery prints it (no trailing zeros,
    no exponent)."""
    sign = "-" if scaled_value < 0 else ""
    whole, fraction = divmod(abs(scaled_value), 10 ** SCALE)
    fraction_text = str(fraction).rjust(SCALE, "0").rstrip("0")
    return f"{sign}{whole}" + (f".{fraction_text}" if fraction_text else "")


def fits_decimal(value) -> bool:
    """Whether a value is exact as DuckDB's DECIMAL(38, 18) (what expressions use)."""
    number = _CONTEXT.create_decimal(str(value).strip())
    return number.is_finite() and abs(number) < 10 ** 20 and \
        number == number.quantize(decimal.Decimal(1).scaleb(-18), context=_CONTEXT)


_STORED_TEXT = re.compile(r"^\{'" + re.escape(FIELD) + r"': '?(-?\d+)'?\}$")
_TEXT_TEXT = re.compile(r"^\{'" + re.escape(TEXT_FIELD) + r"': '?([^']*)'?\}$")


def _scaled_text(value: str) -> str:
    stored = _STORED_TEXT.match(value)  # a stored BIGNUMERIC cast to text: already scaled
    if stored:
        return stored.group(1)
    text = _TEXT_TEXT.match(value)  # its TEXT form cast to text
    return str(scaled(text.group(1) if text else value))


def register(db: duckdb.DuckDBPyConnection) -> None:
    """The function from_text() calls: text -> the scaled integer's text."""
    db.create_function(_UDF, _scaled_text, ["VARCHAR"], "VARCHAR")


def from_text(expr: str) -> str:
    """SQL turning text (any number, or a stored BIGNUMERIC, cast to text) into the stored
    BIGNUMERIC; a value out of range or not a number is an error naming it."""
    return (f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE struct_pack(\"{FIELD}\" := "
            f"CAST({_UDF}(CAST({expr} AS VARCHAR)) AS BIGNUM)) END")


def literal(value) -> str:
    """SQL for one constant value (a query parameter)."""
    return f"struct_pack(\"{FIELD}\" := CAST('{scaled(value)}' AS BIGNUM))"


def stored_text_sql(expr: str) -> str:
    """SQL giving the decimal text of a stored BIGNUMERIC (NULL stays NULL)."""
    magnitude = f"ltrim(CAST(struct_extract({expr}, '{FIELD}') AS VARCHAR), '-')"
    # at least 39 digits, so the whole part is never empty (lpad would cut longer text)
    digits = f"(repeat('0', greatest(0, {SCALE + 1} - length({magnitude}))) || {magnitude})"
    whole = f"coalesce(nullif(ltrim(left({digits}, length({digits}) - {SCALE}), '0'), ''), '0')"
    fraction = f"rtrim(right({digits}, {SCALE}), '0')"
    sign = f"CASE WHEN starts_with(CAST(struct_extract({expr}, '{FIELD}') AS VARCHAR), '-') " \
           "THEN '-' ELSE '' END"
    return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE {sign} || {whole} || "
            f"CASE WHEN {fraction} = '' THEN '' ELSE '.' || {fraction} END END")


def text_sql(expr: str, t: duckdb.typing.DuckDBPyType) -> str:
    """SQL giving the decimal text of a BIGNUMERIC marker, stored (BIGNUM) or presented
    (VARCHAR)."""
    inner = t.children[0][1]
    if inner.id == "varchar":
        return f"struct_extract({expr}, '{TEXT_FIELD}')"
    return stored_text_sql(expr)
