"""BigQuery schemas <-> DuckDB types, and result cells in the REST f/v JSON shape.

The REST API sends every row as {"f": [{"v": ...}, ...]}: scalars as strings, RECORDs as
nested {"f": [...]}, REPEATED fields as lists of {"v": ...}. Building that JSON inside
DuckDB is ~20x faster than in Python (0.22 s vs 5 s for 100k rows), so cells() returns a
SQL expression rather than Python values.
"""

from __future__ import annotations

import duckdb

from labkit.bigquery.errors import invalid

_INTEGERS = {"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
             "uinteger", "ubigint", "uhugeint"}
_SCALARS = {
    "float": "FLOAT", "double": "FLOAT", "boolean": "BOOLEAN", "varchar": "STRING",
    "blob": "BYTES", "date": "DATE", "time": "TIME", "timestamp": "DATETIME",
    "timestamp_s": "DATETIME", "timestamp_ms": "DATETIME", "timestamp_ns": "DATETIME",
    "timestamp with time zone": "TIMESTAMP", "interval": "INTERVAL", "uuid": "STRING",
    "enum": "STRING", "bit": "STRING", "time with time zone": "TIME",
}

# BigQuery type names (standard and legacy spellings) -> DuckDB column types.
_TO_DUCK = {
    "INTEGER": "BIGINT", "INT64": "BIGINT", "FLOAT": "DOUBLE", "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38,9)", "DECIMAL": "DECIMAL(38,9)",
    "BIGNUMERIC": "DECIMAL(38,18)", "BIGDECIMAL": "DECIMAL(38,18)",
    "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN", "STRING": "VARCHAR", "BYTES": "BLOB",
    "DATE": "DATE", "DATETIME": "TIMESTAMP", "TIMESTAMP": "TIMESTAMPTZ", "TIME": "TIME",
    "JSON": "JSON", "INTERVAL": "INTERVAL",
}


# RANGE<DATE|DATETIME|TIMESTAMP> is a STRUCT("start", "end") here (NULL: unbounded); its
# text is "[start, end)" with UNBOUNDED for a missing bound, as BigQuery reads and prints it.
# https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#range_type
RANGE_ELEMENTS = {"DATE": "DATE", "DATETIME": "TIMESTAMP", "TIMESTAMP": "TIMESTAMPTZ"}
_RANGE_OF = {"date": "DATE", "timestamp": "DATETIME", "timestamp with time zone": "TIMESTAMP"}


# formatOptions.timestampOutputFormat ISO8601_STRING, as the `int64_timestamps` argument of
# the cell functions below (else True: integer microseconds, False: float seconds). Its text,
# "YYYY-MM-DDTHH:MM:SS.FFFFFFFFFFFFZ" (DataFormatOptions, REST reference), is what picosecond
# TIMESTAMPs send; microsecond ones go as integers as with INT64: the Python client asks for
# ISO8601_STRING for picoseconds and reads every other TIMESTAMP cell with int(), so that is
# what it meets (google/cloud/bigquery/_helpers.py, timestamp_to_py). The value is truthy.
ISO = "ISO8601_STRING"


def range_element(f: dict) -> str:
    """The BigQuery element type of a RANGE field (or query parameter type); a 400 if it
    has none BigQuery allows."""
    element = ((f.get("rangeElementType") or {}).get("type") or "").upper()
    if element not in RANGE_ELEMENTS:
        raise invalid(f"Field {f.get('name') or ''} is type RANGE: its rangeElementType must "
                      f"be DATE, DATETIME or TIMESTAMP, not {element or 'missing'}")
    return element


def _range_duck(element: str) -> str:
    t = RANGE_ELEMENTS[element]
    return f'STRUCT("start" {t}, "end" {t})'


def range_of(t: duckdb.typing.DuckDBPyType) -> str | None:
    """The element type when a DuckDB STRUCT is a RANGE's shape, else None."""
    if t.id != "struct":
        return None
    children = list(t.children)
    if [n for n, _ in children] != ["start", "end"] or children[0][1] != children[1][1]:
        return None
    return _RANGE_OF.get(children[0][1].id)


