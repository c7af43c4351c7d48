"""Datapoints on the wire and in input files, to and from labkit.vectors.

Two spellings of the same record:
- REST IndexDatapoint (upsertDatapoints, findNeighbors queries, readIndexDatapoints):
  datapointId, featureVector, restricts[{namespace, allowList, denyList}],
  numericRestricts[{namespace, valueInt|valueFloat|valueDouble, op}], crowdingTag
  {crowdingAttribute}
  (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/IndexDatapoint).
- Input files under contentsDeltaUri (JSON lines and Avro records): id, embedding,
  restricts[{namespace, allow, deny}], numeric_restricts[{namespace, value_int|value_float|
  value_double}], crowding_tag; CSV rows: id, the vector's values, then `namespace=token`
  (`namespace=!token` denies) and `#namespace=number`
  (https://cloud.google.com/vertex-ai/docs/vector-search/setup/format-structure).
Sparse (hybrid) embeddings and embedding metadata are refused: not local.
"""

from __future__ import annotations

import csv
import io
import json
import math

from labkit.vectors import Datapoint, NumericFilter, NumericRestrict, Restrict
from labkit.vertex import errors

OPS = {1: "LESS", 2: "LESS_EQUAL", 3: "EQUAL", 4: "GREATER_EQUAL", 5: "GREATER",
       6: "NOT_EQUAL"}  # google.cloud.aiplatform.v1.IndexDatapoint.NumericRestriction.Operator
_REST_FIELDS = {"datapointId", "featureVector", "restricts", "numericRestricts", "crowdingTag",
                "sparseEmbedding", "embeddingMetadata"}
_FILE_FIELDS = {"id", "embedding", "restricts", "numeric_restricts", "crowding_tag",
                "sparse_embedding", "embedding_metadata"}


def _unknown(where: str, name: str) -> errors.VertexError:
    # Google's front end words an unknown JSON field this way.
    return errors.invalid(f'Invalid JSON payload received. Unknown name "{name}" at '
                          f"'{where}': Cannot find field.")


def _not_local(where: str, what: str) -> errors.VertexError:
    return errors.gcp_only(f"Vector Search {what} ({where})")


_NUMBERS = {int, float}  # exact types: a JSON true is no number here


def _vector(value, where: str) -> tuple[float, ...]:
    # map/set/sum run in C: an index file holds millions of these values
    if not isinstance(value, list) or not set(map(type, value)) <= _NUMBERS:
        raise errors.invalid(f"{where}: the feature vector must be a list of numbers.")
    vector = tuple(map(float, value))
    if not math.isfinite(sum(vector)) and not all(map(math.isfinite, vector)):
        raise errors.invalid(f"{where}: the feature vector must hold finite numbers.")
    return vector


