"""ML.FEATURES_AT_TIME and ML.ENTITY_FEATURES_AT_TIME: point-in-time feature lookups,
rewritten into plain BigQuery SQL (window functions) before the statement runs, so they
work wherever a table can (SELECT, CREATE TABLE AS, CREATE MODEL AS, ML.PREDICT's input).

As the BigQuery reference documents them:
- https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-feature-time
  ML.FEATURES_AT_TIME({TABLE t | (query)} [, time => TIMESTAMP] [, num_rows => INT64]
  [, ignore_feature_nulls => BOOL]): the feature table has an entity_id STRING column, one or
  more feature columns and a feature_timestamp TIMESTAMP column (names case-insensitive);
  only rows with feature_timestamp at or before `time` (default CURRENT_TIMESTAMP) count,
  the `num_rows` (default 1) latest per entity are returned, "with the feature_timestamp
  column showing the timestamp that was input in the time argument"; ignore_feature_nulls
  (default FALSE) replaces a NULL feature value with the entity's value from the row that
  precedes it in time.
- https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-entity-feature-time
  ML.ENTITY_FEATURES_AT_TIME(feature table, {TABLE et | (query)} [, num_rows => INT64]
  [, ignore_feature_nulls => BOOL]): the entity-time table has entity_id STRING and time
  TIMESTAMP columns; for each of its rows, the num_rows latest feature rows of that entity
  at or before that time, feature_timestamp showing that time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from labkit.bigquery.errors import invalid_query
from labkit.bigquery.ml.sqlscan import close_paren, literal, mask, split_top

CALL = re.compile(r"\bML\s*\.\s*(?P<fn>ENTITY_FEATURES_AT_TIME|FEATURES_AT_TIME)\s*\(", re.I)
_NAMED = re.compile(r"^\s*(\w+)\s*=>\s*(.*)$", re.S)


def rewrite(sql: str, schema_of: Callable[[str], dict[str, str]]) -> str:
    """`sql` with every ML.FEATURES_AT_TIME / ML.ENTITY_FEATURES_AT_TIME call replaced by the
    subquery that computes it; `schema_of(relation SQL)` gives a relation's {column: type}."""
    while True:
        masked = mask(sql)
        match = CALL.search(masked)
        if not match:
            return sql
        open_at = masked.index("(", match.start())
        end = close_paren(masked, open_at)
        fn = "ML." + match["fn"].upper()
        args = split_top(sql[open_at + 1:end])
        sql = sql[:match.start()] + _expand(fn, args, schema_of) + sql[end + 1:]