def range_from_text(expr: str, element: str) -> str:
    """SQL turning "[start, end)" text into a RANGE value; other text, or a start not
    before its end, is an error naming the value."""
    t = RANGE_ELEMENTS[element]
    pattern = r"^\[([^,]+), ([^,]+)\)$"

    def bound(n: int) -> str:
        text = f"trim(regexp_extract({expr}, '{pattern}', {n}))"
        return f"CAST(nullif(upper({text}), 'UNBOUNDED') AS {t})"

    start, end = bound(1), bound(2)
    return (f"CASE WHEN {expr} IS NULL THEN NULL "
            f"WHEN NOT regexp_matches({expr}, '{pattern}') "
            f"THEN error('Invalid RANGE value: ' || {expr}) "
            f"WHEN {start} >= {end} THEN error('Invalid RANGE value: the start must be before "
            f"the end: ' || {expr}) "
            f"ELSE struct_pack(\"start\" := {start}, \"end\" := {end}) END")


def datetime_text(expr: str) -> str:
    """SQL giving a DATETIME as the REST API writes it; the year has four digits (0001):
    strftime's %Y does not pad it."""
    return f"lpad(year({expr})::VARCHAR, 4, '0') || strftime({expr}, '-%m-%dT%H:%M:%S.%f')"


def _range_json(expr: str, element: str, int64_timestamps: bool) -> str:
    def bound(name: str) -> str:
        v = f"struct_extract({expr}, '{name}')"
        if element == "TIMESTAMP":
            text = f"epoch_us({v})::VARCHAR" if int64_timestamps else \
                f"(epoch_us({v}) / 1e6)::VARCHAR"
        elif element == "DATETIME":
            text = datetime_text(v)
        else:
            text = f"{v}::VARCHAR"
        return f"coalesce({text}, 'UNBOUNDED')"

    return f"'\"[' || {bound('start')} || ', ' || {bound('end')} || ')\"'"


# Types DuckDB has no column type for are a one-field STRUCT whose field is named "bq$<TYPE>":
# no BigQuery field name holds a "$", so no RECORD is ever taken for one. GEOGRAPHY holds its
# WKT text (VARCHAR); BIGNUMERIC at full precision (76 digits, scale 38, beyond DuckDB's
# 38-digit DECIMAL) holds the value times 10^38 as an exact BIGNUM.
_MARK = "bq$"


def marked_duck(kind: str, inner: str) -> str:
    """The DuckDB type holding a BigQuery `kind` in a marked STRUCT."""
    return f'STRUCT("{_MARK}{kind.lower()}" {inner})'


def marked(t: duckdb.typing.DuckDBPyType) -> str | None:
    """The BigQuery type a marked STRUCT holds (GEOGRAPHY, BIGNUMERIC), else None."""
    if t.id != "struct":
        return None
    children = list(t.children)
    if len(children) != 1 or not children[0][0].startswith(_MARK):
        return None
    return children[0][0][len(_MARK):].upper().removesuffix("_TEXT")  # bignumeric.TEXT


def marked_field(kind: str) -> str:
    """The name of a marked STRUCT's one field, for struct_extract and struct_pack."""
    return f"{_MARK}{kind.lower()}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_list(t: duckdb.typing.DuckDBPyType) -> bool:
    return t.id in ("list", "array", "map")


def _element(t: duckdb.typing.DuckDBPyType) -> duckdb.typing.DuckDBPyType:
    if t.id == "map":  # BigQuery has no MAP: it reads as REPEATED RECORD<key, value>
        return duckdb.struct_type(dict(t.children))
    return t.children[0][1]