def _tokens(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise errors.invalid(f"{where} must be a list of strings.")
    return tuple(value)


def _number(entry: dict, keys: tuple[str, str, str], where: str) -> float:
    present = [k for k in keys if entry.get(k) is not None]
    if len(present) != 1:
        raise errors.invalid(f"{where}: give exactly one of {', '.join(keys)}.")
    raw = entry[present[0]]
    try:
        # valueInt is an int64: JSON carries it as a string
        value = int(raw) if present[0] == keys[0] else float(raw)
    except (TypeError, ValueError):
        raise errors.invalid(f"{where}.{present[0]} must be a number, got {raw!r}.") from None
    return float(value)


def _restricts(items, names: tuple[str, str], where: str) -> tuple[Restrict, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise errors.invalid(f"{where} must be a list.")
    out = []
    for k, r in enumerate(items):
        at = f"{where}[{k}]"
        if not isinstance(r, dict) or not isinstance(r.get("namespace"), str) \
                or not r["namespace"]:
            raise errors.invalid(f"{at} needs a namespace.")
        for key in r:
            if key not in ("namespace", *names):
                raise _unknown(at, key)
        out.append(Restrict(r["namespace"], _tokens(r.get(names[0]), f"{at}.{names[0]}"),
                            _tokens(r.get(names[1]), f"{at}.{names[1]}")))
    return tuple(out)


def _numeric(items, keys: tuple[str, str, str], where: str, query: bool):
    if items is None:
        return ()
    if not isinstance(items, list):
        raise errors.invalid(f"{where} must be a list.")
    out = []
    for k, r in enumerate(items):
        at = f"{where}[{k}]"
        if not isinstance(r, dict) or not isinstance(r.get("namespace"), str) \
                or not r["namespace"]:
            raise errors.invalid(f"{at} needs a namespace.")
        for key in r:
            if key not in ("namespace", "op", *keys):
                raise _unknown(at, key)
        value = _number(r, keys, at)
        if query:
            op = r.get("op")
            op = OPS.get(op, op) if isinstance(op, int) else op
            if op not in OPS.values():
                raise errors.invalid(f"{at}.op must be one of {', '.join(OPS.values())} in a "
                                     f"query, got {r.get('op')!r}.")
            out.append(NumericFilter(r["namespace"], value, op))
        else:
            if r.get("op") not in (None, 0, "OPERATOR_UNSPECIFIED"):
                raise errors.invalid(f"{at}.op is for queries; a stored datapoint has none.")
            out.append(NumericRestrict(r["namespace"], value))
    return tuple(out)


# ---------------------------------------------------------------- REST
def from_rest(d, where: str, *, query: bool = False) -> Datapoint:
    """A REST IndexDatapoint; in a query the vector may be absent (datapointId names it)."""
    if not isinstance(d, dict):
        raise errors.invalid(f"{where} must be an IndexDatapoint object.")
    for key in d:
        if key not in _REST_FIELDS:
            raise _unknown(where, key)
    if d.get("sparseEmbedding"):
        raise _not_local(where, "sparse (hybrid) embeddings")
    if d.get("embeddingMetadata"):
        raise _not_local(where, "embedding metadata")
    ident = d.get("datapointId", "")
    if not isinstance(ident, str) or (not ident and not query):
        raise errors.invalid(f"{where}.datapointId must be a non-empty string.")
    vector = d.get("featureVector")
    if vector is None and not query:
        raise errors.invalid(f"{where}.featureVector is required.")
    crowding = d.get("crowdingTag") or {}
    if not isinstance(crowding, dict) or set(crowding) - {"crowdingAttribute"}:
        raise errors.invalid(f"{where}.crowdingTag must be {{crowdingAttribute: string}}.")
    return Datapoint(
        ident, () if vector is None else _vector(vector, f"{where}.featureVector"),
        _restricts(d.get("restricts"), ("allowList", "denyList"), f"{where}.restricts"),
        _numeric(d.get("numericRestricts"), ("valueInt", "valueFloat", "valueDouble"),
                 f"{where}.numericRestricts", query) if not query else (),
        str(crowding.get("crowdingAttribute", "")))


def query_filters(d: dict, where: str) -> tuple:
    """A query datapoint's numeric restricts, as filters (each needs an op)."""
    return _numeric(d.get("numericRestricts"), ("valueInt", "valueFloat", "valueDouble"),
                    f"{where}.numericRestricts", True)


def to_rest(p: Datapoint, *, full: bool = True) -> dict:
    out: dict = {"datapointId": p.id}
    if full:
        out["featureVector"] = list(p.vector)
        if p.restricts:
            out["restricts"] = [{"namespace": r.namespace, "allowList": list(r.allow),
                                 "denyList": list(r.deny)} for r in p.restricts]
        if p.numeric_restricts:
            out["numericRestricts"] = [_numeric_json(r) for r in p.numeric_restricts]
    if p.crowding_tag:
        out["crowdingTag"] = {"crowdingAttribute": p.crowding_tag}
    return out


def _numeric_json(r: NumericRestrict) -> dict:
    if float(r.value).is_integer():
        return {"namespace": r.namespace, "valueInt": str(int(r.value))}
    return {"namespace": r.namespace, "valueDouble": r.value}


# ---------------------------------------------------------------- input files
def from_record(d, where: str) -> Datapoint:
    """One JSON-lines or Avro record of an input file."""
    if not isinstance(d, dict):
        raise errors.invalid(f"{where} must be a JSON object.")
    for key in d:
        if key not in _FILE_FIELDS:
            raise errors.invalid(f"{where}: unknown field {key!r}; records have "
                                 f"{', '.join(sorted(_FILE_FIELDS))}.")
    if d.get("sparse_embedding"):
        raise _not_local(where, "sparse (hybrid) embeddings")
    if d.get("embedding_metadata"):
        raise _not_local(where, "embedding metadata")
    ident = d.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if not isinstance(ident, str) or not ident:
        raise errors.invalid(f"{where}: every record needs an id.")
    if d.get("embedding") is None:
        raise errors.invalid(f"{where}: record {ident!r} has no embedding.")
    crowding = d.get("crowding_tag") or ""
    if not isinstance(crowding, str):
        raise errors.invalid(f"{where}.crowding_tag must be a string.")
    return Datapoint(ident, _vector(d["embedding"], f"{where}.embedding"),
                     _restricts(d.get("restricts"), ("allow", "deny"), f"{where}.restricts"),
                     _numeric(d.get("numeric_restricts"),
                              ("value_int", "value_float", "value_double"),
                              f"{where}.numeric_restricts", False),
                     crowding)


def parse_file(name: str, data: bytes, dimensions: int) -> list[Datapoint]:
    """The records of one data file, by its suffix (.json, .csv or .avro)."""
    if name.endswith(".json"):
        out = []
        for k, line in enumerate(_text(name, data).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise errors.invalid(f"{name} line {k}: not valid JSON ({e}).") from None
            out.append(from_record(record, f"{name} line {k}"))
        return out
    if name.endswith(".csv"):
        return [_csv_row(row, f"{name} line {k}", dimensions)
                for k, row in enumerate(csv.reader(io.StringIO(_text(name, data))), 1) if row]
    if name.endswith(".avro"):
        import fastavro  # Avro's reader (a dependency of Apache Beam)

        try:
            records = list(fastavro.reader(io.BytesIO(data)))
        except Exception as e:  # noqa: BLE001 - any decoding failure is the file's
            raise errors.invalid(f"{name}: not a readable Avro file ({e}).") from None
        return [from_record(r, f"{name} record {k}") for k, r in enumerate(records, 1)]
    raise errors.invalid(f"{name}: data files end in .json, .csv or .avro.")


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid(f"{name} is not UTF-8 text (gzip-compressed input is not "
                             f"supported).") from None


def _csv_row(row: list[str], where: str, dimensions: int) -> Datapoint:
    if len(row) < 1 + dimensions:
        raise errors.invalid(f"{where}: expected an id and {dimensions} values, got "
                             f"{len(row)} fields.")
    try:
        vector = tuple(float(x) for x in row[1:1 + dimensions])
    except ValueError:
        raise errors.invalid(f"{where}: the {dimensions} values after the id must be "
                             f"numbers.") from None
    if not all(math.isfinite(x) for x in vector):
        raise errors.invalid(f"{where}: the feature vector must hold finite numbers.")
    allow: dict[str, list] = {}
    deny: dict[str, list] = {}
    numeric = []
    for field in row[1 + dimensions:]:
        namespace, sep, value = field.partition("=")
        if not sep or not namespace or not value:
            raise errors.invalid(f"{where}: {field!r} is neither a value of the "
                                 f"{dimensions}-dimensional vector nor namespace=token.")
        if namespace.startswith("#"):
            try:
                numeric.append(NumericRestrict(namespace[1:], float(value)))
            except ValueError:
                raise errors.invalid(f"{where}: numeric restrict {field!r} needs a "
                                     f"number.") from None
        elif value.startswith("!"):
            deny.setdefault(namespace, []).append(value[1:])
        else:
            allow.setdefault(namespace, []).append(value)
    restricts = tuple(Restrict(n, tuple(allow.get(n, ())), tuple(deny.get(n, ())))
                      for n in dict.fromkeys([*allow, *deny]))
    return Datapoint(row[0], vector, restricts, tuple(numeric))
