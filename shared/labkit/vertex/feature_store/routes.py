"""Feature Store REST v1 routes (v1beta1 through vertex.routes.serve_v1beta1): HTTP <->
the registry, the online stores and online serving.

FeatureRegistryService, FeatureOnlineStoreAdminService and FeatureOnlineStoreService of
google-cloud-aiplatform's aiplatform_v1 (the paths their REST transports send). The SDK
(vertexai.resources.preview.feature_store) sends an Optimized store's fetches to the
store's public endpoint unless aiplatform.init has an api_endpoint, which labkit.start()
sets: they arrive here like every other Vertex AI call.
"""

from __future__ import annotations

from labkit.services.http import Request, Router
from labkit.vertex.feature_store.online_stores import OnlineStores
from labkit.vertex.feature_store.registry import FeatureRegistry, key
from labkit.vertex.feature_store.serving import OnlineServing
from labkit.vertex.routes import PARENT, parent_of, query_of, refuse

GROUP = PARENT + r"/featureGroups/(?P<group>[^/:]+)"
FEATURE = GROUP + r"/features/(?P<feature>[^/:]+)"
STORE = PARENT + r"/featureOnlineStores/(?P<store>[^/:]+)"
VIEW = STORE + r"/featureViews/(?P<view>[^/:]+)"


def _group(r: Request) -> str:
    return f"{parent_of(r)}/featureGroups/{r.params['group']}"


def _feature(r: Request) -> str:
    return f"{_group(r)}/features/{r.params['feature']}"


def _store(r: Request) -> str:
    return f"{parent_of(r)}/featureOnlineStores/{r.params['store']}"


def _view(r: Request) -> str:
    return f"{_store(r)}/featureViews/{r.params['view']}"


def _flag(r: Request, name: str) -> bool:
    return (r.arg(name) or "").lower() == "true"


def register(router: Router, services) -> None:
    store = services.vertex_store
    registry = FeatureRegistry(store, services.bigquery)
    serving = OnlineServing(services.workspace.root / "vertex" / "feature_view_data")
    online = OnlineStores(store, registry, services.bigquery, serving)
    services.closers.append(online.stop.set)
    add = router.add

    # ---- feature registry
    add("POST", PARENT + r"/featureGroups",
        lambda r: registry.create_group(parent_of(r), r.json(), r.arg("featureGroupId")))
    add("GET", PARENT + r"/featureGroups",
        lambda r: registry.list_groups(parent_of(r), query_of(r)))
    add("GET", GROUP, lambda r: registry.get_group(_group(r)))
    add("PATCH", GROUP, lambda r: registry.patch_group(_group(r), r.json(), r.arg("updateMask")))
    add("DELETE", GROUP, lambda r: registry.delete_group(_group(r), _flag(r, "force")))
    add("POST", GROUP + r"/features",
        lambda r: registry.create_feature(_group(r), r.json(), r.arg("featureId")))
    add("POST", GROUP + r"/features:batchCreate", refuse("features:batchCreate (create the "
                                                          "features one at a time)"))
    add("GET", GROUP + r"/features", lambda r: registry.list_features(_group(r), query_of(r)))
    add("GET", FEATURE, lambda r: registry.get_feature(_feature(r)))
    add("PATCH", FEATURE,
        lambda r: registry.patch_feature(_feature(r), r.json(), r.arg("updateMask")))
    add("DELETE", FEATURE, lambda r: registry.delete_feature(_feature(r)))
    for method in ("GET", "POST"):
        add(method, GROUP + r"/featureMonitors(?:/[^:]*)?", refuse("Feature monitors"))

    # ---- online stores and feature views
    add("POST", PARENT + r"/featureOnlineStores",
        lambda r: online.create_store(parent_of(r), r.json(), r.arg("featureOnlineStoreId")))
    add("GET", PARENT + r"/featureOnlineStores",
        lambda r: online.list_stores(parent_of(r), query_of(r)))
    add("GET", STORE, lambda r: online.get_store(_store(r)))
    add("PATCH", STORE, lambda r: online.patch_store(_store(r), r.json(), r.arg("updateMask")))
    add("DELETE", STORE, lambda r: online.delete_store(_store(r), _flag(r, "force")))
    add("POST", STORE + r"/featureViews",
        lambda r: online.create_view(_store(r), r.json(), r.arg("featureViewId"),
                                     _flag(r, "runSyncImmediately")))
    add("GET", STORE + r"/featureViews", lambda r: online.list_views(_store(r), query_of(r)))
    add("GET", VIEW, lambda r: online.get_view(_view(r)))
    add("PATCH", VIEW, lambda r: online.patch_view(_view(r), r.json(), r.arg("updateMask")))
    add("DELETE", VIEW, lambda r: online.delete_view(_view(r)))
    add("POST", VIEW + r":sync",
        lambda r: {"featureViewSync": online.sync(_view(r))["name"]})
    add("GET", VIEW + r"/featureViewSyncs", lambda r: online.list_syncs(_view(r), query_of(r)))
    add("GET", VIEW + r"/featureViewSyncs/(?P<sync>[^/:]+)",
        lambda r: online.get_sync(f"{_view(r)}/featureViewSyncs/{r.params['sync']}"))

    # ---- online serving
    def fetch(r: Request):
        name = _view(r)
        if not serving.serves(key(name)):  # an unknown view (404) or one never synced
            online.get_view(name)
        return serving.fetch(name, key(name), r.json())

    add("POST", VIEW + r":fetchFeatureValues", fetch)
    add("POST", VIEW + r":searchNearestEntities",
        refuse("searchNearestEntities (embedding management in feature views)"))
    add("POST", VIEW + r":generateFetchAccessToken", refuse("generateFetchAccessToken"))
    add("POST", VIEW + r":directWrite", refuse("Feature view direct write"))