def bq_type(t: duckdb.typing.DuckDBPyType) -> str:
    """The BigQuery (legacy, as the REST API spells it) type of a DuckDB type."""
    if t.id in _INTEGERS:
        return "INTEGER"
    if t.id == "decimal":
        width = dict(t.children)
        scale, whole = width["scale"], width["precision"] - width["scale"]
        # NUMERIC holds 29 digits before the point and 9 after; wider is BIGNUMERIC(P, S)
        return "BIGNUMERIC" if scale > 9 or whole > 29 else "NUMERIC"
    if t.id == "struct":
        kind = marked(t) or "RECORD"
        return "TIMESTAMP" if kind == "TIMESTAMP_PICOS" else kind
    if t.id == "varchar" and str(t) == "JSON":
        return "JSON"
    return _SCALARS.get(t.id, "STRING")


def field(name: str, t: duckdb.typing.DuckDBPyType) -> dict:
    """A TableFieldSchema for one column."""
    mode = "NULLABLE"
    if _is_list(t):
        mode, t = "REPEATED", _element(t)
        if _is_list(t):  # arrays of arrays do not exist in BigQuery; show them as JSON text
            return {"name": name, "type": "JSON", "mode": "REPEATED"}
    element = range_of(t)
    if element:
        return {"name": name, "type": "RANGE", "mode": mode,
                "rangeElementType": {"type": element}}
    out = {"name": name, "type": bq_type(t), "mode": mode}
    if marked(t) == "TIMESTAMP_PICOS":
        out["timestampPrecision"] = "12"
    if out["type"] == "RECORD":
        out["fields"] = [field(n, c) for n, c in t.children]
    return out


def fields(columns: list[str], types: list) -> list[dict]:
    return [field(n, t) for n, t in zip(columns, types, strict=True)]


def duck_type(f: dict) -> str:
    """DuckDB column type for a TableFieldSchema (RECORD, REPEATED included)."""
    kind = (f.get("type") or "STRING").upper()
    _check_timestamp_precision(f)  # here, so fields nested in a RECORD are checked too
    if kind in ("RECORD", "STRUCT"):
        subs = f.get("fields") or []
        if not subs:
            raise invalid(f"Field {f.get('name')} is type RECORD but has no schema")
        inner = "STRUCT(" + ", ".join(f"{quote(s['name'])} {duck_type(s)}" for s in subs) + ")"
    elif kind == "RANGE":
        inner = _range_duck(range_element(f))
    elif kind == "TIMESTAMP" and str(f.get("timestampPrecision")) == "12":
        from labkit.bigquery import timestamp_picos

        inner = timestamp_picos.DUCK
    elif kind in ("BIGNUMERIC", "BIGDECIMAL") and not f.get("precision"):
        from labkit.bigquery import bignumeric  # full precision: 76 digits

        inner = bignumeric.DUCK
    elif kind == "GEOGRAPHY":  # its canonical WKT (labkit.bigquery.geography)
        inner = marked_duck("GEOGRAPHY", "VARCHAR")
    elif kind in _TO_DUCK:
        inner = _TO_DUCK[kind]
        if kind in ("NUMERIC", "BIGNUMERIC") and f.get("precision"):
            inner = f"DECIMAL({min(int(f['precision']), 38)},{int(f.get('scale') or 0)})"
    else:
        raise invalid(f"Invalid field type {kind} for field {f.get('name')}")
    return inner + "[]" if (f.get("mode") or "").upper() == "REPEATED" else inner


def check_schema(schema_fields: list[dict]) -> None:
    names = set()
    for f in schema_fields:
        name = f.get("name") or ""
        if not name or not (name[0].isalpha() or name[0] == "_"):
            raise invalid(f"Invalid field name \"{name}\". Fields must contain only letters, "
                          "numbers, and underscores, start with a letter or underscore.")
        if name.lower() in names:
            raise invalid(f"Field {name} already exists in schema")
        names.add(name.lower())
        duck_type(f)


