"""The feature registry: featureGroups over a BigQuery table or view, and their features.

Resource ids: "up to 128 characters, and valid characters are [a-z0-9_]. The first character
cannot be a number" (CreateFeatureGroupRequest.feature_group_id, CreateFeatureRequest.
feature_id in google/cloud/aiplatform/v1/feature_registry_service.proto). A feature group
with features is deleted only with force=true; a feature's column (version_column_name,
the feature id by default) must be in the group's source.
"""

from __future__ import annotations

import re

from labkit.vertex import errors, operations
from labkit.vertex.feature_store import sources
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now

ID_128 = re.compile(r"[a-z_][a-z0-9_]{0,127}")
# BigQuery column types -> Feature.ValueType (google/cloud/aiplatform/v1/feature.proto)
VALUE_TYPES = {"BOOL": "BOOL", "BOOLEAN": "BOOL", "INT64": "INT64", "INTEGER": "INT64",
               "FLOAT64": "DOUBLE", "FLOAT": "DOUBLE", "NUMERIC": "DOUBLE",
               "BIGNUMERIC": "DOUBLE", "STRING": "STRING", "BYTES": "BYTES",
               "RECORD": "STRUCT", "STRUCT": "STRUCT", "ARRAY<BOOL>": "BOOL_ARRAY",
               "ARRAY<BOOLEAN>": "BOOL_ARRAY", "ARRAY<INT64>": "INT64_ARRAY",
               "ARRAY<INTEGER>": "INT64_ARRAY", "ARRAY<FLOAT64>": "DOUBLE_ARRAY",
               "ARRAY<FLOAT>": "DOUBLE_ARRAY", "ARRAY<STRING>": "STRING_ARRAY"}


def check_id(value: str | None, what: str, pattern: re.Pattern = ID_128, limit: int = 128):
    if not value or not pattern.fullmatch(value):
        raise errors.invalid(f"{what} {value!r} is invalid: it may be up to {limit} "
                             f"characters, valid characters are [a-z0-9_], and the first "
                             f"character cannot be a number.")


def expect(value, kind: type, field: str, items: type | None = None):
    """`value` if it has the JSON type the field's proto has (a 400 otherwise: the front
    end checks names, not types); None passes (an unset field)."""
    bad = value is not None and (not isinstance(value, kind) or isinstance(value, bool) and
                                 kind is int or items is not None and
                                 any(not isinstance(v, items) for v in value))
    if bad:
        wanted = {dict: "an object", list: "a list", str: "a string", int: "an integer",
                  bool: "a boolean"}[kind]
        raise errors.invalid(f"Invalid value at '{field}': expected {wanted}"
                             + (f" of {items.__name__} values" if items else "") + ".")
    return value


def expect_common(body: dict) -> None:
    expect(body.get("labels"), dict, "labels", str)
    expect(body.get("description"), str, "description")


def key(name: str) -> str:
    return name.replace("/", "~")


def group_source(group: dict) -> tuple[sources.TableRef, list[str], str | None, bool]:
    """(table, entity ID columns, timestamp column or None, dense) of a feature group."""
    bq = group["bigQuery"]
    ref = sources.parse_uri(bq.get("bigQuerySource", {}).get("inputUri"),
                            "FeatureGroup.big_query.big_query_source.input_uri")
    timestamp = None if bq.get("staticDataSource") else \
        (bq.get("timeSeries") or {}).get("timestampColumn") or "feature_timestamp"
    return ref, list(bq.get("entityIdColumns") or ["entity_id"]), timestamp, \
        bool(bq.get("dense"))


