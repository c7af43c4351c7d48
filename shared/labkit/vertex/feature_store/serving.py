"""Online serving: fetchFeatureValues from what a feature view's last sync wrote.

A sync writes the view's entities to one JSON file (atomically) and into memory, each entity
already encoded in both response formats, so a fetch is a dictionary lookup.

FetchFeatureValuesRequest (google/cloud/aiplatform/v1/feature_online_store_service.proto):
data_key is a `key` or a `composite_key` (its parts in the order of the view's entity ID
columns); data_format KEY_VALUE (the default) answers key_values.features [{name, value:
FeatureValue}], PROTO_STRUCT answers proto_struct (a google.protobuf.Struct). "You can only
serve feature values from one ID per request" and "a feature view must be synced at least
once before you can online serve features from that feature view"
(https://cloud.google.com/vertex-ai/docs/featurestore/latest/serve-feature-values).
TIMESTAMP values are served as int64 microseconds since the epoch, as Vertex AI serves a
feature view's feature_timestamp.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import threading
from pathlib import Path

from labkit.services.files import write_atomic
from labkit.vertex import errors

FORMATS = {None: "KEY_VALUE", "DATA_FORMAT_UNSPECIFIED": "KEY_VALUE", "FORMAT_UNSPECIFIED":
           "KEY_VALUE", "KEY_VALUE": "KEY_VALUE",
           "PROTO_STRUCT": "PROTO_STRUCT", 0: "KEY_VALUE", 1: "KEY_VALUE", 2: "PROTO_STRUCT"}
_ARRAYS = {bool: "boolArrayValue", int: "int64ArrayValue", float: "doubleArrayValue",
           str: "stringArrayValue"}


def _micros(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def feature_value(value) -> dict | None:
    """A FeatureValue in its JSON form; None for NULL (the pair then has no value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"int64Value": str(value)}
    if isinstance(value, (float, decimal.Decimal)):
        return {"doubleValue": float(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return {"int64Value": str(_micros(value))}
    if isinstance(value, (dt.date, dt.time)):
        return {"stringValue": value.isoformat()}
    if isinstance(value, dict):
        return {"structValue": {"values": [
            {"name": k, **({"value": v} if (v := feature_value(x)) else {})}
            for k, x in value.items()]}}
    if isinstance(value, list):
        kinds = {float if isinstance(v, decimal.Decimal) else type(v) for v in value}
        if kinds <= {int, float} and float in kinds:
            kinds = {float}
        field = _ARRAYS.get(next(iter(kinds))) if len(kinds) == 1 else "doubleArrayValue" \
            if not kinds else None
        if field is None:
            raise errors.invalid(f"An ARRAY feature value mixes {sorted(k.__name__ for k in kinds)}"
                                 f": arrays of BOOL, INT64, FLOAT64 or STRING are served.")
        items = [str(v) if field == "int64ArrayValue" else
                 float(v) if field == "doubleArrayValue" else v for v in value]
        return {field: {"values": items}}
    raise errors.invalid(f"Feature values of type {type(value).__name__} are not served.")


def struct_value(value):
    """The same value inside a google.protobuf.Struct (JSON numbers, strings, lists)."""
    if isinstance(value, dt.datetime):
        return _micros(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: struct_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [struct_value(v) for v in value]
    return value


def encode(values: dict) -> dict:
    """One entity's synced values in both response formats."""
    pairs = []
    for name, value in values.items():
        encoded = feature_value(value)
        pairs.append({"name": name, **({"value": encoded} if encoded is not None else {})})
    return {"kv": {"features": pairs},
            "struct": {name: struct_value(value) for name, value in values.items()}}


class OnlineServing:
    """The synced entities of every feature view: files under vertex/feature_view_data/,
    kept in memory once read."""

    def __init__(self, root: Path):
        self.root = root
        self._views: dict[str, dict] = {}
        self._lock = threading.Lock()

    def _path(self, view_key: str) -> Path:
        return self.root / f"{view_key}.json"

    def publish(self, view_key: str, entity_columns: list[str], entities: dict) -> int:
        """Replaces a view's served entities with a sync's (encoded), file first."""
        data = {json.dumps(list(k)): encode(v) for k, v in entities.items()}
        write_atomic(self._path(view_key), json.dumps({"entityIdColumns": entity_columns,
                                                       "entities": data}))
        with self._lock:
            self._views[view_key] = {"entityIdColumns": entity_columns, "entities": data}
        return len(data)

    def drop(self, view_key: str) -> None:
        with self._lock:
            self._views.pop(view_key, None)
        self._path(view_key).unlink(missing_ok=True)

    def serves(self, view_key: str) -> bool:
        """Whether a sync of this view is in memory (the view exists: deleting it drops it)."""
        return view_key in self._views

    def _data(self, view_key: str) -> dict | None:
        data = self._views.get(view_key)
        if data is None:
            try:
                data = json.loads(self._path(view_key).read_text())
            except (FileNotFoundError, ValueError):
                return None
            with self._lock:
                self._views[view_key] = data
        return data

    def fetch(self, view_name: str, view_key: str, body: dict) -> dict:
        # v1beta1 still takes the deprecated `id` (a key) and `format`; either form, not both
        if ("id" in body and "dataKey" in body) or ("format" in body and "dataFormat" in body):
            raise errors.invalid("Use data_key and data_format, or the deprecated id and "
                                 "format, not both.")
        wanted = body.get("dataFormat", body.get("format"))
        fmt = FORMATS.get(wanted) if isinstance(wanted, (str, int, type(None))) else None
        if fmt is None:
            raise errors.invalid(f"Unknown data_format {wanted!r}: use KEY_VALUE or "
                                 f"PROTO_STRUCT.")
        data_key = body.get("dataKey") or ({"key": body["id"]} if body.get("id") else {})
        parts = (data_key.get("compositeKey") or {}) if isinstance(data_key, dict) else None
        if not isinstance(data_key, dict) or not isinstance(parts, dict) or not isinstance(
                parts.get("parts", []), list) or not isinstance(data_key.get("key", ""), str):
            raise errors.invalid("Invalid value at 'data_key': expected {key: string} or "
                                 "{composite_key: {parts: [string]}}.")
        data = self._data(view_key)
        if data is None:
            raise errors.failed_precondition(
                f"FeatureView {view_name} has not been synced: a feature view must be synced "
                f"at least once before it serves feature values (FeatureView.sync()).")
        columns = data["entityIdColumns"]
        if "key" in data_key and "compositeKey" in data_key:
            raise errors.invalid("data_key takes either key or composite_key, not both.")
        if "compositeKey" in data_key:
            parts = [str(p) for p in (data_key["compositeKey"] or {}).get("parts", [])]
        elif data_key.get("key"):
            parts = [str(data_key["key"])]
        else:
            raise errors.invalid("FetchFeatureValuesRequest.data_key is required: a key or a "
                                 "composite_key.")
        if len(parts) != len(columns):
            raise errors.invalid(
                f"FeatureView {view_name} has {len(columns)} entity ID column(s) "
                f"({', '.join(columns)}); the data key has {len(parts)} part(s)"
                + (": use composite_key with one part per column." if len(columns) > 1 else "."))
        entity = data["entities"].get(json.dumps(parts))
        if entity is None:
            raise errors.not_found("Entity", f"{'/'.join(parts)} of FeatureView {view_name}")
        echo = {"compositeKey": {"parts": parts}} if "compositeKey" in data_key \
            else {"key": parts[0]}
        if fmt == "PROTO_STRUCT":
            return {"protoStruct": entity["struct"], "dataKey": echo}
        return {"keyValues": entity["kv"], "dataKey": echo}