def _check_timestamp_precision(f: dict) -> None:
    """Microseconds (6, the default) are a DuckDB TIMESTAMPTZ; picoseconds (12) are
    labkit.bigquery.timestamp_picos; nothing else is a precision."""
    precision = f.get("timestampPrecision")
    if precision in (None, "", 6, "6"):
        return
    if (f.get("type") or "").upper() != "TIMESTAMP" or str(precision) != "12":
        raise invalid(f"Field {f.get('name')}: timestampPrecision {precision} is not valid; "
                      "only a TIMESTAMP field takes one, 6 or 12")


# INTERVAL text, as BigQuery reads it: ISO 8601 durations ("P7Y11M9DT4H15M37.123456S", each
# part signed) or its canonical "[sign]Y-M [sign]D [sign]H:M:S[.F]"; and writes it: canonical.
# https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#interval_type
_ISO_INTERVAL = (r"^P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)D)?"
                 r"(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d{1,9})?)S)?)?$")
_CANONICAL_INTERVAL = r"^(-?)(\d+)-(\d+) (-?\d+) (-?)(\d+):(\d+):(\d+(?:\.\d{1,9})?)$"
_SECONDS = "DECIMAL(38,9)"


def interval_from_text(expr: str) -> str:
    """SQL turning BigQuery INTERVAL text into a DuckDB INTERVAL (months, days and
    microseconds, as BigQuery keeps them); other text is an error naming the value."""
    def part(pattern: str, n: int, kind: str = "BIGINT") -> str:
        return (f"coalesce(CAST(nullif(regexp_extract({expr}, '{pattern}', {n}), '') "
                f"AS {kind}), 0)")

    def micros(seconds: str) -> str:
        return f"CAST(round({seconds} * 1000000) AS BIGINT)"

    i, c = _ISO_INTERVAL, _CANONICAL_INTERVAL
    iso = (f"to_months({part(i, 1)} * 12 + {part(i, 2)}) + to_days({part(i, 3)}) + "
           f"to_hours({part(i, 4)}) + to_minutes({part(i, 5)}) + "
           f"to_microseconds({micros(part(i, 6, _SECONDS))})")

    def sign(n: int) -> str:
        return f"(CASE regexp_extract({expr}, '{c}', {n}) WHEN '-' THEN -1 ELSE 1 END)"

    seconds = f"({part(c, 6)} * 3600 + {part(c, 7)} * 60 + {part(c, 8, _SECONDS)})"
    canonical = (f"to_months({sign(1)} * ({part(c, 2)} * 12 + {part(c, 3)})) + "
                 f"to_days({part(c, 4)}) + to_microseconds({sign(5)} * {micros(seconds)})")
    return (f"CASE WHEN {expr} IS NULL THEN NULL "
            f"WHEN regexp_matches({expr}, '{i}') THEN {iso} "
            f"WHEN regexp_matches({expr}, '{c}') THEN {canonical} "
            f"ELSE error('Invalid INTERVAL value: ' || {expr}) END")


def _interval_json(expr: str) -> str:
    """SQL giving an INTERVAL cell's canonical text (see interval_text)."""
    months = f"(datepart('year', {expr}) * 12 + datepart('month', {expr}))"
    micros = (f"(datepart('hour', {expr})::BIGINT * 3600000000 + "
              f"datepart('minute', {expr}) * 60000000 + datepart('microseconds', {expr}))")
    m, u = f"abs({months})", f"abs({micros})"
    fraction = (f"CASE WHEN {u} % 1000000 = 0 THEN '' ELSE '.' || "
                f"rtrim(lpad(({u} % 1000000)::VARCHAR, 6, '0'), '0') END")
    return (f"'\"' || CASE WHEN {months} < 0 THEN '-' ELSE '' END || ({m} // 12)::VARCHAR "
            f"|| '-' || ({m} % 12)::VARCHAR || ' ' || datepart('day', {expr})::VARCHAR || ' ' "
            f"|| CASE WHEN {micros} < 0 THEN '-' ELSE '' END || ({u} // 3600000000)::VARCHAR "
            f"|| ':' || ({u} // 60000000 % 60)::VARCHAR || ':' || ({u} // 1000000 % 60)::VARCHAR"
            f" || {fraction} || '\"'")