def _expand(fn: str, args: list[str], schema_of) -> str:
    positional, named = [], {}
    for arg in args:
        m = _NAMED.match(arg)
        if m:
            named[m[1].lower()] = m[2].strip()
        elif named:
            raise invalid_query(f"{fn}: positional arguments must come before named ones")
        else:
            positional.append(arg.strip())
    entity = fn == "ML.ENTITY_FEATURES_AT_TIME"
    allowed = {"num_rows", "ignore_feature_nulls"} | (set() if entity else {"time"})
    unknown = set(named) - allowed
    if unknown:
        raise invalid_query(f"{fn} has no argument named {sorted(unknown)[0]}")
    if len(positional) != (2 if entity else 1):
        tables = "a feature table and an entity-time table" if entity else "a feature table"
        raise invalid_query(f"{fn} takes {tables} ({{TABLE name | (query)}}), then named "
                            f"arguments")
    num_rows = literal(named.get("num_rows", "1"))
    if not isinstance(num_rows, int) or isinstance(num_rows, bool) or num_rows < 1:
        raise invalid_query(f"{fn}: num_rows must be a positive INT64, got "
                            f"{named.get('num_rows')}")
    ignore_nulls = literal(named.get("ignore_feature_nulls", "FALSE"))
    if not isinstance(ignore_nulls, bool):
        raise invalid_query(f"{fn}: ignore_feature_nulls must be a BOOL, got "
                            f"{named.get('ignore_feature_nulls')}")
    features = _relation(positional[0], fn)
    columns = schema_of(features)
    eid = _column(columns, "entity_id", fn, "feature table", "STRING")
    ts = _column(columns, "feature_timestamp", fn, "feature table", "TIMESTAMP")
    names = list(columns)
    if len(names) < 3:
        raise invalid_query(f"{fn}: the feature table needs one or more feature columns "
                            f"besides {eid} and {ts}")
    filled = _filled(features, names, eid, ts, ignore_nulls)
    if not entity:
        time = named.get("time", "CURRENT_TIMESTAMP()")
        ranked = (f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {_q(eid)} ORDER BY {_q(ts)} DESC) "
                  f"AS __pit_rank FROM ({filled}) WHERE {_q(ts)} <= CAST({time} AS TIMESTAMP)")
        out = ", ".join(f"CAST({time} AS TIMESTAMP) AS {_q(ts)}" if c == ts else _q(c)
                        for c in names)
        return f"(SELECT {out} FROM ({ranked}) WHERE __pit_rank <= {num_rows})"
    times = _relation(positional[1], fn)
    time_columns = schema_of(times)
    e_id = _column(time_columns, "entity_id", fn, "entity-time table", "STRING")
    e_time = _column(time_columns, "time", fn, "entity-time table", "TIMESTAMP")
    asked = (f"SELECT {_q(e_id)} AS __pit_entity, {_q(e_time)} AS __pit_time, "
             f"ROW_NUMBER() OVER () AS __pit_row FROM {times}")
    ranked = (f"SELECT __pit_f.*, __pit_e.__pit_time, ROW_NUMBER() OVER (PARTITION BY "
              f"__pit_e.__pit_row ORDER BY __pit_f.{_q(ts)} DESC) AS __pit_rank "
              f"FROM ({filled}) AS __pit_f JOIN ({asked}) AS __pit_e "
              f"ON __pit_f.{_q(eid)} = __pit_e.__pit_entity "
              f"AND __pit_f.{_q(ts)} <= __pit_e.__pit_time")
    out = ", ".join(f"__pit_time AS {_q(ts)}" if c == ts else _q(c) for c in names)
    return f"(SELECT {out} FROM ({ranked}) WHERE __pit_rank <= {num_rows})"


def _filled(relation: str, names: list[str], eid: str, ts: str, ignore_nulls: bool) -> str:
    """The feature rows, NULL features carried forward from the entity's earlier rows when
    ignore_feature_nulls is TRUE (a row's earlier rows are the same whatever the cutoff)."""
    if not ignore_nulls:
        return f"SELECT * FROM {relation}"
    window = (f"OVER (PARTITION BY {_q(eid)} ORDER BY {_q(ts)} "
              f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
    cols = ", ".join(_q(c) if c in (eid, ts) else
                     f"LAST_VALUE({_q(c)} IGNORE NULLS) {window} AS {_q(c)}" for c in names)
    return f"SELECT {cols} FROM {relation}"


def _relation(arg: str, fn: str) -> str:
    if re.match(r"^TABLE\s", arg, re.I):
        return arg[5:].strip()
    if arg.startswith("(") and arg.endswith(")"):
        return arg
    raise invalid_query(f"{fn}: expected TABLE name or (query), got {arg[:40]}")


def _column(columns: dict[str, str], wanted: str, fn: str, what: str, kind: str) -> str:
    for name, type_ in columns.items():
        if name.lower() == wanted:
            if type_ != kind:
                raise invalid_query(f"{fn}: column {name} of the {what} must be {kind}, not "
                                    f"{type_}")
            return name
    raise invalid_query(f"{fn}: the {what} must have a column named {wanted}")


def _q(name: str) -> str:
    return f"`{name}`"