class FeatureRegistry:
    def __init__(self, store: ResourceStore, bigquery):
        self.store, self.bigquery = store, bigquery

    # ---- feature groups
    def create_group(self, parent: str, body: dict, group_id: str | None) -> dict:
        check_id(group_id, "feature_group_id")
        name = f"{parent}/featureGroups/{group_id}"
        expect_common(body)
        bq = expect(body.get("bigQuery"), dict, "feature_group.big_query")
        if bq:
            expect(bq.get("bigQuerySource"), dict, "big_query.big_query_source")
            expect(bq.get("entityIdColumns"), list, "big_query.entity_id_columns", str)
            expect(bq.get("timeSeries"), dict, "big_query.time_series")
        if not bq:
            raise errors.invalid("FeatureGroup.big_query is required: a feature group "
                                 "registers a BigQuery table or view.")
        resource = {"name": name, "bigQuery": {**bq, "entityIdColumns":
                                               list(bq.get("entityIdColumns") or ["entity_id"])},
                    "labels": body.get("labels", {}), "description": body.get("description", "")}
        ref, entity_columns, timestamp, _ = group_source(resource)
        if len(set(entity_columns)) != len(entity_columns):
            raise errors.invalid(f"entity_id_columns {entity_columns} repeat a column.")
        columns = sources.schema(self.bigquery, ref, parent.split("/")[3], "FeatureGroup source")
        sources.check_columns(columns, ref, entity_columns, timestamp)
        stamp = now()
        resource.update(createTime=stamp, updateTime=stamp, etag=new_id())
        with self.store.lock:
            if self.store.get("featureGroups", key(name)):
                raise errors.VertexError("ALREADY_EXISTS", f"FeatureGroup {name} already exists.")
            self.store.put("featureGroups", key(name), resource)
        return operations.done(self.store, name, "CreateFeatureGroupOperationMetadata",
                               "FeatureGroup", resource)

    def get_group(self, name: str) -> dict:
        group = self.store.get("featureGroups", key(name))
        if group is None:
            raise errors.not_found("FeatureGroup", name)
        return group

    def list_groups(self, parent: str, query: dict) -> dict:
        items = [g for g in self.store.all("featureGroups")
                 if g["name"].startswith(parent + "/featureGroups/")
                 and matches_filter(g, query.get("filter"))]
        return page(items, "featureGroups", query.get("pageSize"), query.get("pageToken"))

    def patch_group(self, name: str, body: dict, mask: str | None) -> dict:
        expect_common(body)
        with self.store.lock:
            group = apply_mask(self.get_group(name), body, mask, {"labels", "description"})
            group.update(updateTime=now(), etag=new_id())
            self.store.put("featureGroups", key(name), group)
        return operations.done(self.store, name, "UpdateFeatureGroupOperationMetadata",
                               "FeatureGroup", group)

    def delete_group(self, name: str, force: bool) -> dict:
        with self.store.lock:
            self.get_group(name)
            features = self._features_of(name)
            if features and not force:
                raise errors.failed_precondition(
                    f"FeatureGroup {name} has {len(features)} features: delete them first or "
                    f"delete with force=true.")
            for feature in features:
                self.store.delete("features", key(feature["name"]))
            self.store.delete("featureGroups", key(name))
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- features
    def _features_of(self, group_name: str) -> list[dict]:
        return [f for f in self.store.all("features")
                if f["name"].startswith(group_name + "/features/")]

    def create_feature(self, group_name: str, body: dict, feature_id: str | None) -> dict:
        check_id(feature_id, "feature_id")
        group = self.get_group(group_name)
        ref, entity_columns, timestamp, _ = group_source(group)
        expect_common(body)
        column = expect(body.get("versionColumnName"), str, "version_column_name") or feature_id
        if column in entity_columns or column == timestamp:
            raise errors.invalid(f"Column {column} is the feature group's "
                                 f"{'entity ID' if column in entity_columns else 'timestamp'} "
                                 f"column, not a feature.")
        columns = sources.schema(self.bigquery, ref, group_name.split("/")[3], "Feature source")
        sources.check_columns(columns, ref, [], None, [column])
        name = f"{group_name}/features/{feature_id}"
        stamp = now()
        feature = {"name": name, "versionColumnName": column,
                   "valueType": VALUE_TYPES.get(columns[column], "VALUE_TYPE_UNSPECIFIED"),
                   "description": body.get("description", ""), "labels": body.get("labels", {}),
                   "pointOfContact": body.get("pointOfContact", ""),
                   "createTime": stamp, "updateTime": stamp, "etag": new_id()}
        with self.store.lock:
            if self.store.get("features", key(name)):
                raise errors.VertexError("ALREADY_EXISTS", f"Feature {name} already exists.")
            self.store.put("features", key(name), feature)
        return operations.done(self.store, name, "CreateFeatureOperationMetadata", "Feature",
                               feature)

    def get_feature(self, name: str) -> dict:
        feature = self.store.get("features", key(name))
        if feature is None:
            raise errors.not_found("Feature", name)
        return feature

    def list_features(self, group_name: str, query: dict) -> dict:
        self.get_group(group_name)
        items = [f for f in self._features_of(group_name) if matches_filter(f, query.get("filter"))]
        return page(items, "features", query.get("pageSize"), query.get("pageToken"))

    def patch_feature(self, name: str, body: dict, mask: str | None) -> dict:
        expect_common(body)
        with self.store.lock:
            feature = apply_mask(self.get_feature(name), body, mask,
                                 {"labels", "description", "pointOfContact"})
            feature.update(updateTime=now(), etag=new_id())
            self.store.put("features", key(name), feature)
        return operations.done(self.store, name, "UpdateFeatureOperationMetadata", "Feature",
                               feature)

    def delete_feature(self, name: str) -> dict:
        with self.store.lock:
            self.get_feature(name)
            self.store.delete("features", key(name))
        return operations.done(self.store, name, "DeleteOperationMetadata", None)