def interval_text(months: int, days: int, micros: int) -> str:
    """An INTERVAL's canonical text: months as Y-M, days, then the time; each part keeps its
    own sign, as BigQuery prints it."""
    m, u = abs(months), abs(micros)
    fraction = f".{u % 1_000_000:06d}".rstrip("0") if u % 1_000_000 else ""
    return (f"{'-' if months < 0 else ''}{m // 12}-{m % 12} {days} "
            f"{'-' if micros < 0 else ''}{u // 3_600_000_000}:{u // 60_000_000 % 60}:"
            f"{u // 1_000_000 % 60}{fraction}")


def _scalar_json(expr: str, t: duckdb.typing.DuckDBPyType, int64_timestamps: bool) -> str:
    """SQL giving the JSON text of one non-null scalar cell."""
    if t.id == "interval":
        return _interval_json(expr)
    if t.id == "timestamp with time zone":
        if int64_timestamps:
            return f"'\"' || epoch_us({expr})::VARCHAR || '\"'"
        return f"'\"' || (epoch_us({expr}) / 1e6)::VARCHAR || '\"'"
    if t.id.startswith("timestamp"):
        return f"'\"' || {datetime_text(expr)} || '\"'"
    if t.id == "blob":
        return f"'\"' || to_base64({expr}) || '\"'"
    if t.id in _INTEGERS or t.id in ("date", "boolean", "decimal", "time"):
        return f"'\"' || {expr}::VARCHAR || '\"'"
    if t.id in ("float", "double"):
        return (f"'\"' || CASE WHEN isnan({expr}) THEN 'NaN' WHEN {expr} = 'inf'::DOUBLE "
                f"THEN 'Infinity' WHEN {expr} = '-inf'::DOUBLE THEN '-Infinity' "
                f"ELSE {expr}::VARCHAR END || '\"'")
    return f"to_json({expr}::VARCHAR)::VARCHAR"


def cell_json(expr: str, t: duckdb.typing.DuckDBPyType, int64_timestamps: bool,
              depth: int = 0) -> str:
    """SQL giving the JSON text of the "v" of one cell (never NULL: null is 'null')."""
    if _is_list(t):
        var = f"e{depth}"
        items = expr if t.id != "map" else f"map_entries({expr})"
        inner = cell_json(var, _element(t), int64_timestamps, depth + 1)
        return (f"CASE WHEN {expr} IS NULL THEN '[]' ELSE '[' || array_to_string("
                f"list_transform({items}, lambda {var}: '{{\"v\":' || {inner} || '}}'), ',')"
                f" || ']' END")
    if range_of(t):
        return (f"CASE WHEN {expr} IS NULL THEN 'null' ELSE "
                f"{_range_json(expr, range_of(t), int64_timestamps)} END")
    if marked(t) == "INTERVAL":  # as its parts (arrow_rows)
        from labkit.bigquery.arrow_rows import interval_from_parts_sql

        return (f"CASE WHEN {expr} IS NULL THEN 'null' ELSE "
                f"{_interval_json(interval_from_parts_sql(expr))} END")
    if marked(t) == "TIMESTAMP_PICOS":
        from labkit.bigquery import timestamp_picos

        return timestamp_picos.cell_sql(expr, int64_timestamps)
    if marked(t) == "BIGNUMERIC":
        from labkit.bigquery import bignumeric

        return f"coalesce('\"' || {bignumeric.text_sql(expr, t)} || '\"', 'null')"
    if marked(t) == "GEOGRAPHY":
        return (f"CASE WHEN {expr} IS NULL THEN 'null' ELSE "
                f"to_json(struct_extract({expr}, '{marked_field('GEOGRAPHY')}'))::VARCHAR END")
    if t.id == "struct":
        parts = " || ',' || ".join(
            "'{\"v\":' || " + cell_json(f"struct_extract({expr}, {sql_literal(n)})", c,
                                         int64_timestamps, depth + 1) + " || '}'"
            for n, c in t.children)
        return f"CASE WHEN {expr} IS NULL THEN 'null' ELSE '{{\"f\":[' || {parts} || ']}}' END"
    return f"coalesce({_scalar_json(expr, t, int64_timestamps)}, 'null')"


