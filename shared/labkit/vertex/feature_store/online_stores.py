"""featureOnlineStores, their featureViews and featureViewSyncs.

Google's rules followed (google/cloud/aiplatform/v1/feature_online_store.proto,
feature_view.proto, feature_online_store_admin_service.proto):
- A store is Bigtable (auto_scaling: min_node_count >= 1, min <= max_node_count <= 10 * min,
  cpu_utilization_target 10-80, 50 when unset) or Optimized (a public endpoint by default,
  its domain name in dedicated_serving_endpoint.public_endpoint_domain_name); ids and view
  ids are up to 60 characters of [a-z0-9_], not starting with a digit. A store with feature
  views is deleted only with force=true.
- A view reads a BigQuery source (uri + entity_id_columns) or features of the registry
  (feature_registry_source.feature_groups [{feature_group_id, feature_ids}]); sync_config
  .cron (optionally CRON_TZ=/TZ=) schedules syncs, continuous sync is Bigtable only
  ("Optimized online serving supports scheduled data sync, but doesn't support continuous
  data sync", https://cloud.google.com/vertex-ai/docs/featurestore/latest/online-serving-types);
  run_sync_immediately syncs once on creation.
- :sync answers SyncFeatureViewResponse {feature_view_sync}; a FeatureViewSync has
  create_time, run_time, final_status and sync_summary {row_synced, total_slot}.

Local differences: a sync runs before :sync answers (its FeatureViewSync is finished when
the caller first sees it). Private Service Connect endpoints, CMEK, embeddings (index_config,
searchNearestEntities), continuous sync and Vertex RAG sources run only on Google Cloud and
are refused as such.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

from labkit.vertex import errors, operations
from labkit.vertex.feature_store import sources
from labkit.vertex.feature_store.registry import (
    FeatureRegistry,
    check_id,
    expect,
    expect_common,
    group_source,
    key,
)
from labkit.vertex.feature_store.serving import OnlineServing
from labkit.vertex.pipelines.cron import Cron, CronError
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now

ID_60 = re.compile(r"[a-z_][a-z0-9_]{0,59}")
TICK_S = 1.0


def _count(value, field: str) -> int:
    """An int32 field: a JSON number, or the string protobuf's JSON parser also reads."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return expect(value, int, field) or 0


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class OnlineStores:
    def __init__(self, store: ResourceStore, registry: FeatureRegistry, bigquery,
                 serving: OnlineServing):
        self.store, self.registry, self.bigquery = store, registry, bigquery
        self.serving = serving
        self.lock = threading.RLock()
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True, name="feature-view-syncs").start()

    # ---- online stores
    def create_store(self, parent: str, body: dict, store_id: str | None) -> dict:
        check_id(store_id, "feature_online_store_id", ID_60, 60)
        name = f"{parent}/featureOnlineStores/{store_id}"
        expect_common(body)
        bigtable = expect(body.get("bigtable"), dict, "feature_online_store.bigtable")
        optimized = expect(body.get("optimized"), dict, "feature_online_store.optimized")
        expect(body.get("dedicatedServingEndpoint"), dict, "dedicated_serving_endpoint")
        if (bigtable is None) == (optimized is None):
            raise errors.invalid("A FeatureOnlineStore needs exactly one storage type: "
                                 "bigtable or optimized.")
        if body.get("encryptionSpec"):
            raise errors.gcp_only("FeatureOnlineStore encryption_spec (CMEK)")
        endpoint = dict(body.get("dedicatedServingEndpoint") or {})
        if (endpoint.get("privateServiceConnectConfig") or {}).get("enablePrivateServiceConnect"):
            raise errors.gcp_only("Optimized online serving over Private Service Connect")
        resource = {"name": name, "labels": body.get("labels", {}), "state": "STABLE"}
        if bigtable is not None:
            if endpoint:
                raise errors.invalid("dedicated_serving_endpoint is for Optimized online "
                                     "stores, not Bigtable.")
            resource["bigtable"] = {**bigtable, "autoScaling": self._scaling(bigtable)}
        else:
            resource["optimized"] = {}
            # The SDK reads this host from the store; with aiplatform.init(api_endpoint=...)
            # (labkit.start()) the SDK sends the fetches to that endpoint instead.
            endpoint["publicEndpointDomainName"] = \
                f"{new_id()[:10]}.{parent.split('/')[3]}-{new_id()[:12]}.featurestore.vertexai.goog"
            resource["dedicatedServingEndpoint"] = endpoint
        stamp = now()
        resource.update(createTime=stamp, updateTime=stamp, etag=new_id())
        with self.lock:
            if self.store.get("featureOnlineStores", key(name)):
                raise errors.VertexError("ALREADY_EXISTS",
                                         f"FeatureOnlineStore {name} already exists.")
            self.store.put("featureOnlineStores", key(name), resource)
        return operations.done(self.store, name, "CreateFeatureOnlineStoreOperationMetadata",
                               "FeatureOnlineStore", resource)

    @staticmethod
    def _scaling(bigtable: dict) -> dict:
        scaling = expect(bigtable.get("autoScaling"), dict, "bigtable.auto_scaling")
        if not scaling:
            raise errors.invalid("FeatureOnlineStore.bigtable.auto_scaling is required.")
        low, high, cpu = (_count(scaling.get(f), f"auto_scaling.{f}") for f in
                          ("minNodeCount", "maxNodeCount", "cpuUtilizationTarget"))
        cpu = cpu or 50
        if low < 1:
            raise errors.invalid("auto_scaling.min_node_count must be greater than or equal "
                                 "to 1.")
        if not low <= high <= 10 * low:
            raise errors.invalid("auto_scaling.max_node_count must be greater than or equal "
                                 "to min_node_count, and less than or equal to 10 times "
                                 "min_node_count.")
        if not 10 <= cpu <= 80:
            raise errors.invalid("auto_scaling.cpu_utilization_target must be from 10 to 80.")
        return {"minNodeCount": low, "maxNodeCount": high, "cpuUtilizationTarget": cpu}

    def get_store(self, name: str) -> dict:
        resource = self.store.get("featureOnlineStores", key(name))
        if resource is None:
            raise errors.not_found("FeatureOnlineStore", name)
        return resource

    def list_stores(self, parent: str, query: dict) -> dict:
        items = [s for s in self.store.all("featureOnlineStores")
                 if s["name"].startswith(parent + "/featureOnlineStores/")
                 and matches_filter(s, query.get("filter"))]
        return page(items, "featureOnlineStores", query.get("pageSize"), query.get("pageToken"))

    def patch_store(self, name: str, body: dict, mask: str | None) -> dict:
        expect_common(body)
        expect(body.get("bigtable"), dict, "feature_online_store.bigtable")
        fields = [f.strip() for f in (mask or "").split(",") if f.strip()] or list(body)
        tops = {f.split(".")[0] for f in fields}  # bigtable.auto_scaling is part of bigtable
        with self.lock:
            resource = self.get_store(name)
            if "bigtable" in tops:
                if "bigtable" not in resource:
                    raise errors.invalid("An Optimized online store has no bigtable settings.")
                given = body.get("bigtable") or {}
                body = {**body, "bigtable": {**resource["bigtable"], **given,
                                             "autoScaling": self._scaling(given)}}
            resource = apply_mask(resource, body, ",".join(sorted(tops)), {"labels", "bigtable"})
            resource.update(updateTime=now(), etag=new_id())
            self.store.put("featureOnlineStores", key(name), resource)
        return operations.done(self.store, name, "UpdateFeatureOnlineStoreOperationMetadata",
                               "FeatureOnlineStore", resource)

    def delete_store(self, name: str, force: bool) -> dict:
        with self.lock:
            self.get_store(name)
            views = self._views_of(name)
            if views and not force:
                raise errors.failed_precondition(
                    f"FeatureOnlineStore {name} has {len(views)} feature views: delete them "
                    f"first or delete with force=true.")
            for view in views:
                self._drop_view(view)
            self.store.delete("featureOnlineStores", key(name))
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- feature views
    def _views_of(self, store_name: str) -> list[dict]:
        return [v for v in self.store.all("featureViews")
                if v["name"].startswith(store_name + "/featureViews/")]

    def create_view(self, store_name: str, body: dict, view_id: str | None,
                    sync_now: bool) -> dict:
        check_id(view_id, "feature_view_id", ID_60, 60)
        online_store = self.get_store(store_name)
        name = f"{store_name}/featureViews/{view_id}"
        expect_common(body)
        given = [s for s in ("bigQuerySource", "featureRegistrySource", "vertexRagSource")
                 if expect(body.get(s), dict, f"feature_view.{s}")]
        if len(given) != 1:
            raise errors.invalid("A FeatureView needs exactly one source: big_query_source or "
                                 "feature_registry_source.")
        if given[0] == "vertexRagSource":
            raise errors.gcp_only("FeatureView vertex_rag_source")
        if body.get("indexConfig"):
            raise errors.gcp_only("FeatureView index_config (embedding management and "
                                  "searchNearestEntities)")
        resource = {"name": name, "labels": body.get("labels", {}),
                    given[0]: body[given[0]]}
        self._check_source(resource)
        sync_config = expect(body.get("syncConfig"), dict, "feature_view.sync_config")
        if sync_config:
            resource["syncConfig"] = self._sync_config(sync_config, online_store)
        stamp = now()
        resource.update(createTime=stamp, updateTime=stamp, etag=new_id())
        with self.lock:
            if self.store.get("featureViews", key(name)):
                raise errors.VertexError("ALREADY_EXISTS", f"FeatureView {name} already exists.")
            self.store.put("featureViews", key(name), resource)
        if sync_now:
            self.sync(name)
        return operations.done(self.store, name, "CreateFeatureViewOperationMetadata",
                               "FeatureView", resource)

    def _sync_config(self, config: dict, online_store: dict) -> dict:
        if config.get("continuous"):
            if "optimized" in online_store:
                raise errors.invalid("Continuous sync is not supported for Optimized online "
                                     "stores: use a cron sync_config or a Bigtable store.")
            raise errors.gcp_only("Continuous feature view sync")
        try:
            cron = Cron(expect(config.get("cron"), str, "sync_config.cron") or "")
        except CronError as exc:
            raise errors.invalid(f"Invalid sync_config.cron: {exc}") from None
        return {"cron": cron.text}

    def _check_source(self, view: dict) -> None:
        """The view's source exists and has the columns it names (a 400 otherwise)."""
        bq = view.get("bigQuerySource")
        if bq is not None:
            ref = sources.parse_uri(bq.get("uri"), "FeatureView.big_query_source.uri")
            entity_columns = list(expect(bq.get("entityIdColumns"), list,
                                         "big_query_source.entity_id_columns", str) or [])
            if not entity_columns:
                raise errors.invalid("FeatureView.big_query_source.entity_id_columns is "
                                     "required.")
            columns = sources.schema(self.bigquery, ref, view["name"].split("/")[3],
                                     "FeatureView source")
            sources.check_columns(columns, ref, entity_columns, None)
            return
        registry = view["featureRegistrySource"]
        if registry.get("projectNumber"):
            raise errors.gcp_only("A feature view over another project's feature registry")
        groups = expect(registry.get("featureGroups"), list,
                        "feature_registry_source.feature_groups", dict) or []
        if not groups:
            raise errors.invalid("feature_registry_source.feature_groups is required.")
        widths = set()
        parent = view["name"].split("/featureOnlineStores/")[0]
        for group in groups:
            group_id = expect(group.get("featureGroupId"), str, "feature_groups.feature_group_id")
            group_name = f"{parent}/featureGroups/{group_id}"
            found = self.registry.get_group(group_name)
            widths.add(len(group_source(found)[1]))
            expect(group.get("featureIds"), list, "feature_groups.feature_ids", str)
            if not group.get("featureIds"):
                raise errors.invalid(f"feature_ids of feature group {group_name} is empty.")
            for feature_id in group["featureIds"]:
                self.registry.get_feature(f"{group_name}/features/{feature_id}")
        if len(widths) > 1:
            raise errors.invalid("The feature groups of a feature view must have the same "
                                 "number of entity ID columns.")

    def get_view(self, name: str) -> dict:
        view = self.store.get("featureViews", key(name))
        if view is None:
            raise errors.not_found("FeatureView", name)
        return view

    def list_views(self, store_name: str, query: dict) -> dict:
        self.get_store(store_name)
        items = [v for v in self._views_of(store_name) if matches_filter(v, query.get("filter"))]
        return page(items, "featureViews", query.get("pageSize"), query.get("pageToken"))

    def patch_view(self, name: str, body: dict, mask: str | None) -> dict:
        expect_common(body)
        expect(body.get("syncConfig"), dict, "feature_view.sync_config")
        with self.lock:
            view = self.get_view(name)
            online_store = self.get_store(name.split("/featureViews/")[0])
            if body.get("syncConfig"):
                body = {**body, "syncConfig": self._sync_config(body["syncConfig"], online_store)}
            view = apply_mask(view, body, mask, {"labels", "syncConfig"})
            self.store.delete("featureViewSchedules", key(name))  # recomputed from the cron
            view.update(updateTime=now(), etag=new_id())
            self.store.put("featureViews", key(name), view)
        return operations.done(self.store, name, "UpdateFeatureViewOperationMetadata",
                               "FeatureView", view)

    def _drop_view(self, view: dict) -> None:
        for sync in self._syncs_of(view["name"]):
            self.store.delete("featureViewSyncs", key(sync["name"]))
        self.serving.drop(key(view["name"]))
        self.store.delete("featureViewSchedules", key(view["name"]))
        self.store.delete("featureViews", key(view["name"]))

    def delete_view(self, name: str) -> dict:
        with self.lock:
            self._drop_view(self.get_view(name))
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- syncs
    def _syncs_of(self, view_name: str) -> list[dict]:
        return [s for s in self.store.all("featureViewSyncs")
                if s["name"].startswith(view_name + "/featureViewSyncs/")]

    def sync(self, view_name: str) -> dict:
        """Reads the view's source now and serves it; the FeatureViewSync records the run
        (a failed read is the sync's final_status, as on Vertex AI)."""
        view = self.get_view(view_name)
        sync_name = f"{view_name}/featureViewSyncs/{new_id()}"
        started = now()
        try:
            columns, entities = self._read(view)
            rows = self.serving.publish(key(view_name), columns, entities)
            status, summary = {"code": 0}, {"rowSynced": str(rows), "totalSlot": "0",
                                            "systemWatermarkTime": started}
        except errors.VertexError as exc:
            status, summary = exc.as_operation_error(), {"rowSynced": "0", "totalSlot": "0"}
        sync = {"name": sync_name, "createTime": started,
                "runTime": {"startTime": started, "endTime": now()},
                "finalStatus": status, "syncSummary": summary}
        self.store.put("featureViewSyncs", key(sync_name), sync)
        return sync

    def _read(self, view: dict) -> tuple[list[str], dict]:
        bq = view.get("bigQuerySource")
        if bq is not None:
            ref = sources.parse_uri(bq["uri"], "FeatureView.big_query_source.uri")
            columns = list(bq["entityIdColumns"])
            return columns, sources.unique_rows(sources.read_rows(self.bigquery, ref),
                                                columns, ref)
        parent = view["name"].split("/featureOnlineStores/")[0]
        merged: dict[tuple, dict] = {}
        columns: list[str] = []
        for group in view["featureRegistrySource"]["featureGroups"]:
            group_name = f"{parent}/featureGroups/{group['featureGroupId']}"
            found = self.registry.get_group(group_name)
            ref, entity_columns, timestamp, dense = group_source(found)
            columns = columns or entity_columns
            features = {f: self.registry.get_feature(f"{group_name}/features/{f}")
                        ["versionColumnName"] for f in group["featureIds"]}
            latest = sources.latest_values(sources.read_rows(self.bigquery, ref),
                                           entity_columns, timestamp, features, dense)
            for entity, values in latest.items():
                served = merged.setdefault(entity, {})
                stamp = values.pop(timestamp, None) if timestamp else None
                served.update(values)
                if stamp is not None and (served.get("feature_timestamp") is None
                                          or stamp > served["feature_timestamp"]):
                    served["feature_timestamp"] = stamp
        return columns, merged

    def get_sync(self, name: str) -> dict:
        sync = self.store.get("featureViewSyncs", key(name))
        if sync is None:
            raise errors.not_found("FeatureViewSync", name)
        return sync

    def list_syncs(self, view_name: str, query: dict) -> dict:
        self.get_view(view_name)
        items = self._syncs_of(view_name)
        return page(items, "featureViewSyncs", query.get("pageSize"), query.get("pageToken"))

    # ---- the cron scheduler
    def _loop(self) -> None:
        while not self.stop.wait(TICK_S):
            try:
                self.tick(datetime.now(UTC))
            except Exception:  # noqa: BLE001 - one bad view must not stop the scheduler
                continue

    def tick(self, moment: datetime) -> list[str]:
        """Syncs every view whose cron came due by `moment`; the names of the syncs run."""
        ran = []
        for view in self.store.all("featureViews"):
            cron_text = (view.get("syncConfig") or {}).get("cron")
            if not cron_text:
                continue
            with self.lock:
                current = self.store.get("featureViews", key(view["name"]))
                if current is None or (current.get("syncConfig") or {}).get("cron") != cron_text:
                    continue
                cron = Cron(cron_text)
                # when the view's cron next fires (not a FeatureView field: kept beside it)
                known = self.store.get("featureViewSchedules", key(current["name"]))
                schedule = known or {
                    "nextSyncTime": _stamp(cron.next_after(_parse(current["updateTime"])))}
                if _parse(schedule["nextSyncTime"]) > moment:
                    if known is None:
                        self.store.put("featureViewSchedules", key(current["name"]), schedule)
                    continue
                schedule["nextSyncTime"] = _stamp(cron.next_after(moment))
                self.store.put("featureViewSchedules", key(current["name"]), schedule)
            ran.append(self.sync(current["name"])["name"])
        return ran