def sql_literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"



def row_json_sql(columns: list[str], types: list, int64_timestamps: bool) -> str:
    """A SELECT-list expression giving each row as {"f":[{"v":...},...]} text."""
    if not columns:
        return "'{\"f\":[]}'"
    cells = " || ',' || ".join(
        "'{\"v\":' || " + cell_json(quote(n), t, int64_timestamps) + " || '}'"
        for n, t in zip(columns, types, strict=True))
    return "'{\"f\":[' || " + cells + " || ']}'"


# --- the same cells encoded in Python, for small pages -----------------------------------
# Registering an arrow table with DuckDB costs a few milliseconds, more than encoding a
# handful of rows in Python; a trivial query's round trip is dominated by it otherwise.

_EPOCH = None


def _micros(value) -> int:
    global _EPOCH
    if _EPOCH is None:
        import datetime as dt
        _EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _py_value(value, f: dict, int64_timestamps: bool):
    if value is None:
        return None
    kind = f["type"]
    if kind == "RANGE":
        element = {"name": "", "type": f["rangeElementType"]["type"]}
        start, end = (_py_value(value.get(b), element, int64_timestamps) for b in ("start", "end"))
        return f"[{start or 'UNBOUNDED'}, {end or 'UNBOUNDED'})"
    if kind == "GEOGRAPHY":  # the marked STRUCT, as Arrow gives it
        return value[marked_field("GEOGRAPHY")] if isinstance(value, dict) else str(value)
    if kind == "RECORD":
        if isinstance(value, tuple):  # a MAP entry
            value = dict(zip(("key", "value"), value, strict=False))
        return {"f": [{"v": _py_cell(value.get(sub["name"]), sub, int64_timestamps)}
                      for sub in f.get("fields", [])]}
    if kind == "BIGNUMERIC" and isinstance(value, dict):  # its text (bignumeric.TEXT)
        return next(iter(value.values()))
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "FLOAT":
        value = float(value)
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if kind == "TIMESTAMP" and isinstance(value, dict):  # picoseconds, as their text
        from labkit.bigquery import timestamp_picos

        return timestamp_picos.cell_py(next(iter(value.values())), int64_timestamps)
    if kind == "TIMESTAMP":
        micros = _micros(value)
        return str(micros) if int64_timestamps else str(micros / 1e6)
    if kind == "DATETIME":
        return value.isoformat(timespec="microseconds")  # strftime's %Y drops year 1's zeros
    if kind in ("DATE", "TIME"):
        return value.isoformat()
    if kind == "BYTES":
        import base64
        return base64.b64encode(value).decode()
    if kind == "INTERVAL" and isinstance(value, dict):  # its parts (arrow_rows)
        parts = next(iter(value.values()))
        return interval_text(parts["months"], parts["days"], parts["micros"])
    if kind == "INTERVAL":  # arrow's month_day_nano_interval
        return interval_text(value.months, value.days, value.nanoseconds // 1000)
    return str(value)


def _py_cell(value, f: dict, int64_timestamps: bool):
    if f.get("mode") == "REPEATED":
        return [{"v": _py_value(v, f, int64_timestamps)} for v in (value or [])]
    return _py_value(value, f, int64_timestamps)


def rows_json_py(table, schema_fields: list[dict], int64_timestamps: bool) -> str:
    """The rows of a (small) arrow table as the JSON text of a REST `rows` array."""
    import json

    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [{"f": [{"v": _py_cell(col[r], f, int64_timestamps)}
                   for col, f in zip(columns, schema_fields, strict=True)]}
            for r in range(table.num_rows)]
    return json.dumps(rows, ensure_ascii=False)
